"""build_scorecard from hand-made conversation totals and findings."""

from __future__ import annotations

from typing import Any

import pytest

from assist.conversation import ConversationTotals
from assist.detectors.customer_frustration import Moment
from assist.events import Transcript, TranscriptWord
from assist.scorecard import SKILLS, build_scorecard
from assist.vocabulary import Finding


def totals(
    duration_s: float = 600.0,
    talk: dict[str, float] | None = None,
    overlap_s: float = 0.0,
    holds: list[tuple[float, float | None]] | None = None,
) -> ConversationTotals:
    return ConversationTotals(
        talk_s={"customer": 200.0, "agent": 300.0} if talk is None else talk,
        overlap_s=overlap_s,
        holds=holds or [],
        duration_s=duration_s,
    )


def finding(kind: str, at_s: float = 10.0, measured: float = 1.0) -> Finding:
    return Finding(
        kind=kind,
        at_s=at_s,
        span_start_s=at_s - measured,
        span_end_s=at_s,
        rule=f"cues.{kind}.x",
        threshold=1.0,
        measured=measured,
    )


def card(
    t: ConversationTotals | None = None, findings: list[Finding] | None = None, nudges: int = 0
) -> dict[str, Any]:
    return build_scorecard("c1", "a1", t or totals(), findings or [], nudges)


def test_shape_and_five_skills() -> None:
    sc = card(nudges=4)
    assert sc["call_id"] == "c1"
    assert sc["agent_id"] == "a1"
    assert set(sc["skills"]) == {"patience", "empathy", "trust", "efficiency", "positive_attitude"}
    assert tuple(sc["skills"]) == SKILLS
    assert sc["metrics"]["nudges_sent"] == 4
    assert sc["moments"] == []


@pytest.mark.parametrize("skill", ["empathy", "trust", "positive_attitude"])
def test_text_skills_are_null_with_a_basis(skill: str) -> None:
    entry = card(findings=[finding("interruption")])["skills"][skill]
    assert entry["score"] is None
    assert "transcript" in entry["basis"]


@pytest.mark.parametrize("skill", ["patience", "efficiency"])
def test_audio_skills_are_scored_with_a_basis(skill: str) -> None:
    entry = card()["skills"][skill]
    assert entry["score"] == 100
    assert entry["basis"]


@pytest.mark.parametrize(
    ("duration_s", "interruptions", "monologues", "expected"),
    [
        (600.0, 0, 0, 100),
        (600.0, 1, 0, 88),  # 12 points per interruption per 10 minutes
        (600.0, 2, 0, 76),
        (1200.0, 2, 0, 88),  # same count over a longer call is a lower rate
        (60.0, 1, 0, 76),  # short calls are rated over at least 5 minutes
        (300.0, 1, 0, 76),
        (600.0, 0, 1, 90),  # 10 points per monologue
        (600.0, 1, 2, 68),
        (600.0, 20, 0, 0),  # clamped at 0
    ],
)
def test_patience(duration_s: float, interruptions: int, monologues: int, expected: int) -> None:
    findings = [finding("interruption", at_s=float(i)) for i in range(interruptions)]
    findings += [finding("monologue", at_s=100.0 + i) for i in range(monologues)]
    sc = card(totals(duration_s=duration_s), findings)
    assert sc["skills"]["patience"]["score"] == expected
    assert sc["metrics"]["interruptions"] == interruptions
    assert sc["metrics"]["monologues"] == monologues


def test_patience_decreases_with_interruptions() -> None:
    scores = [
        card(findings=[finding("interruption", at_s=float(i)) for i in range(n)])["skills"][
            "patience"
        ]["score"]
        for n in range(5)
    ]
    assert scores == sorted(scores, reverse=True)
    assert len(set(scores)) == 5


