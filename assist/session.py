"""CallSession: the asyncio shell around one call's pure pipeline.

A protocol adapter pushes audio and control events (never blocking: the ingest queue is
bounded and drops the oldest audio); ``run()`` drains the queue through the pipeline and
publishes nudges, floor state and alerts to the hub until the input ends, then returns
the scorecard. The adapter runs ``run()`` in the call's TaskGroup next to its reader.

With an ASR pool, each utterance the pipeline cuts is submitted to the pool; its result
comes back as a future callback on the loop and goes through ``pipeline.on_transcript``
(transcript events, pace). Each final with text then goes to the text models (their own
thread) and their scores through ``pipeline.on_scores`` (negative phrasing, frustration).
``run()`` waits for every outstanding utterance and verdict (the pool always answers, shed
or not) before the scorecard is final.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any, TypeVar, cast

from assist.asr.pool import AsrPool, AsrResult
from assist.config import Settings
from assist.events import Transcript
from assist.floor import FloorView
from assist.hub import Hub
from assist.ingest import Audio, Gap, Hold, IngestQueue
from assist.metrics import ServiceMetrics
from assist.pipeline import CallPipeline, PipelineOutput
from assist.store import CallStore
from assist.text.classify import LiveTextJudge
from assist.vad.stream import VadScorer
from assist.vocabulary import CallSpec, Role, TextScores, UtteranceAudio

log = logging.getLogger(__name__)
T = TypeVar("T")

# Items processed before yielding to the event loop, so one call with a backlog can't
# starve the sockets of the others.
ITEMS_PER_YIELD = 25


class CallSession:
    """One live call: its ingest queue, its pipeline and what it publishes."""

    def __init__(
        self,
        spec: CallSpec,
        settings: Settings,
        vad_model: VadScorer,
        hub: Hub,
        metrics: ServiceMetrics,
        clock: Callable[[], float],
        asr_pool: AsrPool | None = None,
        store: CallStore | None = None,
        text_judge: LiveTextJudge | None = None,
    ) -> None:
        self.spec = spec
        text = asr_pool is not None and text_judge is not None
        self.pipeline = CallPipeline(settings, vad_model, spec, asr=asr_pool is not None, text=text)
        self._asr = asr_pool
        self._text = text_judge if text else None
        self._store = store
        self._checkpoint_every_s = settings.store.checkpoint_every_s
        self._next_checkpoint_s = self._checkpoint_every_s
        self._outstanding: set[asyncio.Future[Any]] = set()  # transcripts, verdicts
        self.floor = FloorView(settings.floor, spec.call_id, spec.agent_id)
        self._hub = hub
        self._metrics = metrics
        self._clock = clock
        max_samples = int(settings.limits.ingest_queue_s * spec.sample_rate)
        self._queue = IngestQueue(max_samples)
        self._wakeup = asyncio.Event()
        self._input_ended = False

    # called by the adapter (never blocks) ----------------------------------------

    def push_audio(self, payload: bytes) -> None:
        """Queue one frame. Raises ``AudioFormatError`` for a partial sample."""
        samples = self.spec.samples_in(payload)
        before = self._queue.dropped_samples
        self._queue.push(Audio(payload, samples, self._clock()))
        dropped = self._queue.dropped_samples - before
        if dropped:
            self._metrics.audio_dropped_seconds.inc(dropped / self.spec.sample_rate)
        self._wakeup.set()

    def push_gap(self, samples: int) -> None:
        """Audio the platform paused or discarded: media time moves on, nothing to hear."""
        if samples > 0:
            self._queue.push(Gap(samples))
            self._wakeup.set()

    def push_hold(self, on: bool) -> None:
        self._queue.push(Hold(on))
        self._wakeup.set()

    def end_input(self) -> None:
        self._input_ended = True
        self._wakeup.set()

    # the call's processing task ----------------------------------------------------

    async def run(self) -> dict[str, Any]:
        """Process until the input has ended and the queue is empty; return the scorecard."""
        self._hub.call_changed(self.floor.state(self.pipeline.snapshot()))
        try:
            while True:
                for _ in range(ITEMS_PER_YIELD):
                    item = self._queue.pop()
                    if item is None:
                        break
                    self._process(item)
                if len(self._queue):
                    await asyncio.sleep(0)  # a yield, not a timer
                    continue
                if self._input_ended:
                    self._publish(self.pipeline.finish())
                    # The pool answers every request; a transcript's answer may start a
                    # verdict (added by its done callback, which runs before we resume).
                    while self._outstanding:
                        await asyncio.gather(*self._outstanding, return_exceptions=True)
                    break
                self._wakeup.clear()
                await self._wakeup.wait()
        finally:
            self._hub.call_ended(self.spec.call_id, self.spec.agent_id)
            for reason, count in self.pipeline.policy.suppressed.items():
                self._metrics.nudges_suppressed.inc(count, reason=reason)
        return self.pipeline.scorecard()

    def _process(self, item: Audio | Gap | Hold) -> None:
        pipeline = self.pipeline
        if isinstance(item, Audio):
            output = pipeline.feed_audio(item.payload)
            self._metrics.audio_seconds.inc(item.samples / self.spec.sample_rate)
            self._metrics.processing_lag.observe(self._clock() - item.arrived)
        elif isinstance(item, Gap):
            output = pipeline.feed_gap(item.samples)
        else:
            output = pipeline.set_hold(item.on)
        self._publish(output)

    def _submit(self, utterance: UtteranceAudio) -> None:
        if self._asr is None:
            return
        submitted = self._clock()

        def transcribed(result: AsrResult) -> None:
            if result.status != "ok" or result.recognized is None:
                return
            if utterance.final:
                self._metrics.asr_final_seconds.observe(self._clock() - submitted)
            output = self.pipeline.on_transcript(utterance, result.recognized)
            self._publish(output)
            for transcript in output.transcripts:
                if self.pipeline.judgeable(transcript):
                    self._judge(transcript)

        self._follow(self._asr.submit(self.spec.call_id, utterance), transcribed, "a transcript")

    def _judge(self, transcript: Transcript) -> None:
        """Send a final transcript to the text models; their verdict comes back here."""
        if self._text is None:
            return

        def scored(scores: TextScores) -> None:
            self._publish(self.pipeline.on_scores(transcript, scores))

        future = self._text.judge(cast(Role, transcript.channel), transcript.text)
        self._follow(future, scored, "text scores")

    def _follow(self, future: asyncio.Future[T], handle: Callable[[T], None], what: str) -> None:
        """Keep ``future`` outstanding (``run()`` waits for it) until it answers, then
        ``handle`` its result on the loop; a failure is logged, never raised into the loop."""
        self._outstanding.add(future)

        def done(f: asyncio.Future[T]) -> None:
            self._outstanding.discard(f)
            try:
                handle(f.result())
            except Exception:
                log.exception("call %s: handling %s failed", self.spec.call_id, what)

        future.add_done_callback(done)

    def _publish(self, output: PipelineOutput) -> None:
        metrics = self._metrics
        for finding in output.findings:
            metrics.findings.inc(kind=finding.kind)
        store = self._store
        for nudge in output.nudges:
            metrics.nudges.inc(kind=nudge.kind, severity=nudge.severity)
            if store is not None:
                store.add_nudge(self.spec.call_id, nudge)
            self._hub.to_agent(self.spec.agent_id, nudge)
            log.info(
                "call %s nudge %s at %.2fs: %s",
                self.spec.call_id,
                nudge.kind,
                nudge.media_time_s,
                nudge.evidence.explanation,
            )
        for transcript in output.transcripts:
            metrics.transcripts.inc(channel=transcript.channel, final=str(transcript.final).lower())
            self._hub.to_agent(self.spec.agent_id, transcript)
            if transcript.final and store is not None:
                store.add_transcript(self.spec.call_id, transcript)
        for utterance in output.utterances:
            self._submit(utterance)
        for alert in self.floor.alerts_for(output.nudges):
            self._hub.to_floor(alert)
        if output.state_changed or output.nudges:
            self._hub.call_changed(self.floor.state(self.pipeline.snapshot()))
        if store is not None and self.pipeline.media_time_s >= self._next_checkpoint_s:
            # A crash keeps the call's record up to here (status cut_off).
            store.checkpoint(self.spec.call_id, self.pipeline.scorecard())
            self._next_checkpoint_s += self._checkpoint_every_s
