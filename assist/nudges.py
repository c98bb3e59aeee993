"""What the agent reads: a short message, a concrete suggestion and the explanation of
each finding. Texts live here, not in the detectors, so they can be reworded or
translated without touching the rules."""

from __future__ import annotations

from assist.events import Evidence, Finding

ACKNOWLEDGE_FEELINGS = (
    'Acknowledge how they feel before you solve: "I understand how frustrating this has been."'
)


def _clock(seconds: float) -> str:
    whole = int(seconds)
    return f"{whole // 60}:{whole % 60:02d}"


def message_for(finding: Finding) -> tuple[str, str | None]:
    """(message, suggestion) for a finding."""
    kind = finding.kind
    if kind == "interruption":
        return (
            "You're talking over the customer.",
            "Pause, let them finish, then play back what you heard.",
        )
    if kind == "long_hold":
        return (
            f"Customer on hold for {_clock(finding.measured)}.",
            "Check back in: thank them for holding and give an update.",
        )
    if kind == "dead_air":
        return (
            f"No one has spoken for {finding.measured:.0f} s.",
            "Say what you're doing: \"I'm pulling up your account now.\"",
        )
    if kind == "monologue":
        return (
            f"You've been talking for {_clock(finding.measured)} without a customer turn.",
            'Check in with a question: "Does that make sense so far?"',
        )
    if kind == "pace":
        return (
            f"You're speaking fast ({finding.measured:.0f} words a minute).",
            "Slow down and pause after key points so the customer can follow.",
        )
    if kind == "negative_phrasing":
        details = finding.details
        return (
            f'Negative phrasing ({details["category_label"]}): "{details["quote"]}"',
            details["suggestion"],
        )
    if kind == "customer_frustration":
        return ("The customer sounds frustrated.", ACKNOWLEDGE_FEELINGS)
    return (kind.replace("_", " ").capitalize() + ".", None)


_MEASURE_NAMES = {
    "interruption": "overlap",
    "long_hold": "hold",
    "dead_air": "silence",
    "monologue": "agent turn",
    "pace": "pace",
    "negative_phrasing": "negative-phrasing score",
    "customer_frustration": "frustration score",
}


def evidence_for(finding: Finding) -> Evidence:
    name = _MEASURE_NAMES.get(finding.kind, finding.kind)
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