@pytest.mark.parametrize(
    ("long_holds", "dead_air", "expected"),
    [
        (0, 0, 100),
        (1, 0, 85),  # 15 points per long-hold reminder
        (2, 0, 70),
        (0, 1, 92),  # 8 points per dead-air moment
        (1, 2, 69),
        (7, 0, 0),  # clamped at 0
    ],
)
def test_efficiency(long_holds: int, dead_air: int, expected: int) -> None:
    findings = [finding("long_hold", at_s=45.0 * (i + 1)) for i in range(long_holds)]
    findings += [finding("dead_air", at_s=500.0 + i) for i in range(dead_air)]
    sc = card(findings=findings)
    assert sc["skills"]["efficiency"]["score"] == expected
    assert sc["metrics"]["long_hold_reminders"] == long_holds
    assert sc["metrics"]["dead_air_moments"] == dead_air
    # interruptions and monologues are not efficiency
    assert sc["skills"]["patience"]["score"] == 100


@pytest.mark.parametrize(
    ("holds", "duration_s", "count", "total", "longest"),
    [
        ([], 600.0, 0, 0.0, 0.0),
        ([(10.0, 40.0)], 600.0, 1, 30.0, 30.0),
        ([(10.0, 40.0), (100.0, 190.5)], 600.0, 2, 120.5, 90.5),
        # an unfinished hold counts up to the end of the call
        ([(500.0, None)], 600.0, 1, 100.0, 100.0),
        ([(10.0, 20.0), (550.0, None)], 600.0, 2, 60.0, 50.0),
        ([(10.0, 12.345)], 600.0, 1, 2.35, 2.35),  # rounded to 0.01 s
    ],
)
def test_hold_metrics(
    holds: list[tuple[float, float | None]],
    duration_s: float,
    count: int,
    total: float,
    longest: float,
) -> None:
    m = card(totals(duration_s=duration_s, holds=holds))["metrics"]
    assert m["holds"] == count
    assert m["hold_total_s"] == pytest.approx(total)
    assert m["longest_hold_s"] == pytest.approx(longest)


@pytest.mark.parametrize(
    ("talk", "share"),
    [
        ({"customer": 200.0, "agent": 300.0}, 0.6),
        ({"customer": 0.0, "agent": 0.0}, None),
        ({"customer": 10.0}, 0.0),
        ({"agent": 12.0}, 1.0),
        ({"customer": 1.0, "agent": 2.0}, 0.667),
    ],
)
def test_talk_metrics(talk: dict[str, float], share: float | None) -> None:
    m = card(totals(talk=talk, overlap_s=3.14159))["metrics"]
    assert m["agent_talk_share"] == share
    assert m["talk_s"] == {k: round(v, 2) for k, v in talk.items()}
    assert m["overlap_s"] == 3.14


def test_rate_and_duration_metrics() -> None:
    findings = [finding("interruption", at_s=float(i)) for i in range(3)]
    m = card(totals(duration_s=1800.456), findings)["metrics"]
    assert m["duration_s"] == 1800.46
    assert m["interruptions_per_10_min"] == pytest.approx(1.0, abs=0.01)
    m = card(totals(duration_s=120.0), findings)["metrics"]
    assert m["interruptions_per_10_min"] == 6.0  # 3 per 5 minutes (the minimum window)


def test_moments_list_every_finding() -> None:
    findings = [
        Finding("interruption", 12.34567, 11.5, 12.34567, "r", 0.8, 0.84567),
        Finding("dead_air", 30.0, 22.0, 30.0, "r", 8.0, 8.0),
    ]
    moments = card(findings=findings)["moments"]
    assert moments == [
        {
            "kind": "interruption",
            "media_time_s": 12.346,
            "span_s": [11.5, 12.346],
            "measured": 0.846,
        },
        {"kind": "dead_air", "media_time_s": 30.0, "span_s": [22.0, 30.0], "measured": 8.0},
    ]


def phrase(category: str, at_s: float) -> Finding:
    return Finding(
        kind="negative_phrasing",
        at_s=at_s,
        span_start_s=at_s - 1.0,
        span_end_s=at_s,
        rule="cues.negative_phrasing.min_score",
        threshold=0.5,
        measured=0.9,
        unit="score",
        details={"category": category, "quote": "I can't", "suggestion": "What I can do is"},
    )


