"""The end-of-call scorecard: the metrics of a call and a 0-100 score per soft skill.

Scores come from documented formulas over the metrics (README, "Scorecard"), their
weights set in ``[scorecard]``. Skills whose
evidence comes from what was said (empathy, trust, positive attitude) stay ``null`` with
the reason until text cues exist for the call: no number is better than an invented one.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from assist.config import ScorecardConfig
from assist.conversation import ConversationTotals
from assist.events import Finding

SKILLS = ("patience", "empathy", "trust", "efficiency", "positive_attitude")


def _clamp_score(value: float) -> int:
    return round(min(100.0, max(0.0, value)))


def build_scorecard(
    call_id: str,
    agent_id: str,
    totals: ConversationTotals,
    findings: list[Finding],
    nudges_sent: int,
    weights: ScorecardConfig | None = None,
) -> dict[str, Any]:
    w = weights or ScorecardConfig()
    duration = totals.duration_s
    counts = Counter(f.kind for f in findings)
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
    }
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
    text_reason = "needs transcripts and text cues, not enabled for this call"
    skills: dict[str, dict[str, Any]] = {
        "patience": {"score": _clamp_score(patience), "basis": "interruptions, monologues"},
        "empathy": {"score": None, "basis": text_reason},
        "trust": {"score": None, "basis": text_reason},
        "efficiency": {"score": _clamp_score(efficiency), "basis": "long holds, dead air"},
        "positive_attitude": {"score": None, "basis": text_reason},
    }
    moments = [
        {
            "kind": f.kind,
            "media_time_s": round(f.at_s, 3),
            "span_s": [round(f.span_start_s, 3), round(f.span_end_s, 3)],
            "measured": round(f.measured, 3),
        }
        for f in findings
    ]
    return {
        "call_id": call_id,
        "agent_id": agent_id,
        "skills": skills,
        "metrics": metrics,
        "moments": moments,
    }
