"""``ClusterHub`` on a real nats-server: two workers in one process, each with its own
connection, sharing agent and floor streams."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from assist.cluster.bus import ClusterHub
from assist.config import ClusterConfig
from assist.events import Alert, Evidence, Nudge
from assist.hub import Subscription
from tests.cluster.servers import NatsServer
from tests.conftest import ManualClock
from tests.unit.test_cluster_registry import state

WAIT_S = 10.0


async def next_of(sub: Subscription, kind: str) -> dict[str, Any]:
    """The next message of type ``kind`` on ``sub`` (others skipped)."""
    async with asyncio.timeout(WAIT_S):
        while True:
            message = json.loads(await sub.get())
            if message["type"] == kind:
                return message


async def until(condition: Callable[[], bool]) -> None:
    async with asyncio.timeout(WAIT_S):
        while not condition():  # noqa: ASYNC110 (state another connection changes)
            await asyncio.sleep(0.02)


def nudge(call_id: str, agent_id: str, n: int = 1) -> Nudge:
    return Nudge(
        id=f"{call_id}-{n}",
        call_id=call_id,
        agent_id=agent_id,
        kind="interruption",
        severity="warning",
        message="Let the customer finish.",
        suggestion=None,
        media_time_s=3.0,
        evidence=Evidence(
            rule="overlap",
            threshold=0.8,
            measured=1.2,
            unit="s",
            span_start_s=1.8,
            span_end_s=3.0,
            explanation="talked over the customer",
        ),
    )


@pytest.fixture
async def workers(
    nats_server: NatsServer,
) -> AsyncIterator[Callable[..., Any]]:
    hubs: list[ClusterHub] = []

    async def make(worker_id: str, **kwargs: Any) -> ClusterHub:
        config = ClusterConfig(bus=nats_server.url, heartbeat_s=0.2, dead_after_s=5.0)
        hub = ClusterHub(config, worker_id, **kwargs)
        await hub.start()
        await asyncio.wait_for(hub.joined.wait(), WAIT_S)
        hubs.append(hub)
        return hub

    yield make
    for hub in hubs:
        await hub.close()


async def test_floor_and_agent_streams_see_another_workers_calls(workers):
    w1, w2 = await workers("w1"), await workers("w2")
    floor = w1.subscribe_floor()
    agent = w1.subscribe_agent("a-7")
    assert (await next_of(agent, "subscribed"))["agent_id"] == "a-7"
    w2.call_changed(state("c1", "a-7"))
    update = await next_of(floor, "call_update")
    assert update["call"]["call_id"] == "c1"
    assert (await next_of(agent, "call_update"))["call"]["agent_id"] == "a-7"
    w2.to_agent("a-7", nudge("c1", "a-7"))
    w2.to_agent("a-8", nudge("c1", "a-8", 2))  # another agent's: not on a-7's stream
    w2.to_floor(
        Alert(
            call_id="c1",
            agent_id="a-7",
            kind="long_hold",
            severity="critical",
            message="held",
            media_time_s=4.0,
        )
    )
    got = await next_of(agent, "nudge")
    assert got["id"] == "c1-1"
    assert (await next_of(floor, "alert"))["call_id"] == "c1"
    assert w1.registry.owner("c1") == "w2"
    # a stream opened later starts from the call as it is now
    late_floor = w1.subscribe_floor()
    snapshot = await next_of(late_floor, "floor_snapshot")
    assert [c["call_id"] for c in snapshot["calls"]] == ["c1"]
    w2.call_ended("c1", "a-7")
    assert (await next_of(floor, "call_ended"))["call_id"] == "c1"
    assert (await next_of(agent, "call_ended"))["call_id"] == "c1"
    assert "c1" not in w1.live_calls
    # w2's own streams got everything locally too, never twice through the bus
    assert w2.health()["state"] == "connected" and w1.health()["workers"] == ["w2"]


async def test_a_snooze_reaches_the_worker_holding_the_call(workers):
    snoozed: list[tuple[str, str]] = []
    w1 = await workers("w1")
    w2 = await workers("w2", on_snooze=lambda call_id, kind: snoozed.append((call_id, kind)))
    w2.call_changed(state("c9", "a-1"))
    await until(lambda: w1.registry.owner("c9") == "w2")
    assert w1.forward_snooze("c9", "pace")
    assert not w1.forward_snooze("unknown", "pace")
    await until(lambda: snoozed == [("c9", "pace")])


async def test_a_dead_workers_calls_end_on_the_floor_and_are_reported(workers):
    clock = ManualClock()
    dead: list[tuple[str, list[str]]] = []
    w1 = await workers("w1", clock=clock, on_dead=lambda w, calls: dead.append((w, calls)))
    w2 = await workers("w2")
    floor = w1.subscribe_floor()
    w2.call_changed(state("c1", "a-1"))
    w2.call_changed(state("c2", "a-2"))
    await until(lambda: w1.registry.calls() == 2)
    await w2.close()  # gone without ending its calls (as after kill -9)
    clock.advance(4.0)
    assert w1.expire_workers() == []
    clock.advance(1.5)
    assert w1.expire_workers() == ["w2"]
    assert dead == [("w2", ["c1", "c2"])]
    ended = {(await next_of(floor, "call_ended"))["call_id"] for _ in range(2)}
    assert ended == {"c1", "c2"}
    assert w1.live_calls == {}


async def test_streams_resume_after_a_restart_of_the_bus(workers, nats_server: NatsServer):
    w1, w2 = await workers("w1"), await workers("w2")
    floor = w1.subscribe_floor()
    agent = w1.subscribe_agent("a-1")
    await next_of(agent, "subscribed")  # sent once the agent's subject is listened on
    w2.call_changed(state("c1", "a-1"))
    await next_of(floor, "call_update")
    nats_server.stop()
    await until(lambda: not w1.connected and not w2.connected)
    # w2 goes on serving its call alone: its own streams still get everything
    own_floor = w2.subscribe_floor()
    w2.call_changed(state("c1", "a-1", media_time_s=30.0))
    assert (await next_of(own_floor, "call_update"))["call"]["media_time_s"] == 30.0
    w2.to_agent("a-1", nudge("c1", "a-1", 4))  # while the bus is down
    nats_server.start()
    await until(lambda: w1.connected and w2.connected)
    # w1 catches up (w2's heartbeat), then live events flow again
    update = await next_of(floor, "call_update")
    while update["call"]["media_time_s"] != 30.0:
        update = await next_of(floor, "call_update")
    w2.to_agent("a-1", nudge("c1", "a-1", 5))
    # the agent's events resume where they left off (JetStream), in order, each once
    assert (await next_of(agent, "nudge"))["id"] == "c1-4"
    assert (await next_of(agent, "nudge"))["id"] == "c1-5"
    assert agent.pending() == 0 or all(
        json.loads(t)["type"] != "nudge" for t in list(agent._items.values())
    )


async def test_a_worker_started_before_the_bus_serves_alone_then_joins():
    server = NatsServer()  # not started yet
    hub = ClusterHub(ClusterConfig(bus=server.url, heartbeat_s=0.2), "w1")
    await hub.start()
    try:
        floor = hub.subscribe_floor()
        hub.call_changed(state("c1"))  # served locally meanwhile
        assert (await next_of(floor, "call_update"))["call"]["call_id"] == "c1"
        assert hub.health()["state"] == "disconnected"
        await asyncio.to_thread(server.start)
        await asyncio.wait_for(hub.joined.wait(), WAIT_S)
        assert hub.health()["state"] == "connected"
    finally:
        await hub.close()
        server.remove()


async def test_without_jetstream_agents_events_are_live_only():
    server = NatsServer(jetstream=False)
    server.start()
    config = ClusterConfig(bus=server.url, heartbeat_s=0.2)
    w1, w2 = ClusterHub(config, "w1"), ClusterHub(config, "w2")
    try:
        for hub in (w1, w2):
            await hub.start()
            await asyncio.wait_for(hub.joined.wait(), WAIT_S)
        agent = w1.subscribe_agent("a-1")
        await next_of(agent, "subscribed")
        w2.to_agent("a-1", nudge("c1", "a-1"))
        assert (await next_of(agent, "nudge"))["id"] == "c1-1"
        assert w1.health()["agent_replay"] is False
    finally:
        for hub in (w1, w2):
            await hub.close()
        server.remove()
