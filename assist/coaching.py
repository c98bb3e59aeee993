"""Coaching reports from stored call records: "assess first, then coach continuously".

For one agent over a period: each skill's score per call against the team's median, the
focus skill (the scored skill furthest below the team median, or the lowest one when the
agent is at or above the team everywhere), and three moments to review from calls where
that skill scored lowest. For the team: skills ranked by the gap between its best quartile
of agents and the team's mean (the mean, unlike the median, feels the agents who lag).
Pure: records in, dicts out.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from typing import Any

from assist.scorecard import SKILLS, TRUST_CATEGORIES

# Which finding kinds are evidence for which skill (moments to review).
SKILL_KINDS: dict[str, tuple[str, ...]] = {
    "patience": ("interruption", "monologue"),
    "efficiency": ("long_hold", "dead_air", "pace"),
    "empathy": ("customer_frustration",),
    "trust": ("negative_phrasing",),
    "positive_attitude": ("negative_phrasing",),
}


def _scores(record: dict[str, Any]) -> dict[str, int]:
    skills = (record.get("scorecard") or {}).get("skills", {})
    return {s: v["score"] for s, v in skills.items() if v.get("score") is not None}


def _median(values: list[float]) -> float | None:
    return round(statistics.median(values), 1) if values else None


def agent_report(agent_id: str, records: list[dict[str, Any]]) -> dict[str, Any]:
    """``records``: every stored call in the period (the whole team), oldest first."""
    team: dict[str, list[int]] = defaultdict(list)
    mine = [r for r in records if r["agent_id"] == agent_id and r.get("scorecard")]
    for record in records:
        for skill, score in _scores(record).items():
            team[skill].append(score)
    skills: dict[str, Any] = {}
    for skill in SKILLS:
        series = [
            {"call_id": r["call_id"], "started_at": r["started_at"], "score": _scores(r)[skill]}
            for r in mine
            if skill in _scores(r)
        ]
        own = _median([p["score"] for p in series])
        team_median = _median([float(v) for v in team[skill]])
        skills[skill] = {
            "calls": series,
            "median": own,
            "team_median": team_median,
            "gap": None if own is None or team_median is None else round(own - team_median, 1),
        }
    scored = {s: v for s, v in skills.items() if v["median"] is not None}
    focus = None
    if scored:
        focus = min(scored, key=lambda s: (scored[s]["gap"], scored[s]["median"]))
    return {
        "agent_id": agent_id,
        "calls": len(mine),
        "skills": skills,
        "focus_skill": focus,
        "moments": _moments(mine, focus),
    }


def _moments(calls: list[dict[str, Any]], focus: str | None, count: int = 3) -> list[dict]:
    if focus is None:
        return []
    kinds = SKILL_KINDS.get(focus, ())
    ranked = sorted(calls, key=lambda r: _scores(r).get(focus, 100))
    out: list[dict[str, Any]] = []
    for record in ranked:
        for moment in (record["scorecard"] or {}).get("moments", []):
            if moment["kind"] in kinds and _category_fits(moment, focus):
                out.append({"call_id": record["call_id"], **moment})
                if len(out) == count:
                    return out
    return out


def _category_fits(moment: dict[str, Any], skill: str) -> bool:
    """Negative phrasing costs trust or positive attitude by its category."""
    if moment["kind"] != "negative_phrasing" or skill not in ("trust", "positive_attitude"):
        return True
    return (moment.get("category") in TRUST_CATEGORIES) == (skill == "trust")


def team_report(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Skills ranked by how far the team's mean trails its best quartile of agents."""
    per_agent: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
    for record in records:
        for skill, score in _scores(record).items():
            per_agent[record["agent_id"]][skill].append(score)
    ranking: list[dict[str, Any]] = []
    for skill in SKILLS:
        medians = sorted(
            statistics.median(skills[skill]) for skills in per_agent.values() if skills[skill]
        )
        if not medians:
            continue
        top = medians[-max(1, round(len(medians) / 4)) :]  # the best quarter, at least one
        gap = round(statistics.median(top) - statistics.mean(medians), 1)
        ranking.append(
            {
                "skill": skill,
                "team_mean": round(statistics.mean(medians), 1),
                "top_quartile": round(statistics.median(top), 1),
                "gap": gap,
            }
        )
    ranking.sort(key=lambda r: -float(r["gap"]))
    return {"agents": len(per_agent), "calls": len(records), "skills": ranking}
