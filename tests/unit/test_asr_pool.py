"""The ASR pool's order of service and its overflow rules, with a recognizer the test
drives step by step (the pool's scheduling is under test here, not the model)."""

from __future__ import annotations

import asyncio
import contextlib
import threading

import numpy as np
import pytest

from assist.asr.pool import AsrPool
from assist.vocabulary import Recognized, UtteranceAudio
from tests.conftest import ManualClock


class SteppedRecognizer:
    """Echoes each utterance's first sample as text; each batch waits for ``release``."""

    def __init__(self) -> None:
        self.batches: list[list[float]] = []
        self.words: list[bool] = []  # the ``words`` flag of each batch
        self.started = threading.Semaphore(0)
        self.release = threading.Semaphore(0)

    def recognize(self, batch: list[np.ndarray], words: bool = True) -> list[Recognized]:
        self.batches.append([float(a[0]) for a in batch])
        self.words.append(words)
        self.started.release()
        self.release.acquire()
        return [Recognized(text=f"u{a[0]:g}", words=[]) for a in batch]


def utterance(
    tag: float, channel: str = "agent", final: bool = True, uid: int = 0, speech_s: float = 0.01
):
    audio = np.full(160, tag, dtype=np.float32)
    return UtteranceAudio(channel, uid, 0.0, 0.01, audio, final, speech_s)


def make_pool(recognizer, clock, **kw):
    options = {
        "workers": 1,
        "max_batch": 1,
        "max_queue": 10,
        "stale_after_s": 100.0,
        "partial_stale_after_s": 100.0,
    }
    options.update(kw)
    return AsrPool(recognizer, clock=clock, **options)


async def _step(recognizer: SteppedRecognizer) -> None:
    await asyncio.to_thread(recognizer.started.acquire)


@contextlib.asynccontextmanager
async def busy_pool(clock, call_id: str = "c", **kw):
    """A started pool whose one worker is in a step on a blocker (an agent final of
    ``call_id``, tag 0), so what is submitted next queues: yields (recognizer, pool,
    the blocker's future); closes the pool."""
    rec = SteppedRecognizer()
    pool = make_pool(rec, clock, **kw)
    pool.start()
    try:
        blocker = pool.submit(call_id, utterance(0))
        await _step(rec)
        yield rec, pool, blocker
    finally:
        pool.close()


async def test_agent_finals_before_customer_finals_before_partials(manual_clock):
    rec = SteppedRecognizer()
    pool = make_pool(rec, manual_clock)
    pool.start()
    try:
        blocker = pool.submit("c", utterance(0))
        await _step(rec)  # the worker is busy with the blocker; now queue the rest
        futures = [
            pool.submit("c", utterance(1, "customer", final=False, uid=1)),
            pool.submit("c", utterance(2, "customer", uid=2)),
            pool.submit("c", utterance(3, "agent", uid=3)),
            pool.submit("c", utterance(4, "customer", uid=4)),
        ]
        for _ in range(5):
            rec.release.release()
        results = await asyncio.gather(blocker, *futures)
        assert [r.status for r in results] == ["ok"] * 5
        assert [b[0] for b in rec.batches] == [0, 3, 2, 4, 1]
        assert rec.words == [True, True, True, True, False]  # the partial: text only
        assert results[3].recognized.text == "u3"
    finally:
        pool.close()


async def test_a_batch_with_any_final_is_recognized_with_words(manual_clock):
    """Partials only preview text, so a batch of partials alone skips word timing; a final
    in the batch needs its words (records, quotes, pace), so the whole batch gets them."""
    rec = SteppedRecognizer()
    pool = make_pool(rec, manual_clock, max_batch=4)
    pool.start()
    try:
        blocker = pool.submit("c", utterance(0, uid=9))
        await _step(rec)
        mixed = [
            pool.submit("c", utterance(1, "customer", final=False, uid=1)),
            pool.submit("c", utterance(2, "customer", uid=2)),
        ]
        rec.release.release()
        await _step(rec)
        rec.release.release()
        await asyncio.gather(blocker, *mixed)
        partials = [pool.submit("d", utterance(3 + i, final=False, uid=i)) for i in range(2)]
        await _step(rec)
        rec.release.release()
        await asyncio.gather(*partials)
        assert rec.batches == [[0], [2, 1], [3, 4]]
        assert rec.words == [True, True, False]
    finally:
        pool.close()


