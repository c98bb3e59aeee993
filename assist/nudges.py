"""All the words the agent and the floor read: each cue's message and suggestion, the
explanation of its evidence, the positive rewrite of a negative phrase, and the floor's
repeat alerts.

Texts live here, not in the detectors, so they can be reworded or translated without
touching a rule. Detectors decide; this module only words what they decided.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from assist.events import Evidence
from assist.text.phrases import PhraseMatch, find_phrase
from assist.vocabulary import CueKind, Finding

ACKNOWLEDGE_FEELINGS = (
    'Acknowledge how they feel before you solve: "I understand how frustrating this has been."'
)

CATEGORY_LABELS = {
    "cant_wont": "can't / won't",
    "policy": "policy",
    "blame": "blame",
    "not_my_job": "not my job",
    "you_have_to": "you have to",
    "dont_know": "don't know",
    "dismissive": "dismissive",
    "repetition": "repetition",
}


# Used when the category's phrase isn't found in the sentence.
GENERAL_ADVICE = {
    "cant_wont": 'Lead with what you can do: "What I can do is ..."',
    "policy": 'Give the reason, not the rule: "The reason we do this is ..., and what I can'
    ' do is ..."',
    "blame": 'Take it on together: "Let\'s look at what happened and get it fixed."',
    "not_my_job": "Own the handover: \"The team that handles this is ..., I'll connect you and"
    ' pass on your details."',
    "you_have_to": 'Invite, don\'t order: "The next step is to ..." or "Could you please ..."',
    "dont_know": 'Offer to find out: "Let me find that out for you."',
    "dismissive": "Acknowledge the feeling: \"I can hear how much this matters, let's sort it"
    ' out together."',
    "repetition": 'Say it a new way: "Let me put it another way: ..."',
}


_CLAUSE_END = re.compile(r"[.!?;]|,\s*(?:but|so|and)\b|\s+but\b")


def _rest_of_clause(text: str, start: int) -> str:
    """The words after ``start`` up to the end of their clause, without trailing commas."""
    match = _CLAUSE_END.search(text, start)
    end = match.start() if match else len(text)
    return text[start:end].strip(" ,")


def _sentence(text: str) -> str:
    text = text.strip()
    if not text:
        return text
    text = text[0].upper() + text[1:]
    return text if text[-1] in ".!?" else text + "."


def _replace(text: str, span: tuple[int, int], replacement: str) -> str:
    before, after = text[: span[0]], text[span[1] :]
    if not before.strip():  # the phrase opened the sentence
        after = after.lstrip(" ,")
        return _sentence(f"{replacement} {after}" if after else replacement)
    return _sentence(f"{before.rstrip()} {replacement} {after.lstrip(' ,')}".strip())


@dataclass(frozen=True, slots=True)
class Rewrite:
    """The phrase quoted to the agent and a positive rewrite of the sentence."""

    span: tuple[int, int]  # characters of the sentence that carry the negative phrasing
    suggestion: str


def _cant_wont(text: str, found: PhraseMatch) -> str:
    if found.form == "nothing_i_can_do":
        return "Here's what I can do: ..."
    if found.form == "impossible":
        return "What is possible is ... let me walk you through it."
    start, end = found.span
    action = _rest_of_clause(text, end)
    before = text[:start].strip(" ,")
    lead = f"{before}, while" if before else "While"
    if action:
        return _sentence(f"{lead} I'm not able to {action}, what I can do is ...")
    return "What I can do is ..."


def _you_have_to(text: str, found: PhraseMatch) -> str:
    return _replace(text, found.span, "the next step is to")


def _dont_know(text: str, found: PhraseMatch) -> str:
    rest = _rest_of_clause(text, found.span[1])
    if rest and not rest.lower().startswith(("what to", "anything", "about")):
        return _sentence(f"Let me find out {rest} for you")
    return "Let me find that out for you."


def _repetition(text: str, found: PhraseMatch) -> str:
    rest = text[found.span[1] :].strip(" ,.")
    if len(rest.split()) >= 3:
        return _sentence(f"To recap, {rest}")
    return "Let me put it another way: ..."


def _fixed(suggestion: str) -> Callable[[str, PhraseMatch], str]:
    """A category whose rewrite is the same sentence whatever the phrase."""
    return lambda text, found: suggestion


_REWRITERS: dict[str, Callable[[str, PhraseMatch], str]] = {
    "cant_wont": _cant_wont,
    "policy": _fixed("The reason we do it this way is ... and what I can do for you is ..."),
    "blame": _fixed("Let's look at what happened together and get it fixed."),
    "not_my_job": _fixed(
        "The team that handles this is ... I'll connect you and pass on your details so"
        " you don't have to repeat yourself."
    ),
    "you_have_to": _you_have_to,
    "dont_know": _dont_know,
    "dismissive": _fixed("I can hear how much this matters to you, let's sort it out together."),
    "repetition": _repetition,
}


def rewrite(text: str, category: str) -> Rewrite:
    """The quoted span and the positive rewrite of a sentence flagged as ``category``.

    Every flagged sentence gets one: with no phrase of the category found, the whole
    sentence is the span and the category's general advice is the suggestion. Raises
    ``KeyError`` for an unknown category.
    """
    found = find_phrase(text, category)
    if found is None:
        return Rewrite((0, len(text)), GENERAL_ADVICE[category])
    return Rewrite(found.span, _REWRITERS[category](text, found))


def _clock(seconds: float) -> str:
    whole = int(seconds)
    return f"{whole // 60}:{whole % 60:02d}"


def message_for(finding: Finding) -> tuple[str, str | None]:
    """(message, suggestion) the agent reads for a finding."""
    kind = finding.kind
    if kind == CueKind.INTERRUPTION:
        return (
            "You're talking over the customer.",
            "Pause, let them finish, then play back what you heard.",
        )
    if kind == CueKind.LONG_HOLD:
        return (
            f"Customer on hold for {_clock(finding.measured)}.",
            "Check back in: thank them for holding and give an update.",
        )
    if kind == CueKind.DEAD_AIR:
        return (
            f"No one has spoken for {finding.measured:.0f} s.",
            "Say what you're doing: \"I'm pulling up your account now.\"",
        )
    if kind == CueKind.MONOLOGUE:
        return (
            f"You've been talking for {_clock(finding.measured)} without a customer turn.",
            'Check in with a question: "Does that make sense so far?"',
        )
    if kind == CueKind.PACE:
        return (
            f"You're speaking fast ({finding.measured:.0f} words a minute).",
            "Slow down and pause after key points so the customer can follow.",
        )
    if kind == CueKind.NEGATIVE_PHRASING:
        details = finding.details
        return (
            f'Negative phrasing ({CATEGORY_LABELS[details["category"]]}): "{details["quote"]}"',
            details["suggestion"],
        )
    return ("The customer sounds frustrated.", ACKNOWLEDGE_FEELINGS)


_MEASURE_NAMES = {
    CueKind.INTERRUPTION: "overlap",
    CueKind.LONG_HOLD: "hold",
    CueKind.DEAD_AIR: "silence",
    CueKind.MONOLOGUE: "agent turn",
    CueKind.PACE: "pace",
    CueKind.NEGATIVE_PHRASING: "negative-phrasing score",
    CueKind.CUSTOMER_FRUSTRATION: "frustration score",
}


def evidence_for(finding: Finding) -> Evidence:
    """The finding's evidence as the agent sees it, with a one-line explanation."""
    name = _MEASURE_NAMES[finding.kind]
    if finding.unit == "score":  # a text model's: say what it judged
        explanation = (
            f"{name} {finding.measured:.2f} >= {finding.threshold:.2f} on "
            f'"{finding.details.get("quote", "")}"'
        )
    else:
        explanation = (
            f"{name} {finding.measured:.2f} {finding.unit} >= {finding.threshold:.2f} "
            f"{finding.unit}"
        )
    return Evidence(
        rule=finding.rule,
        threshold=round(finding.threshold, 3),
        measured=round(finding.measured, 3),
        unit=finding.unit,
        span_start_s=round(finding.span_start_s, 3),
        span_end_s=round(finding.span_end_s, 3),
        explanation=explanation,
        details=finding.details,
    )


_REPEAT_MESSAGES = {
    CueKind.INTERRUPTION: "Agent has interrupted the customer {n}x.",
    CueKind.CUSTOMER_FRUSTRATION: "Customer frustration is escalating ({n} moments).",
    CueKind.NEGATIVE_PHRASING: "Negative phrasing {n}x in this call.",
}


def repeat_alert_message(kind: CueKind, count: int) -> str:
    """The floor alert for a call that reached ``count`` nudges of ``kind``."""
    template = _REPEAT_MESSAGES.get(kind, "{kind} {n} times in this call.")
    return template.format(kind=kind.value.replace("_", " ").capitalize(), n=count)
