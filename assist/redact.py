"""PII redaction for transcripts, applied before any text is published or stored.

Card numbers, SSN-like and account-like digit runs, e-mail addresses and phone numbers are
replaced by a visible tag ("[card]", "[ssn]", "[number]", "[email]", "[phone]") so a
reader sees that something was removed. Digits spoken as words ("four five six seven
...") count as digits. Pure; the patterns err on the side of removing.
"""

from __future__ import annotations

import re

_NUMBER_WORDS = r"(?:zero|oh|one|two|three|four|five|six|seven|eight|nine)"
# Six or more spoken digits in a row ("four five six seven eight nine") -> a digit run.
_SPOKEN_RUN = re.compile(rf"\b{_NUMBER_WORDS}(?:[\s,-]+{_NUMBER_WORDS}){{5,}}\b", re.IGNORECASE)
_EMAIL = re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b")
_EMAIL_SPOKEN = re.compile(r"\b[\w.+-]+ at [\w-]+ dot (?:com|net|org|edu|gov|io|co)\b", re.I)
# Between digits: nothing, a space, a dash, a dot or a comma (Whisper writes digits read
# out one by one as "4, 1, 1, 1, ...").
_SEP = r"(?:,\s?|[ .-])?"
_CARD = re.compile(rf"\b(?:\d{_SEP}){{12,18}}\d\b")
_SSN = re.compile(r"\b\d{3}[- ]\d{2}[- ]\d{4}\b")
_PHONE = re.compile(r"(?:\+?1[ .-]?)?\(?\b\d{3}\)?[ .-]?\d{3}[ .-]?\d{4}\b")
_DIGIT_RUN = re.compile(rf"\b\d(?:{_SEP}\d){{5,}}\b")


def _luhn(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _spoken_to_digits(match: re.Match[str]) -> str:
    words = re.split(r"[\s,-]+", match.group(0).lower())
    table = {"oh": "0", "zero": "0", "one": "1", "two": "2", "three": "3", "four": "4",
             "five": "5", "six": "6", "seven": "7", "eight": "8", "nine": "9"}  # fmt: skip
    return "".join(table[w] for w in words if w in table)


def _card_or_number(match: re.Match[str]) -> str:
    digits = re.sub(r"\D", "", match.group(0))
    return "[card]" if 13 <= len(digits) <= 19 and _luhn(digits) else "[number]"


def redact(text: str) -> str:
    text = _SPOKEN_RUN.sub(_spoken_to_digits, text)
    text = _EMAIL.sub("[email]", text)
    text = _EMAIL_SPOKEN.sub("[email]", text)
    text = _CARD.sub(_card_or_number, text)
    text = _SSN.sub("[ssn]", text)
    text = _PHONE.sub("[phone]", text)
    return _DIGIT_RUN.sub("[number]", text)


_SENSITIVE_WORD = re.compile(rf"\d|@|^{_NUMBER_WORDS}[.,]?$", re.IGNORECASE)


def redact_word(word: str) -> str:
    """In a transcript that had something redacted, words that could carry it go too."""
    return "[redacted]" if _SENSITIVE_WORD.search(word) else word
