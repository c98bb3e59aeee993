"""The SQLite call store: schema, WAL, records across reopening, cut-off calls, retention."""

from __future__ import annotations

import sqlite3

import pytest

from assist.events import Evidence, Nudge, Transcript, TranscriptWord
from assist.store.sqlite import MIGRATIONS, SqliteStore


def transcript(text: str, start: float, channel: str = "customer") -> Transcript:
    return Transcript(
        call_id="c-1",
        channel=channel,
        utterance_id=int(start),
        text=text,
        start_s=start,
        end_s=start + 1.0,
        final=True,
        words=[
            TranscriptWord(word=text.split()[0], start_s=start, end_s=start + 0.3, probability=0.9)
        ],
    )


def nudge(kind: str, at: float) -> Nudge:
    evidence = Evidence(
        rule="r",
        threshold=1.0,
        measured=2.0,
        unit="s",
        span_start_s=at - 1,
        span_end_s=at,
        explanation="x",
    )
    return Nudge(
        id=f"c-1-{at}", call_id="c-1", agent_id="a-1", kind=kind, severity="warning",
        message="m", suggestion=None, media_time_s=at, evidence=evidence,
    )  # fmt: skip


def test_schema_wal_and_a_full_record_across_reopen(tmp_path):
    path = tmp_path / "calls.sqlite3"
    store = SqliteStore(path)
    assert store.schema_version == len(MIGRATIONS)
    store.call_started("c-1", "a-1", "native", 1000.0)
    store.add_transcript("c-1", transcript("second line", 5.0))
    store.add_transcript("c-1", transcript("first line", 1.0, channel="agent"))
    store.add_nudge("c-1", nudge("dead_air", 9.0))
    store.call_ended("c-1", {"skills": {"patience": {"score": 90}}}, 1060.0)
    store.close()

    reopened = SqliteStore(path)
    record = reopened.record("c-1")
    assert record["status"] == "ended" and record["agent_id"] == "a-1"
    assert [t["text"] for t in record["transcripts"]] == ["first line", "second line"]
    assert record["transcripts"][0]["words"][0]["word"] == "first"
    assert [n["kind"] for n in record["nudges"]] == ["dead_air"]
    assert reopened.scorecard("c-1") == {"skills": {"patience": {"score": 90}}}
    assert sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_a_call_cut_off_by_a_crash_keeps_its_last_checkpoint(tmp_path):
    path = tmp_path / "calls.sqlite3"
    store = SqliteStore(path)
    store.call_started("c-1", "a-1", "twilio", 1000.0)
    store.add_nudge("c-1", nudge("interruption", 3.0))
    store.checkpoint("c-1", {"metrics": {"duration_s": 30.0}})
    # the process dies here: no call_ended
    reopened = SqliteStore(path)
    record = reopened.record("c-1")
    assert record["status"] == "cut_off"
    assert record["scorecard"] == {"metrics": {"duration_s": 30.0}}
    assert len(record["nudges"]) == 1


def test_reusing_a_call_id_replaces_the_old_record(tmp_path):
    store = SqliteStore(tmp_path / "calls.sqlite3")
    store.call_started("c-1", "a-1", "native", 1000.0)
    store.add_nudge("c-1", nudge("dead_air", 9.0))
    store.call_started("c-1", "a-2", "native", 2000.0)
    record = store.record("c-1")
    assert record["agent_id"] == "a-2" and record["nudges"] == []


def test_retention_deletes_old_calls_with_their_rows(tmp_path):
    store = SqliteStore(tmp_path / "calls.sqlite3")
    for i, started in enumerate((100.0, 200.0, 300.0)):
        store.call_started(f"c-{i}", "a", "native", started)
        store.add_transcript(f"c-{i}", transcript("hello there", 1.0))
    assert store.prune(older_than=250.0) == 2
    assert [r["call_id"] for r in store.export()] == ["c-2"]
    leftover = store._db.execute("SELECT COUNT(*) FROM transcripts").fetchone()[0]
    assert leftover == 1


def test_a_newer_schema_is_refused(tmp_path):
    path = tmp_path / "calls.sqlite3"
    SqliteStore(path).close()
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    db.commit()
    db.close()
    with pytest.raises(RuntimeError, match="newer than this version"):
        SqliteStore(path)


def test_export_since_reads_only_those_days(tmp_path):
    store = SqliteStore(tmp_path / "calls.sqlite3")
    for i, started in enumerate((300.0, 100.0, 200.0)):
        store.call_started(f"c-{i}", "a", "native", started)
    assert [r["call_id"] for r in store.export(since=150.0)] == ["c-2", "c-0"]
    assert [r["call_id"] for r in store.export()] == ["c-1", "c-2", "c-0"]


def test_a_long_running_service_keeps_to_its_retention(tmp_path):
    from assist.config import Settings
    from assist.service import AssistService
    from assist.vad.silero import SileroModel
    from assist.vocabulary import CallSpec

    day = 86400.0
    now = [100 * day]
    store = SqliteStore(tmp_path / "calls.sqlite3")
    store.call_started("old", "a", "native", now[0] - 95 * day)
    service = AssistService(Settings(), store=store, wall_clock=lambda: now[0])
    assert store.record("old") is None  # pruned at start (90 days)
    store.call_started("aging", "a", "native", now[0] - 89.9 * day)
    service.vad_model = SileroModel()
    spec = CallSpec("new", "a", 8000, "pcm16", ("customer", "agent"))
    now[0] += 0.5 * day  # "aging" is now 90.4 days old
    service.open_call(spec, "native")
    assert store.record("aging") is None and store.record("new") is not None
