"""PII redaction for transcripts, applied before any text is published or stored.

Owns turning every way a number is written or spoken ("4111 1111", "4, 1, 1, 1", "4-1-1-1",
"four one one one", "4 one 1 one", "double four", "oh" for zero, "forty one eleven",
"12/27", "plus four four") into runs of digits, finding e-mail addresses written or
spoken ("john dot smith at gmail dot com"), and deciding which runs to replace with a
visible tag ("[card]", "[ssn]", "[phone]", "[number]"; e-mails "[email]"). Phone numbers
are recognised with ``phonenumbers`` (international forms with "+", "00" or "011", and
national US/UK ones).

``redact(text)`` is stateless. ``SpokenNumberRedactor`` (one per call channel, the
channels of a call sharing one ``RedactionContext``) also remembers what the call said
recently, in media seconds, so a card read in groups across utterances, an expiry, a
security code or a PIN after "card number" go too. When a later utterance shows that an
earlier final one carried part of a number (its first group, said before anyone named
the topic, or a transcript that came back before the question it answers), the context
issues a ``Correction`` of the earlier one: published copies are replaced. Redaction only
ever grows: a correction never shows anything that was hidden. Errs on the side of
removing. The raw text of recent utterances is kept in memory for ``2 x CONTEXT_S`` of
media time (to judge them again), never published or stored.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass

import phonenumbers

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
     "in", "with", "starts", "number", "numbers", "digits", "plus"]
)  # fmt: skip
_SENSITIVE = re.compile(
    r"\b(?:card|credit|debit|visa|master ?card|amex|american express|discover|expir\w*|"
    r"exp(?:\.|iry)? date|valid (?:thru|through|until)|security (?:code|number)|cvv2?|cvc|"
    r"csc|cv2|pin|pins|pin code|passcode|password|social|ssn|account (?:number|no)|routing|"
    r"sort code|iban|swift|bank|date of birth|birth ?date|dob|zip|post ?code|postal|digits|"
    r"(?:phone|member|policy|id|license|licence|passport|tax|reference|contact|mobile|cell|"
    r"telephone) (?:number|no)|mobile|cell ?phone|telephone|extension|"
    r"(?:call|reach|text) me (?:back )?(?:at|on))\b",
    re.IGNORECASE,
)
_MONEY_BEFORE = re.compile(r"[$£€]\s*$")
_MONEY_AFTER = re.compile(r"\s*(?:%|(?:dollars?|bucks|cents?|percent|pounds?|euros?)\b)", re.I)
_PLUS_BEFORE = re.compile(r"(?:\+|\bplus)\s*$", re.I)
_TOKEN = re.compile(r"\d+|[^\W\d_]+(?:['’][^\W\d_]+)?")
_TIGHT = re.compile(r"[\s-]*")  # inside one spoken number: "forty-one", "two hundred"
_JOIN = re.compile(r"[\s,.\-–/():;]*")  # between the digit groups of one run
_SENSITIVE_WORD = re.compile(rf"\d|@|\b(?:{'|'.join(_NUMBER_WORDS)})\b", re.IGNORECASE)

# E-mail addresses: written ("jane.doe@example.com"), spoken ("jane dot doe at example dot
# com"), or both ("jane.doe at gmail.com").
_EMAIL = re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b")
_TLDS = ("com|net|org|edu|gov|mil|io|co|uk|ca|de|fr|es|nl|ch|au|nz|ie|jp|cn|br|mx|za|se|dk|"
         "fi|pl|ru|info|biz|tv|app|dev|ai")  # fmt: skip
_PROVIDERS = ("gmail|googlemail|yahoo|hotmail|outlook|live|msn|icloud|me|mac|aol|proton|"
              "protonmail|gmx|comcast|verizon|att|sbcglobal|btinternet|mail")  # fmt: skip
_LABEL = r"[A-Za-z0-9]+"
_DOT = r"(?:\s*\.\s*|\s+(?:dot|period)\s+)"
_SEP = r"(?:\s*[._-]\s*|\s+(?:dot|period|underscore|dash|hyphen)\s+)"
_EMAIL_SPOKEN = re.compile(
    rf"\b{_LABEL}(?:{_SEP}{_LABEL})*\s+at\s+"
    rf"(?:{_LABEL}(?:{_DOT}{_LABEL})*{_DOT}(?:{_TLDS})|(?:{_PROVIDERS})(?:{_DOT}(?:{_TLDS}))*)\b",
    re.IGNORECASE,
)
# Words before a spoken address that are not its local part ("my email is john smith at...").
_NOT_LOCAL = frozenset(
    ["is", "it's", "its", "it", "email", "e", "mail", "address", "my", "me", "at", "to", "the",
     "was", "send", "on", "your", "and", "or", "that's", "that", "be", "would", "should",
     "use", "try", "under", "i", "i'm", "of", "a", "an", "yes", "yeah", "sure", "okay", "ok",
     "so", "um", "uh", "please", "reach", "write", "contact", "s", "just", "it’s", "hmm"]
)  # fmt: skip
_LOCAL_WORDS_BEFORE = 2  # words of a local part said with spaces ("john smith at ..."), at most
_JOINED = re.compile(r"\s*[._+-]\s*")  # "jon.smith", "mary_jones": one local part
_SPOKEN_SEPARATORS = frozenset(["dot", "period", "underscore", "dash", "hyphen"])


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


def _valid_phone(number: str, region: str | None) -> bool:
    try:
        return phonenumbers.is_valid_number(phonenumbers.parse(number, region))
    except phonenumbers.NumberParseException:
        return False


def is_phone_number(digits: str, international: bool = False) -> bool:
    """Whether ``digits`` (a run, no separators) is a valid phone number: with an
    international prefix ("+" said or written before it: ``international``; or "00" /
    "011") for any country, else a national US or UK number."""
    if digits.startswith("011"):
        return _valid_phone("+" + digits[3:], None)
    if digits.startswith("00"):
        return _valid_phone("+" + digits[2:], None)
    if international:
        return _valid_phone("+" + digits, None)
    return 7 <= len(digits) <= 11 and (
        _valid_phone(digits, "US") or (digits[0] == "0" and _valid_phone(digits, "GB"))
    )


def _tag(run: _Run, international: bool) -> str:
    digits, groups = run.digits, run.groups
    if international and is_phone_number(digits, True):
        return "[phone]"
    if 13 <= len(digits) <= 19 and _luhn(digits):
        return "[card]"
    if groups == (3, 2, 4):
        return "[ssn]"
    if groups in ((3, 3, 4), (1, 3, 3, 4), (10,)) or (groups == (1, 10) and digits[0] == "1"):
        return "[phone]"
    if len(digits) >= 7 and is_phone_number(digits):
        return "[phone]"
    return "[number]"


Cut = tuple[int, int, str]  # (start, end) in the original text, and the tag that replaces it


def _email_spans(text: str) -> list[tuple[int, int]]:
    """Character spans of the e-mail addresses in ``text``, written or spoken. A spoken
    address's local part is taken back over words joined by "." / "_" / "-" or said
    ("dot", "underscore"), letters spelled out, and up to ``_LOCAL_WORDS_BEFORE`` words said
    with spaces ("john smith at gmail dot com"), stopping at other punctuation or a word
    like "is" / "email"."""
    spans = [(m.start(), m.end()) for m in _EMAIL.finditer(text)]
    for m in _EMAIL_SPOKEN.finditer(text):
        start, words = m.start(), 0
        for prev in reversed(list(_TOKEN.finditer(text, 0, start))):
            gap = text[prev.end() : start]
            low = prev[0].lower().replace("’", "'")
            joined = _JOINED.fullmatch(gap) is not None
            if not (joined or not gap.strip()) or (low in _NOT_LOCAL and not joined):
                break
            if low not in _SPOKEN_SEPARATORS and len(low) > 1 and not joined:
                words += 1
                if words > _LOCAL_WORDS_BEFORE:
                    break
            start = prev.start()
        spans.append((start, m.end()))
    return spans


_TAG_RANK = {"[email]": 0, "[card]": 1, "[phone]": 2, "[ssn]": 3, "[number]": 4}


def _merge(cuts: Iterable[Cut]) -> frozenset[Cut]:
    """Overlapping cuts as one, tagged by the most specific tag among them."""
    merged: list[Cut] = []
    for start, end, tag in sorted(cuts):
        if merged and start < merged[-1][1]:
            s, e, t = merged[-1]
            merged[-1] = (s, max(e, end), min(t, tag, key=_TAG_RANK.__getitem__))
        else:
            merged.append((start, end, tag))
    return frozenset(merged)


def apply_cuts(text: str, cuts: Iterable[Cut]) -> str:
    """``text`` with each cut's span replaced by its tag (cuts may overlap)."""
    for start, end, tag in sorted(_merge(cuts), reverse=True):
        text = text[:start] + tag + text[end:]
    return text


