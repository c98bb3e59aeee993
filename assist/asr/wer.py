"""Word error rate with a small text normalizer (case, punctuation, digits 0-99 as words).

Used by the quality benchmark and the transcription tests to compare transcripts with
reference texts: (substitutions + deletions + insertions) / reference words.
"""

from __future__ import annotations

import re

_ONES = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
]
_TENS = ["_", "_", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]


def _number_words(n: int) -> str:
    if n < 20:
        return _ONES[n]
    tens, ones = divmod(n, 10)
    return _TENS[tens] + ("" if ones == 0 else " " + _ONES[ones])


def normalize(text: str) -> list[str]:
    """The words of ``text`` as the error rate compares them: lower case, ``%`` -> percent,
    ``&`` -> and, ``[annotations]`` dropped, hyphenated words split, standalone numbers
    0-99 spelled out, other punctuation removed (apostrophes inside words kept)."""
    text = text.lower().replace("%", " percent").replace("&", " and ")
    text = re.sub(r"\[[^\]]*\]", " ", text)  # [tones] and other annotations
    text = re.sub(r"(?<=\w)-(?=\w)", " ", text)
    text = re.sub(r"\b(\d{1,2})\b", lambda m: _number_words(int(m.group(1))), text)
    text = re.sub(r"[^a-z0-9' ]+", " ", text)
    return [w.strip("'") for w in text.split() if w.strip("'")]


def edit_distance(reference: list[str], hypothesis: list[str]) -> int:
    """Word-level Levenshtein distance: the fewest substitutions, deletions and insertions that
    turn ``reference`` into ``hypothesis``."""
    previous = list(range(len(hypothesis) + 1))
    for i, ref_word in enumerate(reference, 1):
        current = [i]
        for j, hyp_word in enumerate(hypothesis, 1):
            current.append(
                min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ref_word != hyp_word))
            )
        previous = current
    return previous[-1]


def word_error_rate(reference: str, hypothesis: str) -> tuple[int, int]:
    """(word errors, reference words)."""
    ref, hyp = normalize(reference), normalize(hypothesis)
    return edit_distance(ref, hyp), len(ref)
