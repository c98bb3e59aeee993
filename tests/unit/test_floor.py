"""Floor alerts: alert kinds, critical nudges, and kinds that repeat within a call."""

from __future__ import annotations

from assist.config import FloorConfig
from assist.events import Evidence, Nudge
from assist.floor import FloorView


def nudge(kind: str, severity: str = "warning", at: float = 1.0) -> Nudge:
    evidence = Evidence(
        rule="r", threshold=1, measured=2, unit="s", span_start_s=0, span_end_s=at, explanation="x"
    )
    return Nudge(
        id=f"n-{kind}-{at}", call_id="c", agent_id="a", kind=kind, severity=severity,  # type: ignore[arg-type]
        message=f"{kind} message", suggestion=None, media_time_s=at, evidence=evidence,
    )  # fmt: skip


def test_alert_kinds_and_critical_nudges_alert_at_once():
    view = FloorView(FloorConfig(), "c", "a")
    alerts = view.alerts_for([nudge("long_hold"), nudge("dead_air"), nudge("pace", "critical")])
    assert [a.kind for a in alerts] == ["long_hold", "pace"]
    assert view.last_alert == "pace message"


def test_repeats_escalate_once_at_their_count():
    view = FloorView(FloorConfig(), "c", "a")
    kinds = ["interruption", "customer_frustration", "interruption", "customer_frustration",
             "interruption", "interruption"]  # fmt: skip
    alerts = view.alerts_for([nudge(k, at=i) for i, k in enumerate(kinds)])
    assert [(a.kind, a.message) for a in alerts] == [
        ("customer_frustration", "Customer frustration is escalating (2 moments)."),
        ("interruption", "Agent has interrupted the customer 3x."),
    ]
    assert view.cue_counts == {"interruption": 4, "customer_frustration": 2}


def test_state_reads_a_snapshot_and_ranks_long_holds_by_the_configured_time() -> None:
    from assist.vocabulary import CallSnapshot

    view = FloorView(FloorConfig(attention_hold_s=30.0), "c1", "a1")
    held = view.state(CallSnapshot(t_s=100.0, speaking=(), hold_start_s=65.0))
    assert (held.state, held.hold_s, held.attention) == ("on_hold", 35.0, 50)
    short = view.state(CallSnapshot(t_s=100.0, speaking=(), hold_start_s=80.0))
    assert short.attention == 0
    both = view.state(CallSnapshot(t_s=5.0, speaking=("customer", "agent"), hold_start_s=None))
    assert (both.state, both.hold_s) == ("overlap", None)
