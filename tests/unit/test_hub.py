"""Subscription queues (bounded, lagged notices, coalescing) and the in-process Hub."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from assist.events import Alert, CallState, Lagged
from assist.hub import Hub, Subscription, sorted_by_attention


def state(call_id: str, agent_id: str = "a1", attention: int = 0, **kw: Any) -> CallState:
    fields: dict[str, Any] = {
        "call_id": call_id,
        "agent_id": agent_id,
        "state": "talking",
        "speaking": ["agent"],
        "media_time_s": 1.0,
        "hold_started_s": None,
        "hold_s": None,
        "cue_counts": {},
        "last_alert": None,
        "attention": attention,
    }
    fields.update(kw)
    return CallState(**fields)


def alert(call_id: str = "c1", agent_id: str = "a1", kind: str = "long_hold") -> Alert:
    return Alert(
        call_id=call_id,
        agent_id=agent_id,
        kind=kind,
        severity="critical",
        message="m",
        media_time_s=2.0,
    )


async def drain(sub: Subscription) -> list[dict[str, Any]]:
    """Everything queued now (never waits: stops when nothing is pending)."""
    out = []
    while sub.pending() or sub.dropped:
        out.append(json.loads(await sub.get()))
    return out


# ------------------------------------------------------------------------ Subscription


@pytest.mark.parametrize(
    ("capacity", "count", "expected"),
    [
        (3, 2, ["t0", "t1"]),
        (3, 3, ["t0", "t1", "t2"]),
        (3, 5, [{"type": "lagged", "dropped": 2}, "t2", "t3", "t4"]),
        (1, 4, [{"type": "lagged", "dropped": 3}, "t3"]),
    ],
)
async def test_subscription_bounded_drops_oldest_lagged_first(
    capacity: int, count: int, expected: list[Any]
) -> None:
    sub = Subscription(capacity)
    for i in range(count):
        sub.put(json.dumps(f"t{i}"))
    dropped = max(0, count - capacity)
    assert sub.pending() == min(count, capacity)
    assert sub.dropped == dropped
    assert sub.dropped_total == dropped
    assert await drain(sub) == expected
    assert sub.dropped == 0
    assert sub.dropped_total == dropped


async def test_lagged_counts_reset_after_notice() -> None:
    sub = Subscription(2)
    for i in range(4):
        sub.put(json.dumps(i))
    assert json.loads(await sub.get()) == {"type": "lagged", "dropped": 2}
    assert json.loads(await sub.get()) == 2
    sub.put(json.dumps(4))
    sub.put(json.dumps(5))  # 3 was still queued: 3, 4, 5 overflow, 3 is dropped
    assert await drain(sub) == [{"type": "lagged", "dropped": 1}, 4, 5]
    assert sub.dropped_total == 3


async def test_lagged_notice_is_a_wire_message() -> None:
    sub = Subscription(1)
    sub.put("a")
    sub.put("b")
    assert await sub.get() == Lagged(dropped=1).model_dump_json()


async def test_coalescing_replaces_in_place() -> None:
    sub = Subscription(10)
    sub.put("a1", key=("call", "a"))
    sub.put("x")
    sub.put("b1", key=("call", "b"))
    sub.put("a2", key=("call", "a"))
    sub.put("a3", key=("call", "a"))
    assert sub.pending() == 3
    assert [await sub.get() for _ in range(3)] == ["a3", "x", "b1"]
    assert sub.pending() == 0


async def test_coalescing_does_not_drop_when_full() -> None:
    sub = Subscription(2)
    sub.put("a1", key="a")
    sub.put("b1", key="b")
    sub.put("a2", key="a")
    assert sub.dropped == 0
    assert [await sub.get() for _ in range(2)] == ["a2", "b1"]


async def test_coalesced_key_after_delivery_is_queued_again() -> None:
    sub = Subscription(5)
    sub.put("a1", key="a")
    assert await sub.get() == "a1"
    sub.put("x")
    sub.put("a2", key="a")
    assert [await sub.get() for _ in range(2)] == ["x", "a2"]


async def test_evicted_keyed_entry_counts_as_dropped() -> None:
    sub = Subscription(2)
    sub.put('"a1"', key="a")
    sub.put('"x"')
    sub.put('"y"')  # evicts a1
    sub.put('"a2"', key="a")  # a new entry at the end, evicts x
    assert sub.dropped == 2
    assert await drain(sub) == [{"type": "lagged", "dropped": 2}, "y", "a2"]


async def test_get_waits_for_put() -> None:
    sub = Subscription(4)
    asyncio.get_running_loop().call_soon(sub.put, "later")
    assert await sub.get() == "later"


# ------------------------------------------------------------------------ Hub: agents


async def test_agent_gets_subscribed_first_then_only_its_own_events() -> None:
    hub = Hub(subscriber_capacity=16)
    sub = hub.subscribe_agent("a1")
    other = hub.subscribe_agent("a2")
    hub.to_agent("a1", alert(agent_id="a1", kind="mine"))
    hub.to_agent("a2", alert(agent_id="a2", kind="theirs"))
    hub.call_changed(state("c1", "a1"))
    hub.call_changed(state("c2", "a2"))
    hub.to_floor(alert(kind="floor-only"))
    got = await drain(sub)
    assert got[0] == {"type": "subscribed", "stream": "agent", "agent_id": "a1"}
    assert [m["type"] for m in got[1:]] == ["alert", "call_update"]
    assert got[1]["kind"] == "mine"
    assert got[2]["call"]["call_id"] == "c1"
    theirs = await drain(other)
    assert theirs[0]["agent_id"] == "a2"
    assert [m.get("kind") or m.get("call", {}).get("call_id") for m in theirs[1:]] == [
        "theirs",
        "c2",
    ]


async def test_agent_subscribing_late_gets_its_live_calls() -> None:
    hub = Hub()
    hub.call_changed(state("c1", "a1"))
    hub.call_changed(state("c2", "a2"))
    hub.call_changed(state("c3", "a1"))
    got = await drain(hub.subscribe_agent("a1"))
    assert got[0]["type"] == "subscribed"
    assert [(m["type"], m["call"]["call_id"]) for m in got[1:]] == [
        ("call_update", "c1"),
        ("call_update", "c3"),
    ]


async def test_agent_live_call_update_coalesces_with_backlog() -> None:
    hub = Hub()
    hub.call_changed(state("c1", "a1", media_time_s=1.0))
    sub = hub.subscribe_agent("a1")
    hub.call_changed(state("c1", "a1", media_time_s=2.0))
    got = await drain(sub)
    assert [m["type"] for m in got] == ["subscribed", "call_update"]
    assert got[1]["call"]["media_time_s"] == 2.0


# ------------------------------------------------------------------------ Hub: floor


async def test_floor_gets_subscribed_then_snapshot_sorted_by_attention() -> None:
    hub = Hub()
    hub.call_changed(state("c1", attention=1))
    hub.call_changed(state("c2", attention=5))
    hub.call_changed(state("c3", attention=1, hold_s=30.0))
    got = await drain(hub.subscribe_floor())
    assert got[0] == {"type": "subscribed", "stream": "floor", "agent_id": None}
    assert got[1]["type"] == "floor_snapshot"
    assert [c["call_id"] for c in got[1]["calls"]] == ["c2", "c3", "c1"]
    assert len(got) == 2


async def test_floor_snapshot_empty() -> None:
    got = await drain(Hub().subscribe_floor())
    assert [m["type"] for m in got] == ["subscribed", "floor_snapshot"]
    assert got[1]["calls"] == []


async def test_call_changed_coalesces_per_call() -> None:
    hub = Hub()
    floor = hub.subscribe_floor()
    for t in (1.0, 2.0, 3.0):
        hub.call_changed(state("c1", media_time_s=t))
    hub.call_changed(state("c2", media_time_s=9.0))
    hub.call_changed(state("c1", media_time_s=4.0))
    got = await drain(floor)
    updates = [(m["call"]["call_id"], m["call"]["media_time_s"]) for m in got[2:]]
    assert updates == [("c1", 4.0), ("c2", 9.0)]
    assert hub.live_calls["c1"].media_time_s == 4.0
    assert floor.dropped_total == 0


async def test_call_ended_removes_live_call_and_notifies() -> None:
    hub = Hub()
    floor = hub.subscribe_floor()
    agent = hub.subscribe_agent("a1")
    hub.call_changed(state("c1", "a1"))
    hub.call_changed(state("c2", "a1"))
    hub.call_ended("c1", "a1")
    assert set(hub.live_calls) == {"c2"}
    for sub in (floor, agent):
        got = await drain(sub)
        assert got[-1] == {"type": "call_ended", "call_id": "c1", "agent_id": "a1"}
    # a new floor subscriber no longer sees the ended call
    snapshot = (await drain(hub.subscribe_floor()))[1]
    assert [c["call_id"] for c in snapshot["calls"]] == ["c2"]
    hub.call_ended("unknown", "a1")  # harmless


async def test_unsubscribe_and_counts() -> None:
    hub = Hub()
    a = hub.subscribe_agent("a1")
    b = hub.subscribe_agent("a1")
    f = hub.subscribe_floor()
    assert hub.subscriber_counts() == {"agent": 2, "floor": 1}
    assert set(hub.subscribers()) == {a, b, f}
    hub.unsubscribe(a)
    hub.unsubscribe(f)
    assert hub.subscriber_counts() == {"agent": 1, "floor": 0}
    await drain(a)
    hub.to_agent("a1", alert())
    hub.to_floor(alert())
    assert a.pending() == 0
    assert f.pending() == 2  # only the subscribed + snapshot from before
    hub.unsubscribe(b)
    assert hub.subscriber_counts() == {"agent": 0, "floor": 0}


async def test_slow_subscriber_lags_but_others_do_not() -> None:
    hub = Hub(subscriber_capacity=3)
    slow = hub.subscribe_agent("a1")
    fast = hub.subscribe_agent("a1")
    await drain(fast)
    for i in range(5):
        hub.to_agent("a1", alert(kind=f"k{i}"))
        if i % 2 == 0:
            await drain(fast)
    await drain(fast)
    assert fast.dropped_total == 0
    got = await drain(slow)
    assert got[0] == {"type": "lagged", "dropped": 3}
    assert [m["kind"] for m in got[1:]] == ["k2", "k3", "k4"]


def test_sorted_by_attention_tie_breaks() -> None:
    calls = [
        state("b", attention=2),
        state("a", attention=2),
        state("c", attention=2, hold_s=5.0),
        state("d", attention=3),
    ]
    assert [c.call_id for c in sorted_by_attention(calls)] == ["d", "c", "a", "b"]
