"""CallSession: the asyncio shell around one call's pure pipeline.

A protocol adapter pushes audio and control events without blocking: for a live line the
ingest queue is bounded and drops the oldest audio; a recording's adapter (``CallSpec.live``
False) instead awaits ``room()`` after each frame. ``run()`` drains the queue through the
pipeline and publishes nudges, floor state and alerts to the hub until the input ends,
then returns the scorecard. The adapter runs ``run()`` in the call's TaskGroup next to its reader.

With an ASR pool, each utterance the pipeline cuts is submitted to the pool; its result
comes back as a future callback on the loop and goes through ``pipeline.on_transcript``
(transcript events, pace). Each final with text then goes to the text models (their own
thread) and their scores through ``pipeline.on_scores`` (negative phrasing, frustration).
``run()`` waits for every outstanding utterance and verdict (the pool always answers, shed
or not) before the scorecard is final.

What goes to the store (nudges, finals, corrections, checkpoints) is queued on the session
in order and handed to the (async) ``CallStore`` by ``run()`` between batches of input; the
store's queue is bounded, so a slow disk makes this call wait, never the event loop.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import sys
from collections import deque
from collections.abc import Awaitable, Callable
from operator import methodcaller
from typing import Any, TypeVar, cast

from assist.asr.pool import AsrPool, AsrResult
from assist.config import Settings
from assist.events import Alert, CallState, Nudge, Transcript
from assist.floor import FloorView
from assist.hub import Hub
from assist.ingest import Audio, Gap, GapTooLong, Hold, IngestQueue
from assist.legs import CallSoFar
from assist.metrics import ServiceMetrics
from assist.pipeline import CallPipeline, PipelineOutput
from assist.store import CallStore
from assist.text.classify import LiveTextJudge
from assist.vad.stream import VadScorer
from assist.vocabulary import CallSpec, Role, TextScores, UtteranceAudio

log = logging.getLogger(__name__)
T = TypeVar("T")
Owned = TypeVar("Owned", Nudge, Alert, CallState)

# Items processed before yielding to the event loop, so one call with a backlog can't
# starve the sockets of the others.
ITEMS_PER_YIELD = 25
# A recording's reader (CallSpec.live False) waits while more transcripts and text verdicts
# than this are awaited: one final and its verdict, a partial or two, never a growing queue.
RECORDING_IN_FLIGHT = 4


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
        agent_known: bool = True,
        so_far: CallSoFar | None = None,
    ) -> None:
        self.spec = spec
        # While the agent is unknown (a placeholder id), nudges and final transcripts are
        # also kept here, at most limits.subscriber_queue of them, for bind_agent to deliver.
        self._unbound: deque[Nudge | Transcript] | None = (
            None if agent_known else deque(maxlen=settings.limits.subscriber_queue)
        )
        self.unbound_dropped = 0  # kept events pushed out by newer ones before binding
        text = asr_pool is not None and text_judge is not None
        # so_far: the call's earlier legs, when this stream is a later leg (assist.legs)
        self.pipeline = CallPipeline(
            settings, vad_model, spec, asr=asr_pool is not None, text=text, so_far=so_far
        )
        self._asr = asr_pool
        self._text = text_judge if text else None
        self._store = store
        # store writes in publishing order (a CallStore method and its arguments), handed to
        # the store by run(), which may wait
        self._writes: deque[Callable[[CallStore], Awaitable[None]]] = deque()
        self._debug_text = settings.logging.debug_text  # text in the log, at DEBUG only
        self._checkpoint_every_s = settings.store.checkpoint_every_s
        self._next_checkpoint_s = self._checkpoint_every_s
        self._outstanding: set[asyncio.Future[Any]] = set()  # transcripts, verdicts
        self.floor = FloorView(settings.floor, spec.call_id, spec.agent_id)
        self._hub = hub
        self._metrics = metrics
        self._clock = clock
        max_samples = int(settings.limits.ingest_queue_s * spec.sample_rate)
        # A recording is never shed: its reader waits in room() instead (CallSpec.live).
        self._queue = IngestQueue(max_samples if spec.live else sys.maxsize)
        self._backlog_samples = max_samples  # per channel
        self._room = asyncio.Event()  # set whenever the backlog may have shrunk
        self._finished = False
        self._max_gap_s = settings.limits.max_gap_s
        self._wakeup = asyncio.Event()
        self._input_ended = False
        self.ended_by_server = False  # the service shut down before the client ended the call

    # called by the adapter (the pushes never block; a recording's reader awaits room()) --

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
        """Audio the platform paused or discarded (``samples`` per channel at the line rate):
        media time moves on, nothing to hear; O(1) however long. Raises ``GapTooLong`` past
        ``limits.max_gap_s`` (nothing queued: the adapter ends the call)."""
        if samples > self._max_gap_s * self.spec.sample_rate:
            # seconds for the message, clamped: a claim may be too big for a float
            claimed_s = min(samples, 10**15) / self.spec.sample_rate
            raise GapTooLong(claimed_s, self._max_gap_s)
        if samples > 0:
            self._queue.push(Gap(samples))
            self._wakeup.set()

    def push_hold(self, on: bool) -> None:
        """Queue a CTI hold event, in order with the audio (hold events are never dropped)."""
        self._queue.push(Hold(on))
        self._wakeup.set()

    async def room(self) -> None:
        """Return once a recording's backlog has room for more input: at most ``[limits]
        ingest_queue_s`` of queued audio and ``RECORDING_IN_FLIGHT`` transcripts and verdicts
        awaited, so that its reader, waiting here, paces the sender to what the recognizer
        keeps up with and no audio is shed (``CallSpec.live`` False). Returns at once when
        the call has finished processing."""
        while not self._finished and (
            self._queue.queued_samples > self._backlog_samples
            or len(self._outstanding) > RECORDING_IN_FLIGHT
        ):
            self._room.clear()
            await self._room.wait()

    def end_input(self) -> None:
        """No more input: ``run()`` processes what is queued, then finishes the call."""
        self._input_ended = True
        self._wakeup.set()

    # the call's agent ----------------------------------------------------------------

    def bind_agent(self, agent_id: str) -> str:
        """The call belongs to ``agent_id`` from now on (learnt after it started, e.g. from
        CTI); returns the previous agent id. Nudges, alerts, the floor state and the scorecard
        carry the new id; the previous agent's streams get ``call_ended``. If the agent was
        unknown, the nudges and final transcripts kept since the start go to the new agent's
        streams, in order, after the call's state. Event loop only."""
        previous = self.spec.agent_id
        if agent_id == previous:
            return previous
        self.spec = dataclasses.replace(self.spec, agent_id=agent_id)
        self._hub.call_reassigned(self._state(), previous)
        kept, self._unbound = self._unbound, None
        for event in kept or ():
            self._hub.to_agent(agent_id, self._owned(event) if isinstance(event, Nudge) else event)
        if self.unbound_dropped:
            log.info(
                "call %s: %d early events were not kept for agent %s",
                self.spec.call_id,
                self.unbound_dropped,
                agent_id,
            )
        return previous

    @property
    def agent_known(self) -> bool:
        """Whether the call's agent id is its agent's (False: a placeholder, until bound)."""
        return self._unbound is None

    def scorecard(self) -> dict[str, Any]:
        """The pipeline's scorecard as of now, with the call's current agent id."""
        return {**self.pipeline.scorecard(), "agent_id": self.spec.agent_id}

    def _owned(self, message: Owned) -> Owned:
        """``message`` with the call's current agent id (the pipeline and the floor view keep
        the id the call started with)."""
        if message.agent_id == self.spec.agent_id:
            return message
        return message.model_copy(update={"agent_id": self.spec.agent_id})

    def _state(self) -> CallState:
        return self._owned(self.floor.state(self.pipeline.snapshot()))

    def _keep_unbound(self, event: Nudge | Transcript) -> None:
        if self._unbound is None:
            return
        if isinstance(event, Transcript) and event.corrected:  # replaces the one kept
            for i, kept in enumerate(self._unbound):
                if isinstance(kept, Transcript) and (kept.channel, kept.utterance_id) == (
                    event.channel,
                    event.utterance_id,
                ):
                    self._unbound[i] = event
            return
        if isinstance(event, Nudge) and event.corrected:
            for i, kept in enumerate(self._unbound):
                if isinstance(kept, Nudge) and kept.id == event.id:
                    self._unbound[i] = event
            return
        if len(self._unbound) == self._unbound.maxlen:
            self.unbound_dropped += 1
        self._unbound.append(event)

    # the call's processing task ----------------------------------------------------

    async def run(self) -> dict[str, Any]:
        """Process until the input has ended and the queue is empty; return the scorecard
        (every store write of the call queued by then)."""
        self._hub.call_changed(self._state())
        try:
            while True:
                for _ in range(ITEMS_PER_YIELD):
                    item = self._queue.pop()
                    if item is None:
                        break
                    self._process(item)
                self._room.set()
                await self._store_writes()
                if len(self._queue):
                    await asyncio.sleep(0)  # a yield, not a timer
                    continue
                if self._input_ended:
                    self._publish(self.pipeline.finish())
                    # The pool answers every request; a transcript's answer may start a
                    # verdict (added by its done callback, which runs before we resume).
                    while self._outstanding:
                        await asyncio.gather(*self._outstanding, return_exceptions=True)
                    await self._store_writes()
                    break
                self._wakeup.clear()
                if self._writes:  # published by a transcript or verdict meanwhile
                    continue
                await self._wakeup.wait()
        finally:
            self._finished = True
            self._room.set()
            self._hub.call_ended(self.spec.call_id, self.spec.agent_id)
            for reason, count in self.pipeline.policy.suppressed.items():
                self._metrics.nudges_suppressed.inc(count, reason=reason)
        return self.scorecard()

    def _write(self, write: Callable[[CallStore], Awaitable[None]]) -> None:
        """Queue a store write (in order) for ``run()`` to hand to the store."""
        if self._store is not None:
            self._writes.append(write)
            self._wakeup.set()

    async def _store_writes(self) -> None:
        """Hand the queued writes to the store, in order; awaits while its queue is full."""
        store = self._store
        while store is not None and self._writes:
            await self._writes.popleft()(store)

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
        if utterance.final:
            self.pipeline.expect_final(utterance)

        def transcribed(result: AsrResult) -> None:
            if result.status != "ok" or result.recognized is None:
                self._publish(self.pipeline.on_transcript_lost(utterance))
                return
            if utterance.final:
                self._metrics.asr_final_seconds.observe(self._clock() - submitted)
            try:
                output = self.pipeline.on_transcript(utterance, result.recognized)
            except Exception:
                # the finals cut after it (on both channels) must not wait for it forever
                self._publish(self.pipeline.on_transcript_lost(utterance))
                raise  # logged by _follow
            self._publish(output)

        future = self._asr.submit(self.spec.call_id, utterance, live=self.spec.live)

        def failed(f: asyncio.Future[AsrResult]) -> None:
            # The pool answers every request; should it ever fail instead, the utterance
            # must still not hold back the cues of the finals after it.
            if f.cancelled() or f.exception() is not None:
                self._publish(self.pipeline.on_transcript_lost(utterance))

        future.add_done_callback(failed)
        self._follow(future, transcribed, "a transcript")

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
            self._room.set()
            try:
                handle(f.result())
            except Exception as exc:
                # an exception's message may quote what was said: its type and place only
                log.error(
                    "call %s: handling %s failed: %s",
                    self.spec.call_id,
                    what,
                    exception_summary(exc),
                    exc_info=self._debug_text,
                )

        future.add_done_callback(done)

    def _publish(self, output: PipelineOutput) -> None:
        metrics = self._metrics
        for finding in output.findings:
            metrics.findings.inc(kind=finding.kind)
        call_id = self.spec.call_id
        for nudge in map(self._owned, output.nudges):
            metrics.nudges.inc(kind=nudge.kind, severity=nudge.severity)
            self._write(methodcaller("add_nudge", call_id, nudge))
            self._hub.to_agent(self.spec.agent_id, nudge)
            self._keep_unbound(nudge)
            # No explanation in the log: a text cue's quotes what was said (privacy).
            log.info(
                "call %s nudge %s at %.2fs: %s %.3f (threshold %.3f)",
                self.spec.call_id,
                nudge.kind,
                nudge.media_time_s,
                nudge.evidence.rule,
                nudge.evidence.measured,
                nudge.evidence.threshold,
            )
            if self._debug_text:
                log.debug("call %s nudge %s: %s", self.spec.call_id, nudge.id, nudge.message)
        # A correction replaces the stored copy before anyone is told (and reads it back).
        for nudge in map(self._owned, output.corrected_nudges):
            self._write(methodcaller("replace_nudge", call_id, nudge))
            self._hub.to_agent(self.spec.agent_id, nudge)
            self._keep_unbound(nudge)
        for transcript in output.transcripts:
            if transcript.corrected:
                self._write(methodcaller("replace_transcript", call_id, transcript))
            else:
                metrics.transcripts.inc(
                    channel=transcript.channel, final=str(transcript.final).lower()
                )
            self._hub.to_agent(self.spec.agent_id, transcript)
            if transcript.final:
                self._keep_unbound(transcript)
            if transcript.final and not transcript.corrected:
                self._write(methodcaller("add_transcript", call_id, transcript))
            if self._debug_text and transcript.final:
                log.debug(
                    "call %s %s %d: %s",
                    self.spec.call_id,
                    transcript.channel,
                    transcript.utterance_id,
                    transcript.text,
                )
        # Judged as handed to the detectors, not as the recognizer answers: the call's
        # verdicts then come in the order its finals were cut (one text worker, first in
        # first out), so a cue quotes the first of two frustrated sentences, and a
        # complaint follows the agent's apology before it, whichever recognizer worker
        # finished first (an unpaced recording answers out of order).
        for transcript in output.released:
            if self.pipeline.judgeable(transcript):
                self._judge(transcript)
        for utterance in output.utterances:
            self._submit(utterance)
        for alert in self.floor.alerts_for(output.nudges):
            self._hub.to_floor(self._owned(alert))
        if output.state_changed or output.nudges:
            self._hub.call_changed(self._state())
        corrected = any(t.corrected for t in output.transcripts)
        if self._store is not None and (
            corrected or self.pipeline.media_time_s >= self._next_checkpoint_s
        ):
            # A crash keeps the call's record up to here (status cut_off); a correction
            # rewrites the saved call so far (findings quote what was said) at once.
            state = self.pipeline.call_so_far().to_json()
            self._write(methodcaller("checkpoint", call_id, self.scorecard(), state))
            # the next multiple of checkpoint_every_s: once, even after a long gap
            every = self._checkpoint_every_s
            self._next_checkpoint_s = (self.pipeline.media_time_s // every + 1) * every


def exception_summary(exc: BaseException) -> str:
    """``exc``'s type and where it was raised (``file:line``), never its message (which may
    quote a transcript): what a log at INFO or above may say about a failure."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    where = f" at {tb.tb_frame.f_code.co_filename}:{tb.tb_lineno}" if tb is not None else ""
    return f"{type(exc).__name__}{where}"
