"""One worker: a process with its own models that assesses calls one at a time through the
live service's own path.

Each worker holds an ``AssistService`` (the VAD, Whisper and text models, loaded once) and
plays each recording into ``service.open_call`` / ``run_call`` exactly as a protocol adapter
does with a live line, only as fast as the CPU goes: media time is the clock, so the cues
and the scorecard are the live ones. Its records go to an in-memory store and come back to
the parent, which alone writes the real store. On the CPU one worker per core (separate
processes: the pipeline's Python is not held back by the GIL of the others) with one
recognition thread each; on a GPU (``--device cuda``) each worker's pool sends the call's
utterances in batches (``asr.max_batch``).
"""

from __future__ import annotations

import asyncio
import copy
import logging
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from assist.assess.decode import DecodedCall, RecordingError, decode_pair, decode_stereo, file_time
from assist.config import Settings
from assist.protocols.runner import open_call, run_call
from assist.service import AssistService
from assist.session import exception_summary
from assist.store import MemoryStore
from assist.vocabulary import CallSpec

log = logging.getLogger(__name__)

CHUNK_S = 0.5  # audio handed to the session at once (results don't depend on it: media time)
PROTOCOL = "assess"


@dataclass(frozen=True, slots=True)
class CallJob:
    """One call to assess: its files, ids, the start known from its name or CSV (else
    None: the recording's metadata or file time) and which stereo channel is the customer."""

    call_id: str
    agent_id: str
    stereo: str | None
    customer: str | None
    agent: str | None
    started_at: float | None
    customer_channel: str = "left"


@dataclass(slots=True)
class CallOutcome:
    """What a worker brings back: the call's stored record and saved state (``error`` is
    None), or why the call couldn't be assessed (``error``: the message; ``broken``: the
    recording itself)."""

    job: CallJob
    record: dict[str, Any] | None = None
    state: dict[str, Any] | None = None
    started_at: float = 0.0
    duration_s: float = 0.0
    wall_s: float = 0.0
    error: str | None = None
    broken: bool = False
    timings: dict[str, float] = field(default_factory=dict)


def offline_settings(settings: Settings, device: str | None = None) -> Settings:
    """The settings a worker runs calls with: the caller's, except what only a live line
    needs. Nothing waits for a person, so no utterance is too late to transcribe
    (``stale_after_s``, ``max_queue`` unbounded in effect; each call is a recording, which
    makes no partials); one recognition thread per worker process; records kept in memory."""
    data = settings.model_dump()
    data["asr"].update(
        workers=1, stale_after_s=1e9, max_queue=1_000_000, partial_max_waiting=1_000_000
    )
    if device:
        data["asr"]["device"] = device
    data["store"]["backend"] = "memory"
    data["store"]["retention_days"] = 0  # the records' dates are the recordings'
    data["limits"]["max_calls"] = max(data["limits"]["max_calls"], 1)
    return Settings(**data)


class CallAssessor:
    """A worker's service and event loop; ``assess`` one call at a time."""

    def __init__(self, settings: Settings) -> None:
        self._now = 0.0  # the wall clock the service stamps records with: the call's
        self._loop = asyncio.new_event_loop()
        # The service writes each call's record here (behind its store thread); this process
        # reads it back once the call has ended, and the parent writes the real store.
        self._records = MemoryStore(4)
        self.service = AssistService(settings, store=self._records, wall_clock=lambda: self._now)
        self._loop.run_until_complete(self.service.load_models())

    def close(self) -> None:
        """Stop the recognition pool and the text models, close the loop."""
        self._loop.run_until_complete(self.service.close())
        self._loop.close()

    def assess(self, job: CallJob) -> CallOutcome:
        """Decode and assess one call; a recording that can't be read comes back as an
        outcome with ``error`` (never raised), so a batch always goes on."""
        started = time.perf_counter()
        try:
            if job.stereo is not None:
                path = Path(job.stereo)
                audio = decode_stereo(path, job.customer_channel)
            else:
                assert job.customer is not None and job.agent is not None
                path = Path(job.customer)
                audio = decode_pair(path, Path(job.agent))
        except RecordingError as exc:
            return CallOutcome(
                job, error=str(exc), broken=True, wall_s=time.perf_counter() - started
            )
        decoded = time.perf_counter()
        started_at = job.started_at
        if started_at is None:
            started_at = audio.recorded_at if audio.recorded_at is not None else file_time(path)
        try:
            record, state = self._loop.run_until_complete(self._run(job, audio, started_at))
        except Exception as exc:  # a failure is this call's, never the batch's
            log.error("call %s failed: %s", job.call_id, exception_summary(exc))
            files = " + ".join(p for p in (job.stereo, job.customer, job.agent) if p)
            return CallOutcome(
                job,
                error=f"{files}: assessment failed ({exception_summary(exc)})",
                wall_s=time.perf_counter() - started,
            )
        done = time.perf_counter()
        return CallOutcome(
            job,
            record=record,
            state=state,
            started_at=started_at,
            duration_s=audio.duration_s,
            wall_s=done - started,
            timings={"decode_s": decoded - started, "assess_s": done - decoded},
        )

    async def _run(
        self, job: CallJob, audio: DecodedCall, started_at: float
    ) -> tuple[dict[str, Any], dict[str, Any] | None]:
        service = self.service
        self._now = started_at
        spec = CallSpec(
            job.call_id, job.agent_id, audio.sample_rate, "pcm16", ("customer", "agent"), live=False
        )
        session = await open_call(service, spec, PROTOCOL)
        rate = audio.sample_rate
        step = int(rate * CHUNK_S)
        samples = audio.samples

        async def reader(session: Any) -> None:
            for i in range(0, len(samples), step):
                session.push_audio(samples[i : i + step].tobytes())
                await session.room()  # as fast as the call is processed, nothing shed
            self._now = started_at + audio.duration_s  # the record's end

        await run_call(service, session, reader)  # returns once the record is written
        records = self._records
        record = copy.deepcopy(records.record(job.call_id))
        state = records.call_state(job.call_id)
        records.erase(job.call_id)
        assert record is not None
        return record, state


_assessor: CallAssessor | None = None  # the worker process's own (set by init_worker)


def init_worker(settings_data: dict[str, Any], log_level: int) -> None:
    """Process-pool initializer: load the models once per worker process. Ctrl-C is the
    parent's to handle (it stops the pool)."""
    global _assessor
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    logging.basicConfig(level=log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    _assessor = CallAssessor(Settings(**settings_data))


def assess_in_worker(job: CallJob) -> CallOutcome:
    """Process-pool task: assess ``job`` with this worker's models."""
    assert _assessor is not None, "init_worker was not run"
    return _assessor.assess(job)
