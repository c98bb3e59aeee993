"""The SQLite call store: WAL journal, schema migrations, survives restarts and crashes.

A call's row is written when it starts (status ``live``), its transcripts and nudges as
they happen, a scorecard checkpoint every ``store.checkpoint_every_s`` of media time, and
the final scorecard when it ends (``ended``). Calls still ``live`` when a new process
opens the database were cut off by a crash: they become ``cut_off`` and keep everything
written so far, their last checkpoint included. Each write is one short transaction (WAL,
``synchronous=NORMAL``). Writes go through one connection, reads through a second one
(``concurrent_reads``): the service runs it behind ``ThreadedStore``, writes on its writer
thread and reads on a reader thread, and WAL lets the reads go on while a write does.
``calls.nudge_count`` is kept at write time, so floor totals and reports read one row per
call (``daily_totals``, ``summaries``), never the transcripts.

A call id that starts again after its call ended (a restarted stream, a reconnect, a
transfer) is a new leg of the same call (``assist.legs``): a row in ``legs`` (numbered from
1, with its protocol, agent, wall times and media span), while the call's transcripts,
nudges and feedback stay. ``calls.state`` keeps the call so far (``CallSoFar`` JSON, with
each checkpoint and at each leg's end) for the next leg to continue from.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar

from assist.events import Nudge, Transcript
from assist.store import SUMMARY_KEYS

log = logging.getLogger(__name__)

# Each entry moves the schema from version i to i + 1; never edit a released one.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE calls (
        call_id TEXT PRIMARY KEY,
        agent_id TEXT NOT NULL,
        protocol TEXT NOT NULL,
        started_at REAL NOT NULL,
        ended_at REAL,
        status TEXT NOT NULL CHECK (status IN ('live', 'ended', 'cut_off')),
        scorecard TEXT
    );
    CREATE INDEX calls_agent_started ON calls (agent_id, started_at);
    CREATE INDEX calls_started ON calls (started_at);
    CREATE TABLE transcripts (
        call_id TEXT NOT NULL REFERENCES calls (call_id) ON DELETE CASCADE,
        channel TEXT NOT NULL,
        utterance_id INTEGER NOT NULL,
        start_s REAL NOT NULL,
        end_s REAL NOT NULL,
        text TEXT NOT NULL,
        words TEXT NOT NULL
    );
    CREATE INDEX transcripts_call ON transcripts (call_id, start_s);
    CREATE TABLE nudges (
        call_id TEXT NOT NULL REFERENCES calls (call_id) ON DELETE CASCADE,
        nudge_id TEXT NOT NULL,
        kind TEXT NOT NULL,
        severity TEXT NOT NULL,
        media_time_s REAL NOT NULL,
        body TEXT NOT NULL
    );
    CREATE INDEX nudges_call ON nudges (call_id, media_time_s);
    """,
    """
    CREATE TABLE feedback (
        call_id TEXT NOT NULL REFERENCES calls (call_id) ON DELETE CASCADE,
        nudge_id TEXT NOT NULL,
        kind TEXT NOT NULL,
        action TEXT NOT NULL,
        at REAL NOT NULL
    );
    CREATE INDEX feedback_call ON feedback (call_id);
    """,
    """
    CREATE TABLE legs (
        call_id TEXT NOT NULL REFERENCES calls (call_id) ON DELETE CASCADE,
        leg INTEGER NOT NULL,
        agent_id TEXT NOT NULL,
        protocol TEXT NOT NULL,
        started_at REAL NOT NULL,
        ended_at REAL,
        status TEXT NOT NULL CHECK (status IN ('live', 'ended', 'cut_off')),
        media_start_s REAL NOT NULL,
        media_end_s REAL,
        PRIMARY KEY (call_id, leg)
    );
    INSERT INTO legs
        SELECT call_id, 1, agent_id, protocol, started_at, ended_at, status, 0.0,
            json_extract(scorecard, '$.metrics.duration_s')
        FROM calls;
    ALTER TABLE calls ADD COLUMN state TEXT
    """,
    """
    ALTER TABLE calls ADD COLUMN nudge_count INTEGER NOT NULL DEFAULT 0;
    UPDATE calls SET nudge_count =
        (SELECT COUNT(*) FROM nudges WHERE nudges.call_id = calls.call_id)
    """,
)


CALL_COLUMNS = "call_id, agent_id, protocol, started_at, ended_at, status, scorecard"
LEG_COLUMNS = "leg, agent_id, protocol, started_at, ended_at, status, media_start_s, media_end_s"


