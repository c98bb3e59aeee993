"""The process-wide service: settings, models, hub, store, metrics and the live calls.

Everything a connection needs is reached through one ``AssistService``; nothing is kept
on module globals, so several services (tests, benchmarks) can run in one process.
Models load in ``load_models`` (from local files, off the event loop), never at import.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import socket
import time
from collections import OrderedDict
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, cast

from assist.asr.pool import AsrPool
from assist.asr.priority import run_lowered
from assist.config import Settings
from assist.events import AgentBound, FeedbackMessage
from assist.hub import Hub
from assist.legs import CallSoFar, stored_transcripts
from assist.metrics import ServiceMetrics
from assist.session import CallSession
from assist.store import CallStore, MemoryStore, RecordBackend
from assist.store.sqlite import SqliteStore
from assist.store.threaded import ThreadedStore
from assist.text.classify import LiveTextJudge, TextClassifier
from assist.vad.silero import SileroModel
from assist.vocabulary import CallSpec, CueKind

if TYPE_CHECKING:
    from assist.cluster.bus import ClusterHub

log = logging.getLogger(__name__)


RefusalReason = Literal["not_ready", "call_id_in_use", "at_capacity"]


class CallRefused(Exception):
    """The service can't take a call now. ``reason``: ``not_ready`` (models loading),
    ``at_capacity`` (``limits.max_calls`` live) or ``call_id_in_use`` (the id is live on
    another connection). Each protocol adapter answers it in its own wire terms."""

    def __init__(self, reason: RefusalReason, message: str) -> None:
        super().__init__(message)
        self.reason: RefusalReason = reason
        self.message = message


def open_store(settings: Settings) -> RecordBackend:
    """The blocking record backend ``[store] backend`` names: ``MemoryStore`` (the last
    ``limits.scorecards_kept`` calls) or ``SqliteStore`` at ``store.path`` (created, and
    migrated, on open). For the command line; the service wraps it (``ThreadedStore``).
    ``postgresql``: ``BlockingPostgres`` (the service itself uses ``PostgresStore``)."""
    if settings.store.backend == "memory":
        return MemoryStore(settings.limits.scorecards_kept)
    if settings.store.backend == "postgresql":
        from assist.store.postgresql import BlockingPostgres

        return cast(RecordBackend, BlockingPostgres(settings.store.dsn))
    return SqliteStore(settings.store.path)


class AssistService:
    """The process: settings, models, hub, store, metrics and the live calls.

    ``clock`` is monotonic seconds (queue waits, processing lag), ``wall_clock`` epoch
    seconds (records, signatures, retention); ``store`` replaces the one ``[store]`` names
    (a ``CallStore``, or a blocking ``RecordBackend`` to run behind a ``ThreadedStore``).
    The store is never used on the event loop's thread. Record retention is applied by
    ``load_models`` and hourly as calls open. Not ready for calls until ``load_models``.
    """

    def __init__(
        self,
        settings: Settings,
        clock: Callable[[], float] = time.monotonic,
        store: CallStore | RecordBackend | None = None,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.wall_clock = wall_clock  # epoch seconds: signed timestamps, records, retention
        # cluster mode ([cluster] bus): this worker's name on the bus and in the store
        self.worker_id = settings.cluster.worker_id or socket.gethostname()
        self.cluster: ClusterHub | None = None
        if settings.cluster.bus:
            from assist.cluster.bus import ClusterHub

            self.cluster = ClusterHub(
                settings.cluster,
                self.worker_id,
                settings.limits.subscriber_queue,
                clock,
                on_snooze=self._snooze_here,
                on_dead=self._worker_died,
            )
        self.hub: Hub = self.cluster or Hub(settings.limits.subscriber_queue)
        self._background: set[asyncio.Task[Any]] = set()
        self.metrics = ServiceMetrics()
        if store is None and settings.store.backend == "postgresql":
            from assist.store.postgresql import PostgresStore

            store = PostgresStore(
                settings.store.dsn,
                self.worker_id,
                settings.store.queue,
                self.metrics.store_queue_waits.inc,
            )
        store = open_store(settings) if store is None else store
        # a blocking backend (it says whether its reads may run concurrently) runs threaded
        self.store: CallStore = (
            ThreadedStore(
                cast(RecordBackend, store), settings.store.queue, self.metrics.store_queue_waits.inc
            )
            if hasattr(store, "concurrent_reads")
            else cast(CallStore, store)
        )
        self._pruned_at: float | None = None
        self.vad_model: SileroModel | None = None
        self.asr_pool: AsrPool | None = None
        self.asr_info: dict[str, Any] = {"enabled": settings.asr.enabled}
        self.text_judge: LiveTextJudge | None = None
        self.text_info: dict[str, Any] = {"enabled": False}
        self.live: dict[str, CallSession] = {}
        self._opening: set[str] = set()  # call ids between open_call's checks and live
        # set by shutdown(): live calls end (run_call), new ones are refused
        self.stopping = asyncio.Event()
        self._closing = 0  # calls whose end is being written
        self._no_calls = asyncio.Event()  # set while no call is live, opening or closing
        self._no_calls.set()
        # call id -> agent id bound before the call started (oldest first, at most max_calls)
        self._pending_agents: OrderedDict[str, str] = OrderedDict()

    @property
    def ready(self) -> bool:
        """Whether the models are loaded, so calls are accepted."""
        return self.vad_model is not None

    async def load_models(self) -> None:
        """Join the floor (cluster mode: the bus connects in the background, the PostgreSQL
        store opens and migrates), apply record retention, then load every model from local
        files (off the event loop); then the service is ready."""
        if self.cluster is not None:
            await self.cluster.start()
        if (open_store_now := getattr(self.store, "open", None)) is not None:
            await open_store_now()  # PostgreSQL: connect, migrate, cut off our own old calls
        if self.cluster is not None and hasattr(self.store, "live_workers"):
            self._in_background(self._cut_off_unheard_workers())
        await self.apply_retention()
        started = time.perf_counter()
        vad_model = await asyncio.to_thread(SileroModel)
        if self.settings.asr.enabled:
            # the recognizer's threads start below the loop's priority (assist.asr.priority)
            self.asr_pool = await run_lowered(self._start_asr, self.settings.asr.nice)
            if self.settings.text.enabled:
                self.text_judge = await asyncio.to_thread(self._load_text_models)
        self.vad_model = vad_model  # ready from here on
        log.info(
            "models loaded in %.2fs: vad=%s asr=%s text=%s",
            time.perf_counter() - started,
            vad_model.path,
            self.asr_info,
            self.text_info,
        )

    def _load_text_models(self) -> LiveTextJudge:
        cfg = self.settings.text
        folder = Path(cfg.models_dir).expanduser() if cfg.models_dir else None
        classifier = TextClassifier(folder, cfg.threads)
        heads = (classifier.negative_phrasing, classifier.frustration, classifier.empathy)
        self.text_info = {
            "enabled": True,
            "models": {
                h.path.stem: {
                    "path": str(h.path),
                    "model_threshold": h.threshold,
                    "second_opinion": str(h.second.path) if h.second else None,
                }
                for h in heads
            },
            "second_opinion_off": classifier.second_opinion_off,
        }
        return LiveTextJudge(classifier)

    def _start_asr(self) -> AsrPool:
        from assist.asr.model import load_model
        from assist.asr.whisper import WhisperRecognizer

        cfg = self.settings.asr
        cores = os.cpu_count() or 1
        workers = cfg.workers or (1 if cfg.device == "cuda" else cores)
        loaded = load_model(cfg.model, cfg.device, cfg.compute_type, cfg.cpu_threads, workers)
        if loaded.device == "cuda" and not cfg.workers:
            workers = 1  # one worker feeding big batches keeps a GPU busy
        max_batch = cfg.max_batch if loaded.device == "cuda" else cfg.cpu_max_batch
        pool = AsrPool(
            WhisperRecognizer.for_finals(
                loaded,
                cfg,
                lambda reason: self.metrics.asr_full_window_retries.inc(reason=reason),
            ),
            workers=workers,
            max_batch=max_batch,
            max_queue=cfg.max_queue,
            stale_after_s=cfg.stale_after_s,
            partial_stale_after_s=cfg.partial_stale_after_s,
            clock=self.clock,
            partial_max_waiting=cfg.partial_max_waiting,
            backchannel_max_s=cfg.backchannel_max_s,
        )
        pool.start()
        self.asr_info = {
            "enabled": True,
            "model": loaded.name,
            "path": str(loaded.path),
            "device": loaded.device,
            "compute_type": loaded.compute_type,
            "workers": workers,
            "max_batch": max_batch,
            "beam_size": cfg.beam_size,  # of finals; partials are greedy
            "window_floor_s": cfg.window_floor_s,
            "silence_tail": cfg.silence_tail and loaded.device == "cpu",
            "load_s": round(loaded.load_s, 2),
        }
        return pool

    async def apply_retention(self) -> None:
        """Delete call records older than ``store.retention_days``: at start, then at most
        once an hour as calls open, so a server that runs for weeks keeps to it too."""
        days = self.settings.store.retention_days
        now = self.wall_clock()
        if not days or (self._pruned_at is not None and now - self._pruned_at < 3600):
            return
        self._pruned_at = now
        pruned = await self.store.prune(now - days * 86400)
        if pruned:
            log.info("deleted %d call record(s) older than %d days", pruned, days)

    async def close(self) -> None:
        """Finish the store's queued writes and close it, then stop the ASR pool (waiting for
        its workers) and the text models, in worker threads. Cluster mode: leaves the bus
        first."""
        for task in list(self._background):
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        if self.cluster is not None:
            await self.cluster.close()
        await self.store.close()
        if self.asr_pool is not None:
            await asyncio.to_thread(self.asr_pool.close)
        if self.text_judge is not None:
            await asyncio.to_thread(self.text_judge.close)

    def health(self) -> dict[str, Any]:
        """The ``/healthz`` body: ``status`` (ok or loading), the VAD model path, the ASR and text
        model details, ``calls_active``, the ``store`` (backend, ok or failing, writes queued,
        the last error) and the ``bus`` (``embedded``, or the cluster's state: connected or
        not, the other workers heard, messages published, received and dropped)."""
        error = getattr(self.store, "error", None)  # the last write or read that failed
        store: dict[str, Any] = {
            "backend": self.settings.store.backend,
            "state": "ok" if error is None else "failing",
            "queued": getattr(self.store, "queued", None),
        }
        if error is not None:
            store["error"] = error
        return {
            "status": "ok" if self.ready else "loading",
            "models": {"vad": str(self.vad_model.path) if self.vad_model else None},
            "asr": self.asr_info,
            "text": self.text_info,
            "calls_active": len(self.live),
            "store": store,
            "bus": self.cluster.health() if self.cluster is not None else {"state": "embedded"},
        }

    def _snooze_here(self, call_id: str, kind: str) -> None:
        """A snooze that reached another worker, for a call of this one (cluster mode)."""
        session = self.live.get(call_id)
        if session is not None and kind in CueKind.__members__.values():
            until = session.pipeline.media_time_s + self.settings.access.snooze_s
            session.pipeline.policy.snooze(CueKind(kind), until)

    def _worker_died(self, worker_id: str, call_ids: list[str]) -> None:
        """Another worker is gone (cluster mode): its calls still ``live`` in a shared store
        become ``cut_off`` (whichever survivor gets there first; the others find none)."""
        cut_off = getattr(self.store, "cut_off_worker", None)
        if cut_off is None:
            return

        async def cut() -> None:
            try:
                ids = await cut_off(worker_id)
            except Exception as exc:
                log.error("worker %s: its calls could not be cut off: %s", worker_id, exc)
                return
            if ids:
                log.warning("worker %s: %d call(s) cut off in the store", worker_id, len(ids))

        self._in_background(cut())

    async def _cut_off_unheard_workers(self) -> None:
        """Once this worker has listened to the bus for ``dead_after_s``: the calls still
        ``live`` in the store of workers nobody hears (they died while no worker was up to
        notice) are cut off."""
        assert self.cluster is not None
        await self.cluster.joined.wait()
        await asyncio.sleep(self.settings.cluster.dead_after_s)  # every live worker heard
        heard = {self.worker_id, *self.cluster.registry.workers()}
        try:
            holding = await self.store.live_workers()  # type: ignore[attr-defined]
        except Exception as exc:
            log.error("live calls of unheard workers not checked: %s", exc)
            return
        for worker_id in holding:
            if worker_id not in heard and self.cluster.registry.listening:
                self._worker_died(worker_id, [])

    def _in_background(self, coroutine: Any) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def _calls_changed(self) -> None:
        if not self.live and not self._opening and not self._closing:
            self._no_calls.set()

    async def shutdown(self) -> None:
        """Stop taking calls and end every live one as if its client had ended it (its
        adapter says goodbye its protocol's way: ``run_call``); returns once every call's
        record and scorecard are written. Then ``close`` releases the rest."""
        if not self.stopping.is_set():
            log.info("shutting down: ending %d live call(s)", len(self.live) + len(self._opening))
        self.stopping.set()
        await self._no_calls.wait()

    def in_use(self, call_id: str) -> bool:
        """Whether ``call_id`` is live, or being opened (``open_call`` refuses it); in
        cluster mode also live on another worker of the floor."""
        elsewhere = self.cluster is not None and self.cluster.registry.owner(call_id)
        return call_id in self.live or call_id in self._opening or bool(elsewhere)

    async def open_call(
        self, spec: CallSpec, protocol: str, agent_known: bool = True
    ) -> CallSession:
        """A new live call: its ``CallSession``, registered, and its record started in the store.

        ``protocol`` names the adapter (native, twilio, l16, audiohook) for the metrics and the
        record. Raises ``CallRefused`` (``not_ready``, ``call_id_in_use``, ``at_capacity``).
        Whoever opens a call must end it with ``close_call`` (``run_call`` does), or it stays
        live. ``agent_known`` False: ``spec.agent_id`` is a placeholder, so the session keeps
        its nudges and transcripts for ``bind_agent``; an agent bound to the call id before it
        started replaces the placeholder.

        A call id with a record already (its stream stopped and started again: a restart, a
        reconnect, a transfer) opens the call's next leg: the record keeps everything earlier
        legs stored, and the session continues the call so far (``assist.legs``: media time,
        ids, scorecard).
        """
        if self.vad_model is None:
            raise CallRefused("not_ready", "models are still loading; retry shortly")
        if self.stopping.is_set():
            raise CallRefused("not_ready", "the server is shutting down; retry elsewhere")
        if self.in_use(spec.call_id):
            raise CallRefused("call_id_in_use", f"call {spec.call_id} is already live")
        if len(self.live) + len(self._opening) >= self.settings.limits.max_calls:
            raise CallRefused("at_capacity", f"{len(self.live)} calls live, the configured maximum")
        if not agent_known and spec.call_id in self._pending_agents:
            agent_id = self._pending_agents.pop(spec.call_id)
            spec = dataclasses.replace(spec, agent_id=agent_id)
            agent_known = True
        # The id is taken before the first await: a second opening of it is refused, and
        # the call counts towards max_calls while its record is read and started.
        self._opening.add(spec.call_id)
        self._no_calls.clear()
        try:
            return await self._open(spec, protocol, agent_known)
        finally:
            self._opening.discard(spec.call_id)
            self._calls_changed()

    async def _open(self, spec: CallSpec, protocol: str, agent_known: bool) -> CallSession:
        assert self.vad_model is not None
        await self.apply_retention()
        so_far = await self._call_so_far(spec.call_id)
        session = CallSession(
            spec,
            self.settings,
            self.vad_model,
            self.hub,
            self.metrics,
            self.clock,
            self.asr_pool,
            self.store,
            self.text_judge,
            agent_known=agent_known,
            so_far=so_far,
        )
        media_start_s = session.pipeline.leg_start_s
        leg = await self.store.call_started(
            spec.call_id, spec.agent_id, protocol, self.wall_clock(), media_start_s
        )
        if so_far is not None:
            log.info("call %s: leg %d from %.1fs media", spec.call_id, leg, media_start_s)
        self.live[spec.call_id] = session
        self.metrics.calls_total.inc(protocol=protocol)
        self.metrics.calls_active.set(len(self.live))
        log.info(
            "call %s started: agent=%s %s %d Hz channels=%s via %s",
            spec.call_id,
            spec.agent_id,
            spec.encoding,
            spec.sample_rate,
            ",".join(spec.channels),
            protocol,
        )
        return session

    async def _call_so_far(self, call_id: str) -> CallSoFar | None:
        """What the earlier legs of ``call_id`` left in the store, or None for a new call."""
        state = await self.store.call_state(call_id)
        record = await self.store.record(call_id)
        if record is None:
            return None
        if state is not None:
            try:
                return CallSoFar.from_json(state, stored_transcripts(record))
            except (ValueError, KeyError, TypeError) as exc:
                log.warning("call %s: unreadable saved state (%s): from its record", call_id, exc)
        return CallSoFar.from_record(record)  # e.g. a record from before calls had legs

    async def close_call(self, session: CallSession, scorecard: dict[str, Any]) -> None:
        """The call's leg is over (any close path): keep its scorecard (covering every leg)
        and the call so far for a next leg, forget the session. Returns once the record is
        written; the session is forgotten even when the caller is cancelled meanwhile (the
        write goes on). The call stops being live first (its id is free again: a next leg's
        reads queue after this write)."""
        call_id = session.spec.call_id
        state = session.pipeline.call_so_far().to_json()
        self.live.pop(call_id, None)
        self.metrics.calls_active.set(len(self.live))
        self._closing += 1
        try:
            await asyncio.shield(
                self.store.call_ended(call_id, scorecard, self.wall_clock(), state)
            )
        finally:
            self._closing -= 1
            self._calls_changed()
        log.info(
            "call %s ended after %.1fs media, %d nudges, %.2fs audio lost",
            call_id,
            session.pipeline.media_time_s,
            session.pipeline.policy.sent,
            session.pipeline.audio_lost_s,
        )

    async def bind_agent(self, call_id: str, agent_id: str) -> AgentBound:
        """The call ``call_id`` belongs to agent ``agent_id`` (learnt after the fact, e.g. from
        CTI events). A live call is rebound at once (``CallSession.bind_agent``) and its record
        follows (its stored nudges too when its agent was unknown; after a transfer they stay
        the first agent's); an ended call's record is corrected; an unknown call id is kept (the
        last ``limits.max_calls`` of them) and applied when a call with that id starts with no
        agent of its own. Event loop only."""
        session = self.live.get(call_id)
        previous: str | None
        if session is not None:
            placeholder = not session.agent_known
            previous = session.bind_agent(agent_id)
            # a placeholder's stored nudges become the agent's; a transfer's stay the first's
            await self.store.set_agent(call_id, agent_id, previous if placeholder else None)
            status: Literal["bound", "recorded", "pending"] = "bound"
        else:
            previous = await self.store.agent_of(call_id)
            if previous is not None and await self.store.set_agent(call_id, agent_id, previous):
                status = "recorded"
            else:
                status = "pending"
                self._pending_agents[call_id] = agent_id
                self._pending_agents.move_to_end(call_id)
                while len(self._pending_agents) > self.settings.limits.max_calls:
                    self._pending_agents.popitem(last=False)
        log.info("call %s: agent %s (was %s, %s)", call_id, agent_id, previous, status)
        return AgentBound(
            call_id=call_id, agent_id=agent_id, status=status, previous_agent_id=previous
        )

    async def agent_of(self, call_id: str) -> str | None:
        """Whose call ``call_id`` is: the live call's agent, else its record's; None for a
        call the service doesn't know."""
        session = self.live.get(call_id)
        if session is not None:
            return session.spec.agent_id
        if self.cluster is not None and (remote := self.cluster.live_calls.get(call_id)):
            return remote.agent_id  # live on another worker of the floor
        return await self.store.agent_of(call_id)

    async def feedback(self, agent_id: str, message: FeedbackMessage) -> bool:
        """An agent's "got it" / "snooze" / "not right" on a nudge of one of their calls, live
        or ended; False (nothing stored or counted) for a call that is unknown or another
        agent's, or a nudge id that is not one of the call's (``<call_id>-<n>``)."""
        if await self.agent_of(message.call_id) != agent_id:
            return False  # unknown, or not this agent's call
        if not message.nudge_id.startswith(f"{message.call_id}-"):
            return False
        session = self.live.get(message.call_id)
        self.metrics.feedback.inc(kind=message.kind.value, action=message.action)
        await self.store.add_feedback(
            message.call_id, message.nudge_id, message.kind, message.action, self.wall_clock()
        )
        if message.action == "snooze" and session is not None:
            until = session.pipeline.media_time_s + self.settings.access.snooze_s
            session.pipeline.policy.snooze(message.kind, until)
        elif message.action == "snooze" and self.cluster is not None:
            self.cluster.forward_snooze(message.call_id, message.kind.value)  # its worker's
        return True

    async def erase_call(self, call_id: str) -> Literal["erased", "unknown", "live"]:
        """Delete a call's record and every derived copy (transcripts, nudges, feedback,
        legs, saved state, scorecard) for a data-subject request: ``erased``; ``unknown``
        when there is no record; ``live`` (nothing deleted) while the call is live: erase it
        once it has ended. Event loop only."""
        if call_id in self.live or call_id in self._opening:
            return "live"
        self._pending_agents.pop(call_id, None)
        erased = await self.store.erase(call_id)
        log.info("call %s: record %s on request", call_id, "erased" if erased else "not found")
        return "erased" if erased else "unknown"

    async def today_totals(self) -> dict[str, Any]:
        """Per agent since local midnight: calls and nudges (for the floor view), from the
        calls' own columns (``CallStore.daily_totals``)."""
        midnight = datetime.fromtimestamp(self.wall_clock()).replace(
            hour=0, minute=0, second=0, microsecond=0
        )
        agents = await self.store.daily_totals(midnight.timestamp())
        return {"since": midnight.isoformat(), "agents": agents}

    async def summaries_since(self, days: float) -> list[dict[str, Any]]:
        """Every stored call started in the last ``days`` days (wall clock), oldest first, as
        summaries (metadata and scorecard, ``CallStore.summaries``): what reports read."""
        return await self.store.summaries(self.wall_clock() - days * 86400)

    def refresh_gauges(self) -> None:
        """Bring the scrape-time metrics up to date: subscribers per stream, the store's
        queue, the ASR queue length, and the ASR pool's shed and batch counts."""
        counts = self.hub.subscriber_counts()
        for stream, count in counts.items():
            self.metrics.subscribers.set(count, stream=stream)
        # writes waiting for the store (ThreadedStore.queued; a store without a queue: 0)
        self.metrics.store_queue.set(getattr(self.store, "queued", 0))
        pool = self.asr_pool
        if pool is not None:
            self.metrics.asr_queue.set(pool.queue_length)
            # the pool keeps these counts; the metrics read them at scrape time
            self.metrics.asr_shed.mirror(pool.shed)
            self.metrics.asr_batches.mirror(pool.batches)
