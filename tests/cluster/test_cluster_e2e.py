"""A floor of three real ``assist serve`` workers on a real NATS bus and a real PostgreSQL:
calls spread across them, a supervisor on worker 1 seeing every call and alert, an agent on
worker 2 coached on a call held by worker 3 (and their feedback in its record), records
from any worker, a worker killed mid-call, a restart of the bus. ASR off (audio cues only)
to keep it short."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect

from assist.replay import encode_frames
from assist.store.postgresql import PostgresStore
from tests.cluster.servers import NatsServer, free_port
from tests.conftest import synthesized_call
from tests.e2e.helpers import http_get_json, start_message, stream_rendered

pytestmark = [pytest.mark.e2e, pytest.mark.speech]
WAIT_S = 30.0


class Worker:
    """One ``assist serve`` process of the floor."""

    def __init__(self, worker_id: str, bus: str, dsn: str) -> None:
        self.id = worker_id
        self.port = free_port()
        env = {
            **os.environ,
            "ASSIST_CLUSTER__BUS": bus,
            "ASSIST_CLUSTER__WORKER_ID": worker_id,
            "ASSIST_CLUSTER__HEARTBEAT_S": "0.2",
            "ASSIST_CLUSTER__DEAD_AFTER_S": "1.5",
            "ASSIST_STORE__BACKEND": "postgresql",
            "ASSIST_STORE__DSN": dsn,
            "ASSIST_ASR__ENABLED": "false",
            "ASSIST_LIMITS__INGEST_QUEUE_S": "3600",  # the tests stream faster than real time
        }
        # a file, not a pipe nobody reads (it could fill up); closed in stop()
        self.log = tempfile.TemporaryFile("w+")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "assist.cli", "serve", "--port", str(self.port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=self.log,
        )

    @property
    def ws(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def health(self) -> dict[str, Any]:
        try:
            status, body = await http_get_json(f"{self.http}/healthz")
        except OSError:
            return {}
        return body if status == 200 else {}

    def stop(self) -> str:
        """Stop the process (SIGTERM); its log."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(20)
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.log.seek(0)
        text = self.log.read()
        self.log.close()
        return text


async def until(check: Callable[[], Any], what: str) -> Any:
    """Poll ``check`` (sync or async) until it returns something true."""
    async with asyncio.timeout(WAIT_S):
        while True:
            value = check()
            if asyncio.iscoroutine(value):
                value = await value
            if value:
                return value
            await asyncio.sleep(0.05)  # polling another process's state, not timing


