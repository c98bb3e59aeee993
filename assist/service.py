"""The process-wide service: settings, models, hub, store, metrics and the live calls.

Everything a connection needs is reached through one ``AssistService``; nothing is kept
on module globals, so several services (tests, benchmarks) can run in one process.
Models load in ``load_models`` (from local files, off the event loop), never at import.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from assist.asr.pool import AsrPool
from assist.config import Settings
from assist.events import FeedbackMessage
from assist.hub import Hub
from assist.metrics import ServiceMetrics
from assist.session import CallSession
from assist.store import CallStore, MemoryStore
from assist.store.sqlite import SqliteStore
from assist.text.classify import LiveTextJudge, TextClassifier
from assist.vad.silero import SileroModel
from assist.vocabulary import CallSpec

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


def open_store(settings: Settings) -> CallStore:
    if settings.store.backend == "memory":
        return MemoryStore(settings.limits.scorecards_kept)
    return SqliteStore(settings.store.path)


class AssistService:
    def __init__(
        self,
        settings: Settings,
        clock: Callable[[], float] = time.monotonic,
        store: CallStore | None = None,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.wall_clock = wall_clock  # epoch seconds: signed timestamps, records, retention
        self.hub = Hub(settings.limits.subscriber_queue)
        self.metrics = ServiceMetrics()
        self.store: CallStore = store or open_store(settings)
        self._pruned_at: float | None = None
        self.apply_retention()
        self.vad_model: SileroModel | None = None
        self.asr_pool: AsrPool | None = None
        self.asr_info: dict[str, Any] = {"enabled": settings.asr.enabled}
        self.text_judge: LiveTextJudge | None = None
        self.text_info: dict[str, Any] = {"enabled": False}
        self.live: dict[str, CallSession] = {}

    @property
    def ready(self) -> bool:
        return self.vad_model is not None

    async def load_models(self) -> None:
        """Load every model from local files (off the event loop); then the service is ready."""
        started = time.perf_counter()
        vad_model = await asyncio.to_thread(SileroModel)
        if self.settings.asr.enabled:
            self.asr_pool = await asyncio.to_thread(self._start_asr)
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
                h.path.stem: {"path": str(h.path), "model_threshold": h.threshold} for h in heads
            },
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
        max_batch = cfg.max_batch if loaded.device == "cuda" else 1
        pool = AsrPool(
            WhisperRecognizer(loaded, cfg.beam_size),
            workers=workers,
            max_batch=max_batch,
            max_queue=cfg.max_queue,
            stale_after_s=cfg.stale_after_s,
            partial_stale_after_s=cfg.partial_stale_after_s,
            clock=self.clock,
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
            "load_s": round(loaded.load_s, 2),
        }
        return pool

    def apply_retention(self) -> None:
        """Delete call records older than ``store.retention_days``: at start, then at most
        once an hour as calls open, so a server that runs for weeks keeps to it too."""
        days = self.settings.store.retention_days
        now = self.wall_clock()
        if not days or (self._pruned_at is not None and now - self._pruned_at < 3600):
            return
        self._pruned_at = now
        pruned = self.store.prune(now - days * 86400)
        if pruned:
            log.info("deleted %d call record(s) older than %d days", pruned, days)

    def close(self) -> None:
        if self.asr_pool is not None:
            self.asr_pool.close()
        if self.text_judge is not None:
            self.text_judge.close()
        self.store.close()

    def health(self) -> dict[str, Any]:
        return {
            "status": "ok" if self.ready else "loading",
            "models": {"vad": str(self.vad_model.path) if self.vad_model else None},
            "asr": self.asr_info,
            "text": self.text_info,
            "calls_active": len(self.live),
        }

    def open_call(self, spec: CallSpec, protocol: str) -> CallSession:
        if self.vad_model is None:
            raise CallRefused("not_ready", "models are still loading; retry shortly")
        if spec.call_id in self.live:
            raise CallRefused("call_id_in_use", f"call {spec.call_id} is already live")
        if len(self.live) >= self.settings.limits.max_calls:
            raise CallRefused("at_capacity", f"{len(self.live)} calls live, the configured maximum")
        self.apply_retention()
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
        )
        self.store.call_started(spec.call_id, spec.agent_id, protocol, self.wall_clock())
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

    def close_call(self, session: CallSession, scorecard: dict[str, Any]) -> None:
        """The call is over (any close path): keep its scorecard, forget the session."""
        call_id = session.spec.call_id
        self.store.call_ended(call_id, scorecard, self.wall_clock())
        self.live.pop(call_id, None)
        self.metrics.calls_active.set(len(self.live))
        log.info(
            "call %s ended after %.1fs media, %d nudges, %.2fs audio lost",
            call_id,
            session.pipeline.media_time_s,
            session.pipeline.policy.sent,
            session.pipeline.samples_lost / session.spec.sample_rate,
        )

    def feedback(self, agent_id: str, message: FeedbackMessage) -> bool:
        """An agent's "got it" / "snooze" / "not right" on a nudge of one of their calls;
        False (nothing stored) when the live call is another agent's."""
        session = self.live.get(message.call_id)
        if session is not None and session.spec.agent_id != agent_id:
            return False  # not this agent's call
        self.metrics.feedback.inc(kind=message.kind.value, action=message.action)
        self.store.add_feedback(
            message.call_id, message.nudge_id, message.kind, message.action, self.wall_clock()
        )
        if message.action == "snooze" and session is not None:
            until = session.pipeline.media_time_s + self.settings.access.snooze_s
            session.pipeline.policy.snooze(message.kind, until)
        return True

    def today_totals(self) -> dict[str, Any]:
        """Per agent since local midnight: calls and nudges (for the floor view)."""
        midnight = datetime.fromtimestamp(self.wall_clock()).replace(
            hour=0, minute=0, second=0, microsecond=0
        )
        agents: dict[str, dict[str, int]] = {}
        for record in self.store.export(since=midnight.timestamp()):
            entry = agents.setdefault(record["agent_id"], {"calls": 0, "nudges": 0})
            entry["calls"] += 1
            entry["nudges"] += len(record["nudges"])
        return {"since": midnight.isoformat(), "agents": agents}

    def records_since(self, days: float) -> list[dict[str, Any]]:
        since = self.wall_clock() - days * 86400
        return list(self.store.export(since=since))

    def refresh_gauges(self) -> None:
        counts = self.hub.subscriber_counts()
        for stream, count in counts.items():
            self.metrics.subscribers.set(count, stream=stream)
        pool = self.asr_pool
        if pool is not None:
            self.metrics.asr_queue.set(pool.queue_length)
            # the pool keeps these counts; the metrics read them at scrape time
            self.metrics.asr_shed.mirror(pool.shed)
            self.metrics.asr_batches.mirror(pool.batches)
