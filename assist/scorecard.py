"""The end-of-call scorecard: the metrics of a call and a 0-100 score per soft skill.

Scores come from documented formulas over the metrics (README, "Scorecard"), their
weights set in ``[scorecard]``. Skills whose
evidence comes from what was said (empathy, trust, positive attitude) need the text models
on the call's transcripts; without them they stay ``null`` with the reason: no number is
better than an invented one.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from assist.config import ScorecardConfig
from assist.conversation import ConversationTotals
from assist.detectors.customer_frustration import Moment
from assist.events import Transcript
from assist.vocabulary import Finding

SKILLS = ("patience", "empathy", "trust", "efficiency", "positive_attitude")
# Negative-phrasing categories that cost trust (the customer doubts they'll be helped);
# the others cost positive attitude.
TRUST_CATEGORIES = frozenset({"blame", "not_my_job", "dont_know"})
SAID_MARGIN_S = 0.5  # words this close to a moment's span count as said during it


def _clamp_score(value: float) -> int:
    return round(min(100.0, max(0.0, value)))


def build_scorecard(
    call_id: str,
    agent_id: str,
    totals: ConversationTotals,
    findings: list[Finding],
    nudges_sent: int,
    weights: ScorecardConfig | None = None,
    text_moments: list[Moment] | None = None,
    transcripts: list[Transcript] | None = None,
    echo: dict[str, Any] | None = None,
    echo_on_agent: dict[str, Any] | None = None,
    audio_lost_s: float = 0.0,
) -> dict[str, Any]:
    """``text_moments`` is None when the text models did not run on the call;
    ``transcripts`` (finals) give each moment the words said during it; ``echo`` is the
    echo of the agent found on the customer channel (``EchoSuppressor.report``; None: not
    looked for) and becomes ``metrics["echo"]``; ``echo_on_agent``, the customer's voice
    found on the agent's channel, ``metrics["echo_on_agent"]``; ``audio_lost_s`` the media
    seconds that never reached analysis (shed under overload, paused or discarded by the
    platform), ``metrics["audio_lost_s"]``: counted in ``duration_s``, neither talk nor silence."""
    w = weights or ScorecardConfig()
    duration = totals.duration_s
    counts: Counter[str] = Counter(f.kind for f in findings)
    holds = [(start, end if end is not None else duration) for start, end in totals.holds]
    hold_lengths = [end - start for start, end in holds]
    talk_total = sum(totals.talk_s.values())
    # Rates use at least min_rate_window_s so a short call isn't judged on one moment.
    interruptions_per_10_min = counts["interruption"] / (max(duration, w.min_rate_window_s) / 600)
    metrics = {
        "duration_s": round(duration, 2),
        "talk_s": {role: round(v, 2) for role, v in totals.talk_s.items()},
        "agent_talk_share": round(totals.talk_s.get("agent", 0.0) / talk_total, 3)
        if talk_total
        else None,
        "overlap_s": round(totals.overlap_s, 2),
        "interruptions": counts["interruption"],
        "interruptions_per_10_min": round(interruptions_per_10_min, 2),
        "monologues": counts["monologue"],
        "holds": len(holds),
        "hold_total_s": round(sum(hold_lengths), 2),
        "longest_hold_s": round(max(hold_lengths, default=0.0), 2),
        "long_hold_reminders": counts["long_hold"],
        "dead_air_moments": counts["dead_air"],
        "nudges_sent": nudges_sent,
        "audio_lost_s": round(audio_lost_s, 2),
    }
    if echo is not None:
        metrics["echo"] = echo
    if echo_on_agent is not None:
        metrics["echo_on_agent"] = echo_on_agent
    patience = (
        100.0
        - w.patience_per_interruption_per_10_min * interruptions_per_10_min
        - w.patience_per_monologue * counts["monologue"]
    )
    efficiency = (
        100.0
        - w.efficiency_per_long_hold_reminder * counts["long_hold"]
        - w.efficiency_per_dead_air * counts["dead_air"]
        - w.efficiency_per_pace * counts["pace"]
    )
    skills: dict[str, dict[str, Any]] = {
        "patience": {"score": _clamp_score(patience), "basis": "interruptions, monologues"},
        "efficiency": {"score": _clamp_score(efficiency), "basis": "long holds, dead air"},
    }
    if text_moments is None:
        text_reason = "needs transcripts and the text models, not enabled for this call"
        for skill in ("empathy", "trust", "positive_attitude"):
            skills[skill] = {"score": None, "basis": text_reason}
    else:
        _text_skills(findings, text_moments, w, metrics, skills)
    skills = {name: skills[name] for name in SKILLS}
    moments = [_moment(f, transcripts or []) for f in findings]
    return {
        "call_id": call_id,
        "agent_id": agent_id,
        "skills": skills,
        "metrics": metrics,
        "moments": moments,
    }


def _text_skills(
    findings: list[Finding],
    text_moments: list[Moment],
    w: ScorecardConfig,
    metrics: dict[str, Any],
    skills: dict[str, dict[str, Any]],
) -> None:
    """Empathy, trust and positive attitude from the text cues of the call."""
    categories = Counter(
        f.details.get("category") for f in findings if f.kind == "negative_phrasing"
    )
    trust_phrases = sum(n for c, n in categories.items() if c in TRUST_CATEGORIES)
    attitude_phrases = sum(categories.values()) - trust_phrases
    frustration = [m for m in text_moments if m.kind == "customer_frustration"]
    unacknowledged = sum(not m.acknowledged for m in frustration)
    acknowledgements = sum(m.kind == "empathy" for m in text_moments)
    metrics["negative_phrasing"] = dict(sorted(categories.items()))
    metrics["customer_frustration_moments"] = len(frustration)
    metrics["frustration_unacknowledged"] = unacknowledged
    metrics["acknowledgements"] = acknowledgements
    empathy = (
        100.0
        - w.empathy_per_unacknowledged_frustration * unacknowledged
        + w.empathy_per_acknowledgement * min(acknowledgements, len(frustration))
    )
    skills["empathy"] = {
        "score": _clamp_score(empathy),
        "basis": "customer frustration acknowledged or not",
    }
    skills["trust"] = {
        "score": _clamp_score(100.0 - w.trust_per_phrase * trust_phrases),
        "basis": "blame, not my job, don't know",
    }
    skills["positive_attitude"] = {
        "score": _clamp_score(100.0 - w.positive_attitude_per_phrase * attitude_phrases),
        "basis": "can't/won't, policy, you have to, dismissive, repetition",
    }


def _moment(finding: Finding, transcripts: list[Transcript]) -> dict[str, Any]:
    moment: dict[str, Any] = {
        "kind": finding.kind,
        "media_time_s": round(finding.at_s, 3),
        "span_s": [round(finding.span_start_s, 3), round(finding.span_end_s, 3)],
        "measured": round(finding.measured, 3),
    }
    for key in ("category", "quote", "suggestion"):  # text cues: what was said
        if key in finding.details:
            moment[key] = finding.details[key]
    said = said_during(transcripts, finding.span_start_s, finding.span_end_s)
    if said:
        moment["said"] = said
    return moment


def said_during(transcripts: list[Transcript], start_s: float, end_s: float) -> dict[str, str]:
    """Per channel, the (already redacted) words spoken within ``SAID_MARGIN_S`` of a
    span, in spoken order: the transcript evidence of a moment."""
    words: dict[str, list[tuple[float, str]]] = {}
    for transcript in transcripts:
        if transcript.end_s < start_s - SAID_MARGIN_S or transcript.start_s > end_s + SAID_MARGIN_S:
            continue
        for word in transcript.words:
            if start_s - SAID_MARGIN_S <= word.end_s and word.start_s <= end_s + SAID_MARGIN_S:
                words.setdefault(transcript.channel, []).append((word.start_s, word.word))
    return {
        # Words may or may not carry the recognizer's leading space: join them on one.
        channel: " ".join(w.strip() for _, w in sorted(spoken) if w.strip())
        for channel, spoken in words.items()
    }
