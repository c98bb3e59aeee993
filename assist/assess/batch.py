"""``assist assess``: a folder of recorded calls through the live pipeline, into the store,
and the team baseline report.

Discovery (``discover``) -> agent and start (``agents``) -> content hash and the resume
ledger (``ledger``: calls assessed before are skipped) -> workers (``worker``: one process
per core, each with its own models; one in-process worker when ``workers`` is 1) -> each
call's record and scorecard written to the store by this process alone -> the baseline
report (``report``) over the store's records, as JSON and HTML. A progress bar (tqdm)
shows calls done, hours of audio, speed (x real time) and the time left; files that can't
be assessed are logged and skipped, never stopping the batch.
"""

from __future__ import annotations

import contextlib
import json
import logging
import multiprocessing
import os
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from assist.assess.agents import AgentRule, AgentTable, AgentUnknown, CallOwner
from assist.assess.discover import discover
from assist.assess.ledger import Ledger, call_id_for, content_hash
from assist.assess.report import baseline_report, report_page
from assist.assess.worker import (
    PROTOCOL,
    CallAssessor,
    CallJob,
    CallOutcome,
    assess_in_worker,
    init_worker,
    offline_settings,
)
from assist.config import Settings
from assist.events import Nudge, Transcript
from assist.service import open_store

log = logging.getLogger(__name__)


class _Records(Protocol):
    """What this module needs of the blocking record backend ``open_store`` returns."""

    def call_started(
        self, call_id: str, agent_id: str, protocol: str, started_at: float, media_start_s: float
    ) -> int: ...
    def add_transcript(self, call_id: str, transcript: Transcript) -> None: ...
    def add_nudge(self, call_id: str, nudge: Nudge) -> None: ...
    def call_ended(
        self, call_id: str, scorecard: dict[str, Any], ended_at: float, state: dict[str, Any] | None
    ) -> None: ...
    def record(self, call_id: str) -> dict[str, Any] | None: ...
    def erase(self, call_id: str) -> bool: ...
    def export(self, since: float | None = None) -> Iterator[dict[str, Any]]: ...
    def close(self) -> None: ...


@dataclass
class AssessOptions:
    """One ``assist assess`` run. ``agent_rule``/``agents_csv``: where agent ids come from
    (neither: ``[assess] agent_rule``); ``workers`` 0: ``[assess] workers``, 0 there: one per
    core; ``since``: epoch seconds for the report's change section; ``ledger`` None: the
    ``[assess] ledger`` setting; ``device``: ``asr.device`` for this run."""

    paths: list[Path]
    agent_rule: str | None = None
    agents_csv: Path | None = None
    workers: int = 0
    since: float | None = None
    out_dir: Path | None = None
    ledger: Path | None = None
    device: str | None = None
    progress: bool = True


@dataclass
class AssessSummary:
    """What a run did: calls found, assessed now, skipped as assessed before, and the ones
    that could not be assessed (with why); audio and wall seconds of this run's
    assessment; the report files."""

    found: int = 0
    assessed: list[str] = field(default_factory=list)  # call ids
    already: list[str] = field(default_factory=list)  # call ids in the ledger
    problems: list[str] = field(default_factory=list)  # skipped: one message each
    audio_s: float = 0.0
    wall_s: float = 0.0
    report: dict[str, Any] | None = None
    report_json: Path | None = None
    report_html: Path | None = None

    @property
    def speed(self) -> float | None:
        """Audio seconds assessed per wall second (x real time), None before any call."""
        return self.audio_s / self.wall_s if self.wall_s > 0 and self.audio_s else None


def _ledger_path(settings: Settings, override: Path | None) -> Path | None:
    if override is not None:
        return override
    if settings.assess.ledger:
        return Path(settings.assess.ledger).expanduser()
    if settings.store.backend == "sqlite":
        return Path(settings.store.path).expanduser().with_name("assessed.jsonl")
    return None  # an in-memory store forgets its records: nothing to resume


def _save(store: _Records, outcome: CallOutcome) -> None:
    """The call's record into the store through its public interface (as a live call's)."""
    record = outcome.record
    assert record is not None
    call_id = record["call_id"]
    store.call_started(call_id, record["agent_id"], PROTOCOL, outcome.started_at, 0.0)
    for transcript in record["transcripts"]:
        store.add_transcript(call_id, Transcript.model_validate(transcript))
    for nudge in record["nudges"]:
        store.add_nudge(call_id, Nudge.model_validate(nudge))
    store.call_ended(
        call_id, record["scorecard"], outcome.started_at + outcome.duration_s, outcome.state
    )


