"""Cut an utterance into the pieces the text models judge one by one.

A whole utterance scored at once dilutes one negative sentence among neutral ones ("I
can't see any double charge here. That's not something I can change. It's how it
policy." scored 0.41 as one text, 0.94 for its second sentence alone), so each piece is
judged and the one that fires is quoted.

Pieces are sentences at ``.``, ``?``, ``!`` or ``;`` followed by a space (not after a
title such as "Mr." or an initial); a sentence of fewer than ``MIN_WORDS`` words joins
the next one, because Whisper often ends a clause with a full stop where the writer put a
comma ("It's not impossible. Let me see what I can do."), and a sentence that opens with
a connective ("However, ...", "But ...", "So ...") joins the one before for the same
reason ("The deposit can't be refunded. However, I can move it." alone reads as a
refusal: on what Whisper heard of the training lines in Piper's voice, 7 of the
negative-phrasing head's 30 false flags were such halves, and no true flag was lost by
joining them). Short sentences at the end join the one before, and that one is also
judged alone: a closing question must not dilute what came before it (in "Let me pull up
the account. It's our policy, sir. Anything else today?" the last two scored 0.88 joined,
under the 0.9 a sentence alone needs, and the policy sentence 1.00 alone). Whisper's
punctuation can't be trusted alone: it often runs clauses together without a stop, so a
piece still longer than ``MAX_WORDS`` words is cut at its commas, and a clause still too
long is judged in overlapping windows of ``WINDOW_WORDS`` words, ``WINDOW_STRIDE`` apart
(the last one ends with the piece), so every stretch of a long run-on is seen in a short
enough text. Pure, character spans.
"""

from __future__ import annotations

import re

MAX_WORDS = 30
MIN_WORDS = 4
WINDOW_WORDS = 12
WINDOW_STRIDE = 6

_STOP = re.compile(r"[.?!;]+(?=\s)")
_COMMA = re.compile(r",(?=\s)")
_WORD = re.compile(r"\S+")
_LETTER = re.compile(r"\w")
# Openers that carry on the sentence before (a contrast, a consequence, an offer in its
# place), after an optional filler: Whisper often puts a full stop where the writer had a
# comma, and the first half alone reads as a refusal or a complaint it is not.
_CONTINUATION = re.compile(
    r"\W*(?:(?:um|uh|so|and|well),?\s+)?(?:but|however|though|although|so|and|instead|"
    r"otherwise|that said|still|yet|except|which|what I can do)\b",
    re.I,
)
_TITLES = {"mr", "mrs", "ms", "dr", "st", "jr", "sr", "vs", "etc", "no"}


def _after_title(text: str, stop: int) -> bool:
    """The full stop at ``stop`` ends a title ("Mr.") or an initial ("J."), not a sentence."""
    if text[stop] != ".":
        return False
    word = re.search(r"(\w+)$", text[:stop])
    if word is None:
        return False
    token = word.group(1)
    return token.lower() in _TITLES or (len(token) == 1 and token.isalpha() and token.isupper())


def _cut(text: str, start: int, end: int, boundary: re.Pattern[str]) -> list[tuple[int, int]]:
    """Spans of ``text[start:end]`` cut after each ``boundary`` match (stripped, non-empty)."""
    spans: list[tuple[int, int]] = []
    begin = start
    for match in boundary.finditer(text, start, end):
        if boundary is _STOP and _after_title(text, match.start()):
            continue
        spans.append((begin, match.end()))
        begin = match.end()
    spans.append((begin, end))
    return [span for s, e in spans if (span := _strip(text, s, e))[0] < span[1]]


def _strip(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def _windows(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """Overlapping word windows over ``text[start:end]`` (module docstring)."""
    words = [(m.start(), m.end()) for m in _WORD.finditer(text, start, end)]
    if len(words) <= MAX_WORDS:
        return [(start, end)]
    firsts = list(range(0, len(words) - WINDOW_WORDS, WINDOW_STRIDE))
    firsts.append(len(words) - WINDOW_WORDS)
    return [(words[i][0], words[i + WINDOW_WORDS - 1][1]) for i in firsts]


def word_count(text: str) -> int:
    """Whitespace-separated words in ``text``."""
    return len(_WORD.findall(text))


def _merge_short(text: str, spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Sentences of fewer than ``MIN_WORDS`` words joined to the next one: "It's not
    impossible. Let me see." is one thought, however Whisper punctuates it. Short ones at
    the end join the one before, which stays a piece of its own too (the two overlap,
    in order of their starts), unless the short ones have no words or the two together
    are longer than ``MAX_WORDS`` (then they are cut at commas anyway)."""
    merged: list[tuple[int, int]] = []
    pending: int | None = None  # start of short sentences waiting for the next one
    for start, end in spans:
        begin = start if pending is None else pending
        if word_count(text[begin:end]) < MIN_WORDS:
            pending = begin
            continue
        merged.append((begin, end))
        pending = None
    if pending is not None:
        joined = (merged[-1][0] if merged else pending, spans[-1][1])
        tail_has_words = _LETTER.search(text, pending, spans[-1][1]) is not None
        if merged and (not tail_has_words or word_count(text[slice(*joined)]) > MAX_WORDS):
            merged[-1] = joined  # nothing to judge alone, or cut at commas anyway
        else:
            merged.append(joined)
    return merged


def _join_continuations(text: str, spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """A sentence that opens with a connective (``_CONTINUATION``: "However, ...", "But
    ...", "So ...") joined to the one before: "The deposit can't be refunded. However, I
    can move it to a new date." is the one thought its writer put a comma in."""
    joined: list[tuple[int, int]] = []
    for start, end in spans:
        if joined and _CONTINUATION.match(text, start, end):
            joined[-1] = (joined[-1][0], end)
        else:
            joined.append((start, end))
    return joined


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """Character spans of the pieces of ``text`` to judge, in order (module docstring);
    ``[]`` for a text without words. Windows of a long run-on overlap, and so do the last
    sentence alone and with the short ones after it."""
    pieces: list[tuple[int, int]] = []
    stops = _join_continuations(text, _cut(text, 0, len(text), _STOP))
    for start, end in _merge_short(text, stops):
        if word_count(text[start:end]) <= MAX_WORDS:
            pieces.append((start, end))
            continue
        for c_start, c_end in _cut(text, start, end, _COMMA):
            pieces.extend(_windows(text, c_start, c_end))
    return [span for span in pieces if _LETTER.search(text, span[0], span[1])]


def sentences(text: str) -> list[str]:
    """The texts of ``sentence_spans(text)``."""
    return [text[start:end] for start, end in sentence_spans(text)]


def pieces_of(text: str) -> list[tuple[int, int]]:
    """The spans to judge on their own besides the whole utterance: ``sentence_spans``
    but the one that is the whole utterance, or none when the utterance is a single
    piece."""
    spans = sentence_spans(text)
    if len(spans) <= 1:
        return []
    whole = _strip(text, 0, len(text))
    return [span for span in spans if span != whole]
