"""One call's pure processing chain: bytes in, findings, utterances and nudges out.

decode -> deinterleave -> per channel: resample to 8 kHz -> Silero windows -> lockstep
conversation state -> detectors -> nudge policy. With ASR on, each channel's audio is also
kept at 16 kHz and cut into utterances at its voice gate's edges; their transcripts come
back through ``on_transcript`` (finals go to every detector's ``on_final``: pace), and the
text models' scores of each final through ``on_scores`` (negative phrasing, customer
frustration). Every cue is decided by its detector behind one ``Detector`` protocol. No
I/O, no clocks, no model runtime: media time is the number of samples received per
channel divided by the line rate; the VAD model comes in as a ``VadScorer``.
"""

from __future__ import annotations

import dataclasses
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from assist.asr.segmenter import ChannelAudio, UtteranceSegmenter
from assist.audio.codecs import decode, deinterleave
from assist.audio.resample import StreamResampler
from assist.config import Settings
from assist.conversation import ConversationTracker, Tick
from assist.detectors import build_detectors
from assist.detectors.customer_frustration import CustomerFrustrationDetector, Moment
from assist.echo import EchoFreeSegmenter, EchoSuppressor
from assist.events import Nudge, Transcript, TranscriptWord
from assist.legs import CallSoFar
from assist.nudges import evidence_for, message_for, rewrite
from assist.policy import NudgePolicy
from assist.redact import Correction, SpokenNumberRedactor, redact_word
from assist.scorecard import build_scorecard
from assist.vad.stream import VadScorer, VadStream, feed_lockstep
from assist.vocabulary import (
    ASR_RATE,
    VAD_RATE,
    WINDOW_SAMPLES,
    CallSnapshot,
    CallSpec,
    CueKind,
    Finding,
    Recognized,
    TextScores,
    UtteranceAudio,
    WindowActivity,
)


@dataclass(slots=True)
class PipelineOutput:
    """What one step of the pipeline produced, for the session to publish."""

    findings: list[Finding] = field(default_factory=list)
    nudges: list[Nudge] = field(default_factory=list)
    utterances: list[UtteranceAudio] = field(default_factory=list)  # to transcribe
    transcripts: list[Transcript] = field(default_factory=list)  # corrected ones too
    state_changed: bool = False  # who speaks / hold / whole media second changed
    corrected_nudges: list[Nudge] = field(default_factory=list)  # their quote was corrected
    # finals handed to the detectors, in the order they were cut on both channels: the
    # ones the text models judge, so the call's verdicts come in that order too
    released: list[Transcript] = field(default_factory=list)


@dataclass
class _Channel:
    """Everything one channel of the call owns."""

    role: str
    to_vad_rate: StreamResampler
    vad: VadStream
    windows: deque[WindowActivity] = field(default_factory=deque)  # waiting for lockstep
    to_asr_rate: StreamResampler | None = None
    asr_audio: ChannelAudio | None = None
    segmenter: UtteranceSegmenter | None = None
    echoes: tuple[EchoSuppressor, ...] = ()  # the call's, when it has both roles

    def take_rest(self, samples: np.ndarray, at_vad_rate: np.ndarray, last: bool) -> None:
        """After the VAD (``_take_all``): the echo envelopes and the 16 kHz audio."""
        for echo in self.echoes:
            echo.feed(self.role, at_vad_rate)
        if self.to_asr_rate is not None and self.asr_audio is not None:
            self.asr_audio.append(self.to_asr_rate.process(samples, last))


def _take_all(channels: list[_Channel], per_channel: list[np.ndarray], last: bool = False) -> None:
    """Each channel's samples (line rate, one array per channel, in channel order) through
    its resamplers, the VAD (the channels' windows scored together: ``feed_lockstep``), the
    echo envelopes and the 16 kHz audio; ``last`` flushes the resamplers' tails."""
    at_vad_rate = [
        channel.to_vad_rate.process(samples, last)
        for channel, samples in zip(channels, per_channel, strict=True)
    ]
    scored = feed_lockstep([channel.vad for channel in channels], at_vad_rate)
    for channel, samples, vad_samples, windows in zip(
        channels, per_channel, at_vad_rate, scored, strict=True
    ):
        channel.windows.extend(windows)
        channel.take_rest(samples, vad_samples, last)


