"""The team baseline report (JSON and HTML) from stored call records.

Per skill: the team's distribution (per-call scores), its agents ranked by their median,
the gap between the team (mean of the agents' medians) and its best quarter of agents, and
how many calls the skill's moments touch. The two skills to train first are the two with
the largest gap (ties: more calls affected), each with why and example moments (what was
said). With ``since``: the picture is of the calls since that date, and ``change`` gives,
per agent and skill, the median before and since ("did the coaching work"). Pure: records
in, dicts and HTML out.
"""

from __future__ import annotations

import html
import statistics
from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

from assist.coaching import SKILL_KINDS
from assist.report_html import STYLE
from assist.scorecard import SKILLS, TRUST_CATEGORIES

PRIORITIES = 2
EXAMPLES = 3


def _iso(ts: float | None) -> str | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC).isoformat()


def _scores(record: dict[str, Any]) -> dict[str, int]:
    skills = (record.get("scorecard") or {}).get("skills", {})
    return {s: v["score"] for s, v in skills.items() if v.get("score") is not None}


def _fits(moment: dict[str, Any], skill: str) -> bool:
    """Whether a moment is evidence for ``skill`` (negative phrasing by its category)."""
    if moment["kind"] not in SKILL_KINDS.get(skill, ()):
        return False
    if moment["kind"] != "negative_phrasing" or skill not in ("trust", "positive_attitude"):
        return True
    return (moment.get("category") in TRUST_CATEGORIES) == (skill == "trust")


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    pos = q * (len(ordered) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return round(ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo), 1)


def _skill_medians(records: list[dict[str, Any]]) -> dict[str, dict[str, list[int]]]:
    """skill -> agent -> that agent's scores."""
    out: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
    for record in records:
        for skill, score in _scores(record).items():
            out[skill][record["agent_id"]].append(score)
    return out


