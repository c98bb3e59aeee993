"""One call's pure processing chain: bytes in, findings and nudges out.

decode -> deinterleave -> resample to 8 kHz -> Silero windows per channel -> lockstep
conversation state -> detectors -> nudge policy. No I/O and no clocks: media time is the
number of samples received per channel divided by the line rate.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from assist.audio.codecs import BYTES_PER_SAMPLE, Encoding, decode, deinterleave
from assist.audio.resample import StreamResampler
from assist.config import Settings
from assist.conversation import ConversationTracker
from assist.detectors import build_detectors
from assist.events import Finding, Nudge
from assist.policy import NudgePolicy
from assist.scorecard import build_scorecard
from assist.vad.silero import VAD_RATE, SileroModel, VadStream, WindowActivity

SUPPORTED_RATES = (8000, 16000)
SUPPORTED_ENCODINGS: tuple[Encoding, ...] = ("pcm16", "mulaw")


class AudioFormatError(ValueError):
    """A frame that is not a whole number of samples for every channel."""


@dataclass(frozen=True, slots=True)
class CallSpec:
    call_id: str
    agent_id: str
    sample_rate: int
    encoding: Encoding
    channels: tuple[str, ...]  # roles in interleaving order

    @property
    def bytes_per_sample_frame(self) -> int:
        """Bytes of one sample on every channel."""
        return BYTES_PER_SAMPLE[self.encoding] * len(self.channels)

    def samples_in(self, payload: bytes) -> int:
        """Samples per channel in a frame; ``AudioFormatError`` for a partial sample."""
        frame_bytes = self.bytes_per_sample_frame
        if len(payload) % frame_bytes:
            raise AudioFormatError(
                f"{len(payload)} bytes is not a whole number of {frame_bytes}-byte samples "
                f"({self.encoding}, {len(self.channels)} channel(s))"
            )
        return len(payload) // frame_bytes


@dataclass(slots=True)
class PipelineOutput:
    findings: list[Finding] = field(default_factory=list)
    nudges: list[Nudge] = field(default_factory=list)
    state_changed: bool = False  # who speaks / hold / whole media second changed


class CallPipeline:
    def __init__(self, settings: Settings, vad_model: SileroModel, spec: CallSpec) -> None:
        self.spec = spec
        self._resamplers = [StreamResampler(spec.sample_rate, VAD_RATE) for _ in spec.channels]
        self._vad = [VadStream(vad_model) for _ in spec.channels]
        self._pending: dict[str, deque[WindowActivity]] = {r: deque() for r in spec.channels}
        self.tracker = ConversationTracker(settings, list(spec.channels))
        self._detectors = build_detectors(settings.cues)
        self.policy = NudgePolicy(settings.policy, spec.call_id, spec.agent_id)
        self.findings: list[Finding] = []
        self.samples_received = 0  # per channel, at the line rate
        self.samples_lost = 0

    @property
    def media_time_s(self) -> float:
        """Seconds of audio received so far (the call's clock)."""
        return self.samples_received / self.spec.sample_rate

    def feed_audio(self, payload: bytes) -> PipelineOutput:
        self.spec.samples_in(payload)
        samples = decode(payload, self.spec.encoding)
        per_channel = deinterleave(samples, len(self.spec.channels))
        self.samples_received += len(per_channel[0])
        for role, resampler, vad, x in zip(
            self.spec.channels, self._resamplers, self._vad, per_channel, strict=True
        ):
            self._pending[role].extend(vad.feed(resampler.process(x)))
        return self._drain()

    def feed_gap(self, n_samples: int) -> PipelineOutput:
        """Audio that was lost (dropped under overload): advances time as silence."""
        self.samples_received += n_samples
        self.samples_lost += n_samples
        silence = np.zeros(n_samples, dtype=np.float32)
        for role, resampler, vad in zip(
            self.spec.channels, self._resamplers, self._vad, strict=True
        ):
            self._pending[role].extend(vad.feed(resampler.process(silence), scored=False))
        return self._drain()

    def finish(self) -> PipelineOutput:
        """End of input: flush the resamplers' tails (16 kHz lines) through the chain."""
        for role, resampler, vad in zip(
            self.spec.channels, self._resamplers, self._vad, strict=True
        ):
            tail = resampler.process(np.zeros(0, dtype=np.float32), last=True)
            self._pending[role].extend(vad.feed(tail))
        return self._drain()

    def set_hold(self, on: bool) -> PipelineOutput:
        was_on = self.tracker.hold.on
        self.tracker.set_cti_hold(on)
        return PipelineOutput(state_changed=self.tracker.hold.on != was_on)

    def _drain(self) -> PipelineOutput:
        out = PipelineOutput()
        pending = self._pending
        while all(pending.values()):
            before_s = self.tracker.t_s
            tick = self.tracker.feed({role: queue.popleft() for role, queue in pending.items()})
            if tick.speech_edges or tick.hold_edges or int(tick.t_s) != int(before_s):
                out.state_changed = True
            for detector in self._detectors:
                for finding in detector.feed(tick):
                    self.findings.append(finding)
                    out.findings.append(finding)
                    nudge = self.policy.decide(finding)
                    if nudge is not None:
                        out.nudges.append(nudge)
        return out

    def scorecard(self) -> dict[str, Any]:
        return build_scorecard(
            self.spec.call_id,
            self.spec.agent_id,
            self.tracker.totals,
            self.findings,
            self.policy.sent,
        )
