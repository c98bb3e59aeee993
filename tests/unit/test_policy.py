"""NudgePolicy: cooldowns in media time, dedupe, per-call budget, nudge contents."""

from __future__ import annotations

from typing import Any

import pytest

from assist.config import PolicyConfig
from assist.events import Nudge
from assist.policy import NudgePolicy
from assist.vocabulary import Finding

THRESHOLDS = {"interruption": 0.8, "long_hold": 45.0, "dead_air": 8.0, "monologue": 60.0}


def finding(
    kind: str,
    at_s: float,
    span_start_s: float | None = None,
    severity: str = "warning",
    measured: float | None = None,
) -> Finding:
    threshold = THRESHOLDS.get(kind, 1.0)
    measured = threshold + 0.25 if measured is None else measured
    return Finding(
        kind=kind,
        at_s=at_s,
        span_start_s=at_s - measured if span_start_s is None else span_start_s,
        span_end_s=at_s,
        rule=f"cues.{kind}.x",
        threshold=threshold,
        measured=measured,
        severity=severity,  # type: ignore[arg-type]
    )


def policy(**config: Any) -> NudgePolicy:
    return NudgePolicy(PolicyConfig(**config), call_id="call-1", agent_id="agent-7")


def sent_times(p: NudgePolicy, findings: list[Finding]) -> list[float]:
    return [f.at_s for f in findings if p.decide(f) is not None]


@pytest.mark.parametrize(
    ("kind", "times", "expected"),
    [
        # default cooldowns: interruption 10 s, monologue 30 s, dead_air / long_hold 0
        ("interruption", [5.0, 12.0, 15.0, 15.1], [5.0, 15.0]),
        ("interruption", [0.0, 9.999, 10.0], [0.0, 10.0]),
        # cooldown runs from the last nudge sent, not from the last suppressed finding
        ("interruption", [0.0, 9.0, 18.0], [0.0, 18.0]),
        ("monologue", [60.0, 80.0, 89.0, 90.0, 125.0], [60.0, 90.0, 125.0]),
        ("dead_air", [8.0, 8.5, 9.0], [8.0, 8.5, 9.0]),
        ("long_hold", [45.0, 45.001, 90.0], [45.0, 45.001, 90.0]),
        ("pace", [1.0, 30.0, 61.0], [1.0, 61.0]),
    ],
)
def test_cooldown_per_kind(kind: str, times: list[float], expected: list[float]) -> None:
    p = policy()
    assert sent_times(p, [finding(kind, t) for t in times]) == expected
    assert p.sent == len(expected)
    assert p.suppressed["cooldown"] == len(times) - len(expected)


@pytest.mark.parametrize(
    ("times", "expected"),
    [
        # interruption, cooldown 10 s. Text findings wait for the recognizer, whose workers
        # finish out of order, so a finding may arrive after a later one: the cooldown
        # holds both ways
        ([20.0, 9.5], [20.0, 9.5]),  # 10.5 s apart: both
        ([20.0, 11.0], [20.0]),  # 9 s before a nudge sent: held back
        ([20.0, 9.5, 14.0], [20.0, 9.5]),  # within 10 s of both
        ([0.0, 20.0, 10.0], [0.0, 20.0, 10.0]),  # 10 s from each: clear on both sides
    ],
)
def test_cooldown_holds_for_findings_out_of_order(
    times: list[float], expected: list[float]
) -> None:
    p = policy()
    assert sent_times(p, [finding("interruption", t) for t in times]) == expected


def test_cooldowns_are_independent_per_kind() -> None:
    p = policy()
    findings = [
        finding("interruption", 1.0),
        finding("monologue", 2.0),
        finding("interruption", 3.0),  # in interruption cooldown
        finding("dead_air", 4.0),
        finding("monologue", 5.0),  # in monologue cooldown
    ]
    assert sent_times(p, findings) == [1.0, 2.0, 4.0]


def test_custom_cooldown_config() -> None:
    p = policy(cooldown_s={"dead_air": 5.0})
    times = [0.0, 4.0, 5.0]
    assert sent_times(p, [finding("dead_air", t) for t in times]) == [0.0, 5.0]
    # setting one kind's cooldown leaves the others at their defaults (interruption: 10 s)
    assert sent_times(p, [finding("interruption", t) for t in (6.0, 6.1, 16.0)]) == [6.0, 16.0]


def test_an_unknown_kind_is_no_finding() -> None:
    with pytest.raises(ValueError):
        finding("unknown_kind", 1.0)


@pytest.mark.parametrize(
    ("second", "suppressed"),
    [
        (finding("dead_air", 10.0, span_start_s=2.0), True),
        (finding("dead_air", 10.0004, span_start_s=2.0004), True),  # same to the ms
        (finding("dead_air", 10.0, span_start_s=2.5), False),
        (finding("dead_air", 11.0, span_start_s=2.0), False),
        (finding("monologue", 10.0, span_start_s=2.0), False),
    ],
)
def test_duplicate_finding_suppressed(second: Finding, suppressed: bool) -> None:
    p = policy()
    assert p.decide(finding("dead_air", 10.0, span_start_s=2.0)) is not None
    assert (p.decide(second) is None) == suppressed
    assert p.suppressed["duplicate"] == int(suppressed)
    assert p.sent == 1 + int(not suppressed)


