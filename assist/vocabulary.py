"""The hot path's vocabulary: cue kinds and the plain value types every layer shares.

Pure data, no behaviour beyond small derived properties: the core (pipeline, detectors,
policy, scorecard) and the shell (session, service, adapters) both import from here, so
the core never has to import onnxruntime, a thread pool or a protocol module to name a
type. Wire messages (pydantic) live in ``assist.events``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal

import numpy as np


class CueKind(StrEnum):
    """Every kind of cue the service can raise; also the keys of ``[policy.cooldown_s]``
    and ``[floor.repeat_alerts]``. Each kind's decision lives in
    ``assist/detectors/<kind>.py`` and its wording in ``assist/nudges.py``."""

    INTERRUPTION = "interruption"
    LONG_HOLD = "long_hold"
    DEAD_AIR = "dead_air"
    MONOLOGUE = "monologue"
    PACE = "pace"
    NEGATIVE_PHRASING = "negative_phrasing"
    CUSTOMER_FRUSTRATION = "customer_frustration"


Severity = Literal["info", "warning", "critical"]
Role = Literal["customer", "agent"]  # a call channel's speaker
Encoding = Literal["pcm16", "mulaw"]  # line audio: signed 16-bit little-endian, G.711 mu-law
BYTES_PER_SAMPLE: dict[str, int] = {"pcm16": 2, "mulaw": 1}
SUPPORTED_RATES = (8000, 16000)  # line sample rates, Hz
SUPPORTED_ENCODINGS: tuple[Encoding, ...] = ("pcm16", "mulaw")

# Voice activity runs at 8 kHz on 32 ms windows (Silero VAD's 8 kHz window size).
VAD_RATE = 8000
WINDOW_SAMPLES = 256
WINDOW_S = WINDOW_SAMPLES / VAD_RATE
# The recognizer (Whisper) takes 16 kHz float32 audio.
ASR_RATE = 16000


class AudioFormatError(ValueError):
    """A frame that is not a whole number of samples for every channel."""


@dataclass(frozen=True, slots=True)
class CallSpec:
    """What a call's audio is: ids, line rate (Hz), encoding and channel roles.

    ``channels`` are roles in interleaving order (one or two of customer, agent). ``live``:
    the audio comes at the pace of a line, which cannot be slowed down, so a backlog past
    ``[limits] ingest_queue_s`` is shed; False for a recording sent as fast as the server
    takes it (the native protocol's ``"live": false``), where the server reads no further
    while the backlog is full and no audio is shed.
    """

    call_id: str
    agent_id: str
    sample_rate: int
    encoding: Encoding
    channels: tuple[str, ...]
    live: bool = True

    @property
    def bytes_per_sample_frame(self) -> int:
        """Bytes of one sample on every channel."""
        return BYTES_PER_SAMPLE[self.encoding] * len(self.channels)

    def frame_bytes_for(self, milliseconds: int) -> int:
        """Bytes of that much audio on every channel."""
        return milliseconds * self.sample_rate // 1000 * self.bytes_per_sample_frame

    def samples_in(self, payload: bytes) -> int:
        """Samples per channel in a frame; ``AudioFormatError`` for a partial sample."""
        frame_bytes = self.bytes_per_sample_frame
        if len(payload) % frame_bytes:
            raise AudioFormatError(
                f"{len(payload)} bytes is not a whole number of {frame_bytes}-byte samples "
                f"({self.encoding}, {len(self.channels)} channel(s))"
            )
        return len(payload) // frame_bytes


@dataclass(frozen=True, slots=True)
class WindowActivity:
    """What one 32 ms window of one channel sounded like."""

    index: int  # window number since the call started; spans [index, index+1) * WINDOW_S
    speech_probability: float  # Silero VAD, 0-1
    dbfs: float  # RMS level, dB relative to full scale; NaN for audio that never arrived

    @property
    def end_s(self) -> float:
        """Media time at the end of the window, seconds."""
        return (self.index + 1) * WINDOW_S


@dataclass(frozen=True, slots=True)
class UtteranceAudio:
    """One stretch of one channel's speech, cut for the recognizer."""

    channel: str
    utterance_id: int  # per channel; a partial carries the id of the utterance it previews
    start_s: float  # media time of the audio's start (pre-roll included)
    end_s: float  # media time of the audio's end (post-roll included)
    audio: np.ndarray  # float32 mono at ASR_RATE, shape (samples,)
    final: bool  # False: a partial preview of an utterance still going on
    speech_s: float  # voiced time the gate measured in it (no rolls), seconds


@dataclass(frozen=True, slots=True)
class Word:
    """One recognized word, as the recognizer wrote it (leading space included)."""

    word: str
    start_s: float  # relative to the start of the utterance audio
    end_s: float
    probability: float  # the recognizer's confidence, 0-1


@dataclass(frozen=True, slots=True)
class Recognized:
    """The recognizer's text for one utterance and its words in order.

    ``"".join(w.word for w in words)`` gives the text (with a leading space, which
    ``text`` has stripped).
    """

    text: str
    words: list[Word]


@dataclass(frozen=True, slots=True)
class TextScores:
    """What the text models make of one sentence, or of an utterance: scores only, no
    decision.

    Agent sentences carry the negative-phrasing class probabilities (``phrasing``, label ->
    probability, the label ``"none"`` first) and the empathy score; customer sentences the
    frustration score. Each ``*_model_threshold`` is the threshold stored with the model;
    the detectors decide (``assist/detectors/negative_phrasing.py``,
    ``customer_frustration.py``) and may replace it with ``[cues.*] min_score``.

    An utterance's scores (``TextClassifier.score_utterance``) are those of the utterance as
    a whole, with each of its sentences' scores in ``sentences`` when it has several (with
    ``span``, the characters of the utterance each covers).
    """

    text: str
    speaker: Role
    phrasing: dict[str, float] | None = None
    phrasing_model_threshold: float | None = None
    empathy: float | None = None
    empathy_model_threshold: float | None = None
    frustration: float | None = None
    frustration_model_threshold: float | None = None
    span: tuple[int, int] | None = None  # a sentence's characters in its utterance
    sentences: tuple[TextScores, ...] = ()  # an utterance's sentences, in order
    # the flag score (customer: frustration; agent: negative phrasing) is the second head's
    # (assist.text.second_opinion): the first head was unsure
    second_opinion: bool = False

    @property
    def parts(self) -> tuple[TextScores, ...]:
        """These scores and each of ``sentences``: everything a decision may look at."""
        return (self, *self.sentences)

    @property
    def phrasing_score(self) -> float:
        """How strongly the sentence is negative phrasing: 1 - P(none), 0-1."""
        if not self.phrasing:
            return 0.0
        return 1.0 - next(iter(self.phrasing.values()))


@dataclass(frozen=True, slots=True)
class Finding:
    """A detector's statement that a cue became true at ``at_s`` (media seconds)."""

    kind: CueKind
    at_s: float  # the moment the threshold was crossed
    span_start_s: float
    span_end_s: float
    rule: str  # the config key of the threshold, e.g. "cues.dead_air.min_silence_s"
    threshold: float
    measured: float
    unit: str = "s"
    severity: Severity = "warning"
    details: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", CueKind(self.kind))  # ValueError for an unknown kind
        # Times are sums of 32 ms windows; keep them to the microsecond so float noise
        # (7.999999999999998) never shows up as a measurement below its threshold.
        for name in ("at_s", "span_start_s", "span_end_s", "measured", "threshold"):
            object.__setattr__(self, name, round(getattr(self, name), 6))


@dataclass(frozen=True, slots=True)
class CallSnapshot:
    """A call's conversation state at media time ``t_s``, for the floor view."""

    t_s: float
    speaking: tuple[str, ...]  # roles in speech now
    hold_start_s: float | None  # media time the current hold began; None when not on hold
