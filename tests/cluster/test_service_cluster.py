"""Two services of one floor in this process (real servers, real sockets, a real
nats-server): a call id live on another worker refused, feedback on a call another
worker holds and its snooze applied there, ``/healthz`` naming the bus and the store."""

from __future__ import annotations

import asyncio
import json

from websockets.asyncio.client import connect

from assist.vocabulary import CueKind
from tests.cluster.servers import NatsServer
from tests.conftest import make_settings, start_server
from tests.e2e.helpers import http_get_json, raw_call, start_message

WAIT_S = 10.0


async def test_a_snooze_on_another_workers_call_reaches_it(nats_server: NatsServer):
    servers = []
    for worker_id in ("w1", "w2"):
        cluster = {"bus": nats_server.url, "worker_id": worker_id, "heartbeat_s": 0.2}
        running = await start_server(make_settings(cluster=cluster))
        assert running.service.cluster is not None
        await asyncio.wait_for(running.service.cluster.joined.wait(), WAIT_S)
        servers.append(running)
    w1, w2 = servers
    try:
        async with connect(f"{w2.ws}/v1/calls") as call:
            await call.send(json.dumps(start_message("c-1", "a-1")))
            assert json.loads(await call.recv())["type"] == "started"
            await call.send(b"\x00\x00" * 2 * 160 * 10)  # 200 ms of silence
            async with asyncio.timeout(WAIT_S):
                while w1.service.cluster.registry.owner("c-1") != "w2":  # noqa: ASYNC110
                    await asyncio.sleep(0.02)  # w2's call reaching w1 over the bus
            # the id is live on w2: w1 refuses it as one worker would
            replies = await raw_call(w1.ws, json.dumps(start_message("c-1", "a-1")))
            assert [r["code"] for r in replies if r.get("type") == "error"] == ["call_id_in_use"]
            async with connect(f"{w1.ws}/v1/agents/a-1/events") as agent:
                assert json.loads(await agent.recv())["type"] == "subscribed"
                feedback = {
                    "type": "feedback", "nudge_id": "c-1-1", "call_id": "c-1",
                    "kind": "pace", "action": "snooze",
                }  # fmt: skip
                await agent.send(json.dumps(feedback))
                policy = w2.service.live["c-1"].pipeline.policy
                async with asyncio.timeout(WAIT_S):
                    while CueKind.PACE not in policy._snoozed_until:  # noqa: ASYNC110
                        await asyncio.sleep(0.02)  # the snooze crossing the bus
                # another agent's feedback on the call is refused, as on one worker
                other = {**feedback, "action": "got_it"}
                async with connect(f"{w1.ws}/v1/agents/a-2/events") as stranger:
                    await stranger.recv()
                    await stranger.send(json.dumps(other))
                    refused = json.loads(await stranger.recv())
                    assert refused["type"] == "error" and refused["code"] == "unknown_call"
        status, health = await http_get_json(f"{w1.http}/healthz")
        assert status == 200
        assert health["bus"]["state"] == "connected" and health["bus"]["workers"] == ["w2"]
        assert health["store"]["backend"] == "memory" and health["store"]["state"] == "ok"
    finally:
        for running in servers:
            await running.server.close()
