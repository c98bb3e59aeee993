"""The PostgreSQL call store: every worker of a floor writes and reads one database.

A natively async ``CallStore`` (asyncpg): nothing here blocks the event loop. Writes keep
their order: each becomes a job for one writer task on a connection of its own, and the
jobs waiting are bounded (``[store] queue``): when full, the coroutine that writes awaits a
free slot (counted by ``on_wait``), nothing is dropped. Writes that answer nothing return
once queued; ``call_started``, ``set_agent``, ``erase``, ``prune`` and ``call_ended``
return once done. A read waits for every write queued before it (a barrier job), then runs
on a pooled connection, so a report never holds up the writes of live calls.

The schema is the SQLite store's (``store/sqlite.py``) in PostgreSQL terms (JSONB for the
scorecard, the call so far, words and nudge bodies), with versioned migrations applied
under an advisory lock (several workers may start at once). ``calls.worker_id`` says which
worker holds a live call: a worker that starts again cuts off the calls it still shows
``live`` (it crashed), and the others cut off a dead worker's calls (``cut_off_worker``,
told by the cluster bus, or finding ``live`` calls of a worker nobody hears:
``live_workers``). ``calls.nudge_count`` is kept at write time, so floor totals and
reports read one row per call.

Opened lazily by the first method called (on the event loop that will use it).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar

import asyncpg

from assist.events import Nudge, Transcript
from assist.store import SUMMARY_KEYS

log = logging.getLogger(__name__)
T = TypeVar("T")

# Each entry moves the schema from version i to i + 1; never edit a released one.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE calls (
        call_id TEXT PRIMARY KEY,
        agent_id TEXT NOT NULL,
        protocol TEXT NOT NULL,
        started_at DOUBLE PRECISION NOT NULL,
        ended_at DOUBLE PRECISION,
        status TEXT NOT NULL CHECK (status IN ('live', 'ended', 'cut_off')),
        scorecard JSONB,
        state JSONB,
        nudge_count INTEGER NOT NULL DEFAULT 0,
        worker_id TEXT NOT NULL
    );
    CREATE INDEX calls_agent_started ON calls (agent_id, started_at);
    CREATE INDEX calls_started ON calls (started_at);
    CREATE INDEX calls_live_worker ON calls (worker_id) WHERE status = 'live';
    CREATE TABLE legs (
        call_id TEXT NOT NULL REFERENCES calls (call_id) ON DELETE CASCADE,
        leg INTEGER NOT NULL,
        agent_id TEXT NOT NULL,
        protocol TEXT NOT NULL,
        started_at DOUBLE PRECISION NOT NULL,
        ended_at DOUBLE PRECISION,
        status TEXT NOT NULL CHECK (status IN ('live', 'ended', 'cut_off')),
        media_start_s DOUBLE PRECISION NOT NULL,
        media_end_s DOUBLE PRECISION,
        PRIMARY KEY (call_id, leg)
    );
    CREATE TABLE transcripts (
        call_id TEXT NOT NULL REFERENCES calls (call_id) ON DELETE CASCADE,
        channel TEXT NOT NULL,
        utterance_id INTEGER NOT NULL,
        start_s DOUBLE PRECISION NOT NULL,
        end_s DOUBLE PRECISION NOT NULL,
        text TEXT NOT NULL,
        words JSONB NOT NULL
    );
    CREATE INDEX transcripts_call ON transcripts (call_id, start_s);
    CREATE TABLE nudges (
        call_id TEXT NOT NULL REFERENCES calls (call_id) ON DELETE CASCADE,
        nudge_id TEXT NOT NULL,
        kind TEXT NOT NULL,
        severity TEXT NOT NULL,
        media_time_s DOUBLE PRECISION NOT NULL,
        body JSONB NOT NULL
    );
    CREATE INDEX nudges_call ON nudges (call_id, media_time_s);
    CREATE TABLE feedback (
        call_id TEXT NOT NULL REFERENCES calls (call_id) ON DELETE CASCADE,
        nudge_id TEXT NOT NULL,
        kind TEXT NOT NULL,
        action TEXT NOT NULL,
        at DOUBLE PRECISION NOT NULL
    );
    CREATE INDEX feedback_call ON feedback (call_id)
    """,
)

