"""``ThreadedStore``: a blocking ``RecordBackend`` behind the async ``CallStore`` contract.

The event loop carries every call's audio, so it never touches the disk. Each write becomes
a job on one writer thread, in order; the jobs waiting are bounded (``[store] queue``):
when the queue is full, the coroutine that writes awaits a free slot (the call that writes
slows down; nothing is dropped) and the wait is counted (``on_wait``, the
``assist_store_queue_waits_total`` metric). Writes that answer nothing return once queued;
``call_started``, ``set_agent``, ``erase``, ``prune`` and ``call_ended`` return once done.

A read first waits for every write queued before it (a barrier job on the writer thread),
then runs on a reader thread of its own when the backend allows it (``concurrent_reads``:
SQLite reads through a second connection while the writer writes), else on the writer
thread itself. A large report therefore never holds up the writes of live calls.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from assist.events import Nudge, Transcript
from assist.store import RecordBackend

log = logging.getLogger(__name__)
T = TypeVar("T")

# A job on the writer thread: the call, its arguments, and where its outcome goes.
_Job = tuple[Callable[..., Any], tuple[Any, ...], "asyncio.Future[Any]", asyncio.AbstractEventLoop]


def _nothing() -> None:
    """The barrier job: done once every job queued before it is done."""


class ThreadedStore:
    """A ``CallStore`` over ``backend`` (module docstring). ``max_queue``: writes (and read
    barriers) waiting for the writer thread before a writer awaits; ``on_wait``: called once
    per write that had to wait. Use it from one event loop."""

    def __init__(
        self,
        backend: RecordBackend,
        max_queue: int = 1000,
        on_wait: Callable[[], None] | None = None,
    ) -> None:
        if max_queue < 1:
            raise ValueError(f"max_queue must be at least 1, not {max_queue}")
        self.backend = backend
        self.max_queue = max_queue
        self.waits = 0  # writes that found the queue full and awaited a slot
        self.queued = 0  # jobs handed to the writer thread and not yet done
        self._on_wait = on_wait
        self._slots = asyncio.Semaphore(max_queue)
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._closed = False
        self._writer = threading.Thread(target=self._work, name="store-writer", daemon=True)
        self._writer.start()
        self._reader = (
            ThreadPoolExecutor(1, thread_name_prefix="store-reader")
            if backend.concurrent_reads
            else None
        )

    # the writer thread ----------------------------------------------------------------

    def _work(self) -> None:
        while (job := self._jobs.get()) is not None:
            call, args, future, loop = job
            try:
                outcome: tuple[Any, BaseException | None] = (call(*args), None)
            except Exception as exc:
                outcome = (None, exc)
            with contextlib.suppress(RuntimeError):  # the loop is gone: nobody waits any more
                loop.call_soon_threadsafe(self._settle, future, *outcome)

    def _settle(self, future: asyncio.Future[Any], result: Any, exc: BaseException | None) -> None:
        """On the loop: the job is done; free its slot and answer whoever waits."""
        self.queued -= 1
        self._slots.release()
        if future.done():  # its waiter was cancelled; the job ran all the same
            return
        if exc is None:
            future.set_result(result)
        else:
            future.set_exception(exc)

    async def _submit(self, call: Callable[..., Any], *args: Any) -> asyncio.Future[Any]:
        """Queue ``call(*args)`` for the writer thread, awaiting a slot when the queue is
        full; returns the future of its outcome."""
        if self._closed:
            raise RuntimeError("the store is closed")
        if self._slots.locked():
            self.waits += 1
            if self._on_wait is not None:
                self._on_wait()
        await self._slots.acquire()
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self.queued += 1
        self._jobs.put((call, args, future, loop))
        return future

    async def _queue(self, call: Callable[..., Any], *args: Any) -> None:
        """A write nobody waits for: queued, its failure (if any) logged."""
        future = await self._submit(call, *args)
        name = getattr(call, "__name__", "write")
        future.add_done_callback(lambda f: _log_failure(f, name))

    async def _done(self, call: Callable[..., T], *args: Any) -> T:
        """A write (or a read on the writer thread) whose outcome is awaited."""
        result: T = await (await self._submit(call, *args))
        return result

    async def _read(self, call: Callable[..., T], *args: Any) -> T:
        """A read after every write queued before it."""
        if self._reader is None:
            return await self._done(call, *args)
        await self._done(_nothing)
        return await asyncio.get_running_loop().run_in_executor(self._reader, call, *args)

    # writes -----------------------------------------------------------------------

    async def call_started(
        self,
        call_id: str,
        agent_id: str,
        protocol: str,
        started_at: float,
        media_start_s: float = 0.0,
    ) -> int:
        """The call's new leg, written; returns its number."""
        return await self._done(
            self.backend.call_started, call_id, agent_id, protocol, started_at, media_start_s
        )

    async def add_transcript(self, call_id: str, transcript: Transcript) -> None:
        """Queue a final transcript."""
        await self._queue(self.backend.add_transcript, call_id, transcript)

    async def add_nudge(self, call_id: str, nudge: Nudge) -> None:
        """Queue a nudge."""
        await self._queue(self.backend.add_nudge, call_id, nudge)

    async def add_feedback(
        self, call_id: str, nudge_id: str, kind: str, action: str, at: float
    ) -> None:
        """Queue an agent's feedback on a nudge."""
        await self._queue(self.backend.add_feedback, call_id, nudge_id, kind, action, at)

    async def replace_transcript(self, call_id: str, transcript: Transcript) -> None:
        """Queue a transcript's correction."""
        await self._queue(self.backend.replace_transcript, call_id, transcript)

    async def replace_nudge(self, call_id: str, nudge: Nudge) -> None:
        """Queue a nudge's correction."""
        await self._queue(self.backend.replace_nudge, call_id, nudge)

    async def checkpoint(
        self, call_id: str, scorecard: dict[str, Any], state: dict[str, Any] | None = None
    ) -> None:
        """Queue a checkpoint of the scorecard (and the call so far)."""
        await self._queue(self.backend.checkpoint, call_id, scorecard, state)

    async def set_agent(self, call_id: str, agent_id: str, nudges_of: str | None = None) -> bool:
        """Rebind the call's record, written; False when there is none."""
        return await self._done(self.backend.set_agent, call_id, agent_id, nudges_of)

    async def call_ended(
        self,
        call_id: str,
        scorecard: dict[str, Any],
        ended_at: float,
        state: dict[str, Any] | None = None,
    ) -> None:
        """The live leg's end and the final scorecard, written."""
        await self._done(self.backend.call_ended, call_id, scorecard, ended_at, state)

    async def erase(self, call_id: str) -> bool:
        """The call's record erased; False when there was none."""
        return await self._done(self.backend.erase, call_id)

    async def prune(self, older_than: float) -> int:
        """The calls started before ``older_than`` deleted; returns how many."""
        return await self._done(self.backend.prune, older_than)

    # reads ------------------------------------------------------------------------

    async def agent_of(self, call_id: str) -> str | None:
        """The record's agent id, or None."""
        return await self._read(self.backend.agent_of, call_id)

    async def call_state(self, call_id: str) -> dict[str, Any] | None:
        """The call so far as last saved, or None."""
        return await self._read(self.backend.call_state, call_id)

    async def scorecard(self, call_id: str) -> dict[str, Any] | None:
        """The latest scorecard, or None."""
        return await self._read(self.backend.scorecard, call_id)

    async def record(self, call_id: str) -> dict[str, Any] | None:
        """The whole record, or None."""
        return await self._read(self.backend.record, call_id)

    async def export(self, since: float | None = None) -> list[dict[str, Any]]:
        """Every whole record started at ``since`` or later, oldest first."""
        return await self._read(lambda: list(self.backend.export(since)))

    async def summaries(self, since: float) -> list[dict[str, Any]]:
        """The calls started at ``since`` or later, as summaries, oldest first."""
        return await self._read(self.backend.summaries, since)

    async def daily_totals(self, since: float) -> dict[str, dict[str, int]]:
        """Per agent: calls started at ``since`` or later and their nudges."""
        return await self._read(self.backend.daily_totals, since)

    # life -------------------------------------------------------------------------

    async def flush(self) -> None:
        """Return once every write queued so far is done."""
        await self._done(_nothing)

    async def close(self) -> None:
        """Finish the queued writes, stop the threads, close the backend. Idempotent."""
        if self._closed:
            return
        await self.flush()
        self._closed = True
        self._jobs.put(None)
        await asyncio.to_thread(self._writer.join)
        if self._reader is not None:
            await asyncio.to_thread(self._reader.shutdown, True)
        await asyncio.to_thread(self.backend.close)


def _log_failure(future: asyncio.Future[Any], name: str) -> None:
    if future.cancelled():
        return
    exc = future.exception()
    if exc is not None:  # its type only: a message could quote what was said
        log.error("store: %s failed: %s", name, type(exc).__name__)