@pytest.mark.parametrize(
    ("exempt", "severity", "passes"),
    [
        ("critical", "info", False),
        ("critical", "warning", False),
        ("critical", "critical", True),
        ("warning", "info", False),
        ("warning", "warning", True),
        ("warning", "critical", True),
        ("info", "info", True),
    ],
)
def test_budget(exempt: str, severity: str, passes: bool) -> None:
    p = policy(budget_per_call=2, budget_exempt_severity=exempt)
    assert sent_times(p, [finding("dead_air", t, severity="info") for t in (1.0, 2.0)]) == [
        1.0,
        2.0,
    ]
    if exempt != "info":
        # the budget is spent: ordinary findings are held back
        assert p.decide(finding("dead_air", 3.0, severity="info")) is None
        assert p.suppressed["budget"] == 1
    nudge = p.decide(finding("long_hold", 90.0, severity=severity))
    assert (nudge is not None) == passes
    if passes:
        assert nudge is not None
        assert nudge.severity == severity
        assert p.sent == 3


def test_budget_zero_lets_only_critical_through() -> None:
    p = policy(budget_per_call=0)
    assert p.decide(finding("interruption", 1.0)) is None
    assert p.decide(finding("long_hold", 90.0, severity="critical")) is not None
    assert p.decide(finding("long_hold", 135.0, severity="critical")) is not None
    assert p.sent == 2
    assert p.suppressed["budget"] == 1


def test_nudge_fields() -> None:
    p = policy()
    f = Finding(
        kind="interruption",
        at_s=12.34567,
        span_start_s=11.51234,
        span_end_s=12.34567,
        rule="cues.interruption.min_overlap_s",
        threshold=0.8,
        measured=0.83333,
        severity="warning",
        details={"k": 1},
    )
    nudge = p.decide(f)
    assert isinstance(nudge, Nudge)
    assert nudge.type == "nudge"
    assert nudge.id == "call-1-1"
    assert nudge.call_id == "call-1"
    assert nudge.agent_id == "agent-7"
    assert nudge.kind == "interruption"
    assert nudge.severity == "warning"
    assert "talking over" in nudge.message
    assert nudge.suggestion
    assert nudge.media_time_s == 12.346
    ev = nudge.evidence
    assert ev.rule == "cues.interruption.min_overlap_s"
    assert ev.threshold == 0.8
    assert ev.measured == 0.833
    assert ev.unit == "s"
    assert (ev.span_start_s, ev.span_end_s) == (11.512, 12.346)
    assert ev.details == {"k": 1}
    assert ev.explanation == "overlap 0.83 s >= 0.80 s"
    # ids count nudges sent in this call
    second = p.decide(finding("dead_air", 20.0))
    assert second is not None
    assert second.id == "call-1-2"


@pytest.mark.parametrize(
    ("kind", "measured", "threshold_text", "measured_text", "message_part"),
    [
        ("long_hold", 95.0, "45.00", "95.00", "1:35"),
        ("dead_air", 8.4, "8.00", "8.40", "8 s"),
        ("monologue", 61.2, "60.00", "61.20", "1:01"),
        ("interruption", 0.9, "0.80", "0.90", "talking over"),
    ],
)
def test_explanation_mentions_measured_and_threshold(
    kind: str, measured: float, threshold_text: str, measured_text: str, message_part: str
) -> None:
    nudge = policy().decide(finding(kind, 100.0, measured=measured))
    assert nudge is not None
    assert measured_text in nudge.evidence.explanation
    assert threshold_text in nudge.evidence.explanation
    assert nudge.evidence.explanation.index(measured_text) < nudge.evidence.explanation.index(
        threshold_text
    )
    assert message_part in nudge.message


def test_suppressed_reasons_are_counted() -> None:
    p = policy(budget_per_call=2)
    findings = [
        finding("interruption", 1.0),  # sent
        finding("interruption", 1.0),  # duplicate
        finding("interruption", 2.0),  # cooldown
        finding("dead_air", 3.0),  # sent (budget now spent)
        finding("dead_air", 4.0),  # budget
        finding("monologue", 70.0),  # budget
        finding("long_hold", 90.0, severity="critical"),  # exempt
    ]
    results = [p.decide(f) for f in findings]
    assert [r is not None for r in results] == [True, False, False, True, False, False, True]
    assert dict(p.suppressed) == {"duplicate": 1, "cooldown": 1, "budget": 2}
    assert p.sent == 3


@pytest.mark.parametrize(
    ("severity", "at", "passes"),
    [
        ("warning", 100.0, False),  # snoozed until 310
        ("info", 309.9, False),
        ("warning", 310.0, True),  # the snooze is over
        ("critical", 100.0, True),  # critical always gets through
    ],
)
def test_snoozed_kind_stays_quiet(severity: str, at: float, passes: bool) -> None:
    p = policy()
    p.snooze("dead_air", until_s=310.0)
    p.snooze("dead_air", until_s=200.0)  # a shorter second snooze doesn't cut the first
    nudge = p.decide(finding("dead_air", at, severity=severity))
    assert (nudge is not None) == passes
    if not passes:
        assert p.suppressed["snoozed"] == 1
    other = p.decide(finding("interruption", at))
    assert other is not None  # only the snoozed kind is quiet
