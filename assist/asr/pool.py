"""The process-wide ASR pool: one bounded queue and a few worker threads for all calls.

Order of service: agent finals, then customer finals, then customer backchannels (finals
with less voiced speech than ``backchannel_max_s``: "Yeah.", "Okay."), then partials (each
oldest first). Bounded with named overflow rules, each counted
(``assist_asr_shed_total{reason}``):

* ``superseded``: a newer partial of the same utterance, or its final, replaced it;
* ``queue_full``: the queue was at ``max_queue``; the least urgent request goes
  (partials, then the oldest customer final, then the oldest agent final);
* ``stale``: it waited longer than ``stale_after_s`` (``partial_stale_after_s`` for
  partials) before a worker got to it: text that late no longer helps the agent;
* ``busy``: a partial submitted while more than ``partial_max_waiting`` requests wait: no
  cue reads partials (they only preview text on the agent's screen), so under load the
  recognizer's time goes to finals;
* ``backchannel``: the same for a customer backchannel: no cue needs it (the frustration
  model judges sentences; the agent's short "I'm sorry." still counts as an
  acknowledgement, so agent finals are never skipped), so it is transcribed only when
  the recognizer has time for it.

A recording (a call whose sender can be slowed down, ``CallSpec.live`` False) comes after
every live call's request, in the same order among its own; it is never ``stale`` (no one
waits for its text live: its reader waits instead), a full queue sheds it first, and it
is not counted as waiting work when a live partial or backchannel is judged ``busy``.

A worker takes up to ``max_batch`` requests, but no more than its share of what waits
among the workers not in a step: two requests and two free workers are two steps at
once, one per core, not one batch of two on one core while the other idles.

Workers run the recognizer in their own threads (ctranslate2 releases the GIL), consume
faster-whisper's lazy ``segments`` there, and hand each result back to the event loop
through the request's future. Nothing here blocks the loop or the audio-only cues.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal, Protocol

import numpy as np

from assist.vocabulary import Recognized, UtteranceAudio

log = logging.getLogger(__name__)

AGENT_FINAL, CUSTOMER_FINAL, BACKCHANNEL, PARTIAL = 0, 1, 2, 3


class Recognizer(Protocol):
    """Turns a batch of 16 kHz utterances into text (runs in a worker thread)."""

    def recognize(self, batch: list[np.ndarray], words: bool = True) -> list[Recognized]:
        """One ``Recognized`` per utterance, in order. Each utterance is float32 mono at 16 kHz,
        shape (samples,). ``words`` False: the text alone is wanted (a batch of partials),
        ``Recognized.words`` may be empty. Blocking; an exception fails the whole batch (every
        request in it is answered ``error``)."""
        ...


@dataclass(frozen=True, slots=True)
class AsrResult:
    """The pool's answer to one utterance.

    ``ok`` carries ``recognized``; ``shed`` a ``reason`` (``superseded``, ``queue_full``,
    ``stale``, ``busy``, ``backchannel``, ``shutdown``); ``error`` the recognizer's
    exception class name as ``reason``.
    """

    status: Literal["ok", "shed", "error"]
    recognized: Recognized | None = None
    reason: str | None = None
    queued_s: float = 0.0  # wall time waiting for a worker
    busy_s: float = 0.0  # wall time of the recognition step it was part of


@dataclass(eq=False)
class _Request:
    call_id: str
    utterance: UtteranceAudio
    rank: int
    enqueued: float
    order: int
    deliver: Callable[[AsrResult], None]
    live: bool = True  # False: a recording's, served after every live request
    done: bool = field(default=False)

    @property
    def key(self) -> tuple[str, str, int]:
        return (self.call_id, self.utterance.channel, self.utterance.utterance_id)


class AsrPool:
    """The process-wide recognition queue and its worker threads (order of service and
    shedding rules in the module docstring).

    ``max_batch`` utterances go to the recognizer per step; ``max_queue`` requests may wait;
    ``stale_after_s`` / ``partial_stale_after_s`` are wall seconds a final / partial may
    wait for a worker; a partial finding more than ``partial_max_waiting`` requests waiting
    is shed at once (None: never), and so is a customer final with less than
    ``backchannel_max_s`` of voiced speech (None or 0: no final is ever skipped).
    ``clock`` is monotonic wall seconds, used only for waiting times.
    ``shed`` (reason -> count), ``done`` and ``batches`` (size -> count) are read by the
    metrics at scrape time.
    """

    def __init__(
        self,
        recognizer: Recognizer,
        workers: int,
        max_batch: int,
        max_queue: int,
        stale_after_s: float,
        partial_stale_after_s: float,
        clock: Callable[[], float],
        partial_max_waiting: int | None = None,
        backchannel_max_s: float | None = None,
    ) -> None:
        self._recognizer = recognizer
        self._workers_wanted = workers
        self._max_batch = max_batch
        self._max_queue = max_queue
        self._stale_s = stale_after_s
        self._partial_stale_s = partial_stale_after_s
        self._partial_max_waiting = partial_max_waiting
        self._backchannel_s = backchannel_max_s or 0.0
        self._clock = clock
        self._pending: list[_Request] = []
        self._cond = threading.Condition()
        self._threads: list[threading.Thread] = []
        self._closing = False
        self._order = 0
        self._stepping = 0  # workers in a recognition step
        self.shed: Counter[str] = Counter()  # reason -> count
        self.done = 0
        self.batches: Counter[int] = Counter()  # batch size -> count

    # lifecycle ---------------------------------------------------------------------

    def start(self) -> None:
        """Start the worker threads (daemons named ``asr-0``, ``asr-1``, ...); call once."""
        for i in range(self._workers_wanted):
            thread = threading.Thread(target=self._work, name=f"asr-{i}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        """Answer everything queued with ``shutdown``; workers exit after their step."""
        with self._cond:
            self._closing = True
            for request in self._pending:
                self._finish(request, AsrResult("shed", reason="shutdown"))
            self._pending.clear()
            self._cond.notify_all()

    def close(self) -> None:
        """``stop``, then wait for the workers (blocking: call it off the event loop)."""
        self.stop()
        for thread in self._threads:
            thread.join(timeout=30)

    @property
    def queue_length(self) -> int:
        """Requests waiting for a worker (those being recognized not included)."""
        return len(self._pending)

    # submitting (event loop) -------------------------------------------------------

    def submit(
        self, call_id: str, utterance: UtteranceAudio, live: bool = True
    ) -> asyncio.Future[AsrResult]:
        """Queue one utterance of ``call_id`` (``live`` False: of a recording, served after
        live calls, never stale); called on the event loop, never blocks.

        The future resolves on that loop with an ``AsrResult`` when the utterance is
        recognized, shed or failed; queued partials of the same utterance are superseded by it,
        a partial finding more than ``partial_max_waiting`` requests waiting is shed (``busy``),
        so is a customer backchannel (``backchannel``), and a full queue sheds its least
        urgent request (possibly this one). A request submitted after ``stop`` is never
        answered. Raises ``RuntimeError`` outside a running event loop.
        """
        loop = asyncio.get_running_loop()
        future: asyncio.Future[AsrResult] = loop.create_future()

        def deliver(result: AsrResult) -> None:
            with contextlib.suppress(RuntimeError):  # the loop is gone: nobody waits
                loop.call_soon_threadsafe(_resolve, future, result)

        if not utterance.final:
            rank = PARTIAL
        elif utterance.channel == "agent":
            rank = AGENT_FINAL
        elif utterance.speech_s < self._backchannel_s:
            rank = BACKCHANNEL
        else:
            rank = CUSTOMER_FINAL
        with self._cond:
            self._order += 1
            request = _Request(call_id, utterance, rank, self._clock(), self._order, deliver, live)
            busy = self._partial_max_waiting
            # live work is served before recordings, so only it can keep a live partial waiting
            ahead = sum(r.live for r in self._pending) if live else len(self._pending)
            if rank >= BACKCHANNEL and busy is not None and ahead > busy:
                reason = "busy" if rank == PARTIAL else "backchannel"
                self.shed[reason] += 1
                self._finish(request, AsrResult("shed", reason=reason))
                return future
            for old in [r for r in self._pending if r.key == request.key and r.rank == PARTIAL]:
                self._drop(old, "superseded")
            self._pending.append(request)
            if len(self._pending) > self._max_queue:
                victim = max(self._pending, key=lambda r: (not r.live, r.rank, -r.order))
                self._drop(victim, "queue_full")
            self._cond.notify()
        return future

    # workers (threads) -------------------------------------------------------------

    def _work(self) -> None:
        while True:
            with self._cond:
                while not self._pending and not self._closing:
                    self._cond.wait()
                if self._closing:
                    return
                batch = self._take_batch()
                self._stepping += bool(batch)
            if not batch:
                continue
            started = self._clock()
            try:
                results = self._recognizer.recognize(
                    [r.utterance.audio for r in batch],
                    # Partials only preview text (no cue, record or evidence reads their
                    # words): a batch of partials alone skips word timing.
                    words=any(r.rank != PARTIAL for r in batch),
                )
            except Exception as exc:
                log.exception("ASR batch of %d failed", len(batch))
                with self._cond:
                    self._stepping -= 1
                for request in batch:
                    self._finish(request, AsrResult("error", reason=type(exc).__name__))
                continue
            busy = self._clock() - started
            with self._cond:
                self._stepping -= 1
                self.batches[len(batch)] += 1
                self.done += len(batch)
            for request, recognized in zip(batch, results, strict=True):
                self._finish(
                    request,
                    AsrResult("ok", recognized, queued_s=started - request.enqueued, busy_s=busy),
                )

    def _take_batch(self) -> list[_Request]:
        """Under the lock: shed stale requests, then take the most urgent ones: at most
        ``max_batch``, and no more than this worker's share of what waits among the workers
        not in a step (itself included); another one is woken for the rest."""
        now = self._clock()
        for request in list(self._pending):
            limit = self._partial_stale_s if request.rank == PARTIAL else self._stale_s
            if request.live and now - request.enqueued > limit:
                self._drop(request, "stale")
        self._pending.sort(key=lambda r: (not r.live, r.rank, r.order))
        free = max(self._workers_wanted - self._stepping, 1)
        share = -(-len(self._pending) // free)
        size = min(self._max_batch, share)
        batch = self._pending[:size]
        del self._pending[:size]
        if self._pending:
            self._cond.notify()
        return batch

    def _drop(self, request: _Request, reason: str) -> None:
        self._pending.remove(request)
        self.shed[reason] += 1
        self._finish(request, AsrResult("shed", reason=reason))

    def _finish(self, request: _Request, result: AsrResult) -> None:
        if not request.done:
            request.done = True
            request.deliver(result)


def _resolve(future: asyncio.Future[AsrResult], result: AsrResult) -> None:
    if not future.done():
        future.set_result(result)