def _jobs(
    options: AssessOptions,
    settings: Settings,
    store: _Records,
    ledger: Ledger,
    summary: AssessSummary,
) -> tuple[list[CallJob], dict[str, str]]:
    """The calls to assess now, and each one's content hash by call id."""
    calls, problems = discover(options.paths, settings.assess.pair_rule)
    summary.found = len(calls)
    summary.problems += problems
    owners: AgentTable | AgentRule = (
        AgentTable(options.agents_csv)
        if options.agents_csv is not None
        else AgentRule(options.agent_rule or settings.assess.agent_rule)
    )
    jobs: list[CallJob] = []
    hashes: dict[str, str] = {}
    for call in calls:
        try:
            owner: CallOwner = owners.owner(call)
            digest = content_hash(call.paths)
        except (AgentUnknown, OSError) as exc:
            summary.problems.append(f"{exc} (skipped)")
            continue
        call_id = call_id_for(call.name, digest)
        entry = ledger.get(digest)
        record = store.record(entry["call_id"]) if entry else None
        if entry is not None and record is not None and record["status"] == "ended":
            summary.already.append(entry["call_id"])
            continue
        if call_id in hashes:  # the same recording twice in this run
            summary.problems.append(f"{call.describe()}: same content as call {call_id} (skipped)")
            continue
        stale = store.record(call_id)
        if stale is not None:  # cut short while being written: assessed again from scratch
            store.erase(call_id)
        hashes[call_id] = digest
        jobs.append(
            CallJob(
                call_id,
                owner.agent_id,
                str(call.stereo) if call.stereo else None,
                str(call.customer) if call.customer else None,
                str(call.agent) if call.agent else None,
                owner.started_at,
                settings.assess.customer_channel,
            )
        )
    return jobs, hashes


def _outcomes(jobs: list[CallJob], settings: Settings, workers: int) -> Iterator[CallOutcome]:
    """Each job's outcome as it completes: in this process (one worker) or a spawned pool."""
    if not jobs:
        return  # no models to load
    if workers <= 1:
        assessor = CallAssessor(settings)
        try:
            for job in jobs:
                yield assessor.assess(job)
        finally:
            assessor.close()
        return
    yield from _pool_outcomes(jobs, settings, workers)


# How often the pool loop looks for a Ctrl-C while no call completes (seconds).
_CTRL_C_POLL_S = 0.2


@dataclass
class _CtrlC:
    """Whether Ctrl-C (SIGINT) was pressed while ``_ctrl_c_deferred`` was in force."""

    pressed: bool = False


@contextlib.contextmanager
def _ctrl_c_deferred() -> Iterator[_CtrlC]:
    """Ctrl-C marks the returned flag instead of raising ``KeyboardInterrupt`` wherever the
    main thread happens to be; a second Ctrl-C raises at once (the user insists).

    Why: the pool loop's main thread spends its time inside a ``threading.Condition`` wait,
    and a ``KeyboardInterrupt`` raised there just after the condition released its lock
    surfaces as "RuntimeError: release unlocked lock" (CPython 3.11, seen in CI) instead of a
    clean stop. The loop checks the flag between short waits and raises ``KeyboardInterrupt``
    itself, outside any lock. Off the main thread (no signals arrive there) nothing changes.
    """
    flag = _CtrlC()
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return

    def on_sigint(signum: int, frame: object) -> None:
        if flag.pressed:
            raise KeyboardInterrupt
        flag.pressed = True  # a plain attribute: no lock taken inside a signal handler

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        yield flag
    finally:
        signal.signal(signal.SIGINT, previous)


def _as_completed(futures: Iterable[Future[Any]], ctrl_c: _CtrlC) -> Iterator[Future[Any]]:
    """``futures`` as they complete, like ``concurrent.futures.as_completed``; raises
    ``KeyboardInterrupt`` (outside any lock) once ``ctrl_c`` is pressed."""
    pending = set(futures)
    while pending:
        done, pending = wait(pending, timeout=_CTRL_C_POLL_S, return_when=FIRST_COMPLETED)
        if ctrl_c.pressed:
            raise KeyboardInterrupt
        yield from done