async def test_newer_partial_supersedes_older_and_final_supersedes_partials(manual_clock):
    rec = SteppedRecognizer()
    pool = make_pool(rec, manual_clock)
    pool.start()
    try:
        blocker = pool.submit("c", utterance(0, uid=9))
        await _step(rec)
        p1 = pool.submit("c", utterance(1, final=False, uid=5))
        p2 = pool.submit("c", utterance(2, final=False, uid=5))
        other_call = pool.submit("d", utterance(3, final=False, uid=5))
        final = pool.submit("c", utterance(4, final=True, uid=5))
        for _ in range(3):
            rec.release.release()
        r1, r2, r_other, r_final, _ = await asyncio.gather(p1, p2, other_call, final, blocker)
        assert (r1.status, r1.reason) == ("shed", "superseded")
        assert (r2.status, r2.reason) == ("shed", "superseded")
        assert r_other.status == "ok" and r_final.status == "ok"
        assert pool.shed["superseded"] == 2
    finally:
        pool.close()


async def test_partials_are_shed_while_finals_queue_up(manual_clock):
    """Past ``partial_max_waiting`` waiting requests a new partial is shed at once (busy);
    finals always queue, and partials come back when the queue has drained."""
    rec = SteppedRecognizer()
    pool = make_pool(rec, manual_clock, partial_max_waiting=1)
    pool.start()
    try:
        blocker = pool.submit("c", utterance(0))
        await _step(rec)  # the worker is busy; nothing waits
        first = pool.submit("c", utterance(1, final=False, uid=1))  # 0 waiting: queued
        final = pool.submit("c", utterance(2, "customer", uid=2))  # finals always queue
        busy = pool.submit("d", utterance(3, final=False, uid=1))  # 2 waiting > 1: shed
        r = await busy
        assert (r.status, r.reason) == ("shed", "busy")
        for _ in range(3):
            rec.release.release()
        assert (await final).status == "ok" and (await first).status == "ok"
        await blocker
        later = pool.submit("d", utterance(4, final=False, uid=1))  # drained: queued again
        rec.release.release()
        assert (await later).status == "ok"
        assert pool.shed == {"busy": 1}
    finally:
        pool.close()


async def test_customer_backchannels_are_transcribed_only_when_nothing_waits(manual_clock):
    """A customer final with less voiced speech than ``backchannel_max_s`` ("Yeah.") is
    served after the customer's sentences and shed (``backchannel``) when something already
    waits; an agent's short final ("I'm sorry.", an acknowledgement) always queues."""
    rec = SteppedRecognizer()
    pool = make_pool(rec, manual_clock, partial_max_waiting=0, backchannel_max_s=1.0)
    pool.start()
    try:
        blocker = pool.submit("c", utterance(0))
        await _step(rec)  # the worker is busy; nothing waits
        yeah = pool.submit("c", utterance(1, "customer", uid=1, speech_s=0.6))  # queued
        sentence = pool.submit("c", utterance(2, "customer", uid=2, speech_s=2.5))
        okay = pool.submit("d", utterance(3, "customer", uid=1, speech_s=0.4))  # 2 wait: shed
        sorry = pool.submit("d", utterance(4, "agent", uid=1, speech_s=0.5))
        r = await okay
        assert (r.status, r.reason) == ("shed", "backchannel")
        for _ in range(4):
            rec.release.release()
        results = await asyncio.gather(blocker, yeah, sentence, sorry)
        assert [x.status for x in results] == ["ok"] * 4
        assert [b[0] for b in rec.batches] == [0, 4, 2, 1]
        assert pool.shed == {"backchannel": 1}
    finally:
        pool.close()


async def test_waiting_requests_are_shared_among_the_free_workers(manual_clock):
    """Four waiting and two free workers: two steps of two at once (one per core), not one
    batch of four while the other worker idles; a worker alone free takes up to
    ``max_batch``, and the rest goes to the next one free."""
    rec = SteppedRecognizer()
    pool = make_pool(rec, manual_clock, workers=2, max_batch=4)
    first = [pool.submit(f"c{i}", utterance(i)) for i in range(4)]  # before the workers start
    pool.start()
    try:
        await _step(rec)
        await _step(rec)
        assert sorted(len(b) for b in rec.batches) == [2, 2]
        later = [pool.submit(f"d{i}", utterance(10 + i)) for i in range(5)]  # both busy
        rec.release.release()  # one worker free: 4 of the 5 (max_batch)
        await _step(rec)
        assert len(rec.batches[2]) == 4
        rec.release.release()  # the next one free takes the last
        await _step(rec)
        assert len(rec.batches[3]) == 1
        for _ in range(2):
            rec.release.release()
        results = await asyncio.gather(*first, *later)
        assert [r.status for r in results] == ["ok"] * 9
        assert pool.batches == {2: 2, 4: 1, 1: 1}
    finally:
        pool.close()


