"""PII redaction for transcripts, applied before any text is published or stored.

Owns turning every way a number is written or spoken ("4111 1111", "4, 1, 1, 1", "4-1-1-1",
"four one one one", "4 one 1 one", "double four", "oh" for zero, "forty one eleven",
"12/27") into runs of digits, and deciding which runs to replace with a visible tag
("[card]", "[ssn]", "[phone]", "[number]"; e-mails "[email]").

``redact(text)`` is stateless. ``SpokenNumberRedactor`` (one per call channel, the
channels of a call sharing one ``RedactionContext``) also remembers what the call said
recently, in media seconds, so a card read in groups across utterances, an expiry or a
security code after "card number" go too. Errs on the side of removing.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass

CONTEXT_S = 60.0  # a sensitive topic ("card", "security code", ...) counts this long
CONTINUE_S = 15.0  # a digit group continues one said within this gap

_UNITS = {"zero": 0, "oh": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5,
          "six": 6, "seven": 7, "eight": 8, "nine": 9}  # fmt: skip
_TEENS = {"ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15,
          "sixteen": 16, "seventeen": 17, "eighteen": 18, "nineteen": 19}  # fmt: skip
_TENS = {"twenty": 20, "thirty": 30, "forty": 40, "fourty": 40, "fifty": 50, "sixty": 60,
         "seventy": 70, "eighty": 80, "ninety": 90}  # fmt: skip
_REPEAT = {"double": 2, "triple": 3}
_NUMBER_WORDS = [*_UNITS, *_TEENS, *_TENS, *_REPEAT, "hundred", "thousand"]
_FILLERS = r"\b(?:uh+|u+m+|er+m?|ah+|hmm+|mm+)\b"
# Words a reader says around digits without changing what they are ("it's uh 4111, okay").
_AROUND = frozenset(
    ["uh", "um", "umm", "er", "erm", "ah", "hmm", "mm", "okay", "ok", "yes", "yeah", "yep",
     "sure", "so", "and", "then", "it", "it's", "its", "is", "was", "that", "that's", "this",
     "the", "my", "a", "right", "alright", "well", "again", "next", "last", "first", "ending",
     "in", "with", "starts", "number", "numbers", "digits"]
)  # fmt: skip
_SENSITIVE = re.compile(
    r"\b(?:card|credit|debit|visa|master ?card|amex|american express|discover|expir\w*|"
    r"exp(?:\.|iry)? date|valid (?:thru|through|until)|security (?:code|number)|cvv2?|cvc|"
    r"csc|cv2|pin|passcode|password|social|ssn|account (?:number|no)|routing|sort code|"
    r"iban|swift|bank|date of birth|birth ?date|dob|zip|post ?code|postal|digits|"
    r"(?:phone|member|policy|id|license|licence|passport|tax|reference) (?:number|no))\b",
    re.IGNORECASE,
)
_MONEY_BEFORE = re.compile(r"[$£€]\s*$")
_MONEY_AFTER = re.compile(r"\s*(?:%|(?:dollars?|bucks|cents?|percent|pounds?|euros?)\b)", re.I)
_TOKEN = re.compile(r"\d+|[^\W\d_]+(?:['’][^\W\d_]+)?")
_TIGHT = re.compile(r"[\s-]*")  # inside one spoken number: "forty-one", "two hundred"
_JOIN = re.compile(r"[\s,.\-–/():;]*")  # between the digit groups of one run
_EMAIL = re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b")
_EMAIL_SPOKEN = re.compile(r"\b[\w.+-]+ at [\w-]+ dot (?:com|net|org|edu|gov|io|co)\b", re.I)
_SENSITIVE_WORD = re.compile(rf"\d|@|\b(?:{'|'.join(_NUMBER_WORDS)})\b", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class _Token:
    text: str
    low: str
    start: int  # character offsets in the text
    end: int


@dataclass(frozen=True, slots=True)
class _Atom:
    digits: str  # "4111", "41" (forty one), "44" (double four)
    start: int
    end: int
    oh: bool = False  # the word "oh": a zero only next to other digits


@dataclass(frozen=True, slots=True)
class _Run:
    atoms: tuple[_Atom, ...]
    start: int
    end: int

    @property
    def digits(self) -> str:
        return "".join(a.digits for a in self.atoms)

    @property
    def groups(self) -> tuple[int, ...]:
        return tuple(len(a.digits) for a in self.atoms)


class _Parser:
    """Number words and digits of one text, as atoms in order."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = [
            _Token(m[0], m[0].lower().replace("’", "'"), m.start(), m.end())
            for m in _TOKEN.finditer(text)
        ]

    def _tight(self, j: int) -> bool:
        """Token ``j`` follows token ``j - 1`` inside one spoken number."""
        if not 0 < j < len(self.tokens):
            return False
        gap = self.text[self.tokens[j - 1].end : self.tokens[j].start]
        return _TIGHT.fullmatch(gap) is not None

    def _is(self, j: int, words: Iterable[str]) -> bool:
        return self._tight(j) and self.tokens[j].low in words

    def _below_hundred(self, i: int) -> tuple[int, int] | None:
        t = self.tokens[i]
        if t.text.isdigit():
            return (int(t.text), i + 1) if len(t.text) <= 2 else None
        if t.low in _TENS:
            nxt = self.tokens[i + 1].low if self._tight(i + 1) else ""
            if nxt in _UNITS and nxt not in ("zero", "oh"):
                return _TENS[t.low] + _UNITS[nxt], i + 2
            return _TENS[t.low], i + 1
        if t.low in _TEENS:
            return _TEENS[t.low], i + 1
        if t.low in _UNITS and t.low not in ("zero", "oh"):
            return _UNITS[t.low], i + 1
        if t.low == "a" and self._is(i + 1, ("hundred", "thousand")):
            return 1, i + 1
        return None

    def _addend(self, j: int, below: int) -> tuple[int, int] | None:
        if j < len(self.tokens) and self.tokens[j].low == "and" and self._tight(j):
            j += 1
        if not self._tight(j):
            return None
        parsed = self._below_thousand(j) if below > 100 else self._below_hundred(j)
        if parsed is None or parsed[0] >= below or self.tokens[j].text.isdigit():
            return None
        return parsed

    def _below_thousand(self, i: int) -> tuple[int, int] | None:
        return self._scaled(i, self._below_hundred, "hundred", 100)

    def _cardinal(self, i: int) -> tuple[int, int] | None:
        return self._scaled(i, self._below_thousand, "thousand", 1000)

    def _scaled(
        self,
        i: int,
        smaller: Callable[[int], tuple[int, int] | None],
        word: str,
        scale: int,
    ) -> tuple[int, int] | None:
        """A number from token ``i`` optionally times ``scale`` ("hundred", "thousand")
        plus what follows it: (value, index after it), or None."""
        parsed = smaller(i)
        if parsed is None:
            return None
        value, j = parsed
        if self._is(j, (word,)):
            value, j = value * scale, j + 1
            rest = self._addend(j, scale)
            if rest is not None:
                value, j = value + rest[0], rest[1]
        return value, j

    def atoms(self) -> tuple[list[_Atom], set[int]]:
        """(atoms, indices of the tokens they consumed)."""
        atoms: list[_Atom] = []
        used: set[int] = set()
        i, tokens = 0, self.tokens
        while i < len(tokens):
            t = tokens[i]
            j = i + 1
            if t.text.isdigit():
                if self._is(i + 1, ("hundred", "thousand")) and len(t.text) <= 2:
                    value, j = self._cardinal(i) or (int(t.text), i + 1)
                    atom = _Atom(str(value), t.start, tokens[j - 1].end)
                else:
                    atom = _Atom(t.text, t.start, t.end)
            elif t.low in _REPEAT and self._tight(i + 1) and self._digit(tokens[i + 1]):
                j = i + 2
                repeated = self._digit(tokens[i + 1]) * _REPEAT[t.low]
                atom = _Atom(repeated, t.start, tokens[i + 1].end)
            elif t.low in ("zero", "oh"):
                atom = _Atom("0", t.start, t.end, oh=t.low == "oh")
            elif (parsed := self._cardinal(i)) is not None:
                value, j = parsed
                atom = _Atom(str(value), t.start, tokens[j - 1].end)
            else:
                i += 1
                continue
            atoms.append(atom)
            used.update(range(i, j))
            i = j
        return atoms, used

    @staticmethod
    def _digit(token: _Token) -> str:
        if token.text.isdigit() and len(token.text) == 1:
            return token.text
        return str(_UNITS[token.low]) if token.low in _UNITS else ""


