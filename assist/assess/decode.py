"""Decoding recorded calls to per-channel 16-bit PCM at the pipeline's line rate.

Every container and codec FFmpeg reads goes through PyAV (installed with faster-whisper):
WAV (PCM16, mu-law, A-law), FLAC, MP3, Ogg/Opus, ... The pipeline's line rates are 8 and
16 kHz: a recording at 8 kHz stays at 8 kHz, any other rate from 8 to 48 kHz is resampled
to 16 kHz (FFmpeg's resampler). A call is either one stereo recording (one role per
channel) or two mono recordings of the same call (one per role); a single mono recording
has no channel separation and is refused (``MonoRecording``). A file FFmpeg can't read is
``UnreadableRecording``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import av
import numpy as np

MIN_RATE, MAX_RATE = 8000, 48000
ROLES = ("customer", "agent")


class RecordingError(Exception):
    """A recording that can't be assessed; the message says which file and why."""


class UnreadableRecording(RecordingError):
    """Not a readable audio file (broken, truncated, not audio)."""


class MonoRecording(RecordingError):
    """One channel only: customer and agent can't be told apart."""


@dataclass(frozen=True, slots=True)
class DecodedCall:
    """A call's audio: ``samples`` int16, shape (n, 2), columns customer then agent, at
    ``sample_rate`` (8000 or 16000); ``source_rate`` the recording's own rate;
    ``recorded_at`` epoch seconds from the container's ``creation_time``/``date`` tag
    (None when it has none)."""

    samples: np.ndarray
    sample_rate: int
    source_rate: int
    recorded_at: float | None

    @property
    def duration_s(self) -> float:
        """Seconds of audio."""
        return len(self.samples) / self.sample_rate


def line_rate(source_rate: int) -> int:
    """The pipeline rate a recording at ``source_rate`` is fed at (8000 stays, else 16000)."""
    return 8000 if source_rate == 8000 else 16000


@dataclass(frozen=True, slots=True)
class _Decoded:
    samples: np.ndarray  # int16, (n, channels)
    source_rate: int
    recorded_at: float | None


def _metadata_time(tags: dict[str, str]) -> float | None:
    for key in ("creation_time", "date", "DATE", "ICRD"):
        value = tags.get(key)
        if not value:
            continue
        try:
            return datetime.fromisoformat(value.strip().replace("Z", "+00:00")).timestamp()
        except ValueError:
            continue
    return None


def _decode(path: Path, rate: int | None = None) -> _Decoded:
    """Every channel of ``path``'s first audio stream as int16 at ``rate`` (None: the
    recording's own pipeline rate, ``line_rate``)."""
    try:
        with av.open(str(path)) as container:
            if not container.streams.audio:
                raise UnreadableRecording(f"{path}: no audio stream")
            stream = container.streams.audio[0]
            source_rate = stream.rate or stream.codec_context.sample_rate
            channels = stream.codec_context.channels
            if not MIN_RATE <= source_rate <= MAX_RATE:
                raise UnreadableRecording(
                    f"{path}: {source_rate} Hz is outside the {MIN_RATE}-{MAX_RATE} Hz supported"
                )
            if channels > 2:
                raise UnreadableRecording(
                    f"{path}: {channels} channels; a call recording has 2 (customer, agent)"
                )
            layout = "stereo" if channels == 2 else "mono"
            target = rate or line_rate(source_rate)
            resampler = av.AudioResampler(format="s16", layout=layout, rate=target)
            chunks: list[np.ndarray] = []
            for frame in container.decode(stream):
                for out in resampler.resample(frame):
                    chunks.append(out.to_ndarray().reshape(-1, channels))
            for out in resampler.resample(None):
                chunks.append(out.to_ndarray().reshape(-1, channels))
            tags = {**container.metadata, **stream.metadata}
    except (av.error.FFmpegError, OSError, ValueError, IndexError) as exc:
        raise UnreadableRecording(f"{path}: not a readable recording ({exc})") from None
    if not chunks:
        raise UnreadableRecording(f"{path}: no audio in the file")
    samples = np.concatenate(chunks).astype(np.int16, copy=False)
    if not len(samples):
        raise UnreadableRecording(f"{path}: no audio in the file")
    return _Decoded(samples, source_rate, _metadata_time(tags))


def decode_stereo(path: Path, customer_channel: str = "left") -> DecodedCall:
    """A stereo recording: ``customer_channel`` (left or right) is the customer, the other
    the agent. Raises ``MonoRecording`` for one channel, ``UnreadableRecording`` otherwise."""
    decoded = _decode(path)
    if decoded.samples.shape[1] != 2:
        raise MonoRecording(
            f"{path}: mono recording refused: customer and agent must be on separate channels "
            "(a stereo file, or two mono files named by the pairing rule, e.g. "
            "NAME.customer.wav and NAME.agent.wav)"
        )
    samples = decoded.samples if customer_channel == "left" else decoded.samples[:, ::-1]
    rate = line_rate(decoded.source_rate)
    return DecodedCall(
        np.ascontiguousarray(samples), rate, decoded.source_rate, decoded.recorded_at
    )


def decode_pair(customer: Path, agent: Path) -> DecodedCall:
    """Two mono recordings of one call, customer's and agent's, aligned at their starts (the
    shorter one padded with silence); both at the customer file's pipeline rate."""
    first = _decode(customer)
    rate = line_rate(first.source_rate)
    second = _decode(agent, rate)
    for path, part in ((customer, first), (agent, second)):
        if part.samples.shape[1] != 1:
            raise UnreadableRecording(
                f"{path}: a paired recording must be mono, it has {part.samples.shape[1]} channels"
            )
    n = max(len(first.samples), len(second.samples))
    samples = np.zeros((n, 2), dtype=np.int16)
    samples[: len(first.samples), 0] = first.samples[:, 0]
    samples[: len(second.samples), 1] = second.samples[:, 0]
    recorded_at = first.recorded_at if first.recorded_at is not None else second.recorded_at
    return DecodedCall(samples, rate, first.source_rate, recorded_at)


def file_time(path: Path) -> float:
    """The file's modification time (epoch seconds): a call's start when nothing better is
    known."""
    return os.stat(path).st_mtime
