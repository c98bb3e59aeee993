"""What the previous turn of the call changes about a sentence, and line problems.

The text models judge one sentence at a time; a few readings need the conversation:

* a **line problem** ("I can't hear you", "you're breaking up", "can you hear me?") is
  about the connection, not the customer or the agent: its own category
  (``LINE_PROBLEM``), never negative phrasing, never frustration, no nudge;
* "no problem", "no worries", "not at all", "don't mention it" **answering thanks or an
  apology** is courtesy, not negativity;
* a customer's **closing answer** ("No, that is all.", "Nope, I'm all set, thanks.", "No,
  nothing else.") **to an offer of more help** ("Is there anything else I can help you
  with?") ends the call politely: the frustration head of 2026-12-03's morning scored the
  bundled demo's "No, that is all." 0.59 and "No, I am all set." 0.61 (threshold 0.46),
  reading the bare "No" as refusal. Only a sentence made of closing words alone counts:
  "No, that is all, and frankly this was a waste of my afternoon." is still the head's to
  judge, and so are "That's it?" and "No. No. No.";
* a **bare acknowledgement** ("Right.", "Sure.", "Mm-hmm.", "Understood.", "Okay, got it.")
  is a backchannel with no phrasing in it: the negative-phrasing head scored "Understood."
  0.84, "Sure." 0.61, "Mm-hmm." 0.58 and "Right." 0.54 (threshold 0.54), and the bundled
  demo's agent says "Right." while the customer speaks.

``excused`` is the one check both text cues make. ``PreviousTurns`` remembers the call's
final transcripts per speaker so that a decision can ask for the other speaker's turn
just before a sentence. English regular expressions, case-insensitive; pure.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

LINE_PROBLEM = "line_problem"
# The other speaker's turn counts as "previous" when it ended at most this long before
# the sentence's utterance started (and no more than OVERLAP_S after).
CONTEXT_WINDOW_S = 15.0
OVERLAP_S = 1.0

_LINE = re.compile(
    r"\b(?:(?:i|we)\s*(?:can'?t|cannot|can not|couldn'?t)\s+(?:really\s+|quite\s+)?"
    r"(?:hear|understand)\s+(?:you|anything|a thing|what you)|"
    r"(?:can|could|do)\s+you\s+hear\s+me|(?:can|could)\s+you\s+still\s+hear|"
    r"you(?:'re| are)\s+(?:breaking|cutting)\s+(?:up|out)|you\s+(?:broke|cut)\s+(?:up|out)|"
    r"(?:the\s+)?(?:line|connection|signal|reception)(?:\s+is|\s+was|'s)\s+(?:really\s+|very\s+|"
    r"so\s+)?(?:bad|terrible|awful|poor|crackly|breaking up|cutting out)|"
    r"(?:bad|poor|terrible)\s+(?:line|connection|signal|reception)|"
    r"(?:i|we)\s+lost\s+you|(?:the\s+)?line\s+(?:cut|went)\s+(?:out|dead)|"
    r"(?:are\s+)?you\s+still\s+there|didn'?t\s+catch\s+that,?\s+the\s+line)\b",
    re.I,
)
_THANKS_OR_SORRY = re.compile(
    r"\b(?:thank(?:s| you)|appreciate|cheers|sorry|apologi[sz]e|my bad|excuse me)\b", re.I
)
_COURTESY = re.compile(
    r"^\W*(?:oh\s+|well\s+|um\s+|uh\s+)?(?:no\s+(?:problem|worries|trouble|bother)|"
    r"not\s+(?:a\s+)?(?:problem|at all|to worry)|don'?t\s+(?:mention it|worry(?: about it)?)|"
    r"never\s+mind|no\s+need\s+to\s+(?:apologi[sz]e|thank me))\b",
    re.I,
)

# The other speaker offers more help, or asks whether the caller is done ...
_OFFER_MORE = re.compile(
    r"\b(?:(?:anything|something)\s+(?:else|further|more)|any\s+other\s+(?:questions?|"
    r"concerns?|issues?|thing)|(?:will|would)\s+that\s+be\s+(?:all|everything)|"
    r"is\s+that\s+(?:all|everything)|are\s+you\s+all\s+set|"
    r"(?:what|how)\s+else\s+can\s+(?:i|we))\b",
    re.I,
)
# ... unless the turn says what can't be done ("There's nothing more I can do.").
_NEGATED = re.compile(r"n't\b|\b(?:not|nothing|cannot|no\s+longer)\b", re.I)
# One unit of a closing answer ("no", "that's all", "thanks for your help", "have a good
# day"); an answer is a run of units (``closing_words``). Each alternative is a phrase with
# bounded options and the units are matched one after another, never backtracking over
# the run, so the time is linear in the text (a repeated "No, thank you." is safe).
_CLOSING_UNIT = re.compile(
    r"(?:thank\s+you(?:\s+(?:so|very)\s+much)?(?:\s+for\s+(?:all\s+)?(?:your|the)\s+help)?|"
    r"thanks(?:\s+(?:so|very)\s+much)?(?:\s+(?:again|for\s+(?:all\s+)?(?:your|the)\s+help))?|"
    r"that(?:'s|\s+is|\s+was|'ll\s+be|\s+will\s+be|\s+should\s+be|\s+would\s+be|'d\s+be)\s+"
    r"(?:all|it|everything|about\s+it)(?:\s+(?:i\s+)?(?:needed|wanted))?|"
    r"that(?:'ll|\s+will|\s+should)\s+do(?:\s+it)?|nothing\s+(?:else|more|further)|"
    r"(?:i'm|i\s+am|we're|we\s+are)\s+(?:all\s+)?(?:good|fine|okay|ok|set|sorted)|"
    r"all\s+(?:good|set)|for\s+(?:now|today|me)|(?:good)?bye(?:\s+now)?|"
    r"have\s+a\s+(?:good|great|nice|lovely)\s+(?:day|one|evening|night|weekend)|"
    r"you\s+too|take\s+care|cheers|(?:i\s+)?appreciate\s+it|not\s+(?:really|today)|"
    r"i\s+think|all\s+right|alright|okay|ok|oh|well|um|uh|so|no|nope|nah|yes|yeah|yep|yup|"
    r"sir|ma'am)\b[^\w']*",
    re.I,
)
_NO = re.compile(r"\b(?:no|nope|nah)\b", re.I)
CLOSING_MAX_CHARS = 200  # longer than any closing answer


_ACKNOWLEDGEMENT = re.compile(
    r"^\W*(?:(?:oh|well|um|uh|ah)\W+)?(?:(?:all\s*right|alright|right|okay|ok|sure|yes|yeah|"
    r"yep|yup|uh-huh|mm-hmm|mhm|mm|got\s+it|gotcha|i\s+see|understood|of\s+course|"
    r"certainly|absolutely|exactly|i\s+understand)\b\W*)+$",
    re.I,
)


def bare_acknowledgement(text: str) -> bool:
    """The sentence is acknowledgement words only ("Right.", "Okay, got it.", "Mm-hmm.",
    "Sure."), nothing else: a backchannel, never negative phrasing."""
    return _ACKNOWLEDGEMENT.match(text) is not None


def line_problem(text: str) -> bool:
    """The sentence is about the connection ("I can't hear you", "can you hear me?")."""
    return _LINE.search(text) is not None


def answers_courtesy(previous: str | None, text: str) -> bool:
    """``text`` opens with "no problem" / "no worries" / "not at all" / "don't mention it"
    and answers thanks or an apology in ``previous`` (the other speaker's turn)."""
    return (
        previous is not None
        and _THANKS_OR_SORRY.search(previous) is not None
        and _COURTESY.search(text) is not None
    )


def closing_words(text: str) -> bool:
    """``text`` is closing words only ("No, that is all.", "Yes, I'm all set, thanks.",
    "Nothing else, have a good day."): no question, no emphatic "No. No. No.", nothing
    else said."""
    text = text.replace("\u2019", "'").strip()
    if not text or len(text) > CLOSING_MAX_CHARS or "?" in text or len(_NO.findall(text)) > 2:
        return False
    at = len(text) - len(text.lstrip(".,;:!- "))
    while at < len(text):
        unit = _CLOSING_UNIT.match(text, at)
        if unit is None or unit.end() == at:
            return False
        at = unit.end()
    return True


def closes_call(previous: str | None, text: str) -> bool:
    """``text`` is closing words only (``closing_words``) and answers an offer of more
    help in ``previous`` (the agent's turn: "Anything else I can help you with?", not
    "There's nothing more I can do.")."""
    return (
        previous is not None
        and _OFFER_MORE.search(previous) is not None
        and _NEGATED.search(previous) is None
        and closing_words(text)
    )


def excused(speaker: str, previous: str | None, text: str) -> bool:
    """The sentence is never a text cue, whatever the models say, given the other
    speaker's ``previous`` turn: a line problem, courtesy answering thanks or an apology,
    and for the agent a bare acknowledgement, for the customer a closing answer to an offer
    of more help (module docstring). An agent's "No, that's it." answering "Can you do
    anything else?" is a refusal, not a close: the models judge it."""
    if line_problem(text) or answers_courtesy(previous, text):
        return True
    if speaker == "agent":
        return bare_acknowledgement(text)
    return closes_call(previous, text)


@dataclass(frozen=True, slots=True)
class Turn:
    """One final transcript: who, its media span and text."""

    speaker: str
    start_s: float
    end_s: float
    text: str


@dataclass
class PreviousTurns:
    """The call's final transcripts, to find the other speaker's turn before a sentence."""

    keep: int = 16
    turns: list[Turn] = field(default_factory=list)

    def add(self, speaker: str, start_s: float, end_s: float, text: str) -> None:
        """Remember a final transcript (the last ``keep`` ones are kept)."""
        if text.strip():
            self.turns.append(Turn(speaker, start_s, end_s, text))
            del self.turns[: -self.keep]

    def before(self, speaker: str, start_s: float) -> str | None:
        """The text of the other speaker's last turn that ended within ``CONTEXT_WINDOW_S``
        before ``start_s`` (up to ``OVERLAP_S`` after it); None when there is none."""
        near = [
            t
            for t in self.turns
            if t.speaker != speaker and -OVERLAP_S <= start_s - t.end_s <= CONTEXT_WINDOW_S
        ]
        return max(near, key=lambda t: t.end_s).text if near else None