def _runs(text: str, atoms: list[_Atom]) -> list[_Run]:
    """Atoms joined by separators (spaces, commas, dashes, dots, slashes, fillers) into runs."""
    groups: list[list[_Atom]] = []
    for atom in atoms:
        if groups:
            gap = re.sub(_FILLERS, "", text[groups[-1][-1].end : atom.start], flags=re.I)
            if _JOIN.fullmatch(gap):
                groups[-1].append(atom)
                continue
        groups.append([atom])
    runs = []
    for group in groups:
        # "Oh, 4111": an interjection, not a zero
        while group and group[0].oh and len(group) > 1:
            gap = text[group[0].end : group[1].start]
            if not any(ch in gap for ch in ",.!?"):
                break
            group = group[1:]
        if all(a.oh for a in group):
            continue  # "oh" alone is a word
        start = group[0].start
        while start > 0 and text[start - 1] in "(+":
            start -= 1
        runs.append(_Run(tuple(group), start, group[-1].end))
    return runs


def digit_runs(text: str) -> list[str]:
    """The digits of every number in ``text``, written or spoken, one string per run
    ("my card is four one one one, double one" -> ["411111"])."""
    atoms, _ = _Parser(text).atoms()
    return [run.digits for run in _runs(text, atoms)]


def _luhn(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _tag(run: _Run) -> str:
    digits, groups = run.digits, run.groups
    if 13 <= len(digits) <= 19 and _luhn(digits):
        return "[card]"
    if groups == (3, 2, 4):
        return "[ssn]"
    if groups in ((3, 3, 4), (1, 3, 3, 4), (10,)) or (groups == (1, 10) and digits[0] == "1"):
        return "[phone]"
    return "[number]"


@dataclass(frozen=True, slots=True)
class _Heard:
    channel: str
    start_s: float
    end_s: float
    topic: bool  # named a sensitive topic
    group: bool  # carried a digit group that was redacted (or said on its own)


def _gap_s(a_start: float, a_end: float, b_start: float, b_end: float) -> float:
    return max(0.0, a_start - b_end, b_start - a_end)


class RedactionContext:
    """What a call's channels said recently, by media time: sensitive topics and digit
    groups. Shared by the call's redactors; arrival order does not matter."""

    def __init__(self, context_s: float = CONTEXT_S, continue_s: float = CONTINUE_S) -> None:
        self.context_s = context_s
        self.continue_s = continue_s
        self._heard: dict[tuple[str, Hashable], _Heard] = {}
        self._latest_s = 0.0

    def sensitive(self, key: tuple[str, Hashable], start_s: float, end_s: float) -> bool:
        """Whether a topic was named within ``context_s``, or a digit group said within
        ``continue_s``, of [start_s, end_s] (by any channel, in any other utterance)."""
        for other, heard in self._heard.items():
            if other == key:
                continue
            gap = _gap_s(start_s, end_s, heard.start_s, heard.end_s)
            if (heard.topic and gap <= self.context_s) or (heard.group and gap <= self.continue_s):
                return True
        return False

    def record(self, key: tuple[str, Hashable], heard: _Heard) -> None:
        """Remember an utterance (a later text for the same key, e.g. its final, replaces it)."""
        self._heard[key] = heard
        self._latest_s = max(self._latest_s, heard.end_s)
        horizon = self._latest_s - 2 * max(self.context_s, self.continue_s)
        for old in [k for k, h in self._heard.items() if h.end_s < horizon]:
            del self._heard[old]


class SpokenNumberRedactor:
    """Redacts one channel's utterances, knowing what the call said before (and around)
    them. ``redact`` takes the text and its media span in seconds; ``key`` names the
    utterance, so a partial and its final count once."""

    def __init__(self, channel: str = "", context: RedactionContext | None = None) -> None:
        self.channel = channel
        self.context = context if context is not None else RedactionContext()
        self._auto = itertools.count()

    @classmethod
    def for_call(cls, channels: Iterable[str]) -> dict[str, SpokenNumberRedactor]:
        """One redactor per channel role, sharing one context."""
        context = RedactionContext()
        return {channel: cls(channel, context) for channel in channels}

    def redact(
        self, text: str, start_s: float = 0.0, end_s: float = 0.0, key: Hashable = None
    ) -> str:
        full_key = (self.channel, key if key is not None else ("auto", next(self._auto)))
        text = _EMAIL.sub("[email]", text)
        text = _EMAIL_SPOKEN.sub("[email]", text)
        parser = _Parser(text)
        atoms, used = parser.atoms()
        runs = _runs(text, atoms)
        topic = _SENSITIVE.search(text) is not None
        # nothing but digits and the words people say around them: a number read out
        bare = bool(runs) and all(
            i in used or t.low in _AROUND for i, t in enumerate(parser.tokens)
        )
        sensitive = topic or self.context.sensitive(full_key, start_s, end_s)
        cuts: list[tuple[int, int, str]] = []
        group = bare and sum(len(r.digits) for r in runs) >= 2
        for run in runs:
            n = len(run.digits)
            money = _MONEY_BEFORE.search(text[: run.start]) or _MONEY_AFTER.match(text, run.end)
            if n >= 6:
                cut = True
            elif money:
                cut = False
            elif sensitive:
                cut = n >= 2 or bare
            else:
                # said on its own, or shaped like the start of a card (4111, 5500, 3782)
                cut = (bare and n >= 3) or (n == 4 and run.digits[0] in "3456")
            if cut:
                cuts.append((run.start, run.end, _tag(run)))
                group = group or n >= 2
        self.context.record(full_key, _Heard(self.channel, start_s, end_s, topic, group))
        for start, end, tag in reversed(cuts):
            text = text[:start] + tag + text[end:]
        return text


def redact(text: str) -> str:
    """Stateless: one utterance on its own, with no call around it."""
    return SpokenNumberRedactor().redact(text)


def redact_word(word: str) -> str:
    """In a transcript that had something redacted, words that could carry it go too:
    any word with a digit, an "@" or a number word ("four", "oh", "double")."""
    return "[redacted]" if _SENSITIVE_WORD.search(word) else word