def redact_words(text: str, words: Sequence[str], cuts: Iterable[Cut]) -> tuple[str, ...]:
    """The recognizer's ``words`` of ``text`` (in order, each as it appears in the text,
    with or without a leading space) with every word that overlaps a cut, or that could
    carry a number or an address (``redact_word``), replaced by "[redacted]". Unchanged
    when nothing was cut."""
    cuts = list(cuts)
    if not cuts:
        return tuple(words)
    out, pos = [], 0
    for word in words:
        core = word.strip()
        found = text.find(core, pos) if core else -1
        if found < 0:
            hit = True  # not where the text has it: it could be part of anything cut
        else:
            end = found + len(core)
            pos = end
            hit = any(s < end and found < e for s, e, _ in cuts)
        out.append("[redacted]" if hit or _SENSITIVE_WORD.search(word) else word)
    return tuple(out)


@dataclass(frozen=True, slots=True)
class _Analysis:
    """What one text says, whatever the call around it: e-mail and written phone spans,
    number runs (with where each starts, "plus" included, and whether it is money or
    international), whether the text is only a number read out (bare), whether it names a
    sensitive topic."""

    fixed: frozenset[Cut]  # e-mail addresses and written phone numbers: always cut
    runs: tuple[_Run, ...]
    starts: tuple[int, ...]  # each run's start, a "plus" / "+" before it included
    money: tuple[bool, ...]
    international: tuple[bool, ...]
    bare: bool
    topic: bool

    @classmethod
    def of(cls, text: str) -> _Analysis:
        emails = _email_spans(text)
        masked = text
        for start, end in emails:  # same length: offsets stay the original's
            masked = masked[:start] + "x" * (end - start) + masked[end:]
        parser = _Parser(masked)
        atoms, used = parser.atoms()
        runs = _runs(masked, atoms)
        # nothing but digits and the words people say around them: a number read out
        bare = bool(runs) and all(
            i in used or t.low in _AROUND for i, t in enumerate(parser.tokens)
        )
        fixed: set[Cut] = {(s, e, "[email]") for s, e in emails}
        if sum(ch.isdigit() for ch in masked) >= 7:  # written: "+44 (0)20 7946 0958"
            matcher = phonenumbers.PhoneNumberMatcher(
                masked, "US", leniency=phonenumbers.Leniency.POSSIBLE
            )
            fixed |= {
                (m.start, m.end, "[phone]")
                for m in matcher
                if phonenumbers.is_valid_number(m.number)
                and not _MONEY_BEFORE.search(masked[: m.start])
            }
        starts, international = [], []
        for run in runs:
            plus = _PLUS_BEFORE.search(masked[: run.start])
            starts.append(plus.start() if plus else run.start)
            international.append(
                masked[run.start] == "+" or plus is not None or run.digits.startswith("00")
            )
        return cls(
            fixed=_merge(fixed),
            runs=tuple(runs),
            starts=tuple(starts),
            money=tuple(
                bool(_MONEY_BEFORE.search(masked[: r.start]) or _MONEY_AFTER.match(masked, r.end))
                for r in runs
            ),
            international=tuple(international),
            bare=bare,
            topic=_SENSITIVE.search(masked) is not None,
        )

    def judge(self, sensitive: bool) -> tuple[frozenset[Cut], bool]:
        """(the cuts, whether the text carried a digit group: cut, or read out on its own)
        when the call around it is ``sensitive`` or not. A run cut on its own looks (6+
        digits, a group shaped like a card's start) makes the text's other runs sensitive."""
        cuts: set[Cut] = set(self.fixed)
        group = self.bare and sum(len(r.digits) for r in self.runs) >= 2
        for attempt in (sensitive, True):
            grouped = False
            for run, start, money, plus in zip(
                self.runs, self.starts, self.money, self.international, strict=True
            ):
                n = len(run.digits)
                if n >= 6 or (n >= 5 and plus):
                    cut = True
                elif money:
                    cut = False
                elif attempt:
                    cut = n >= 2 or self.bare
                else:
                    # said on its own, or shaped like the start of a card (4111, 5500, 3782)
                    cut = (self.bare and n >= 3) or (n == 4 and run.digits[0] in "3456")
                if cut:
                    cuts.add((start, run.end, _tag(run, plus)))
                    group = group or n >= 2
                    grouped = grouped or n >= 3
            if attempt or not grouped:
                break
        return _merge(cuts), group