@pytest.mark.parametrize(
    "queued",
    [
        # (call, tag, channel, final, live); the first one queued is the one shed
        # live only: the oldest customer final is the least urgent
        [("c", 1, "customer", True, True), ("c", 2, "agent", True, True),
         ("c", 3, "customer", True, True)],
        # a recording's agent final goes before a live call's partial
        [("rec", 1, "agent", True, False), ("c", 2, "customer", False, True),
         ("c", 3, "customer", True, True)],
    ],
)  # fmt: skip
async def test_full_queue_sheds_the_least_urgent(manual_clock, queued):
    async with busy_pool(manual_clock, max_queue=2) as (rec, pool, blocker):
        futures = [
            pool.submit(call, utterance(tag, channel, final=final, uid=tag), live=live)
            for call, tag, channel, final, live in queued
        ]  # a queue of 3 > 2
        r = await futures[0]
        assert (r.status, r.reason) == ("shed", "queue_full")
        for _ in range(3):
            rec.release.release()
        assert [(await f).status for f in futures[1:]] == ["ok", "ok"]
        await blocker
        assert pool.shed == {"queue_full": 1}


async def test_stale_requests_are_shed_when_a_worker_gets_to_them(manual_clock: ManualClock):
    rec = SteppedRecognizer()
    pool = make_pool(rec, manual_clock, stale_after_s=4.0, partial_stale_after_s=1.0)
    pool.start()
    try:
        blocker = pool.submit("c", utterance(0))
        await _step(rec)
        partial = pool.submit("c", utterance(1, final=False, uid=1))
        final = pool.submit("c", utterance(2, "customer", uid=2))
        manual_clock.advance(2.0)  # the partial is now stale, the final is not
        rec.release.release()
        assert (await partial).reason == "stale"
        await _step(rec)
        rec.release.release()
        result = await final
        assert result.status == "ok"
        assert result.queued_s == pytest.approx(2.0)
        await blocker
    finally:
        pool.close()


async def test_close_answers_everything_still_queued(manual_clock):
    rec = SteppedRecognizer()
    pool = make_pool(rec, manual_clock)
    pool.start()
    blocker = pool.submit("c", utterance(0))
    await _step(rec)
    queued = pool.submit("c", utterance(1, uid=1))
    pool.stop()  # before the worker is free again: the queued one must not start
    rec.release.release()
    await asyncio.to_thread(pool.close)
    assert (await queued).reason == "shutdown"
    assert (await blocker).status == "ok"


async def test_recognizer_failure_is_an_error_result_not_a_dead_worker(manual_clock):
    class Failing:
        calls = 0

        def recognize(self, batch, words=True):
            Failing.calls += 1
            if Failing.calls == 1:
                raise RuntimeError("boom")
            return [Recognized("ok", []) for _ in batch]

    pool = make_pool(Failing(), manual_clock)
    pool.start()
    try:
        first = await pool.submit("c", utterance(0))
        second = await pool.submit("c", utterance(1, uid=1))
        assert (first.status, first.reason) == ("error", "RuntimeError")
        assert second.status == "ok"
    finally:
        pool.close()


async def test_a_recording_comes_after_live_calls_and_is_never_stale(manual_clock):
    """A recording's final (``live`` False) waits behind a live call's partial even when it
    came first, outlasts ``stale_after_s`` (its reader waits instead), and keeps its own
    order of service among its requests."""
    options = {"stale_after_s": 4.0, "partial_stale_after_s": 100.0}
    async with busy_pool(manual_clock, "live", **options) as (rec, pool, blocker):
        recorded_customer = pool.submit("rec", utterance(1, "customer", uid=1), live=False)
        recorded_agent = pool.submit("rec", utterance(2, "agent", uid=2), live=False)
        live_partial = pool.submit("live", utterance(3, "customer", final=False, uid=3))
        manual_clock.advance(10.0)  # past stale_after_s for every final waiting
        for _ in range(4):
            rec.release.release()
        results = await asyncio.gather(blocker, live_partial, recorded_agent, recorded_customer)
        assert [r.status for r in results] == ["ok"] * 4
        assert [b[0] for b in rec.batches] == [0, 3, 2, 1]
        assert pool.shed == {}


async def test_a_recordings_backlog_does_not_hold_back_live_partials(manual_clock):
    """``partial_max_waiting`` counts live work only: a live partial is transcribed while a
    recording's finals wait (they would be served after it anyway); a recording's own
    partial finds them waiting and is shed."""
    async with busy_pool(manual_clock, "live", partial_max_waiting=0) as (rec, pool, blocker):
        recorded = pool.submit("rec", utterance(1, "agent", uid=1), live=False)
        recorded_partial = pool.submit("rec", utterance(2, final=False, uid=2), live=False)
        live_partial = pool.submit("live", utterance(3, "customer", final=False, uid=3))
        assert (await recorded_partial).reason == "busy"
        for _ in range(3):
            rec.release.release()
        results = await asyncio.gather(blocker, live_partial, recorded)
        assert [r.status for r in results] == ["ok"] * 3
        assert [b[0] for b in rec.batches] == [0, 3, 1]
