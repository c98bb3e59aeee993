"""The coaching report as a self-contained HTML page (inline SVG charts, no scripts)."""

from __future__ import annotations

import html
from typing import Any

WIDTH, HEIGHT, PAD = 420, 140, 28


def _chart(points: list[int], team_median: float | None) -> str:
    """Scores per call (0-100) as a line, the team median as a dashed rule."""
    if not points:
        return '<p class="muted">No scored calls yet.</p>'

    def x(i: int) -> float:
        span = max(1, len(points) - 1)
        return PAD + i * (WIDTH - 2 * PAD) / span

    def y(score: float) -> float:
        return HEIGHT - PAD - score * (HEIGHT - 2 * PAD) / 100

    path = " ".join(f"{'M' if i == 0 else 'L'}{x(i):.1f},{y(s):.1f}" for i, s in enumerate(points))
    dots = "".join(f'<circle cx="{x(i):.1f}" cy="{y(s):.1f}" r="3"/>' for i, s in enumerate(points))
    rule = ""
    if team_median is not None:
        rule = (
            f'<line class="team" x1="{PAD}" x2="{WIDTH - PAD}" y1="{y(team_median):.1f}" '
            f'y2="{y(team_median):.1f}"/><text x="{WIDTH - PAD}" y="{y(team_median) - 4:.1f}" '
            f'text-anchor="end">team median {team_median:g}</text>'
        )
    axis = (
        f'<text x="4" y="{y(100) + 4:.1f}">100</text><text x="4" y="{y(0) + 4:.1f}">0</text>'
        f'<line class="axis" x1="{PAD}" x2="{WIDTH - PAD}" y1="{y(0):.1f}" y2="{y(0):.1f}"/>'
    )
    return (
        f'<svg viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="score per call">'
        f'{axis}{rule}<path d="{path}"/>{dots}</svg>'
    )


STYLE = """
body{font:15px/1.5 system-ui,sans-serif;margin:2rem auto;max-width:60rem;color:#1b2430;
padding:0 1rem}
h1{font-size:1.6rem;margin-bottom:.2rem} .muted{color:#5b6675}
.focus{background:#fff4e5;border-left:4px solid #d9822b;padding:.8rem 1rem;margin:1rem 0}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(26rem,1fr));gap:1rem}
.card{border:1px solid #d8dee6;border-radius:8px;padding:.8rem 1rem}
.card h3{margin:.1rem 0;text-transform:capitalize}
svg{width:100%;height:auto} path{fill:none;stroke:#1f6feb;stroke-width:2} circle{fill:#1f6feb}
.team{stroke:#8a94a3;stroke-dasharray:4 3} .axis{stroke:#d8dee6} text{font-size:10px;fill:#5b6675}
table{border-collapse:collapse}
td,th{padding:.3rem .8rem;border-bottom:1px solid #d8dee6;text-align:left}
"""


def agent_page(report: dict[str, Any], days: float) -> str:
    """An agent's coaching report (``assist.coaching.agent_report``) as one self-contained
    HTML page: the focus skill with its moments to review, and each skill's scores per call
    charted against the team median. ``days`` is only shown (the report's period)."""
    e = html.escape
    focus = report["focus_skill"]
    cards = []
    for skill, entry in report["skills"].items():
        points = [p["score"] for p in entry["calls"]]
        gap = entry["gap"]
        summary = (
            "not scored yet (needs text cues)"
            if entry["median"] is None
            else f"median {entry['median']:g} · team {entry['team_median']:g} · gap {gap:+g}"
        )
        cards.append(
            f'<section class="card"><h3>{e(skill.replace("_", " "))}</h3>'
            f'<p class="muted">{e(summary)}</p>{_chart(points, entry["team_median"])}</section>'
        )
    moments = "".join(
        f"<li><b>{e(m['kind'].replace('_', ' '))}</b> in call {e(m['call_id'])} at "
        f"{m['media_time_s']:.1f} s (measured {m['measured']:g}){_what_was_said(m)}</li>"
        for m in report["moments"]
    )
    focus_html = (
        f'<div class="focus"><b>Focus next: {e(focus.replace("_", " "))}.</b> '
        f"Review these moments with the agent:<ul>{moments or '<li>none recorded</li>'}</ul></div>"
        if focus
        else '<div class="focus">Not enough scored calls for a focus yet.</div>'
    )
    return (
        f"<!doctype html><html lang=en><meta charset=utf-8><title>Coaching report: "
        f"{e(report['agent_id'])}</title><style>{STYLE}</style><body>"
        f"<h1>Coaching report: {e(report['agent_id'])}</h1>"
        f'<p class="muted">{report["calls"]} call(s) in the last {days:g} day(s)</p>'
        f'{focus_html}<div class="grid">{"".join(cards)}</div></body></html>'
    )


def team_page(report: dict[str, Any], days: float) -> str:
    """The team report (``assist.coaching.team_report``) as one self-contained HTML page: the
    skills ranked by how far the team mean trails its best quartile. ``days`` is only
    shown."""
    e = html.escape
    rows = "".join(
        f"<tr><td>{e(r['skill'].replace('_', ' '))}</td><td>{r['team_mean']:g}</td>"
        f"<td>{r['top_quartile']:g}</td><td>{r['gap']:+g}</td></tr>"
        for r in report["skills"]
    )
    return (
        f"<!doctype html><html lang=en><meta charset=utf-8><title>Team coaching report</title>"
        f"<style>{STYLE}</style><body><h1>Team coaching report</h1>"
        f'<p class="muted">{report["agents"]} agent(s), {report["calls"]} call(s) in the last '
        f"{days:g} day(s). Skills ranked by how far the team's mean trails its best quartile "
        f"of agents (agents' median scores).</p>"
        f"<table><tr><th>skill</th><th>team mean</th><th>best quartile</th><th>gap</th></tr>"
        f"{rows}</table></body></html>"
    )


def _what_was_said(moment: dict[str, Any]) -> str:
    """The transcript evidence of a moment: the quote and its rewrite, or who said what."""
    e = html.escape
    if moment.get("quote"):
        better = moment.get("suggestion")
        rewrite = f' -> try: "{e(better)}"' if better else ""
        return f"<br><q>{e(moment['quote'])}</q>{rewrite}"
    said = moment.get("said") or {}
    return "".join(f"<br>{e(who)}: <q>{e(text)}</q>" for who, text in sorted(said.items()))