def _skill_section(
    skill: str, records: list[dict[str, Any]], per_agent: dict[str, list[int]]
) -> dict[str, Any]:
    scores = [float(s) for r in records if (s := _scores(r).get(skill)) is not None]
    histogram = [0] * 10
    for score in scores:
        histogram[min(int(score // 10), 9)] += 1
    agents: list[dict[str, Any]] = [
        {
            "agent_id": agent,
            "calls": len(values),
            "median": round(float(statistics.median(values)), 1),
            "mean": round(float(statistics.mean(values)), 1),
        }
        for agent, values in per_agent.items()
    ]
    agents.sort(key=lambda a: (-a["median"], -a["mean"], a["agent_id"]))
    medians: list[float] = sorted(a["median"] for a in agents)
    top = medians[-max(1, round(len(medians) / 4)) :]  # the best quarter, at least one agent
    team_mean = round(statistics.mean(medians), 1)
    best_quarter = round(statistics.median(top), 1)
    affected = sum(
        any(_fits(m, skill) for m in (r.get("scorecard") or {}).get("moments", []))
        for r in records
        if skill in _scores(r)
    )
    return {
        "skill": skill,
        "calls": len(scores),
        "distribution": {
            "min": min(scores),
            "p25": _quantile(scores, 0.25),
            "median": _quantile(scores, 0.5),
            "p75": _quantile(scores, 0.75),
            "max": max(scores),
            "mean": round(statistics.mean(scores), 1),
            "histogram": histogram,  # calls per 10 points: 0-9, 10-19, ... 90-100
        },
        "agents": agents,
        "team_mean": team_mean,
        "best_quarter": best_quarter,
        "gap": round(best_quarter - team_mean, 1),
        "calls_affected": affected,
        "calls_below_best_quarter": sum(s < best_quarter for s in scores),
    }


def _examples(
    skill: str, records: list[dict[str, Any]], count: int = EXAMPLES
) -> list[dict[str, Any]]:
    """Moments of ``skill`` with what was said, from the calls where it scored lowest: one
    per call first (different calls, often different agents), then the calls' next ones."""
    ranked = sorted(
        (r for r in records if skill in _scores(r)), key=lambda r: (_scores(r)[skill], r["call_id"])
    )
    per_call = [
        [
            {"call_id": r["call_id"], "agent_id": r["agent_id"], **m}
            for m in (r.get("scorecard") or {}).get("moments", [])
            if _fits(m, skill)
        ]
        for r in ranked
    ]
    out: list[dict[str, Any]] = []
    for depth in range(max(map(len, per_call), default=0)):
        for moments in per_call:
            if depth < len(moments):
                out.append(moments[depth])
                if len(out) == count:
                    return out
    return out


def _why(section: dict[str, Any]) -> str:
    kinds = ", ".join(k.replace("_", " ") for k in SKILL_KINDS.get(section["skill"], ()))
    return (
        f"the team's agents score {section['team_mean']:g} (mean of their medians), their best "
        f"quarter {section['best_quarter']:g}: a gap of {section['gap']:g} points; "
        f"{section['calls_affected']} of {section['calls']} calls have {kinds} moments, "
        f"{section['calls_below_best_quarter']} score below the best quarter"
    )


def _change(before: list[dict[str, Any]], after: list[dict[str, Any]]) -> dict[str, Any]:
    old, new = _skill_medians(before), _skill_medians(after)
    agents: dict[str, dict[str, Any]] = {}
    team: dict[str, Any] = {}
    for skill in SKILLS:
        for agent in sorted(set(old[skill]) | set(new[skill])):
            a, b = old[skill].get(agent, []), new[skill].get(agent, [])
            entry: dict[str, Any] = {
                "before": round(statistics.median(a), 1) if a else None,
                "after": round(statistics.median(b), 1) if b else None,
                "calls_before": len(a),
                "calls_after": len(b),
                "change": None,
            }
            if a and b:
                entry["change"] = round(statistics.median(b) - statistics.median(a), 1)
            agents.setdefault(agent, {})[skill] = entry
        a_all = [s for v in old[skill].values() for s in v]
        b_all = [s for v in new[skill].values() for s in v]
        if a_all or b_all:
            team[skill] = {
                "before": round(statistics.median(a_all), 1) if a_all else None,
                "after": round(statistics.median(b_all), 1) if b_all else None,
                "calls_before": len(a_all),
                "calls_after": len(b_all),
                "change": round(statistics.median(b_all) - statistics.median(a_all), 1)
                if a_all and b_all
                else None,
            }
    return {
        "calls_before": len(before),
        "calls_after": len(after),
        "team": team,
        "agents": [{"agent_id": k, "skills": v} for k, v in sorted(agents.items())],
    }


def baseline_report(
    records: list[dict[str, Any]], since: float | None = None, generated_at: float | None = None
) -> dict[str, Any]:
    """The report over ``records`` (stored call records; those without a scorecard are left
    out); with ``since`` (epoch seconds) the picture covers the calls started since then and
    ``change`` compares them with the calls before."""
    scored = [r for r in records if r.get("scorecard")]
    before = [r for r in scored if since is not None and r["started_at"] < since]
    current = [r for r in scored if since is None or r["started_at"] >= since]
    per_skill = _skill_medians(current)
    skills = {s: _skill_section(s, current, per_skill[s]) for s in SKILLS if per_skill[s]}
    ranked = sorted(skills.values(), key=lambda s: (-s["gap"], -s["calls_affected"], s["skill"]))
    priorities = [
        {
            "skill": s["skill"],
            "gap": s["gap"],
            "team_mean": s["team_mean"],
            "best_quarter": s["best_quarter"],
            "calls_affected": s["calls_affected"],
            "calls": s["calls"],
            "why": _why(s),
            "examples": _examples(s["skill"], current),
        }
        for s in ranked[:PRIORITIES]
    ]
    agents: dict[str, dict[str, Any]] = {}
    for skill, section in skills.items():
        for entry in section["agents"]:
            agent = agents.setdefault(
                entry["agent_id"], {"agent_id": entry["agent_id"], "skills": {}}
            )
            agent["skills"][skill] = entry["median"]
            agent["calls"] = max(agent.get("calls", 0), entry["calls"])
    for agent in agents.values():
        agent["overall"] = round(statistics.mean(agent["skills"].values()), 1)
    starts = [r["started_at"] for r in current]
    return {
        "generated_at": _iso(generated_at),
        "since": _iso(since),
        "calls": len(current),
        "agents": len(agents),
        "audio_hours": round(
            sum(r["scorecard"]["metrics"].get("duration_s", 0.0) for r in current) / 3600, 3
        ),
        "period": {"from": _iso(min(starts, default=None)), "to": _iso(max(starts, default=None))},
        "skills": skills,
        "agents_ranked": sorted(agents.values(), key=lambda a: (-a["overall"], a["agent_id"])),
        "priorities": priorities,
        "change": _change(before, current) if since is not None else None,
    }


def _e(value: object) -> str:
    return html.escape(str(value))


def _num(value: float | None) -> str:
    return "n/a" if value is None else f"{value:g}"


def _signed(value: float | None) -> str:
    return "n/a" if value is None else f"{value:+g}"


def _histogram(counts: list[int]) -> str:
    top = max(counts) or 1
    bars = "".join(
        f'<rect x="{i * 40 + 2}" y="{100 - 90 * c / top:.1f}" width="36" '
        f'height="{90 * c / top:.1f}"><title>{i * 10}-{i * 10 + 9}: {c} call(s)</title></rect>'
        f'<text x="{i * 40 + 20}" y="114" text-anchor="middle">{i * 10}</text>'
        for i, c in enumerate(counts)
    )
    return f'<svg viewBox="0 0 400 120" role="img" aria-label="calls per score band">{bars}</svg>'


def report_page(report: dict[str, Any]) -> str:
    """The report as one self-contained HTML page (no scripts)."""
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        "<title>Team baseline</title>",
        f"<style>{STYLE} rect{{fill:#1f6feb}}</style></head><body><main>",
        "<h1>Team baseline: soft skills</h1>",
        f"<p class='muted'>{report['calls']} call(s), {report['agents']} agent(s), "
        f"{report['audio_hours']:g} h of audio; calls from {_e(report['period']['from'])} to "
        f"{_e(report['period']['to'])}"
        + (f"; since {_e(report['since'])}" if report["since"] else "")
        + "</p>",
        "<h2>Train first</h2>",
    ]
    if not report["priorities"]:
        parts.append("<p class='muted'>No scored calls.</p>")
    for rank, p in enumerate(report["priorities"], start=1):
        parts.append(
            f"<div class='focus'><h3>{rank}. {_e(p['skill'].replace('_', ' '))}</h3>"
            f"<p>Why: {_e(p['why'])}.</p><ul>"
        )
        for m in p["examples"]:
            said = "; ".join(f"{_e(ch)}: “{_e(t)}”" for ch, t in m.get("said", {}).items())
            quote = f" quote: “{_e(m['quote'])}”" if m.get("quote") else ""
            parts.append(
                f"<li>{_e(m['agent_id'])}, call {_e(m['call_id'])} at {m['media_time_s']:.1f} s: "
                f"{_e(m['kind'].replace('_', ' '))}{quote}"
                + (f" <span class='muted'>(said: {said})</span>" if said else "")
                + "</li>"
            )
        parts.append("</ul></div>")
    parts.append("<h2>Agents ranked</h2><table><tr><th>#</th><th>agent</th><th>calls</th>")
    parts.append("<th>mean of skill medians</th>")
    parts += [f"<th>{_e(s.replace('_', ' '))}</th>" for s in report["skills"]]
    parts.append("</tr>")
    for i, agent in enumerate(report["agents_ranked"], start=1):
        cells = "".join(f"<td>{_num(agent['skills'].get(s))}</td>" for s in report["skills"])
        parts.append(
            f"<tr><td>{i}</td><td>{_e(agent['agent_id'])}</td><td>{agent.get('calls', 0)}</td>"
            f"<td>{agent['overall']:g}</td>{cells}</tr>"
        )
    parts.append("</table><h2>Skills</h2><div class='grid'>")
    for section in report["skills"].values():
        d = section["distribution"]
        ranked = ", ".join(f"{_e(a['agent_id'])} {a['median']:g}" for a in section["agents"])
        parts.append(
            f"<div class='card'><h3>{_e(section['skill'].replace('_', ' '))}</h3>"
            f"{_histogram(d['histogram'])}"
            f"<p>median {d['median']:g} (quartiles {d['p25']:g}-{d['p75']:g}, range "
            f"{d['min']:g}-{d['max']:g}) over {section['calls']} call(s); "
            f"team {section['team_mean']:g}, "
            f"best quarter {section['best_quarter']:g} (gap {section['gap']:g}); "
            f"{section['calls_affected']} call(s) affected</p>"
            f"<p class='muted'>agents: {ranked}</p></div>"
        )
    parts.append("</div>")
    change = report["change"]
    if change is not None:
        parts.append(
            f"<h2>Change since {_e(report['since'])}</h2><p class='muted'>{change['calls_before']} "
            f"call(s) before, {change['calls_after']} since; medians, before → since</p>"
            "<table><tr><th>agent</th>"
        )
        parts += [f"<th>{_e(s.replace('_', ' '))}</th>" for s in SKILLS]
        parts.append("</tr>")
        rows = [("team", change["team"])] + [(a["agent_id"], a["skills"]) for a in change["agents"]]
        for name, per_skill in rows:
            cells = "".join(
                f"<td>{_num(e['before'])} → {_num(e['after'])} ({_signed(e['change'])})</td>"
                if (e := per_skill.get(s))
                else "<td>n/a</td>"
                for s in SKILLS
            )
            parts.append(f"<tr><td>{_e(name)}</td>{cells}</tr>")
        parts.append("</table>")
    parts.append("</main></body></html>\n")
    return "".join(parts)
