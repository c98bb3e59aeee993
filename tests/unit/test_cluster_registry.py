"""The cluster registry: which worker holds which call, who is dead (injected clock)."""

from __future__ import annotations

from assist.cluster.bus import ClusterHub, redacted_url, token
from assist.cluster.registry import Registry
from assist.config import ClusterConfig
from assist.events import CallState
from tests.conftest import ManualClock


def state(call_id: str, agent_id: str = "a-1", media_time_s: float = 1.0) -> CallState:
    return CallState(
        call_id=call_id,
        agent_id=agent_id,
        state="talking",
        speaking=[],
        media_time_s=media_time_s,
        hold_started_s=None,
        hold_s=None,
        cue_counts={},
        last_alert=None,
        attention=0,
    )


def registry(clock: ManualClock) -> Registry:
    reg = Registry("w1", dead_after_s=5.0, clock=clock)
    reg.connected()
    return reg


def test_a_worker_unheard_for_dead_after_s_is_dead_with_its_calls(manual_clock: ManualClock):
    reg = registry(manual_clock)
    reg.heartbeat("w2", [state("c1"), state("c2")])
    reg.heartbeat("w3", [state("c3")])
    manual_clock.advance(4.0)
    reg.heartbeat("w3", [state("c3")])
    assert reg.expire() == []
    manual_clock.advance(1.5)  # w2 unheard for 5.5 s, w3 for 1.5 s
    dead = reg.expire()
    assert [(w, sorted(s.call_id for s in calls)) for w, calls in dead] == [("w2", ["c1", "c2"])]
    assert reg.workers() == ["w3"]
    assert reg.owner("c1") is None and reg.owner("c3") == "w3"
    assert reg.expire() == []  # told once


def test_any_message_from_a_worker_keeps_it_alive(manual_clock: ManualClock):
    reg = registry(manual_clock)
    reg.heartbeat("w2", [])
    manual_clock.advance(4.0)
    reg.call_state("w2", state("c1"))
    manual_clock.advance(4.0)
    assert reg.expire() == []
    assert reg.owner("c1") == "w2"


def test_nobody_dies_while_this_worker_is_off_the_bus(manual_clock: ManualClock):
    reg = registry(manual_clock)
    reg.heartbeat("w2", [state("c1")])
    reg.disconnected()
    manual_clock.advance(60.0)
    assert reg.expire() == []
    reg.connected()  # back: every worker gets a fresh dead_after_s to be heard from
    manual_clock.advance(4.0)
    assert reg.expire() == []
    reg.heartbeat("w2", [state("c1")])
    manual_clock.advance(4.9)
    assert reg.expire() == []
    manual_clock.advance(0.2)
    assert [w for w, _ in reg.expire()] == ["w2"]  # silent too long once heard again


def test_a_heartbeat_tells_what_changed_and_what_ended(manual_clock: ManualClock):
    reg = registry(manual_clock)
    first = reg.heartbeat("w2", [state("c1"), state("c2")])
    assert [s.call_id for s in first.changed] == ["c1", "c2"] and first.gone == []
    same = reg.heartbeat("w2", [state("c1"), state("c2")])
    assert same.changed == [] and same.gone == []
    later = reg.heartbeat("w2", [state("c1", media_time_s=9.0)])
    assert [(s.call_id, s.media_time_s) for s in later.changed] == [("c1", 9.0)]
    assert [s.call_id for s in later.gone] == ["c2"]
    assert reg.calls() == 1


def test_a_call_ended_or_moved_to_another_worker(manual_clock: ManualClock):
    reg = registry(manual_clock)
    reg.call_state("w2", state("c1"))
    reg.call_state("w3", state("c1"))  # its next leg started on w3
    assert reg.owner("c1") == "w3"
    assert reg.call_ended("w2", "c1") is None  # w2 no longer holds it
    ended = reg.call_ended("w3", "c1")
    assert ended is not None and ended.call_id == "c1"
    assert reg.owner("c1") is None and reg.calls() == 0


def test_ids_become_single_subject_tokens():
    assert token("agent-7_b") == "agent-7_b"
    assert token("a.b*c>d e") == "a~2eb~2ac~3ed~20e"
    assert token("ü") == "~c3~bc"
    assert token("a~b") == "a~7eb"
    assert len({token(s) for s in ("a.b", "a~2eb", "a_2eb")}) == 3
    assert redacted_url("nats://user:secret@host:4222") == "nats://host:4222"
    assert redacted_url("nats://host:4222") == "nats://host:4222"


def test_the_bus_credentials_never_show():
    config = ClusterConfig(bus="nats://user:s3cret@10.0.0.1:4222, nats://10.0.0.2:4222")
    health = ClusterHub(config, "w1").health()
    assert health["bus"] == "nats://10.0.0.1:4222, nats://10.0.0.2:4222"
    assert "s3cret" not in str(health)
    assert health["state"] == "disconnected"