# Any constant of this application: the advisory lock migrations hold.
MIGRATION_LOCK = 0x61737369  # "assi"
CALL_COLUMNS = "call_id, agent_id, protocol, started_at, ended_at, status, scorecard"
LEG_COLUMNS = "leg, agent_id, protocol, started_at, ended_at, status, media_start_s, media_end_s"
# a leg cut off ends where its call's last saved state got to
CUT_OFF = """
WITH cut AS (
    UPDATE calls SET status = 'cut_off' WHERE status = 'live' AND worker_id = $1
    RETURNING call_id, state
), legs_cut AS (
    UPDATE legs SET status = 'cut_off', media_end_s = (cut.state ->> 'media_s')::float8
    FROM cut WHERE legs.call_id = cut.call_id AND legs.status = 'live'
)
SELECT call_id FROM cut
"""

_Job = tuple[Callable[[asyncpg.Connection], Awaitable[Any]], "asyncio.Future[Any]"]


def _dumps(data: Any) -> str | None:
    return None if data is None else json.dumps(data)


def _loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)


class PostgresStore:
    """A ``CallStore`` on PostgreSQL (module docstring). ``dsn``: ``postgresql://...``;
    ``worker_id``: this worker (its live calls are cut off when it opens the store again);
    ``max_queue``: writes waiting before a writer awaits; ``on_wait``: called once per write
    that had to wait. Raises ``RuntimeError`` on open for a newer schema than this code
    knows. Use it from one event loop."""

    def __init__(
        self,
        dsn: str,
        worker_id: str,
        max_queue: int = 1000,
        on_wait: Callable[[], None] | None = None,
        pool_size: int = 4,
    ) -> None:
        if max_queue < 1:
            raise ValueError(f"max_queue must be at least 1, not {max_queue}")
        self.dsn = dsn
        self.worker_id = worker_id
        self.max_queue = max_queue
        self.pool_size = pool_size
        self.waits = 0
        self.queued = 0
        self.schema_version = 0
        self._on_wait = on_wait
        self._pool: asyncpg.Pool | None = None
        self._writer: asyncpg.Connection | None = None
        self._opening: asyncio.Lock | None = None
        self._slots: asyncio.Semaphore | None = None
        self._jobs: asyncio.Queue[_Job | None] | None = None
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self.error: str | None = None  # the last failure talking to the database

    # opening ----------------------------------------------------------------------------

    async def open(self) -> None:
        """Connect, migrate, cut off this worker's calls left ``live`` and start the writer
        (once; later calls return at once)."""
        if self._opening is None:
            self._opening = asyncio.Lock()
        async with self._opening:
            if self._task is not None:
                return
            if self._closed:
                raise RuntimeError("the store is closed")
            self._pool = await asyncpg.create_pool(self.dsn, min_size=1, max_size=self.pool_size)
            self._writer = await asyncpg.connect(self.dsn)
            self.schema_version = await self._migrate(self._writer)
            cut = await self._writer.fetch(CUT_OFF, self.worker_id)
            if cut:
                log.warning(
                    "%d call(s) of worker %s were cut off by a restart; their records are kept",
                    len(cut),
                    self.worker_id,
                )
            self._slots = asyncio.Semaphore(self.max_queue)
            self._jobs = asyncio.Queue()
            self._task = asyncio.create_task(self._work(self._writer), name="store-writer")

    async def _migrate(self, db: asyncpg.Connection) -> int:
        async with db.transaction():
            await db.execute("SELECT pg_advisory_xact_lock($1)", MIGRATION_LOCK)
            await db.execute("CREATE TABLE IF NOT EXISTS assist_schema (version INTEGER NOT NULL)")
            version = await db.fetchval("SELECT MAX(version) FROM assist_schema") or 0
            if version > len(MIGRATIONS):
                raise RuntimeError(
                    f"the database has schema {version}, newer than this version knows "
                    f"({len(MIGRATIONS)}): upgrade live-call-assist"
                )
            for target, script in enumerate(MIGRATIONS[version:], start=version + 1):
                await db.execute(script)
                await db.execute("INSERT INTO assist_schema VALUES ($1)", target)
                log.info("store migrated to schema %d", target)
        return len(MIGRATIONS)

    # the writer task --------------------------------------------------------------------

    async def _work(self, db: asyncpg.Connection) -> None:
        assert self._jobs is not None and self._slots is not None
        while (job := await self._jobs.get()) is not None:
            call, future = job
            try:
                result = await call(db)
                self.error = None
                if not future.done():
                    future.set_result(result)
            except Exception as exc:
                self.error = f"{type(exc).__name__}: {exc}"
                if not future.done():
                    future.set_exception(exc)
            finally:
                self.queued -= 1
                self._slots.release()

    async def _submit(self, call: Callable[[asyncpg.Connection], Awaitable[Any]]) -> Any:
        """Queue ``call(connection)`` for the writer, awaiting a slot when the queue is full;
        returns the future of its outcome."""
        await self.open()
        assert self._slots is not None and self._jobs is not None
        if self._closed:
            raise RuntimeError("the store is closed")
        if self._slots.locked():
            self.waits += 1
            if self._on_wait is not None:
                self._on_wait()
        await self._slots.acquire()
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.queued += 1
        self._jobs.put_nowait((call, future))
        return future

    async def _queue(self, name: str, call: Callable[[asyncpg.Connection], Awaitable[Any]]) -> None:
        future = await self._submit(call)
        future.add_done_callback(lambda f: _log_failure(f, name))

    async def _done(self, call: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
        result: T = await (await self._submit(call))
        return result

    async def _read(self, call: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
        """``call`` on a pooled connection, after every write queued before it."""
        await self._done(_nothing)
        assert self._pool is not None
        async with self._pool.acquire() as db:
            return await call(db)

    # writes -----------------------------------------------------------------------------

    async def call_started(
        self,
        call_id: str,
        agent_id: str,
        protocol: str,
        started_at: float,
        media_start_s: float = 0.0,
    ) -> int:
        """A call's new leg, held by this worker (one transaction): a new record with leg 1,
        or the next leg of the record with that id (status ``live`` again, its agent the
        new leg's). Returns the leg number once written."""

        async def write(db: asyncpg.Connection) -> int:
            async with db.transaction():
                known = await db.fetchval(
                    "UPDATE calls SET agent_id = $2, status = 'live', ended_at = NULL, "
                    "worker_id = $3 WHERE call_id = $1 RETURNING 1",
                    call_id,
                    agent_id,
                    self.worker_id,
                )
                if not known:
                    await db.execute(
                        "INSERT INTO calls (call_id, agent_id, protocol, started_at, status, "
                        "worker_id) VALUES ($1, $2, $3, $4, 'live', $5)",
                        call_id,
                        agent_id,
                        protocol,
                        started_at,
                        self.worker_id,
                    )
                leg: int = await db.fetchval(
                    "SELECT COUNT(*) + 1 FROM legs WHERE call_id = $1", call_id
                )
                await db.execute(
                    f"INSERT INTO legs (call_id, {LEG_COLUMNS}) "
                    "VALUES ($1, $2, $3, $4, $5, NULL, 'live', $6, NULL)",
                    call_id,
                    leg,
                    agent_id,
                    protocol,
                    started_at,
                    media_start_s,
                )
                return leg

        return await self._done(write)

    async def add_transcript(self, call_id: str, transcript: Transcript) -> None:
        """Queue a final transcript (its words as JSON); nothing for a call without a record."""
        words = json.dumps([w.model_dump() for w in transcript.words])
        await self._queue(
            "add_transcript",
            lambda db: db.execute(
                "INSERT INTO transcripts SELECT $1, $2, $3, $4, $5, $6, $7::jsonb "
                "WHERE EXISTS (SELECT 1 FROM calls WHERE call_id = $1)",
                call_id,
                transcript.channel,
                transcript.utterance_id,
                transcript.start_s,
                transcript.end_s,
                transcript.text,
                words,
            ),
        )

    async def add_nudge(self, call_id: str, nudge: Nudge) -> None:
        """Queue a nudge (its whole JSON kept as ``body``), counted on its call's row."""

        async def write(db: asyncpg.Connection) -> None:
            async with db.transaction():
                counted = await db.fetchval(
                    "UPDATE calls SET nudge_count = nudge_count + 1 WHERE call_id = $1 RETURNING 1",
                    call_id,
                )
                if counted:
                    await db.execute(
                        "INSERT INTO nudges VALUES ($1, $2, $3, $4, $5, $6::jsonb)",
                        call_id,
                        nudge.id,
                        nudge.kind.value,
                        nudge.severity,
                        nudge.media_time_s,
                        nudge.model_dump_json(),
                    )

        await self._queue("add_nudge", write)

    async def add_feedback(
        self, call_id: str, nudge_id: str, kind: str, action: str, at: float
    ) -> None:
        """Queue an agent's feedback on a nudge; nothing for a call without a record."""
        await self._queue(
            "add_feedback",
            lambda db: db.execute(
                "INSERT INTO feedback SELECT $1, $2, $3, $4, $5 "
                "WHERE EXISTS (SELECT 1 FROM calls WHERE call_id = $1)",
                call_id,
                nudge_id,
                str(kind),
                action,
                at,
            ),
        )

    async def replace_transcript(self, call_id: str, transcript: Transcript) -> None:
        """Queue the replacement of the text and words of the final transcript with the same
        channel and utterance id."""
        words = json.dumps([w.model_dump() for w in transcript.words])
        await self._queue(
            "replace_transcript",
            lambda db: db.execute(
                "UPDATE transcripts SET text = $4, words = $5::jsonb "
                "WHERE call_id = $1 AND channel = $2 AND utterance_id = $3",
                call_id,
                transcript.channel,
                transcript.utterance_id,
                transcript.text,
                words,
            ),
        )

    async def replace_nudge(self, call_id: str, nudge: Nudge) -> None:
        """Queue the replacement of the body of the nudge with the same id."""
        await self._queue(
            "replace_nudge",
            lambda db: db.execute(
                "UPDATE nudges SET body = $3::jsonb WHERE call_id = $1 AND nudge_id = $2",
                call_id,
                nudge.id,
                nudge.model_dump_json(),
            ),
        )

    async def checkpoint(
        self, call_id: str, scorecard: dict[str, Any], state: dict[str, Any] | None = None
    ) -> None:
        """Queue a save of the scorecard so far (and the call so far when given)."""
        await self._queue(
            "checkpoint",
            lambda db: db.execute(
                "UPDATE calls SET scorecard = $2::jsonb, state = COALESCE($3::jsonb, state) "
                "WHERE call_id = $1",
                call_id,
                json.dumps(scorecard),
                _dumps(state),
            ),
        )

    async def set_agent(self, call_id: str, agent_id: str, nudges_of: str | None = None) -> bool:
        """The call's agent in its row, its latest leg, its scorecard and the bodies of
        ``nudges_of``'s nudges (one transaction); False when the call has no record."""

        async def write(db: asyncpg.Connection) -> bool:
            async with db.transaction():
                changed = await db.fetchval(
                    "UPDATE calls SET agent_id = $2, scorecard = CASE WHEN scorecard IS NULL "
                    "THEN NULL ELSE jsonb_set(scorecard, '{agent_id}', to_jsonb($2::text)) END "
                    "WHERE call_id = $1 RETURNING 1",
                    call_id,
                    agent_id,
                )
                await db.execute(
                    "UPDATE nudges SET body = jsonb_set(body, '{agent_id}', to_jsonb($2::text)) "
                    "WHERE call_id = $1 AND body ->> 'agent_id' = $3",
                    call_id,
                    agent_id,
                    nudges_of,
                )
                await db.execute(
                    "UPDATE legs SET agent_id = $2 WHERE call_id = $1 "
                    "AND leg = (SELECT MAX(leg) FROM legs WHERE call_id = $1)",
                    call_id,
                    agent_id,
                )
                return bool(changed)

        return await self._done(write)

    async def call_ended(
        self,
        call_id: str,
        scorecard: dict[str, Any],
        ended_at: float,
        state: dict[str, Any] | None = None,
    ) -> None:
        """The live leg is over: scorecard, end time and status ``ended`` on the call and the
        leg (its media end the call so far's, else the scorecard's duration); returns once
        written."""
        if state is not None:
            media_end = state["media_s"]
        else:
            media_end = scorecard.get("metrics", {}).get("duration_s")

        async def write(db: asyncpg.Connection) -> None:
            async with db.transaction():
                await db.execute(
                    "UPDATE calls SET scorecard = $2::jsonb, ended_at = $3, status = 'ended', "
                    "state = COALESCE($4::jsonb, state) WHERE call_id = $1",
                    call_id,
                    json.dumps(scorecard),
                    ended_at,
                    _dumps(state),
                )
                await db.execute(
                    "UPDATE legs SET ended_at = $2, status = 'ended', media_end_s = $3 "
                    "WHERE call_id = $1 AND status = 'live'",
                    call_id,
                    ended_at,
                    media_end,
                )

        await self._done(write)

    async def cut_off_worker(self, worker_id: str) -> list[str]:
        """The calls ``worker_id`` still shows ``live`` were cut off (it died): status
        ``cut_off`` on them and their live legs (ending where their last saved state got
        to), everything stored kept. Returns their ids (none when another worker got there
        first)."""
        rows = await self._done(lambda db: db.fetch(CUT_OFF, worker_id))
        return [row["call_id"] for row in rows]

    async def live_workers(self) -> list[str]:
        """The workers that hold a call ``live`` in the store, sorted (``calls_live_worker``
        index)."""
        rows = await self._read(
            lambda db: db.fetch(
                "SELECT DISTINCT worker_id FROM calls WHERE status = 'live' ORDER BY worker_id"
            )
        )
        return [row["worker_id"] for row in rows]

    async def erase(self, call_id: str) -> bool:
        """Delete the call's row and, by cascade, its transcripts, nudges, feedback and legs
        (its saved state and scorecard are in the row); False when there was no record."""
        status = await self._done(
            lambda db: db.execute("DELETE FROM calls WHERE call_id = $1", call_id)
        )
        return status != "DELETE 0"

    async def prune(self, older_than: float) -> int:
        """Delete the calls started before ``older_than`` (and all they stored)."""
        status = await self._done(
            lambda db: db.execute("DELETE FROM calls WHERE started_at < $1", older_than)
        )
        return int(status.split()[-1])

    # reads ------------------------------------------------------------------------------

    async def agent_of(self, call_id: str) -> str | None:
        """The agent id of the call's record, or None."""
        return await self._read(
            lambda db: db.fetchval("SELECT agent_id FROM calls WHERE call_id = $1", call_id)
        )

    async def call_state(self, call_id: str) -> dict[str, Any] | None:
        """The call so far as last saved, or None."""
        text = await self._read(
            lambda db: db.fetchval("SELECT state FROM calls WHERE call_id = $1", call_id)
        )
        return _loads(text)

    async def scorecard(self, call_id: str) -> dict[str, Any] | None:
        """The latest scorecard (final or checkpoint), or None."""
        text = await self._read(
            lambda db: db.fetchval("SELECT scorecard FROM calls WHERE call_id = $1", call_id)
        )
        return _loads(text)

    async def record(self, call_id: str) -> dict[str, Any] | None:
        """The call's record with its legs (in order), transcripts (start order), nudges
        (media-time order) and feedback, or None; read in one snapshot."""

        async def read(db: asyncpg.Connection) -> dict[str, Any] | None:
            async with db.transaction(isolation="repeatable_read", readonly=True):
                row = await db.fetchrow(
                    f"SELECT {CALL_COLUMNS} FROM calls WHERE call_id = $1", call_id
                )
                return None if row is None else await _record(db, row)

        return await self._read(read)

    async def export(self, since: float | None = None) -> list[dict[str, Any]]:
        """Every whole record started at ``since`` or later, oldest first."""

        async def read(db: asyncpg.Connection) -> list[dict[str, Any]]:
            async with db.transaction(isolation="repeatable_read", readonly=True):
                rows = await db.fetch(
                    f"SELECT {CALL_COLUMNS} FROM calls WHERE started_at >= $1 ORDER BY started_at",
                    float("-inf") if since is None else since,
                )
                return [await _record(db, row) for row in rows]

        return await self._read(read)

    async def summaries(self, since: float) -> list[dict[str, Any]]:
        """The calls started at ``since`` or later, oldest first: their own columns, the
        scorecard and the nudge count (``calls_started`` index; nothing else is read)."""
        rows = await self._read(
            lambda db: db.fetch(
                f"SELECT {', '.join(SUMMARY_KEYS)}, scorecard, nudge_count FROM calls "
                "WHERE started_at >= $1 ORDER BY started_at",
                since,
            )
        )
        return [
            {
                **{key: row[key] for key in SUMMARY_KEYS},
                "scorecard": _loads(row["scorecard"]),
                "nudges": row["nudge_count"],
            }
            for row in rows
        ]

    async def daily_totals(self, since: float) -> dict[str, dict[str, int]]:
        """Per agent: calls started at ``since`` or later and their nudges (one grouped read
        of the calls' own columns)."""
        rows = await self._read(
            lambda db: db.fetch(
                "SELECT agent_id, COUNT(*) AS calls, SUM(nudge_count) AS nudges FROM calls "
                "WHERE started_at >= $1 GROUP BY agent_id",
                since,
            )
        )
        return {r["agent_id"]: {"calls": r["calls"], "nudges": int(r["nudges"])} for r in rows}

    async def ping(self) -> bool:
        """Whether the database answers now (``/healthz``)."""
        try:
            await self.open()
            assert self._pool is not None
            async with self._pool.acquire(timeout=2) as db:
                await db.fetchval("SELECT 1", timeout=2)
        except Exception as exc:
            self.error = f"{type(exc).__name__}: {exc}"
            return False
        return True

    async def flush(self) -> None:
        """Return once every write queued so far is done."""
        if self._task is not None:
            await self._done(_nothing)

    async def close(self) -> None:
        """Finish the queued writes, then close the connections."""
        if self._closed:
            return
        if self._task is not None and self._jobs is not None:
            self._jobs.put_nowait(None)
            await self._task
        self._closed = True
        if self._writer is not None:
            await self._writer.close()
        if self._pool is not None:
            await self._pool.close()


class BlockingPostgres:
    """The PostgreSQL store for the command line (``assist export | erase | report``): the
    reads and deletions of ``PostgresStore`` run to completion on an event loop of its
    own. Opened as worker ``worker_id`` (one that holds no calls), so it cuts nothing off.
    Not for use on a running event loop."""

    def __init__(self, dsn: str, worker_id: str = "assist-cli") -> None:
        self._loop = asyncio.new_event_loop()
        self._store = PostgresStore(dsn, worker_id)
        self._run(self._store.open())

    def _run(self, coroutine: Awaitable[T]) -> T:
        return self._loop.run_until_complete(coroutine)

    def record(self, call_id: str) -> dict[str, Any] | None:
        """The call's whole record, or None."""
        return self._run(self._store.record(call_id))

    def export(self, since: float | None = None) -> Iterator[dict[str, Any]]:
        """Every whole record started at ``since`` or later, oldest first."""
        return iter(self._run(self._store.export(since)))

    def summaries(self, since: float) -> list[dict[str, Any]]:
        """The calls started at ``since`` or later, without their rows (reports)."""
        return self._run(self._store.summaries(since))

    def daily_totals(self, since: float) -> dict[str, dict[str, int]]:
        """Per agent: calls started at ``since`` or later and their nudges."""
        return self._run(self._store.daily_totals(since))

    def agent_of(self, call_id: str) -> str | None:
        """The agent id of the call's record, or None."""
        return self._run(self._store.agent_of(call_id))

    def erase(self, call_id: str) -> bool:
        """Delete the call's record and all it stored; False when there was none."""
        return self._run(self._store.erase(call_id))

    def prune(self, older_than: float) -> int:
        """Delete the calls started before ``older_than``; returns how many."""
        return self._run(self._store.prune(older_than))

    def close(self) -> None:
        """Close the connections and the loop."""
        self._run(self._store.close())
        self._loop.close()


async def _nothing(db: asyncpg.Connection) -> None:
    """The barrier job: done once every job queued before it is done."""


async def _record(db: asyncpg.Connection, row: asyncpg.Record) -> dict[str, Any]:
    call_id = row["call_id"]
    transcripts = [
        {
            "channel": t["channel"],
            "utterance_id": t["utterance_id"],
            "start_s": t["start_s"],
            "end_s": t["end_s"],
            "text": t["text"],
            "words": json.loads(t["words"]),
        }
        for t in await db.fetch(
            "SELECT channel, utterance_id, start_s, end_s, text, words FROM transcripts "
            "WHERE call_id = $1 ORDER BY start_s",
            call_id,
        )
    ]
    nudges = [
        json.loads(n["body"])
        for n in await db.fetch(
            "SELECT body FROM nudges WHERE call_id = $1 ORDER BY media_time_s", call_id
        )
    ]
    legs = [
        dict(leg)
        for leg in await db.fetch(
            f"SELECT {LEG_COLUMNS} FROM legs WHERE call_id = $1 ORDER BY leg", call_id
        )
    ]
    feedback = [
        dict(f)
        for f in await db.fetch(
            "SELECT nudge_id, kind, action, at FROM feedback WHERE call_id = $1 ORDER BY at",
            call_id,
        )
    ]
    return {
        "call_id": call_id,
        "agent_id": row["agent_id"],
        "protocol": row["protocol"],
        "started_at": row["started_at"],
        "ended_at": row["ended_at"],
        "status": row["status"],
        "scorecard": _loads(row["scorecard"]),
        "legs": legs,
        "transcripts": transcripts,
        "nudges": nudges,
        "feedback": feedback,
    }


def _log_failure(future: asyncio.Future[Any], name: str) -> None:
    if not future.cancelled() and (exc := future.exception()) is not None:
        log.error("store write %s failed: %s", name, exc)
