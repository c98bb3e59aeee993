"""The PostgreSQL store on a real PostgreSQL: the same records as the SQLite store for the
same writes, versioned migrations, cut-off calls, a bounded write queue."""

from __future__ import annotations

import asyncio
import inspect
import json
import os
import sys
from typing import Any

import asyncpg
import pytest

from assist.store.postgresql import MIGRATIONS, BlockingPostgres, PostgresStore
from assist.store.sqlite import SqliteStore
from tests.unit.test_sqlite_store import nudge, transcript


async def play(store: Any) -> dict[str, Any]:
    """The same writes on any store (async or blocking); what it reads back."""

    async def do(name: str, *args: Any) -> Any:
        out = getattr(store, name)(*args)
        return await out if inspect.isawaitable(out) else out

    legs = [await do("call_started", "c-1", "a-1", "native", 1000.0)]
    await do("add_transcript", "c-1", transcript("second line", 5.0))
    await do("add_transcript", "c-1", transcript("first line", 1.0, channel="agent"))
    await do("add_nudge", "c-1", nudge("dead_air", 9.0))
    await do("add_nudge", "c-1", nudge("pace", 12.0))
    await do("add_feedback", "c-1", "c-1-9.0", "dead_air", "got_it", 1010.0)
    await do("add_feedback", "no-such-call", "x-1", "pace", "snooze", 1011.0)
    await do("replace_transcript", "c-1", transcript("second [number]", 5.0))
    corrected = nudge("pace", 12.0).model_copy(update={"message": "slower", "corrected": True})
    await do("replace_nudge", "c-1", corrected)
    card = {"agent_id": "a-1", "metrics": {"duration_s": 20.0}, "skills": {"p": {"score": 90}}}
    await do("checkpoint", "c-1", card, {"media_s": 20.0, "n": [1, 2.5]})
    bound = [
        await do("set_agent", "c-1", "a-2", "a-1"),
        await do("set_agent", "missing", "a-2", None),
    ]
    await do("call_ended", "c-1", {**card, "agent_id": "a-2"}, 1030.0, {"media_s": 30.0})
    legs.append(await do("call_started", "c-1", "a-2", "twilio", 1100.0, 30.0))
    await do("call_ended", "c-1", card, 1130.0)
    legs.append(await do("call_started", "c-2", "a-3", "l16", 2000.0))
    await do("add_nudge", "c-2", nudge("monologue", 3.0).model_copy(update={"call_id": "c-2"}))
    out = {
        "legs": legs,
        "bound": bound,
        "c-1": await do("record", "c-1"),
        "c-2": await do("record", "c-2"),
        "state": await do("call_state", "c-1"),
        "scorecard": await do("scorecard", "c-1"),
        "agents": [await do("agent_of", c) for c in ("c-1", "c-2", "c-3")],
        "summaries": await do("summaries", 1050.0),
        "totals": await do("daily_totals", 0.0),
        "erased": [await do("erase", "c-2"), await do("erase", "c-2")],
        "pruned": await do("prune", 1050.0),
    }
    export = await do("export", None)
    out["export"] = list(export)
    return out


@pytest.fixture
async def pg(pg_dsn: str):
    stores: list[PostgresStore] = []

    def make(worker_id: str = "w1", **kwargs: Any) -> PostgresStore:
        store = PostgresStore(pg_dsn, worker_id, **kwargs)
        stores.append(store)
        return store

    yield make
    for store in stores:
        await store.close()


async def test_the_same_writes_read_back_as_from_the_sqlite_store(pg, tmp_path):
    store = pg()
    got = await play(store)
    want = await play(SqliteStore(tmp_path / "calls.sqlite3"))
    assert got == want
    assert got["legs"] == [1, 2, 1] and got["bound"] == [True, False]
    record = got["c-1"]
    assert [leg["agent_id"] for leg in record["legs"]] == ["a-2", "a-2"]
    assert record["feedback"] == [
        {"nudge_id": "c-1-9.0", "kind": "dead_air", "action": "got_it", "at": 1010.0}
    ]
    assert got["totals"] == {"a-2": {"calls": 1, "nudges": 2}, "a-3": {"calls": 1, "nudges": 1}}
    assert store.schema_version == len(MIGRATIONS)


