"""The SQLite call store: schema, WAL, records across reopening, cut-off calls, retention."""

from __future__ import annotations

import sqlite3

import pytest

from assist.events import Evidence, Nudge, Transcript, TranscriptWord
from assist.store import MemoryStore
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


@pytest.fixture(params=["sqlite", "memory"])
def any_store(request, tmp_path):
    if request.param == "memory":
        return MemoryStore(10)
    return SqliteStore(tmp_path / "calls.sqlite3")


def test_a_call_id_used_again_is_the_next_leg_of_the_same_record(any_store):
    store = any_store
    assert store.call_started("c-1", "a-1", "native", 1000.0) == 1
    store.add_transcript("c-1", transcript("first leg", 1.0))
    store.add_nudge("c-1", nudge("dead_air", 9.0))
    store.add_feedback("c-1", "c-1-9.0", "dead_air", "got_it", 1010.0)
    state = {"version": 1, "media_s": 12.5}
    store.call_ended("c-1", {"metrics": {"duration_s": 12.48}}, 1013.0, state)
    assert store.call_state("c-1") == state
    assert store.call_started("c-1", "a-2", "twilio", 2000.0, media_start_s=12.5) == 2
    store.add_nudge("c-1", nudge("interruption", 15.0))
    live = store.record("c-1")
    assert (live["status"], live["agent_id"], live["started_at"]) == ("live", "a-2", 1000.0)
    assert live["ended_at"] is None
    store.call_ended("c-1", {"metrics": {"duration_s": 20.0}}, 2008.0, {**state, "media_s": 20.0})
    record = store.record("c-1")
    legs = [(leg["leg"], leg["agent_id"], leg["protocol"], leg["status"]) for leg in record["legs"]]
    assert legs == [(1, "a-1", "native", "ended"), (2, "a-2", "twilio", "ended")]
    first, second = record["legs"]
    assert (first["started_at"], first["ended_at"]) == (1000.0, 1013.0)
    assert (first["media_start_s"], first["media_end_s"]) == (0.0, 12.5)
    assert (second["media_start_s"], second["media_end_s"]) == (12.5, 20.0)
    # nothing the first leg stored is gone
    assert [t["text"] for t in record["transcripts"]] == ["first leg"]
    assert [n["kind"] for n in record["nudges"]] == ["dead_air", "interruption"]
    assert [f["action"] for f in record["feedback"]] == ["got_it"]
    assert (record["status"], record["ended_at"]) == ("ended", 2008.0)
    assert record["scorecard"] == {"metrics": {"duration_s": 20.0}}
    assert [r["call_id"] for r in store.export()] == ["c-1"]  # still one call
    assert store.set_agent("c-1", "a-3")
    assert [leg["agent_id"] for leg in store.record("c-1")["legs"]] == ["a-1", "a-3"]


def test_a_leg_cut_off_by_a_crash_ends_at_its_last_checkpoint(tmp_path):
    path = tmp_path / "calls.sqlite3"
    store = SqliteStore(path)
    store.call_started("c-1", "a-1", "native", 1000.0)
    store.call_ended("c-1", {}, 1010.0, {"version": 1, "media_s": 10.0})
    store.call_started("c-1", "a-1", "native", 1020.0, media_start_s=10.0)
    store.checkpoint("c-1", {"metrics": {"duration_s": 40.0}}, {"version": 1, "media_s": 40.0})
    store.checkpoint("c-1", {"metrics": {"duration_s": 41.0}})  # the state stays
    # the process dies here
    legs = SqliteStore(path).record("c-1")["legs"]
    assert [(leg["status"], leg["media_end_s"]) for leg in legs] == [
        ("ended", 10.0),
        ("cut_off", 40.0),
    ]


