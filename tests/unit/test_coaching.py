"""Coaching reports from hand-made call records."""

from __future__ import annotations

from assist.coaching import agent_report, team_report
from assist.report_html import agent_page


def record(call_id, agent, patience, efficiency, moments=(), started=0.0):
    skills = {
        "patience": {"score": patience},
        "efficiency": {"score": efficiency},
        "empathy": {"score": None},
    }
    return {
        "call_id": call_id,
        "agent_id": agent,
        "started_at": started,
        "scorecard": {"skills": skills, "moments": list(moments)},
    }


def moment(kind, at):
    return {"kind": kind, "media_time_s": at, "span_s": [at - 1, at], "measured": 1.0}


DAY = [
    record("a1", "ann", 100, 90),
    record("a2", "ann", 96, 80, [moment("dead_air", 30.0)]),
    record("b1", "bob", 40, 95, [moment("interruption", 5.0), moment("dead_air", 9.0)]),
    record("b2", "bob", 60, 100, [moment("interruption", 12.0), moment("interruption", 20.0)]),
    record("c1", "cat", 90, 50, [moment("long_hold", 60.0)]),
]


def test_focus_is_the_skill_furthest_below_the_team():
    bob = agent_report("bob", DAY)
    assert bob["calls"] == 2
    assert bob["focus_skill"] == "patience"
    assert bob["skills"]["patience"]["median"] == 50
    assert bob["skills"]["patience"]["team_median"] == 90
    # moments come from bob's worst patience calls first, only of patience kinds
    assert [(m["call_id"], m["kind"]) for m in bob["moments"]] == [
        ("b1", "interruption"),
        ("b2", "interruption"),
        ("b2", "interruption"),
    ]
    assert agent_report("cat", DAY)["focus_skill"] == "efficiency"


def test_an_agent_above_the_team_everywhere_still_gets_their_weakest_skill():
    ann = agent_report("ann", DAY)
    assert ann["skills"]["patience"]["gap"] > 0
    assert ann["focus_skill"] == "efficiency"
    assert ann["skills"]["empathy"]["median"] is None


def test_no_calls_no_focus():
    report = agent_report("nobody", DAY)
    assert report["calls"] == 0 and report["focus_skill"] is None and report["moments"] == []


def test_team_ranks_skills_by_gap_to_the_best_quartile():
    team = team_report(DAY)
    assert team["agents"] == 3
    # agents' medians: patience 98 / 50 / 90, efficiency 85 / 97.5 / 50
    efficiency, patience = team["skills"]
    assert (efficiency["skill"], patience["skill"]) == ("efficiency", "patience")
    assert efficiency["top_quartile"] == 97.5 and efficiency["gap"] == 20.0
    assert patience["top_quartile"] == 98 and patience["gap"] == 18.7


def test_trust_focus_reviews_only_trust_phrasing_with_what_was_said():
    def phrasing(category, at, quote):
        return {**moment("negative_phrasing", at), "category": category, "quote": quote}

    def scored(call_id, agent, trust, moments=()):
        rec = record(call_id, agent, 100, 100, moments)
        rec["scorecard"]["skills"]["trust"] = {"score": trust}
        return rec

    calls = [
        scored(
            "d1",
            "dan",
            55,
            [phrasing("cant_wont", 4.0, "I can't"), phrasing("blame", 9.0, "you should have")],
        ),
        scored("e1", "eve", 100),
        scored("e2", "eve", 100),
    ]
    dan = agent_report("dan", calls)
    assert dan["focus_skill"] == "trust"
    assert [(m["category"], m["quote"]) for m in dan["moments"]] == [("blame", "you should have")]
    page = agent_page(dan, days=30)
    assert "<q>you should have</q>" in page