class SqliteStore:
    """Call records in one SQLite file (module docstring). ``path`` (``~`` expanded, parent
    folders created) is migrated to the current schema on open, and calls it still shows
    ``live`` become ``cut_off``. Raises ``RuntimeError`` for a newer schema than this code
    knows."""

    concurrent_reads: ClassVar[bool] = True

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path).expanduser()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA foreign_keys=ON")
        # deleted rows (erasure, retention) are overwritten in the file, not just unlinked
        self._db.execute("PRAGMA secure_delete=ON")
        self.schema_version = self._migrate()
        # A leg cut off ends where its call's last checkpoint got to.
        self._db.execute(
            "UPDATE legs SET status = 'cut_off', media_end_s = (SELECT "
            "json_extract(state, '$.media_s') FROM calls WHERE calls.call_id = legs.call_id) "
            "WHERE status = 'live'"
        )
        cut = self._db.execute("UPDATE calls SET status = 'cut_off' WHERE status = 'live'")
        if cut.rowcount:
            log.warning(
                "%d call(s) were cut off by a restart; their records are kept", cut.rowcount
            )
        # Reads: a connection of their own (another thread may write meanwhile).
        self._r = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._r.execute("PRAGMA query_only=ON")

    def _migrate(self) -> int:
        version = self._db.execute("PRAGMA user_version").fetchone()[0]
        if version > len(MIGRATIONS):
            raise RuntimeError(
                f"{self.path} has schema {version}, newer than this version knows "
                f"({len(MIGRATIONS)}): upgrade live-call-assist"
            )
        for target, script in enumerate(MIGRATIONS[version:], start=version + 1):
            with _transaction(self._db):
                for statement in script.split(";"):
                    if statement.strip():
                        self._db.execute(statement)
                self._db.execute(f"PRAGMA user_version = {target}")
            log.info("store %s migrated to schema %d", self.path, target)
        return len(MIGRATIONS)

    # writing ------------------------------------------------------------------------

    def call_started(
        self,
        call_id: str,
        agent_id: str,
        protocol: str,
        started_at: float,
        media_start_s: float = 0.0,
    ) -> int:
        """A call's new leg (one transaction): a new record with leg 1, or, for a call id
        already recorded, the next leg of that record (its agent the new leg's, status
        ``live`` again; earlier legs and everything they stored kept). Returns the leg
        number; ``media_start_s`` is where the leg starts on the call's media timeline."""
        with _transaction(self._db):
            (legs,) = self._db.execute(
                "SELECT COUNT(*) FROM legs WHERE call_id = ?", (call_id,)
            ).fetchone()
            known = self._db.execute(
                "UPDATE calls SET agent_id = ?, status = 'live', ended_at = NULL WHERE call_id = ?",
                (agent_id, call_id),
            ).rowcount
            if not known:
                self._db.execute(
                    "INSERT INTO calls (call_id, agent_id, protocol, started_at, status) "
                    "VALUES (?, ?, ?, ?, 'live')",
                    (call_id, agent_id, protocol, started_at),
                )
            leg = legs + 1
            self._db.execute(
                f"INSERT INTO legs (call_id, {LEG_COLUMNS}) "
                "VALUES (?, ?, ?, ?, ?, NULL, 'live', ?, NULL)",
                (call_id, leg, agent_id, protocol, started_at, media_start_s),
            )
        return leg

    def add_transcript(self, call_id: str, transcript: Transcript) -> None:
        """Insert a final transcript (its words as JSON)."""
        words = json.dumps([w.model_dump() for w in transcript.words])
        self._db.execute(
            "INSERT INTO transcripts VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                call_id,
                transcript.channel,
                transcript.utterance_id,
                transcript.start_s,
                transcript.end_s,
                transcript.text,
                words,
            ),
        )

    def add_nudge(self, call_id: str, nudge: Nudge) -> None:
        """Insert a nudge (its whole JSON kept as ``body``) and count it on its call's row
        (one transaction)."""
        with _transaction(self._db):
            self._db.execute(
                "INSERT INTO nudges VALUES (?, ?, ?, ?, ?, ?)",
                (
                    call_id,
                    nudge.id,
                    nudge.kind,
                    nudge.severity,
                    nudge.media_time_s,
                    nudge.model_dump_json(),
                ),
            )
            self._db.execute(
                "UPDATE calls SET nudge_count = nudge_count + 1 WHERE call_id = ?", (call_id,)
            )

    def add_feedback(self, call_id: str, nudge_id: str, kind: str, action: str, at: float) -> None:
        """Insert an agent's feedback on a nudge; nothing for a call without a record."""
        self._db.execute(
            "INSERT INTO feedback SELECT ?, ?, ?, ?, ? "
            "WHERE EXISTS (SELECT 1 FROM calls WHERE call_id = ?)",
            (call_id, nudge_id, kind, action, at, call_id),
        )

    def replace_transcript(self, call_id: str, transcript: Transcript) -> bool:
        """Replace the text and words of the final transcript with the same channel and
        utterance id; False when there is none."""
        words = json.dumps([w.model_dump() for w in transcript.words])
        return (
            self._db.execute(
                "UPDATE transcripts SET text = ?, words = ? "
                "WHERE call_id = ? AND channel = ? AND utterance_id = ?",
                (transcript.text, words, call_id, transcript.channel, transcript.utterance_id),
            ).rowcount
            > 0
        )

    def replace_nudge(self, call_id: str, nudge: Nudge) -> bool:
        """Replace the body of the nudge with the same id; False when there is none."""
        return (
            self._db.execute(
                "UPDATE nudges SET body = ? WHERE call_id = ? AND nudge_id = ?",
                (nudge.model_dump_json(), call_id, nudge.id),
            ).rowcount
            > 0
        )

    def erase(self, call_id: str) -> bool:
        """Delete the call's row and, by cascade, its transcripts, nudges, feedback and legs
        (its saved state and scorecard are in the row), overwritten in the file
        (``secure_delete``) and checkpointed out of the WAL; False when there was no record."""
        erased = self._db.execute("DELETE FROM calls WHERE call_id = ?", (call_id,)).rowcount
        if erased:
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return erased > 0

    def checkpoint(
        self, call_id: str, scorecard: dict[str, Any], state: dict[str, Any] | None = None
    ) -> None:
        """Save the scorecard so far, and the call so far (``state``) when given (status
        unchanged); a call without a record is ignored."""
        self._db.execute(
            "UPDATE calls SET scorecard = ?, state = COALESCE(?, state) WHERE call_id = ?",
            (json.dumps(scorecard), _json_or_none(state), call_id),
        )

    def set_agent(self, call_id: str, agent_id: str, nudges_of: str | None = None) -> bool:
        """Set the call's agent in its row, its latest leg, its scorecard and the bodies of
        ``nudges_of``'s nudges (one transaction); False when the call has no record."""
        with _transaction(self._db):
            changed = self._db.execute(
                "UPDATE calls SET agent_id = ?, scorecard = CASE WHEN scorecard IS NULL "
                "THEN NULL ELSE json_set(scorecard, '$.agent_id', ?) END WHERE call_id = ?",
                (agent_id, agent_id, call_id),
            ).rowcount
            self._db.execute(
                "UPDATE nudges SET body = json_set(body, '$.agent_id', ?) "
                "WHERE call_id = ? AND json_extract(body, '$.agent_id') = ?",
                (agent_id, call_id, nudges_of),
            )
            self._db.execute(  # the call's latest leg is the one bound
                "UPDATE legs SET agent_id = ? WHERE call_id = ? "
                "AND leg = (SELECT MAX(leg) FROM legs WHERE call_id = ?)",
                (agent_id, call_id, call_id),
            )
        return changed > 0

    def call_ended(
        self,
        call_id: str,
        scorecard: dict[str, Any],
        ended_at: float,
        state: dict[str, Any] | None = None,
    ) -> None:
        """The live leg is over: the call's scorecard (covering every leg), ``ended_at``
        (epoch s) and status ``ended`` on the call and the leg; the leg's media end is the
        call so far's (``state``), else the scorecard's duration."""
        if state is not None:
            media_end = state["media_s"]
        else:
            media_end = scorecard.get("metrics", {}).get("duration_s")
        with _transaction(self._db):
            self._db.execute(
                "UPDATE calls SET scorecard = ?, ended_at = ?, status = 'ended', "
                "state = COALESCE(?, state) WHERE call_id = ?",
                (json.dumps(scorecard), ended_at, _json_or_none(state), call_id),
            )
            self._db.execute(
                "UPDATE legs SET ended_at = ?, status = 'ended', media_end_s = ? "
                "WHERE call_id = ? AND status = 'live'",
                (ended_at, media_end, call_id),
            )

    def prune(self, older_than: float) -> int:
        """Delete calls (and their transcripts and nudges) started before ``older_than``."""
        return self._db.execute("DELETE FROM calls WHERE started_at < ?", (older_than,)).rowcount

    # reading ------------------------------------------------------------------------

    def call_state(self, call_id: str) -> dict[str, Any] | None:
        """The call so far as last saved (``CallSoFar.to_json``), or None (unknown call, or
        a record from before calls had legs)."""
        row = self._r.execute("SELECT state FROM calls WHERE call_id = ?", (call_id,)).fetchone()
        return json.loads(row[0]) if row and row[0] else None

    def agent_of(self, call_id: str) -> str | None:
        """The agent id of the call's record (one indexed read), or None."""
        row = self._r.execute("SELECT agent_id FROM calls WHERE call_id = ?", (call_id,)).fetchone()
        return row[0] if row else None

    def scorecard(self, call_id: str) -> dict[str, Any] | None:
        """The latest scorecard (final or checkpoint), or None (unknown call, or none yet)."""
        row = self._r.execute(
            "SELECT scorecard FROM calls WHERE call_id = ?", (call_id,)
        ).fetchone()
        return json.loads(row[0]) if row and row[0] else None

    def record(self, call_id: str) -> dict[str, Any] | None:
        """The call's record with its legs (in order), transcripts (start order), nudges
        (media-time order) and feedback, or None. Transcripts hold channel, utterance_id,
        times, text and words; a leg its number, agent, protocol, wall times, status and
        ``media_start_s``/``media_end_s`` on the call's timeline."""
        self._r.execute("BEGIN")  # one snapshot for the call and its rows
        try:
            row = self._r.execute(
                f"SELECT {CALL_COLUMNS} FROM calls WHERE call_id = ?",
                (call_id,),
            ).fetchone()
            return self._record(row) if row else None
        finally:
            self._r.execute("COMMIT")

    def export(self, since: float | None = None) -> Iterator[dict[str, Any]]:
        """Every record started at ``since`` (epoch s) or later, oldest first. The calls are read
        at once; each record's transcripts, nudges and feedback as it is yielded."""
        rows = self._r.execute(  # calls_started index: a report reads only its days
            f"SELECT {CALL_COLUMNS} FROM calls WHERE started_at >= ? ORDER BY started_at",
            (float("-inf") if since is None else since,),
        ).fetchall()
        for row in rows:
            yield self._record(row)

    def summaries(self, since: float) -> list[dict[str, Any]]:
        """The calls started at ``since`` or later, oldest first (``calls_started`` index):
        their own columns, the scorecard and the nudge count; nothing else is read."""
        rows = self._r.execute(
            f"SELECT {', '.join(SUMMARY_KEYS)}, scorecard, nudge_count FROM calls "
            "WHERE started_at >= ? ORDER BY started_at",
            (since,),
        ).fetchall()
        return [
            {
                **dict(zip(SUMMARY_KEYS, row[: len(SUMMARY_KEYS)], strict=True)),
                "scorecard": json.loads(row[-2]) if row[-2] else None,
                "nudges": row[-1],
            }
            for row in rows
        ]

    def daily_totals(self, since: float) -> dict[str, dict[str, int]]:
        """Per agent: calls started at ``since`` or later and their nudges, one grouped
        read of the calls' own columns."""
        return {
            agent: {"calls": calls, "nudges": nudges}
            for agent, calls, nudges in self._r.execute(
                "SELECT agent_id, COUNT(*), SUM(nudge_count) FROM calls "
                "WHERE started_at >= ? GROUP BY agent_id",
                (since,),
            )
        }

    def _record(self, row: tuple[Any, ...]) -> dict[str, Any]:
        call_id = row[0]
        transcripts = [
            {
                "channel": c,
                "utterance_id": u,
                "start_s": s,
                "end_s": e,
                "text": t,
                "words": json.loads(w),
            }
            for c, u, s, e, t, w in self._r.execute(
                "SELECT channel, utterance_id, start_s, end_s, text, words FROM transcripts "
                "WHERE call_id = ? ORDER BY start_s",
                (call_id,),
            )
        ]
        nudges = [
            json.loads(body)
            for (body,) in self._r.execute(
                "SELECT body FROM nudges WHERE call_id = ? ORDER BY media_time_s", (call_id,)
            )
        ]
        legs = [
            dict(zip(LEG_COLUMNS.split(", "), leg, strict=True))
            for leg in self._r.execute(
                f"SELECT {LEG_COLUMNS} FROM legs WHERE call_id = ? ORDER BY leg", (call_id,)
            )
        ]
        feedback = [
            {"nudge_id": n, "kind": k, "action": a, "at": t}
            for n, k, a, t in self._r.execute(
                "SELECT nudge_id, kind, action, at FROM feedback WHERE call_id = ? ORDER BY at",
                (call_id,),
            )
        ]
        return {
            "call_id": call_id,
            "agent_id": row[1],
            "protocol": row[2],
            "started_at": row[3],
            "ended_at": row[4],
            "status": row[5],
            "scorecard": json.loads(row[6]) if row[6] else None,
            "legs": legs,
            "transcripts": transcripts,
            "nudges": nudges,
            "feedback": feedback,
        }

    def close(self) -> None:
        """Close both database connections."""
        self._r.close()
        self._db.close()


@contextmanager
def _transaction(db: sqlite3.Connection) -> Iterator[None]:
    """One explicit transaction on an autocommit connection (``isolation_level=None``):
    committed when the block ends, rolled back if anything (a cancellation too) leaves it."""
    db.execute("BEGIN")
    try:
        yield
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def _json_or_none(data: dict[str, Any] | None) -> str | None:
    return None if data is None else json.dumps(data)