_NOTHING = np.zeros(0, dtype=np.float32)  # no samples: only the resamplers' tails (last=True)

# Text cues quote what one channel said: the channel each kind's quote comes from.
_QUOTES_CHANNEL = {CueKind.NEGATIVE_PHRASING: "agent", CueKind.CUSTOMER_FRUSTRATION: "customer"}


def _requote(finding: Finding, text: str) -> None:
    """A text cue's details (quote, sentence, rewrite) from its sentence as corrected."""
    details = finding.details
    if finding.kind == CueKind.NEGATIVE_PHRASING and "category" in details:
        found = rewrite(text, details["category"])
        details.update(
            quote=text[found.span[0] : found.span[1]], text=text, suggestion=found.suggestion
        )
    else:
        details["quote"] = text


class CallPipeline:
    """One call's pure processing chain (module docstring); media time is
    ``samples_received / spec.sample_rate``. Each ``feed_*``/``on_*`` call returns what it
    produced as a ``PipelineOutput``."""

    def __init__(
        self,
        settings: Settings,
        vad_model: VadScorer,
        spec: CallSpec,
        asr: bool = False,
        text: bool = False,
        so_far: CallSoFar | None = None,
    ) -> None:
        self.spec = spec
        self.text_judged = text  # the text models judge this call's finals
        self._channels: list[_Channel] = []
        # The agent's echo on the customer channel is not the customer, nor the customer's
        # on the agent's channel the agent (assist/echo.py): the channel it is heard on ->
        # its suppressor.
        self._echoes: dict[str, EchoSuppressor] = {}
        if settings.echo.enabled and {"customer", "agent"} <= set(spec.channels):
            ways = [("customer", "agent")]
            if settings.echo.customer_on_agent:
                ways.append(("agent", "customer"))
            self._echoes = {
                heard_on: EchoSuppressor(
                    settings.echo, settings.vad.onset_probability, heard_on, source
                )
                for heard_on, source in ways
            }
        cutting = settings.utterances
        if not spec.live:  # a recording: nobody watches its text grow, no cue reads partials
            cutting = cutting.model_copy(update={"partial_every_s": 0.0})
        for role in spec.channels:
            channel = _Channel(
                role, StreamResampler(spec.sample_rate, VAD_RATE), VadStream(vad_model)
            )
            channel.echoes = tuple(self._echoes.values())
            if asr:
                channel.to_asr_rate = StreamResampler(spec.sample_rate, ASR_RATE)
                channel.asr_audio = ChannelAudio(cutting.keep_audio_s)
                if role in self._echoes:
                    channel.segmenter = EchoFreeSegmenter(
                        cutting, role, channel.asr_audio, self._echoes[role]
                    )
                else:
                    channel.segmenter = UtteranceSegmenter(cutting, role, channel.asr_audio)
            self._channels.append(channel)
        self.tracker = ConversationTracker(settings, list(spec.channels))
        self._detectors = build_detectors(settings.cues)
        self._frustration = next(
            d for d in self._detectors if isinstance(d, CustomerFrustrationDetector)
        )
        self.policy = NudgePolicy(settings.policy, spec.call_id, spec.agent_id)
        self.findings: list[Finding] = []
        self.transcripts: list[Transcript] = []  # finals, in arrival order
        self._finalized: dict[str, int] = {}  # channel -> last final utterance id
        # Finals in cutting order across the channels (channel, utterance id), and the ones
        # that came back (None: shed or failed) but wait for an earlier one: see expect_final.
        self._awaiting: deque[tuple[str, int]] = deque()
        self._arrived: dict[tuple[str, int], tuple[Transcript, float] | None] = {}
        self._redact = settings.redaction.enabled
        self._redactors = SpokenNumberRedactor.for_call(spec.channels)  # role -> redactor
        self._quoting: list[tuple[Finding, Nudge]] = []  # text-cue nudges and their findings
        self._min_word_probability = settings.text.min_word_probability
        self._scorecard_weights = settings.scorecard
        self.samples_received = 0  # per channel, at the line rate
        self.samples_lost = 0  # per channel, this leg
        self._prior_lost_s = 0.0  # earlier legs' lost audio, seconds
        self.leg_start_s = 0.0  # media time this leg started at (0 for a call's first leg)
        self._prior_text_moments: list[Moment] | None = None  # earlier legs', when not judged now
        self._prior_next_ids: dict[str, int] = {}  # earlier legs' next utterance id per channel
        if so_far is not None:
            self._continue(so_far)

    def _continue(self, so_far: CallSoFar) -> None:
        """A later leg of the call (``assist.legs``): media time starts where the earlier legs
        ended (skipped in O(1), not counted as lost), and the totals, findings, nudge count,
        text moments, utterance ids and transcripts go on from theirs, so ids stay unique and
        the scorecard covers every leg."""
        n_samples = round(so_far.media_s * self.spec.sample_rate)
        self.feed_gap(n_samples)  # nothing to hear, nothing to find: output discarded
        self.samples_lost -= n_samples
        self._prior_lost_s = so_far.audio_lost_s
        self.leg_start_s = self.media_time_s
        totals = self.tracker.totals
        for role, talk in so_far.talk_s.items():
            totals.talk_s[role] = totals.talk_s.get(role, 0.0) + talk
        totals.overlap_s += so_far.overlap_s
        totals.holds[:0] = so_far.holds
        self.findings[:0] = so_far.findings
        self.policy.sent += so_far.nudges_sent
        self.transcripts[:0] = so_far.transcripts
        self._prior_text_moments = so_far.text_moments
        if self.text_judged and so_far.text_moments:
            self._frustration.moments[:0] = so_far.text_moments
        for channel in self._channels:
            if channel.segmenter is not None:
                channel.segmenter.next_id = so_far.next_utterance_ids.get(channel.role, 0)
        self._prior_next_ids = dict(so_far.next_utterance_ids)

    def call_so_far(self) -> CallSoFar:
        """What this call leaves for its next leg (``assist.legs``), as of now: media time,
        totals (an open hold closed now), findings, nudges sent, text moments, utterance ids
        and final transcripts of every leg so far."""
        media_s = self.media_time_s
        totals = self.tracker.totals
        next_ids = dict(self._prior_next_ids)
        for channel in self._channels:
            if channel.segmenter is not None:
                next_ids[channel.role] = channel.segmenter.next_id
        return CallSoFar(
            media_s=media_s,
            talk_s=dict(totals.talk_s),
            overlap_s=totals.overlap_s,
            holds=[(start, media_s if end is None else end) for start, end in totals.holds],
            findings=list(self.findings),
            nudges_sent=self.policy.sent,
            text_moments=self.text_moments if self.text_judged else self._prior_text_moments,
            next_utterance_ids=next_ids,
            transcripts=list(self.transcripts),
            audio_lost_s=self.audio_lost_s,
        )

    @property
    def audio_lost_s(self) -> float:
        """Media seconds of every leg so far that never arrived or were shed (``feed_gap``)."""
        return self._prior_lost_s + self.samples_lost / self.spec.sample_rate

    @property
    def media_time_s(self) -> float:
        """Seconds of audio received so far (the call's clock)."""
        return self.samples_received / self.spec.sample_rate

    def feed_audio(self, payload: bytes) -> PipelineOutput:
        """One frame of interleaved line audio in the call's encoding; raises
        ``AudioFormatError`` for a partial sample."""
        self.spec.samples_in(payload)
        per_channel = deinterleave(decode(payload, self.spec.encoding), len(self._channels))
        self.samples_received += len(per_channel[0])
        _take_all(self._channels, per_channel)
        return self._drain()

    def feed_gap(self, n_samples: int) -> PipelineOutput:
        """Audio that never arrived (shed under overload, paused or discarded by the
        platform): ``n_samples`` per channel at the line rate. Media time advances by it.

        A gap shorter than one 32 ms VAD window is silence in place. A longer one costs O(1)
        whatever its length (no samples, no per-window loop): what was heard before it is
        flushed through the resamplers and windowed; the VAD streams, the echo envelopes and
        the 16 kHz audio jump to its end; the conversation tracker skips the lost windows
        (``ConversationTracker.skip``: gates close at its start) and the detectors get the
        ticks of its first and last lost windows; each channel's open utterance ends at its
        start as a final (``UtteranceSegmenter.gap``)."""
        if n_samples <= 0:
            return PipelineOutput()
        rate = self.spec.sample_rate
        self.samples_lost += n_samples
        if n_samples * VAD_RATE < WINDOW_SAMPLES * rate:
            self.samples_received += n_samples
            silence = np.zeros(n_samples, dtype=np.float32)  # under one window: bounded
            _take_all(self._channels, [silence] * len(self._channels))
            return self._drain()
        return self._skip(n_samples)

    def _skip(self, n_samples: int) -> PipelineOutput:
        """Advance media time by ``n_samples`` (line rate, at least one VAD window) of audio
        nobody heard, in O(1) (``feed_gap``)."""
        rate = self.spec.sample_rate
        _take_all(self._channels, [_NOTHING] * len(self._channels), last=True)  # heard before
        for channel in self._channels:
            channel.to_vad_rate.reset()
            if channel.to_asr_rate is not None:
                channel.to_asr_rate.reset()
        out = self._drain()
        self.samples_received += n_samples
        # At least past the window in progress (a 16 kHz resampler's flush may be a sample off).
        next_window = (self._channels[0].vad.position // WINDOW_SAMPLES + 1) * WINDOW_SAMPLES
        vad_end = max(self.samples_received * VAD_RATE // rate, next_window)
        spans = {channel.vad.skip_to(vad_end) for channel in self._channels}
        assert len(spans) == 1 and all(not c.windows for c in self._channels), "lockstep"
        first, end = spans.pop()
        start_s = self.tracker.t_s  # the first lost window's start: the gap's, in windows
        ticks = self.tracker.skip(first, end)
        out.state_changed = True
        for tick in ticks:
            for detector in self._detectors:
                self._decide(detector.on_tick(tick), out)
        for channel in self._channels:
            if channel.segmenter is None or channel.asr_audio is None:
                continue
            for tick in ticks:  # agent speech judged on hold in the gap (rare): cut it too
                released = tick.released_speech.get(channel.role)
                if released is not None:
                    channel.segmenter.resume_held(*released)
            out.utterances += channel.segmenter.gap(start_s, self.tracker.t_s)
            channel.asr_audio.skip_to(self.samples_received * ASR_RATE // rate)
        for echo in self._echoes.values():  # after the segmenters: they judged the last ones
            echo.skip_to(vad_end)
        return out

    def finish(self) -> PipelineOutput:
        """End of input: flush the resamplers' tails and close open utterances."""
        _take_all(self._channels, [_NOTHING] * len(self._channels), last=True)
        out = self._drain()
        self._on_tick(self.tracker.finish(), out)  # speech still judged on hold is decided
        for channel in self._channels:
            if channel.segmenter is not None:
                out.utterances += channel.segmenter.close(self.tracker.t_s)
        return out

    def set_hold(self, on: bool) -> PipelineOutput:
        """A CTI hold event, effective at the media time of the audio received so far."""
        was_on = self.tracker.hold.on
        self.tracker.set_cti_hold(on)
        return PipelineOutput(state_changed=self.tracker.hold.on != was_on)

    def on_transcript(self, utterance: UtteranceAudio, recognized: Recognized) -> PipelineOutput:
        """Text for an utterance came back: publish it, and run the text cues on finals."""
        out = PipelineOutput()
        channel = utterance.channel
        finalized = self._finalized.get(channel, -1)
        if not utterance.final and utterance.utterance_id <= finalized:
            return out  # a partial overtaken by its final (or a later one)
        text = recognized.text
        said = [w.word for w in recognized.words]
        corrections: list[Correction] = []
        if self._redact:
            redactor = self._redactors[channel]
            redaction = redactor.redact_utterance(
                text,
                utterance.start_s,
                utterance.end_s,
                utterance.utterance_id,
                utterance.final,
                said,
            )
            text, said = redaction.text, list(redaction.words)
            # earlier finals this one shows carried part of a number: replaced everywhere
            corrections = redactor.context.take_corrections()
        words = [
            TranscriptWord(
                word=word,
                start_s=round(utterance.start_s + w.start_s, 3),
                end_s=round(utterance.start_s + w.end_s, 3),
                probability=w.probability,
            )
            for word, w in zip(said, recognized.words, strict=True)
        ]
        for correction in corrections:
            self._correct(correction, out)
        transcript = Transcript(
            call_id=self.spec.call_id,
            channel=channel,
            utterance_id=utterance.utterance_id,
            text=text,
            start_s=utterance.start_s,
            end_s=utterance.end_s,
            final=utterance.final,
            words=words,
        )
        out.transcripts.append(transcript)
        if not utterance.final:
            return out
        self._finalized[channel] = max(finalized, utterance.utterance_id)
        self.transcripts.append(transcript)
        self._arrived[(channel, utterance.utterance_id)] = (transcript, utterance.speech_s)
        self._release_finals(out)
        return out

    def expect_final(self, utterance: UtteranceAudio) -> None:
        """A final was sent to the recognizer: finals reach the detectors' ``on_final`` (and
        the text models, ``PipelineOutput.released``) in the order they were cut, on both
        channels, whatever order the recognizer's workers answer in. Pace must not depend
        on which worker was faster, and a sentence is judged with the other speaker's turn
        before it (``assist.text.context``) and after any acknowledgement before it."""
        self._awaiting.append((utterance.channel, utterance.utterance_id))

    def on_transcript_lost(self, utterance: UtteranceAudio) -> PipelineOutput:
        """The recognizer shed or failed this utterance: the finals after it go on."""
        out = PipelineOutput()
        if utterance.final:
            self._arrived[(utterance.channel, utterance.utterance_id)] = None
            self._release_finals(out)
        return out

    def _release_finals(self, out: PipelineOutput) -> None:
        """Hand the detectors every final that is next in cutting order and has come back.
        Finals nobody announced with ``expect_final`` (direct use, tests) go at once."""
        waiting = self._awaiting
        for key in [k for k in self._arrived if k not in waiting]:
            self._final_to_detectors(self._arrived.pop(key), out)
        while waiting and waiting[0] in self._arrived:
            self._final_to_detectors(self._arrived.pop(waiting.popleft()), out)

    def _final_to_detectors(
        self, arrived: tuple[Transcript, float] | None, out: PipelineOutput
    ) -> None:
        if arrived is None:
            return  # shed or failed: nothing to judge
        transcript, speech_s = arrived
        out.released.append(transcript)
        for detector in self._detectors:
            self._decide(detector.on_final(transcript, speech_s), out)

    def _correct(self, correction: Correction, out: PipelineOutput) -> None:
        """An earlier final carried part of a number after all: replace it (text, words)
        here, in the scorecard's quotes and the text moments, and send it again with
        ``corrected``; a text-cue nudge that quoted it is sent again too. Text cues don't
        judge it again (one still waiting for an earlier final is handed to the detectors,
        and judged, with the fixed text)."""
        index = next(
            (
                i
                for i, t in enumerate(self.transcripts)
                if t.channel == correction.channel and t.utterance_id == correction.key
            ),
            None,
        )
        if index is None:
            return  # not one of this leg's finals
        old = self.transcripts[index]
        if len(correction.words) == len(old.words):
            words = [
                w.model_copy(update={"word": new})
                for w, new in zip(old.words, correction.words, strict=True)
            ]
        else:  # not expected: both come from the same recognizer result
            words = [w.model_copy(update={"word": redact_word(w.word)}) for w in old.words]
        fixed = old.model_copy(update={"text": correction.text, "words": words, "corrected": True})
        self.transcripts[index] = fixed
        key = (fixed.channel, fixed.utterance_id)
        if (waiting := self._arrived.get(key)) is not None:
            # not handed to the detectors yet: they (and the text models) get the fixed text
            self._arrived[key] = (fixed, waiting[1])
        out.transcripts.append(fixed)
        moments = self._frustration.moments
        for i, moment in enumerate(moments):
            if moment.text == old.text and moment.at_s == old.end_s:
                moments[i] = dataclasses.replace(moment, text=fixed.text)
        quoted = [  # over the budget or not, every finding keeps its quote for the scorecard
            f
            for f in self.findings
            if _QUOTES_CHANNEL.get(f.kind) == fixed.channel
            and f.details.get("utterance_id") == fixed.utterance_id
        ]
        for finding in quoted:
            _requote(finding, fixed.text)
        for finding, nudge in self._quoting:
            if any(finding is f for f in quoted):
                message, suggestion = message_for(finding)
                update = {"message": message, "suggestion": suggestion, "corrected": True}
                out.corrected_nudges.append(
                    nudge.model_copy(update={**update, "evidence": evidence_for(finding)})
                )

    def judgeable(self, transcript: Transcript) -> bool:
        """Whether the text models should judge this transcript: a final with words that
        Whisper heard clearly (mean word probability at least ``min_word_probability``)."""
        if not (self.text_judged and transcript.final and transcript.words):
            return False
        clarity = sum(w.probability for w in transcript.words) / len(transcript.words)
        return clarity >= self._min_word_probability

    def on_scores(self, transcript: Transcript, scores: TextScores) -> PipelineOutput:
        """The text models scored a final transcript: negative phrasing, frustration."""
        out = PipelineOutput()
        for detector in self._detectors:
            self._decide(detector.on_scores(transcript, scores), out)
        return out

    @property
    def text_moments(self) -> list[Moment] | None:
        """Acknowledgements and frustrated sentences so far; None without the text models."""
        return list(self._frustration.moments) if self.text_judged else None

    def snapshot(self) -> CallSnapshot:
        """Who speaks and whether the call is on hold, now (media time)."""
        tracker = self.tracker
        speaking = tuple(role for role, gate in tracker.gates.items() if gate.in_speech)
        hold_start = tracker.hold.start_s if tracker.hold.on else None
        return CallSnapshot(tracker.t_s, speaking, hold_start)

    def _drain(self) -> PipelineOutput:
        out = PipelineOutput()
        channels = self._channels
        while all(channel.windows for channel in channels):
            before_s = self.tracker.t_s
            windows = {c.role: c.windows.popleft() for c in channels}
            for role, echo in self._echoes.items():  # echo-only windows become silence
                windows[role] = echo.judge(windows[role])
            tick = self.tracker.feed(windows)
            if tick.speech_edges or tick.hold_edges or int(tick.t_s) != int(before_s):
                out.state_changed = True
            self._on_tick(tick, out)
        return out

    def _on_tick(self, tick: Tick, out: PipelineOutput) -> None:
        """Detectors and segmenters on one tick. Agent speech heard during a hold reaches the
        segmenter only once judged the agent's (``tick.released_speech``, backdated); a
        recorded announcement never does."""
        if tick.released_speech:
            out.state_changed = True
        for detector in self._detectors:
            self._decide(detector.on_tick(tick), out)
        for channel in self._channels:
            if channel.segmenter is not None:
                released = tick.released_speech.get(channel.role)
                if released is not None:
                    channel.segmenter.resume_held(*released)
                edge = next((e for role, e in tick.speech_edges if role == channel.role), None)
                out.utterances += channel.segmenter.feed(edge, tick.t_s)

    def _decide(self, findings: list[Finding], out: PipelineOutput) -> None:
        for finding in findings:
            self.findings.append(finding)
            out.findings.append(finding)
            nudge = self.policy.decide(finding)
            if nudge is not None:
                out.nudges.append(nudge)
                if finding.kind in _QUOTES_CHANNEL:
                    self._quoting.append((finding, nudge))

    def scorecard(self) -> dict[str, Any]:
        """The call's scorecard as of now (final once ``finish`` and every transcript and
        score have come back)."""
        reports = {heard_on: echo.report() for heard_on, echo in self._echoes.items()}
        return build_scorecard(
            self.spec.call_id,
            self.spec.agent_id,
            self.tracker.totals,
            self.findings,
            self.policy.sent,
            self._scorecard_weights,
            self.text_moments,
            self.transcripts,
            echo=reports.get("customer"),
            echo_on_agent=reports.get("agent"),
            audio_lost_s=self.audio_lost_s,
        )