async def test_a_restarted_worker_cuts_off_its_own_live_calls_only(pg):
    w1, w2 = pg("w1"), pg("w2")
    await w1.call_started("c-1", "a-1", "native", 1000.0)
    await w1.checkpoint("c-1", {"metrics": {}}, {"media_s": 42.0})
    await w2.call_started("c-2", "a-2", "native", 1000.0)
    await w1.close()  # as after kill -9: nothing ended
    again = pg("w1")
    record = await again.record("c-1")
    assert record is not None and record["status"] == "cut_off"
    assert record["legs"][0]["status"] == "cut_off" and record["legs"][0]["media_end_s"] == 42.0
    assert (await again.record("c-2"))["status"] == "live"  # w2's call goes on
    # w2 dies: a survivor cuts its calls off, once
    assert await again.live_workers() == ["w2"]
    assert await again.cut_off_worker("w2") == ["c-2"]
    assert await again.cut_off_worker("w2") == []
    assert await again.live_workers() == []
    assert (await w2.record("c-2"))["status"] == "cut_off"


async def test_migrations_are_versioned_and_a_newer_schema_is_refused(pg, pg_dsn):
    first, second = pg("w1"), pg("w2")
    await asyncio.gather(first.open(), second.open())  # two workers starting at once
    db = await asyncpg.connect(pg_dsn)
    try:
        versions = [r["version"] for r in await db.fetch("SELECT version FROM assist_schema")]
        assert versions == list(range(1, len(MIGRATIONS) + 1))
        await db.execute("INSERT INTO assist_schema VALUES ($1)", len(MIGRATIONS) + 1)
    finally:
        await db.close()
    with pytest.raises(RuntimeError, match="newer than this version knows"):
        await pg("w3").open()


async def test_a_full_write_queue_makes_writers_wait_and_loses_nothing(pg):
    waits: list[int] = []
    store = pg(max_queue=1, on_wait=lambda: waits.append(1))
    await store.call_started("c-1", "a-1", "native", 1000.0)
    for i in range(20):
        await store.add_nudge("c-1", nudge("pace", float(i)))
    assert len(waits) == store.waits > 0
    record = await store.record("c-1")
    assert len(record["nudges"]) == 20


async def test_the_command_line_reads_and_erases_through_a_blocking_store(pg, pg_dsn):
    store = pg("w1")
    await store.call_started("c-1", "a-1", "native", 1000.0)
    await store.call_ended("c-1", {"metrics": {}}, 1010.0)

    def command_line() -> tuple[Any, ...]:
        blocking = BlockingPostgres(pg_dsn)
        try:
            exported = [r["call_id"] for r in blocking.export()]
            return exported, blocking.erase("c-1"), blocking.record("c-1")
        finally:
            blocking.close()

    assert await asyncio.to_thread(command_line) == (["c-1"], True, None)
    assert await store.record("c-1") is None


async def test_assist_export_and_erase_on_the_postgresql_store(pg, pg_dsn):
    store = pg("w1")
    await store.call_started("c-1", "a-1", "native", 1000.0)
    await store.call_ended("c-1", {"metrics": {}}, 1010.0)
    env = {**os.environ, "ASSIST_STORE__BACKEND": "postgresql", "ASSIST_STORE__DSN": pg_dsn}

    async def assist(*args: str) -> tuple[int, str]:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "assist.cli", *args, env=env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, err = await proc.communicate()
        assert proc.returncode is not None
        return proc.returncode, out.decode() + err.decode()

    code, out = await assist("export")
    assert code == 0, out
    assert [json.loads(line)["call_id"] for line in out.splitlines() if line.startswith("{")] == [
        "c-1"
    ]
    code, out = await assist("erase", "--call", "c-1")
    assert code == 0, out
    assert await store.record("c-1") is None