class Stream:
    """An event stream kept open in the background, its messages collected."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.events: list[dict[str, Any]] = []
        self.task = asyncio.create_task(self._collect())

    async def _collect(self) -> None:
        with contextlib.suppress(Exception):
            async for text in self.ws:
                self.events.append(json.loads(text))

    def of(self, kind: str, call_id: str | None = None) -> list[dict[str, Any]]:
        return [
            e
            for e in self.events
            if e["type"] == kind
            and (call_id is None or e.get("call_id", e.get("call", {}).get("call_id")) == call_id)
        ]


@pytest.fixture
async def floor_of_three(nats_server: NatsServer, pg_dsn: str) -> AsyncIterator[list[Worker]]:
    # a worker that died while no worker was up left a live call behind
    gone = PostgresStore(pg_dsn, "w9")
    await gone.call_started("c-0", "a-9", "native", time.time() - 60)
    await gone.close()
    workers = [Worker(f"w{i}", nats_server.url, pg_dsn) for i in (1, 2, 3)]
    try:
        for worker in workers:
            others = sorted(w.id for w in workers if w is not worker)

            async def joined(worker: Worker = worker, others: list[str] = others) -> bool:
                bus = (await worker.health()).get("bus", {})
                return bus.get("state") == "connected" and bus.get("workers") == others

            await until(joined, f"{worker.id} joined the floor")
        yield workers
    finally:
        for worker in workers:
            log = worker.stop()
            assert "Traceback" not in log, f"{worker.id}:\n{log}"


async def test_a_floor_of_three_workers(floor_of_three: list[Worker], nats_server: NatsServer):
    w1, w2, w3 = floor_of_three
    call = synthesized_call("interruptions")  # three interruptions: nudges and a floor alert
    async with (
        connect(f"{w1.ws}/v1/floor/events") as floor_ws,
        connect(f"{w2.ws}/v1/agents/a-2/events") as agent_ws,
    ):
        floor, agent = Stream(floor_ws), Stream(agent_ws)
        await until(lambda: floor.of("floor_snapshot") and agent.of("subscribed"), "streams")

        # calls spread across the workers; a-2's call is held by worker 3
        results = await asyncio.gather(
            stream_rendered(w1.ws, call, "c-1", "a-1"),
            stream_rendered(w2.ws, call, "c-2", "a-3"),
            stream_rendered(w3.ws, call, "c-3", "a-2"),
        )
        assert all(r.error is None and r.scorecard is not None for r in results)
        assert all(len(r.nudges) == 3 for r in results), [r.nudges for r in results]
        # the agent on worker 2 got the nudges of their call on worker 3...
        nudges = await until(
            lambda: len(agent.of("nudge", "c-3")) == 3 and agent.of("nudge", "c-3"), "nudges"
        )
        assert [n["id"] for n in nudges] == [n["id"] for n in results[2].nudges]
        # ...and their feedback on one lands in the call's record
        first = nudges[0]
        await agent_ws.send(
            json.dumps(
                {
                    "type": "feedback",
                    "nudge_id": first["id"],
                    "call_id": "c-3",
                    "kind": first["kind"],
                    "action": "got_it",
                }
            )
        )
        # the supervisor on worker 1 saw every call, its alert and its end
        for call_id in ("c-1", "c-2", "c-3"):
            await until(lambda c=call_id: floor.of("call_ended", c), f"{call_id} ended on w1")
            assert floor.of("call_update", call_id)
            assert [a["kind"] for a in floor.of("alert", call_id)] == ["interruption"]

        # every record from every worker
        async def feedback_stored() -> bool:
            _, record = await http_get_json(f"{w1.http}/v1/calls/c-3")
            return bool(record["feedback"])

        await until(feedback_stored, "feedback in c-3's record")
        for worker in (w1, w2, w3):
            for call_id in ("c-1", "c-2", "c-3"):
                status, record = await http_get_json(f"{worker.http}/v1/calls/{call_id}")
                assert status == 200 and record["status"] == "ended", (worker.id, record)
                assert len(record["nudges"]) == 3
        _, record = await http_get_json(f"{w2.http}/v1/calls/c-3")
        assert [(f["nudge_id"], f["action"]) for f in record["feedback"]] == [
            (first["id"], "got_it")
        ]
        assert not agent.of("error")
        # the floor's totals and an agent's report on any worker cover every worker's calls
        _, today = await http_get_json(f"{w3.http}/v1/floor/today")
        for agent_id in ("a-1", "a-2", "a-3"):
            assert today["agents"][agent_id] == {"calls": 1, "nudges": 3}, today
        status, report = await http_get_json(f"{w1.http}/v1/agents/a-2/report?days=1")
        assert status == 200 and report["calls"] == 1, report

        # kill -9 worker 3 mid-call: its call is cut off, the others carry on
        frames = encode_frames(call.audio, call.sample_rate, "pcm16")
        async with connect(f"{w3.ws}/v1/calls") as live:
            await live.send(json.dumps(start_message("c-4", "a-4", sample_rate=call.sample_rate)))
            assert json.loads(await live.recv())["type"] == "started"
            for frame in frames[:500]:  # 10 s of the call
                await live.send(frame)
            await until(lambda: floor.of("call_update", "c-4"), "c-4 on the floor")
            w3.proc.send_signal(signal.SIGKILL)
            await until(lambda: floor.of("call_ended", "c-4"), "c-4 ended on w1's floor")

        async def cut_off() -> dict[str, Any] | None:
            _, record = await http_get_json(f"{w1.http}/v1/calls/c-4")
            return record if record.get("status") == "cut_off" else None

        record = await until(cut_off, "c-4 cut off in the store")
        assert [leg["status"] for leg in record["legs"]] == ["cut_off"]
        assert record["agent_id"] == "a-4" and record["protocol"] == "native"
        _, record = await http_get_json(f"{w2.http}/v1/calls/c-0")
        assert record["status"] == "cut_off"  # found live with nobody holding it

        # restart the bus: the streams resume (an agent on w2, the floor on w1)
        nats_server.stop()
        nats_server.start()
        for worker in (w1, w2):

            async def back(worker: Worker = worker) -> bool:
                bus = (await worker.health()).get("bus", {})
                return bus.get("state") == "connected" and "w3" not in bus.get("workers", [])

            await until(back, f"{worker.id} back on the bus")
        after = await asyncio.gather(
            stream_rendered(w1.ws, call, "c-5", "a-2"),
            stream_rendered(w2.ws, call, "c-6", "a-1"),
        )
        assert all(len(r.nudges) == 3 for r in after)
        await until(lambda: len(agent.of("nudge", "c-5")) == 3, "c-5's nudges on w2")
        await until(lambda: floor.of("call_ended", "c-6"), "c-6 on w1's floor")
        assert floor.of("alert", "c-6")
