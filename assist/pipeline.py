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

from collections import deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from assist.asr.segmenter import ChannelAudio, UtteranceSegmenter
from assist.audio.codecs import decode, deinterleave
from assist.audio.resample import StreamResampler
from assist.config import Settings
from assist.conversation import ConversationTracker
from assist.detectors import build_detectors
from assist.detectors.customer_frustration import CustomerFrustrationDetector, Moment
from assist.events import Nudge, Transcript, TranscriptWord
from assist.policy import NudgePolicy
from assist.redact import SpokenNumberRedactor, redact_word
from assist.scorecard import build_scorecard
from assist.vad.stream import VadScorer, VadStream
from assist.vocabulary import (
    ASR_RATE,
    VAD_RATE,
    CallSnapshot,
    CallSpec,
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
    transcripts: list[Transcript] = field(default_factory=list)
    state_changed: bool = False  # who speaks / hold / whole media second changed


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

    def take(self, samples: np.ndarray, scored: bool = True, last: bool = False) -> None:
        self.windows.extend(self.vad.feed(self.to_vad_rate.process(samples, last), scored))
        if self.to_asr_rate is not None and self.asr_audio is not None:
            self.asr_audio.append(self.to_asr_rate.process(samples, last))


class CallPipeline:
    def __init__(
        self,
        settings: Settings,
        vad_model: VadScorer,
        spec: CallSpec,
        asr: bool = False,
        text: bool = False,
    ) -> None:
        self.spec = spec
        self.text_judged = text  # the text models judge this call's finals
        self._channels: list[_Channel] = []
        for role in spec.channels:
            channel = _Channel(
                role, StreamResampler(spec.sample_rate, VAD_RATE), VadStream(vad_model)
            )
            if asr:
                channel.to_asr_rate = StreamResampler(spec.sample_rate, ASR_RATE)
                channel.asr_audio = ChannelAudio(settings.utterances.keep_audio_s)
                channel.segmenter = UtteranceSegmenter(settings.utterances, role, channel.asr_audio)
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
        self._redact = settings.redaction.enabled
        self._redactors = SpokenNumberRedactor.for_call(spec.channels)  # role -> redactor
        self._min_word_probability = settings.text.min_word_probability
        self._scorecard_weights = settings.scorecard
        self.samples_received = 0  # per channel, at the line rate
        self.samples_lost = 0

    @property
    def media_time_s(self) -> float:
        """Seconds of audio received so far (the call's clock)."""
        return self.samples_received / self.spec.sample_rate

    def feed_audio(self, payload: bytes) -> PipelineOutput:
        self.spec.samples_in(payload)
        per_channel = deinterleave(decode(payload, self.spec.encoding), len(self._channels))
        self.samples_received += len(per_channel[0])
        for channel, samples in zip(self._channels, per_channel, strict=True):
            channel.take(samples)
        return self._drain()

    def feed_gap(self, n_samples: int) -> PipelineOutput:
        """Audio that was lost (dropped under overload): advances time, judged as lost."""
        self.samples_received += n_samples
        self.samples_lost += n_samples
        silence = np.zeros(n_samples, dtype=np.float32)
        for channel in self._channels:
            channel.take(silence, scored=False)
        return self._drain()

    def finish(self) -> PipelineOutput:
        """End of input: flush the resamplers' tails and close open utterances."""
        for channel in self._channels:
            channel.take(np.zeros(0, dtype=np.float32), last=True)
        out = self._drain()
        for channel in self._channels:
            if channel.segmenter is not None:
                out.utterances += channel.segmenter.close(self.tracker.t_s)
        return out

    def set_hold(self, on: bool) -> PipelineOutput:
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
        if self._redact:
            redactor = self._redactors[channel]
            text = redactor.redact(text, utterance.start_s, utterance.end_s, utterance.utterance_id)
        redacted = text != recognized.text
        words = [
            TranscriptWord(
                word=redact_word(w.word) if redacted else w.word,
                start_s=round(utterance.start_s + w.start_s, 3),
                end_s=round(utterance.start_s + w.end_s, 3),
                probability=w.probability,
            )
            for w in recognized.words
        ]
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
        for detector in self._detectors:
            self._decide(detector.on_final(transcript, utterance.speech_s), out)
        return out

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
            tick = self.tracker.feed({c.role: c.windows.popleft() for c in channels})
            if tick.speech_edges or tick.hold_edges or int(tick.t_s) != int(before_s):
                out.state_changed = True
            for detector in self._detectors:
                self._decide(detector.on_tick(tick), out)
            for channel in channels:
                if channel.segmenter is not None:
                    edge = next((e for role, e in tick.speech_edges if role == channel.role), None)
                    out.utterances += channel.segmenter.feed(edge, tick.t_s)
        return out

    def _decide(self, findings: list[Finding], out: PipelineOutput) -> None:
        for finding in findings:
            self.findings.append(finding)
            out.findings.append(finding)
            nudge = self.policy.decide(finding)
            if nudge is not None:
                out.nudges.append(nudge)

    def scorecard(self) -> dict[str, Any]:
        """The call's scorecard as of now (final once ``finish`` and every transcript and
        score have come back)."""
        return build_scorecard(
            self.spec.call_id,
            self.spec.agent_id,
            self.tracker.totals,
            self.findings,
            self.policy.sent,
            self._scorecard_weights,
            self.text_moments,
            self.transcripts,
        )
