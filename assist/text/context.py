"""What the previous turn of the call changes about a sentence, and line problems.

The text models judge one sentence at a time; a few readings need the conversation:

* a **line problem** ("I can't hear you", "you're breaking up", "can you hear me?") is
  about the connection, not the customer or the agent: its own category
  (``LINE_PROBLEM``), never negative phrasing, never frustration, no nudge;
* "no problem", "no worries", "not at all", "don't mention it" **answering thanks or an
  apology** is courtesy, not negativity;
* a **closing answer** ("No, that is all.", "Nope, I'm all set, thanks.", "No, nothing
  else.") **to an offer of more help** ("Is there anything else I can help you with?")
  ends the call politely: the frustration head scored the bundled demo's "No, that is
  all." 0.59 and "No, I am all set." 0.61 (threshold 0.46), reading the bare "No" as
  refusal. Only a sentence made of closing words alone counts: "No, that is all, and
  frankly this was a waste of my afternoon." is still the head's to judge;
* a **bare acknowledgement** ("Right.", "Sure.", "Mm-hmm.", "Understood.", "Okay, got it.")
  is a backchannel with no phrasing in it: the negative-phrasing head scored "Understood."
  0.84, "Sure." 0.61, "Mm-hmm." 0.58 and "Right." 0.54 (threshold 0.54), and the bundled
  demo's agent says "Right." while the customer speaks.

``PreviousTurns`` remembers the call's final transcripts per speaker so that a decision
can ask for the other speaker's turn just before a sentence. English regular
expressions, case-insensitive; pure.
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

# The other speaker offers more help, or asks whether the caller is done.
_OFFER_MORE = re.compile(
    r"\b(?:(?:anything|something)\s+else|any\s*(?:thing|one)?\s*more|any\s+other\s+"
    r"(?:questions?|concerns?|issues?|way)|(?:will|would)\s+that\s+be\s+(?:all|everything)|"
    r"is\s+that\s+(?:all|everything|it)|all\s+set|(?:else|more)\s+i\s+can\s+(?:do|help))\b",
    re.I,
)
# A sentence of closing words only: "No, that is all. Thanks.", "Nope, I'm good.",
# "No thank you, that will be all.", "No, nothing else, have a good day."
_CLOSING = re.compile(
    r"^\W*(?:(?:no|nope|nah|not\s+really|not\s+today|no\s+thanks?|no\s+thank\s+you|"
    r"thanks?|thank\s+you(?:\s+(?:so|very)\s+much)?|(?:i\s+)?think|oh|well|um|uh|okay|ok|"
    r"(?:that(?:'s|\s+is|\s+was|'ll\s+be|\s+will\s+be|\s+should\s+be)\s+"
    r"(?:all|it|everything|enough))(?:\s+(?:i\s+)?(?:needed|need|wanted|for\s+(?:now|today)))?|"
    r"nothing\s+(?:else|more)(?:\s+for\s+(?:now|today))?|"
    r"(?:i'?m|i\s+am|we'?re|we\s+are)\s+(?:all\s+)?(?:good|fine|set|sorted|done)"
    r"(?:\s+for\s+(?:now|today))?|all\s+(?:good|set)|for\s+(?:now|today)|"
    r"(?:bye|goodbye)(?:\s+now)?|have\s+a\s+(?:good|great|nice)\s+(?:day|one|evening|night)|"
    r"you\s+too|take\s+care|sir|ma'?am)\b\W*)+$",
    re.I,
)


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


def closes_call(previous: str | None, text: str) -> bool:
    """``text`` is closing words only ("No, that is all.", "Nope, I'm all set.") and
    answers an offer of more help in ``previous`` (the other speaker's turn: "Anything
    else I can help you with?")."""
    return (
        previous is not None
        and _OFFER_MORE.search(previous) is not None
        and _CLOSING.match(text) is not None
    )


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