def text_card(findings: list[Finding], moments: list[Moment]) -> dict[str, Any]:
    return build_scorecard("c1", "a1", totals(), findings, 0, text_moments=moments)


def test_text_skills_are_100_when_nothing_was_said_wrong() -> None:
    sc = text_card([], [])
    assert [sc["skills"][s]["score"] for s in ("empathy", "trust", "positive_attitude")] == [
        100,
        100,
        100,
    ]
    assert sc["metrics"]["negative_phrasing"] == {}
    assert sc["metrics"]["customer_frustration_moments"] == 0


@pytest.mark.parametrize(
    ("categories", "trust", "attitude"),
    [
        (["cant_wont"], 100, 90),  # 10 points per attitude phrase
        (["policy", "you_have_to", "dismissive", "repetition"], 100, 60),
        (["blame"], 85, 100),  # 15 points per trust phrase
        (["not_my_job", "dont_know", "cant_wont"], 70, 90),
        (["blame"] * 8, 0, 100),  # clamped at 0
    ],
)
def test_negative_phrasing_costs_trust_or_attitude_by_category(
    categories: list[str], trust: int, attitude: int
) -> None:
    sc = text_card([phrase(c, 10.0 + i) for i, c in enumerate(categories)], [])
    assert sc["skills"]["trust"]["score"] == trust
    assert sc["skills"]["positive_attitude"]["score"] == attitude
    assert sum(sc["metrics"]["negative_phrasing"].values()) == len(categories)


@pytest.mark.parametrize(
    ("moments", "expected"),
    [
        ([Moment("customer_frustration", 5.0, "x")], 75),  # 25 per unacknowledged
        ([Moment("customer_frustration", 5.0, "x", acknowledged=True)], 100),
        # acknowledged after the nudge: 10 points won back
        ([Moment("customer_frustration", 5.0, "x"), Moment("empathy", 9.0, "y")], 85),
        # acknowledgements win back at most one per frustrated moment
        (
            [
                Moment("customer_frustration", 5.0, "x"),
                Moment("empathy", 9.0, "y"),
                Moment("empathy", 19.0, "y"),
            ],
            85,
        ),
        ([Moment("customer_frustration", 5.0 * i, "x") for i in range(5)], 0),
    ],
)
def test_empathy(moments: list[Moment], expected: int) -> None:
    sc = text_card([], moments)
    assert sc["skills"]["empathy"]["score"] == expected
    assert sc["metrics"]["customer_frustration_moments"] == sum(
        m.kind == "customer_frustration" for m in moments
    )


def test_text_moments_carry_what_was_said() -> None:
    (moment,) = text_card([phrase("cant_wont", 12.0)], [])["moments"]
    assert moment["quote"] == "I can't"
    assert moment["category"] == "cant_wont"
    assert moment["suggestion"] == "What I can do is"


def test_moments_quote_what_each_side_said_during_them() -> None:
    def final(channel: str, words: list[tuple[str, float]]) -> Transcript:
        return Transcript(
            call_id="c1",
            channel=channel,
            utterance_id=0,
            text="".join(w for w, _ in words).strip(),
            start_s=words[0][1],
            end_s=words[-1][1] + 0.3,
            final=True,
            words=[
                TranscriptWord(word=w, start_s=t, end_s=t + 0.3, probability=0.9) for w, t in words
            ],
        )

    transcripts = [
        final("customer", [(" I", 8.0), (" was", 8.4), (" charged", 9.0), (" twice", 9.6)]),
        final("agent", [(" Let", 9.1), (" me", 9.4), (" check", 9.8)]),
        final("agent", [(" Thanks", 30.0)]),
    ]
    interruption = finding("interruption", at_s=10.0, measured=0.8)  # span 9.2-10.0, +-0.5
    sc = build_scorecard("c1", "a1", totals(), [interruption], 1, transcripts=transcripts)
    (moment,) = sc["moments"]
    assert moment["said"] == {"customer": "was charged twice", "agent": "Let me check"}
    lonely = build_scorecard("c1", "a1", totals(), [finding("dead_air", at_s=20.0)], 0)
    assert "said" not in lonely["moments"][0]
