"""Recorded calls in the formats contact centers keep, written from synthesized calls
(PyAV/FFmpeg encoders: the same library family a recorder uses, not our decoder's code)."""

from __future__ import annotations

import wave
from pathlib import Path

import av
import numpy as np
import soxr

from assist.synth.render import RenderedCall, write_stereo_wav


def _resampled(audio: np.ndarray, rate: int, to: int) -> np.ndarray:
    if rate == to:
        return audio
    return np.stack([soxr.resample(audio[:, i], rate, to) for i in range(audio.shape[1])], axis=1)


def encode(
    path: Path, audio: np.ndarray, rate: int, codec: str, to_rate: int | None = None
) -> None:
    """``audio`` float32 (n, channels) into ``path`` with FFmpeg's ``codec`` (the container
    from the extension), at ``to_rate`` (default ``rate``)."""
    to_rate = to_rate or rate
    audio = _resampled(audio, rate, to_rate).astype(np.float32)
    channels = audio.shape[1]
    layout = "stereo" if channels == 2 else "mono"
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=to_rate, layout=layout)
        pcm = np.round(audio * 32767).clip(-32768, 32767).astype(np.int16)
        step = 960
        for i in range(0, len(pcm), step):
            chunk = np.ascontiguousarray(pcm[i : i + step].reshape(1, -1))
            frame = av.AudioFrame.from_ndarray(chunk, format="s16", layout=layout)
            frame.sample_rate = to_rate
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)


def write_mono_wav(path: Path, audio: np.ndarray, rate: int) -> None:
    """One channel as a 16-bit mono WAV."""
    pcm = np.round(audio * 32767).clip(-32768, 32767).astype("<i2")
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(pcm.tobytes())


def write_call(folder: Path, stem: str, call: RenderedCall, kind: str) -> list[Path]:
    """The call as ``kind``: wav (PCM16 stereo), mulaw, alaw, pair (two mono WAVs), flac
    (44.1 kHz), mp3 (16 kHz) or opus (Ogg/Opus, 48 kHz). Returns the files written."""
    audio, rate = call.audio, call.sample_rate
    folder.mkdir(parents=True, exist_ok=True)
    if kind == "wav":
        path = folder / f"{stem}.wav"
        write_stereo_wav(path, audio, rate)
        return [path]
    if kind == "pair":
        customer, agent = folder / f"{stem}.customer.wav", folder / f"{stem}.agent.wav"
        write_mono_wav(customer, audio[:, 0], rate)
        write_mono_wav(agent, audio[:, 1], rate)
        return [customer, agent]
    codec, suffix, to_rate = {
        "mulaw": ("pcm_mulaw", "wav", rate),
        "alaw": ("pcm_alaw", "wav", rate),
        "flac": ("flac", "flac", 44100),
        "mp3": ("libmp3lame", "mp3", 16000),
        "opus": ("libopus", "opus", 48000),
    }[kind]
    path = folder / f"{stem}.{suffix}"
    encode(path, audio, rate, codec, to_rate)
    return [path]


def write_broken(path: Path) -> Path:
    """A WAV cut off inside its header, then garbage: what a failed upload leaves."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"RIFF\x24\x08\x00\x00WAVEfmt " + bytes(range(7, 200, 3)))
    return path