def test_schema_2_records_become_one_leg_calls(tmp_path):
    path = tmp_path / "calls.sqlite3"
    db = sqlite3.connect(path)
    for script in MIGRATIONS[:2]:
        db.executescript(script)
    db.execute(
        "INSERT INTO calls VALUES ('old', 'a-1', 'twilio', 500.0, 560.0, 'ended', ?)",
        ('{"metrics": {"duration_s": 58.2}}',),
    )
    db.execute("PRAGMA user_version = 2")
    db.commit()
    db.close()
    store = SqliteStore(path)
    assert store.schema_version == len(MIGRATIONS) == 4
    (leg,) = store.record("old")["legs"]
    assert leg == {
        "leg": 1, "agent_id": "a-1", "protocol": "twilio", "started_at": 500.0,
        "ended_at": 560.0, "status": "ended", "media_start_s": 0.0, "media_end_s": 58.2,
    }  # fmt: skip
    assert store.call_state("old") is None
    assert store.call_started("old", "a-1", "twilio", 900.0, media_start_s=58.2) == 2


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


async def test_a_long_running_service_keeps_to_its_retention(tmp_path):
    from assist.config import Settings
    from assist.service import AssistService
    from assist.vad.silero import SileroModel
    from assist.vocabulary import CallSpec

    day = 86400.0
    now = [100 * day]
    store = SqliteStore(tmp_path / "calls.sqlite3")
    store.call_started("old", "a", "native", now[0] - 95 * day)
    store.call_started("aging", "a", "native", now[0] - 89.9 * day)
    service = AssistService(Settings(), store=store, wall_clock=lambda: now[0])
    await service.apply_retention()  # at start (load_models)
    assert await service.store.record("old") is None  # 95 days: pruned
    assert await service.store.record("aging") is not None
    service.vad_model = SileroModel()
    spec = CallSpec("new", "a", 8000, "pcm16", ("customer", "agent"))
    now[0] += 0.5 * day  # "aging" is now 90.4 days old
    await service.open_call(spec, "native")
    assert await service.store.record("aging") is None
    assert await service.store.record("new") is not None
    await service.store.close()


def test_schema_3_calls_get_their_nudge_counts(tmp_path):
    path = tmp_path / "calls.sqlite3"
    db = sqlite3.connect(path)
    for script in MIGRATIONS[:3]:
        db.executescript(script)
    db.execute("INSERT INTO calls (call_id, agent_id, protocol, started_at, status) "
               "VALUES ('c-1', 'a-1', 'native', 500.0, 'ended')")  # fmt: skip
    for at in (1.0, 2.0):
        db.execute("INSERT INTO nudges VALUES ('c-1', ?, 'dead_air', 'info', ?, '{}')", (at, at))
    db.execute("PRAGMA user_version = 3")
    db.commit()
    db.close()
    store = SqliteStore(path)
    assert store.daily_totals(0.0) == {"a-1": {"calls": 1, "nudges": 2}}


@pytest.mark.parametrize("kind", ["sqlite", "memory"])
def test_floor_totals_and_report_summaries_come_from_the_calls_own_columns(tmp_path, kind):
    store = SqliteStore(tmp_path / "calls.sqlite3") if kind == "sqlite" else MemoryStore(10)
    store.call_started("yesterday", "a-1", "native", 50.0)
    store.add_nudge("yesterday", nudge("dead_air", 1.0))
    for call_id, agent in (("c-1", "a-1"), ("c-2", "a-2"), ("c-3", "a-1")):
        store.call_started(call_id, agent, "native", 100.0 + len(call_id))
    store.add_transcript("c-1", transcript("hello there", 1.0))
    for at in (1.0, 2.0, 3.0):
        store.add_nudge("c-1", nudge("dead_air", at))
    store.add_nudge("c-2", nudge("monologue", 4.0))
    store.replace_nudge("c-1", nudge("dead_air", 1.0))  # a correction: still three
    store.call_ended("c-1", {"skills": {"empathy": 90}}, 200.0)
    assert store.daily_totals(100.0) == {
        "a-1": {"calls": 2, "nudges": 3},
        "a-2": {"calls": 1, "nudges": 1},
    }
    summaries = store.summaries(100.0)
    assert [s["call_id"] for s in summaries] == ["c-1", "c-2", "c-3"]
    assert summaries[0] == {
        "call_id": "c-1", "agent_id": "a-1", "protocol": "native", "started_at": 103.0,
        "ended_at": 200.0, "status": "ended", "scorecard": {"skills": {"empathy": 90}},
        "nudges": 3,
    }  # fmt: skip
    assert store.erase("c-1") and store.daily_totals(100.0)["a-1"] == {"calls": 1, "nudges": 0}
    store.close()