def _pool_outcomes(jobs: list[CallJob], settings: Settings, workers: int) -> Iterator[CallOutcome]:
    """The jobs on ``workers`` spawned processes, outcomes as they complete.

    A worker process that dies (killed, out of memory, a crash inside a decoder) breaks its
    pool: the calls left unanswered run again in a fresh pool. Calls that break a second pool
    too run one at a time, so the one whose worker dies every time is found, reported and
    skipped while the others are assessed: no recording stops the batch.
    """
    context = multiprocessing.get_context("spawn")
    initargs = (settings.model_dump(), logging.getLogger("assist").getEffectiveLevel())

    def pool(size: int) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(
            size, mp_context=context, initializer=init_worker, initargs=initargs
        )

    strikes: Counter[CallJob] = Counter()  # pools a job was unanswered in
    queue = list(jobs)
    with _ctrl_c_deferred() as ctrl_c:
        while queue:
            suspects = [job for job in queue if strikes[job] >= 2]
            batch = suspects or queue
            executor = pool(1 if suspects else min(workers, len(batch)))
            try:
                if suspects:  # one at a time: a dead worker names its call
                    for job in suspects:
                        try:
                            submitted = executor.submit(assess_in_worker, job)
                            outcome = next(_as_completed([submitted], ctrl_c)).result()
                        except BrokenProcessPool:
                            outcome = _worker_died(job)
                            executor.shutdown(wait=True)
                            executor = pool(1)
                        queue.remove(job)
                        yield outcome
                    continue
                futures = {executor.submit(assess_in_worker, job): job for job in batch}
                unanswered: list[CallJob] = []
                for future in _as_completed(futures, ctrl_c):
                    try:
                        outcome = future.result()
                    except BrokenProcessPool:
                        unanswered.append(futures[future])
                        continue
                    yield outcome
                strikes.update(unanswered)
                queue = unanswered
                if unanswered:
                    log.warning("a worker process died: %d call(s) run again", len(unanswered))
            except BaseException:  # Ctrl-C, or the caller stopped: the calls in flight are lost
                executor.shutdown(wait=False, cancel_futures=True)
                for child in multiprocessing.active_children():
                    child.terminate()
                raise
            finally:
                executor.shutdown(wait=True)
        if ctrl_c.pressed:  # pressed while the last outcome was being stored
            raise KeyboardInterrupt


def _worker_died(job: CallJob) -> CallOutcome:
    """The outcome of ``job`` when its worker process died assessing it, every time."""
    files = " + ".join(p for p in (job.stereo, job.customer, job.agent) if p)
    return CallOutcome(job, error=f"{files}: its worker process died assessing it", broken=True)


def assess(
    options: AssessOptions,
    settings: Settings,
    on_call: Callable[[CallOutcome], None] | None = None,
) -> AssessSummary:
    """Run ``options`` (module docstring). ``on_call`` sees each outcome once it is stored
    (an exception from it stops the run like Ctrl-C: the calls stored so far stay, and the
    next run skips them). Raises ``ValueError`` for a bad agent rule, pair rule or CSV."""
    summary = AssessSummary()
    store: _Records = open_store(settings)
    ledger = Ledger(_ledger_path(settings, options.ledger))
    try:
        jobs, hashes = _jobs(options, settings, store, ledger, summary)
        for problem in summary.problems:
            log.warning("%s", problem)
        if summary.already:
            log.info(
                "%d call(s) assessed before: skipped (ledger %s)", len(summary.already), ledger.path
            )
        workers = min(
            options.workers or settings.assess.workers or os.cpu_count() or 1, max(1, len(jobs))
        )
        started = time.perf_counter()
        with (
            logging_redirect_tqdm(),
            tqdm(total=len(jobs), unit="call", disable=not options.progress or not jobs) as bar,
        ):
            for outcome in _outcomes(jobs, offline_settings(settings, options.device), workers):
                if outcome.error is not None:
                    summary.problems.append(f"{outcome.error} (skipped)")
                    log.warning("%s (skipped)", outcome.error)
                else:
                    _save(store, outcome)
                    call_id = outcome.job.call_id
                    ledger.add(
                        {
                            "hash": hashes[call_id],
                            "call_id": call_id,
                            "agent_id": outcome.job.agent_id,
                            "files": [
                                p
                                for p in (
                                    outcome.job.stereo,
                                    outcome.job.customer,
                                    outcome.job.agent,
                                )
                                if p
                            ],
                            "duration_s": round(outcome.duration_s, 3),
                            "assessed_at": time.time(),
                        }
                    )
                    summary.assessed.append(call_id)
                    log.info(
                        "assessed %s (agent %s): %.1f s of audio in %.1f s",
                        call_id,
                        outcome.job.agent_id,
                        outcome.duration_s,
                        outcome.wall_s,
                    )
                    summary.audio_s += outcome.duration_s
                summary.wall_s = time.perf_counter() - started
                bar.update(1)
                bar.set_postfix(
                    audio=f"{summary.audio_s / 3600:.2f} h",
                    speed=f"{summary.speed or 0:.1f}x",
                    skipped=len(summary.problems),
                )
                if on_call is not None:
                    on_call(outcome)
        records = list(store.export())
    finally:
        store.close()
    summary.report = baseline_report(records, options.since, time.time())
    out = options.out_dir or Path(settings.assess.report_dir).expanduser()
    out.mkdir(parents=True, exist_ok=True)
    summary.report_json = out / "baseline.json"
    summary.report_html = out / "baseline.html"
    summary.report_json.write_text(json.dumps(summary.report, indent=2) + "\n", encoding="utf-8")
    summary.report_html.write_text(report_page(summary.report), encoding="utf-8")
    return summary
