"""The store off the event loop (``ThreadedStore``): a disk write held up never holds up the
audio and cues of a live call; a full queue makes the writer wait and loses nothing; a slow
read (a big report) never holds up the writes; reads see the writes queued before them."""

from __future__ import annotations

import asyncio
import json
import threading
from pathlib import Path
from typing import Any

import pytest

from assist.cli import demo_call_path
from assist.events import Nudge
from assist.hub import Hub
from assist.metrics import ServiceMetrics
from assist.replay import encode_frames, read_stereo_wav
from assist.session import CallSession
from assist.store.sqlite import SqliteStore
from assist.store.threaded import ThreadedStore
from assist.vad.silero import SileroModel
from assist.vocabulary import CallSpec
from tests.conftest import make_settings
from tests.unit.test_agent_binding import nudge


class HeldDisk(SqliteStore):
    """A SQLite store whose chosen method, once called, waits (on the thread that called it)
    until ``release`` is set; ``entered`` says a call is waiting."""

    def __init__(self, path: Path, hold: str) -> None:
        super().__init__(path)
        self.hold = hold
        self.entered = threading.Event()
        self.release = threading.Event()
        self.threads: dict[str, str] = {}

    def _held(self, name: str) -> None:
        self.threads[name] = threading.current_thread().name
        if name == self.hold:
            self.entered.set()
            assert self.release.wait(60), "never released"

    def add_nudge(self, call_id: str, nudge: Nudge) -> None:
        self._held("add_nudge")
        super().add_nudge(call_id, nudge)

    def summaries(self, since: float) -> list[dict[str, Any]]:
        self._held("summaries")
        return super().summaries(since)


@pytest.fixture(scope="module")
def vad_model() -> SileroModel:
    return SileroModel()


async def until_entered(disk: HeldDisk) -> None:
    assert await asyncio.to_thread(disk.entered.wait, 60)


async def test_cues_reach_the_agent_while_the_disk_write_is_held(tmp_path, vad_model):
    """The demo call raises three nudges. The first one's disk write is held from the start;
    the call is processed to its end all the same, every nudge reaches the agent's stream
    and the call's scorecard is ready; once the disk lets go, every nudge is stored."""
    disk = HeldDisk(tmp_path / "calls.sqlite3", hold="add_nudge")
    store = ThreadedStore(disk)
    spec = CallSpec("held-1", "a-1", 8000, "pcm16", ("customer", "agent"))
    await store.call_started("held-1", "a-1", "native", 1000.0)
    hub = Hub()
    agent = hub.subscribe_agent("a-1")
    metrics = ServiceMetrics()
    session = CallSession(spec, make_settings(), vad_model, hub, metrics, lambda: 0.0, store=store)
    runner = asyncio.create_task(session.run())
    audio, rate = read_stereo_wav(demo_call_path())
    for frame in encode_frames(audio, rate, "pcm16"):
        session.push_audio(frame)
    session.end_input()
    scorecard = await runner  # the whole call, with the disk held since the first nudge
    assert disk.entered.is_set() and not disk.release.is_set()
    sent = [json.loads(agent._items.popitem(last=False)[1]) for _ in range(agent.pending())]
    nudges = [e["kind"] for e in sent if e["type"] == "nudge"]
    assert nudges == ["interruption", "long_hold", "dead_air"]
    assert scorecard["metrics"]["duration_s"] > 60
    assert store.queued >= 3  # the held nudge, the two after it, the checkpoints
    disk.release.set()
    await store.flush()
    record = await store.record("held-1")
    assert record is not None and [n["kind"] for n in record["nudges"]] == nudges
    assert disk.threads["add_nudge"] == "store-writer"
    await store.close()


async def test_a_full_queue_makes_the_writer_wait_and_loses_nothing(tmp_path):
    disk = HeldDisk(tmp_path / "calls.sqlite3", hold="add_nudge")
    metrics = ServiceMetrics()
    store = ThreadedStore(disk, max_queue=2, on_wait=metrics.store_queue_waits.inc)
    await store.call_started("c-1", "a-1", "native", 1000.0)
    await store.add_nudge("c-1", nudge(1.0, "a-1"))  # taken by the writer thread: held
    await until_entered(disk)
    await store.add_nudge("c-1", nudge(2.0, "a-1"))  # queued: the queue is full
    third = asyncio.create_task(store.add_nudge("c-1", nudge(3.0, "a-1")))
    for _ in range(100):  # the loop runs on; the third write waits for a slot
        await asyncio.sleep(0)
    assert not third.done()
    assert store.waits == 1 and metrics.store_queue_waits.get() == 1
    disk.release.set()
    await third
    await store.flush()
    record = await store.record("c-1")
    assert record is not None
    assert [n["media_time_s"] for n in record["nudges"]] == [1.0, 2.0, 3.0]
    assert store.queued == 0
    await store.close()


async def test_a_slow_read_never_holds_up_the_writes(tmp_path):
    """A report's read held on the reader thread: calls start, write and end meanwhile."""
    disk = HeldDisk(tmp_path / "calls.sqlite3", hold="summaries")
    store = ThreadedStore(disk)
    report = asyncio.create_task(store.summaries(0.0))
    await until_entered(disk)
    assert await store.call_started("c-1", "a-1", "native", 1000.0) == 1
    await store.add_nudge("c-1", nudge(1.0, "a-1"))
    await store.call_ended("c-1", {"skills": {}}, 1001.0)
    assert not report.done()
    disk.release.set()
    assert [s["call_id"] for s in await report] == ["c-1"]  # read once let go
    assert disk.threads["summaries"].startswith("store-reader")
    assert (await store.daily_totals(0.0)) == {"a-1": {"calls": 1, "nudges": 1}}
    await store.close()


async def test_reads_see_every_write_queued_before_them(tmp_path):
    store = ThreadedStore(SqliteStore(tmp_path / "calls.sqlite3"))
    await store.call_started("c-1", "a-1", "native", 1000.0)
    for at in range(50):
        await store.add_nudge("c-1", nudge(float(at), "a-1"))
    await store.checkpoint("c-1", {"n": 50}, {"media_s": 50.0})
    assert await store.scorecard("c-1") == {"n": 50}
    assert await store.call_state("c-1") == {"media_s": 50.0}
    record = await store.record("c-1")
    assert record is not None and len(record["nudges"]) == 50
    await store.close()
    with pytest.raises(RuntimeError, match="closed"):
        await store.add_nudge("c-1", nudge(99.0, "a-1"))