@dataclass(slots=True)
class _Heard:
    """One utterance as the context remembers it (its raw text only in memory)."""

    channel: str
    key: Hashable  # the utterance id given by the caller
    start_s: float
    end_s: float
    text: str
    words: tuple[str, ...]
    final: bool
    analysis: _Analysis
    cuts: frozenset[Cut] = frozenset()  # only ever grows
    group: bool = False  # carried a digit group (cut, or said on its own)
    judged: bool = False
    partial_cut: bool = False  # a partial of it had a number cut: its final is sensitive

    @property
    def topic(self) -> bool:
        return self.analysis.topic

    def redaction(self) -> Redaction:
        return Redaction(
            apply_cuts(self.text, self.cuts), redact_words(self.text, self.words, self.cuts)
        )


@dataclass(frozen=True, slots=True)
class Redaction:
    """One utterance as it may be published: ``text`` with its sensitive parts replaced
    by tags, and ``words`` (the recognizer's words given with it, same length) with every
    word that carried any of them replaced by "[redacted]"."""

    text: str
    words: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Correction:
    """A final utterance published earlier that, in the light of what the call said since
    (in media time), carried part of a number: its ``channel``, its ``key`` (the utterance
    id it was redacted with) and its text and words as they must now read."""

    channel: str
    key: Hashable
    text: str
    words: tuple[str, ...]


