"""The SQLite call store: WAL journal, schema migrations, survives restarts and crashes.

A call's row is written when it starts (status ``live``), its transcripts and nudges as
they happen, a scorecard checkpoint every ``store.checkpoint_every_s`` of media time, and
the final scorecard when it ends (``ended``). Calls still ``live`` when a new process
opens the database were cut off by a crash: they become ``cut_off`` and keep everything
written so far, their last checkpoint included. Used from the event loop thread only;
each write is one short transaction (WAL, ``synchronous=NORMAL``).
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from assist.events import Nudge, Transcript

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
)


CALL_COLUMNS = "call_id, agent_id, protocol, started_at, ended_at, status, scorecard"


class SqliteStore:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path).expanduser()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA foreign_keys=ON")
        self.schema_version = self._migrate()
        cut = self._db.execute("UPDATE calls SET status = 'cut_off' WHERE status = 'live'")
        if cut.rowcount:
            log.warning(
                "%d call(s) were cut off by a restart; their records are kept", cut.rowcount
            )

    def _migrate(self) -> int:
        version = self._db.execute("PRAGMA user_version").fetchone()[0]
        if version > len(MIGRATIONS):
            raise RuntimeError(
                f"{self.path} has schema {version}, newer than this version knows "
                f"({len(MIGRATIONS)}): upgrade live-call-assist"
            )
        for target, script in enumerate(MIGRATIONS[version:], start=version + 1):
            self._db.execute("BEGIN")
            try:
                for statement in script.split(";"):
                    if statement.strip():
                        self._db.execute(statement)
                self._db.execute(f"PRAGMA user_version = {target}")
                self._db.execute("COMMIT")
            except Exception:
                self._db.execute("ROLLBACK")
                raise
            log.info("store %s migrated to schema %d", self.path, target)
        return len(MIGRATIONS)

    # writing ------------------------------------------------------------------------

    def call_started(self, call_id: str, agent_id: str, protocol: str, started_at: float) -> None:
        """A new call; a call id used before replaces that earlier record."""
        self._db.execute("DELETE FROM calls WHERE call_id = ?", (call_id,))
        self._db.execute(
            "INSERT INTO calls (call_id, agent_id, protocol, started_at, status) "
            "VALUES (?, ?, ?, ?, 'live')",
            (call_id, agent_id, protocol, started_at),
        )

    def add_transcript(self, call_id: str, transcript: Transcript) -> None:
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

    def add_feedback(self, call_id: str, nudge_id: str, kind: str, action: str, at: float) -> None:
        self._db.execute(
            "INSERT INTO feedback VALUES (?, ?, ?, ?, ?)", (call_id, nudge_id, kind, action, at)
        )

    def checkpoint(self, call_id: str, scorecard: dict[str, Any]) -> None:
        self._db.execute(
            "UPDATE calls SET scorecard = ? WHERE call_id = ?", (json.dumps(scorecard), call_id)
        )

    def call_ended(self, call_id: str, scorecard: dict[str, Any], ended_at: float) -> None:
        self._db.execute(
            "UPDATE calls SET scorecard = ?, ended_at = ?, status = 'ended' WHERE call_id = ?",
            (json.dumps(scorecard), ended_at, call_id),
        )

    def prune(self, older_than: float) -> int:
        """Delete calls (and their transcripts and nudges) started before ``older_than``."""
        return self._db.execute("DELETE FROM calls WHERE started_at < ?", (older_than,)).rowcount

    # reading ------------------------------------------------------------------------

    def scorecard(self, call_id: str) -> dict[str, Any] | None:
        row = self._db.execute(
            "SELECT scorecard FROM calls WHERE call_id = ?", (call_id,)
        ).fetchone()
        return json.loads(row[0]) if row and row[0] else None

    def record(self, call_id: str) -> dict[str, Any] | None:
        row = self._db.execute(
            f"SELECT {CALL_COLUMNS} FROM calls WHERE call_id = ?",
            (call_id,),
        ).fetchone()
        return self._record(row) if row else None

    def export(self, since: float | None = None) -> Iterator[dict[str, Any]]:
        rows = self._db.execute(  # calls_started index: a report reads only its days
            f"SELECT {CALL_COLUMNS} FROM calls WHERE started_at >= ? ORDER BY started_at",
            (float("-inf") if since is None else since,),
        ).fetchall()
        for row in rows:
            yield self._record(row)

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
            for c, u, s, e, t, w in self._db.execute(
                "SELECT channel, utterance_id, start_s, end_s, text, words FROM transcripts "
                "WHERE call_id = ? ORDER BY start_s",
                (call_id,),
            )
        ]
        nudges = [
            json.loads(body)
            for (body,) in self._db.execute(
                "SELECT body FROM nudges WHERE call_id = ? ORDER BY media_time_s", (call_id,)
            )
        ]
        feedback = [
            {"nudge_id": n, "kind": k, "action": a, "at": t}
            for n, k, a, t in self._db.execute(
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
            "transcripts": transcripts,
            "nudges": nudges,
            "feedback": feedback,
        }

    def close(self) -> None:
        self._db.close()