def _gap_s(a_start: float, a_end: float, b_start: float, b_end: float) -> float:
    return max(0.0, a_start - b_end, b_start - a_end)


class RedactionContext:
    """What a call's channels said recently, by media time: sensitive topics and digit
    groups, and the raw text of each recent utterance (to judge it again). Shared by the
    call's redactors; arrival order does not matter. Not thread-safe (one call's loop)."""

    def __init__(self, context_s: float = CONTEXT_S, continue_s: float = CONTINUE_S) -> None:
        self.context_s = context_s
        self.continue_s = continue_s
        self._heard: dict[tuple[str, Hashable], _Heard] = {}
        self._latest_s = 0.0
        self._corrections: dict[tuple[str, Hashable], _Heard] = {}

    def sensitive(self, key: tuple[str, Hashable], start_s: float, end_s: float) -> bool:
        """Whether a topic was named within ``context_s``, or a digit group said within
        ``continue_s``, of [start_s, end_s] (by any channel, in any other utterance)."""
        for other, heard in self._heard.items():
            if other == key or not heard.judged:
                continue
            gap = _gap_s(start_s, end_s, heard.start_s, heard.end_s)
            if (heard.topic and gap <= self.context_s) or (heard.group and gap <= self.continue_s):
                return True
        return False

    def hear(self, key: tuple[str, Hashable], heard: _Heard) -> Redaction:
        """Remember an utterance (a later text for the same key, e.g. its final, replaces
        it), judge it in context and judge again the earlier ones it makes sensitive;
        returns its redaction. Earlier finals that changed wait in ``take_corrections``."""
        earlier = self._heard.get(key)  # its partial: what that hid, the final hides too
        heard.partial_cut = earlier is not None and (
            earlier.partial_cut or any(tag != "[email]" for _, _, tag in earlier.cuts)
        )
        self._heard[key] = heard
        self._corrections.pop(key, None)  # it is being published now
        self._latest_s = max(self._latest_s, heard.end_s)
        horizon = self._latest_s - 2 * max(self.context_s, self.continue_s)
        for old in [k for k, h in self._heard.items() if h.end_s < horizon]:
            del self._heard[old]
            self._corrections.pop(old, None)
        pending = [key]
        while pending:
            current = pending.pop()
            h = self._heard[current]
            sensitive = h.topic or h.partial_cut or self.sensitive(current, h.start_s, h.end_s)
            cuts, group = h.analysis.judge(sensitive)
            first = not h.judged
            h.judged = True
            grew = not cuts <= h.cuts
            newly_group = group and not h.group
            h.cuts, h.group = h.cuts | cuts, h.group or group
            if grew and current != key and h.final:
                self._corrections[current] = h
            if first or newly_group:  # what it makes sensitive around it: judge again
                pending += [
                    other
                    for other, o in self._heard.items()
                    if other != current and o.judged and o.analysis.runs and self._reaches(h, o)
                ]
        return heard.redaction()

    def _reaches(self, h: _Heard, other: _Heard) -> bool:
        gap = _gap_s(h.start_s, h.end_s, other.start_s, other.end_s)
        return (h.topic and gap <= self.context_s) or (h.group and gap <= self.continue_s)

    def take_corrections(self) -> list[Correction]:
        """Earlier final utterances whose redaction grew since they were published (each
        once, in media-time order), and forget them."""
        changed = sorted(self._corrections.values(), key=lambda h: h.start_s)
        self._corrections.clear()
        out = []
        for h in changed:
            redaction = h.redaction()
            out.append(Correction(h.channel, h.key, redaction.text, redaction.words))
        return out


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

    def redact_utterance(
        self,
        text: str,
        start_s: float = 0.0,
        end_s: float = 0.0,
        key: Hashable = None,
        final: bool = True,
        words: Sequence[str] = (),
    ) -> Redaction:
        """One utterance of this channel (media seconds ``start_s``-``end_s``; ``words``
        the recognizer's words of ``text``, in order) judged in the call's context, as it
        may be published. ``key`` (the utterance id) makes a partial and its final count
        once; ``final`` False for a partial (never corrected later: its final follows).
        Earlier finals it reveals as sensitive: ``context.take_corrections()``."""
        auto = key is None
        full_key = (self.channel, ("auto", next(self._auto)) if auto else key)
        heard = _Heard(
            self.channel, key, start_s, end_s, text, tuple(words), final and not auto,
            _Analysis.of(text),
        )  # fmt: skip
        return self.context.hear(full_key, heard)

    def redact(
        self, text: str, start_s: float = 0.0, end_s: float = 0.0, key: Hashable = None
    ) -> str:
        """``text`` of one utterance of this channel (media seconds ``start_s``-``end_s``)
        with its sensitive numbers and e-mail addresses replaced by tags, judged in the
        call's context; ``key`` (the utterance id) makes a partial and its final count once."""
        return self.redact_utterance(text, start_s, end_s, key).text


def redact(text: str) -> str:
    """Stateless: one utterance on its own, with no call around it."""
    return SpokenNumberRedactor().redact(text)


def redact_word(word: str) -> str:
    """In a transcript that had something redacted, words that could carry it go too:
    any word with a digit, an "@" or a number word ("four", "oh", "double")."""
    return "[redacted]" if _SENSITIVE_WORD.search(word) else word
