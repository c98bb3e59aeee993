"""Render a call script to stereo float32 audio (left customer, right agent)."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soxr

from assist.synth.script import CallScript, Hold, Utterance

VOICES = {"customer": "en-us+f3", "agent": "en-us+m3"}
MOH_DIR = Path("/usr/share/asterisk/moh")
SPEECH_LEVEL_DBFS = -20.0
MUSIC_LEVEL_DBFS = -24.0
TRIM_DBFS = -45.0  # espeak pads utterances with silence; trim below this level


@dataclass(frozen=True)
class RenderedUtterance:
    who: str
    text: str
    start_s: float  # first audible sample
    end_s: float  # last audible sample
    expect: str | None = None  # the text cue the script says this line raises


@dataclass(frozen=True)
class RenderedCall:
    script: CallScript
    audio: np.ndarray  # (n, 2) float32: customer, agent
    utterances: list[RenderedUtterance]

    @property
    def sample_rate(self) -> int:
        return self.script.sample_rate


def cache_dir() -> Path:
    path = Path(os.environ.get("ASSIST_SYNTH_CACHE", Path.home() / ".cache" / "assist-synth"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def read_wav_mono(path: Path) -> tuple[np.ndarray, int]:
    with wave.open(str(path), "rb") as wav:
        if wav.getsampwidth() != 2:
            raise ValueError(f"{path}: only 16-bit PCM WAV is supported")
        raw = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")
        channels = wav.getnchannels()
        audio = raw.reshape(-1, channels).mean(axis=1) / 32768.0
        return audio.astype(np.float32), wav.getframerate()


def _speak(utterance: Utterance, rate: int) -> np.ndarray:
    """espeak-ng speech for one utterance at ``rate``, trimmed, at the speech level."""
    voice = utterance.voice or VOICES[utterance.who]
    key = hashlib.sha256(f"{voice}|{utterance.words_per_minute}|{utterance.text}".encode())
    path = cache_dir() / f"tts-{key.hexdigest()[:20]}.wav"
    if not path.exists():
        espeak = shutil.which("espeak-ng")
        if espeak is None:
            raise RuntimeError("espeak-ng is not installed (apt-get install espeak-ng)")
        tmp = path.with_suffix(".tmp.wav")
        cmd = [espeak, "-v", voice, "-s", str(utterance.words_per_minute), "-w", str(tmp)]
        subprocess.run([*cmd, utterance.text], check=True, capture_output=True)
        tmp.replace(path)
    audio, source_rate = read_wav_mono(path)
    audio = soxr.resample(audio, source_rate, rate).astype(np.float32)
    return _trim_and_level(audio, SPEECH_LEVEL_DBFS)


def _trim_and_level(audio: np.ndarray, level_dbfs: float) -> np.ndarray:
    threshold = 10 ** (TRIM_DBFS / 20)
    loud = np.flatnonzero(np.abs(audio) > threshold)
    if len(loud) == 0:
        raise ValueError("synthesized utterance is silent")
    audio = audio[loud[0] : loud[-1] + 1]
    rms = float(np.sqrt(np.mean(audio**2)))
    return (audio * (10 ** (level_dbfs / 20) / rms)).astype(np.float32)


def _hold_audio(hold: Hold, rate: int) -> np.ndarray:
    n = int(hold.duration * rate)
    if hold.sound == "silence":
        return np.zeros(n, dtype=np.float32)
    path = MOH_DIR / f"{hold.music}.wav"
    if not path.exists():
        raise RuntimeError(f"{path} missing (apt-get install asterisk-moh-opsound-wav)")
    music, source_rate = read_wav_mono(path)
    music = soxr.resample(music, source_rate, rate).astype(np.float32)
    # Start at the first audible note (some tracks fade in), so the hold is heard from
    # its scripted start.
    music = music[np.flatnonzero(np.abs(music) > 10 ** (TRIM_DBFS / 20))[0] :]
    reps = int(np.ceil(n / len(music)))
    music = np.tile(music, reps)[:n]
    rms = float(np.sqrt(np.mean(music**2)))
    return music * np.float32(10 ** (MUSIC_LEVEL_DBFS / 20) / rms)


def render(script: CallScript) -> RenderedCall:
    rate = script.sample_rate
    n = round(script.duration_s * rate)
    rng = np.random.default_rng(script.seed)
    noise = rng.standard_normal((n, 2)).astype(np.float32) * np.float32(
        10 ** (script.noise_dbfs / 20)
    )
    audio = noise
    for hold in script.hold:
        if hold.sound == "line":
            continue  # the agent line keeps its noise; only CTI events tell
        start = int(hold.at * rate)
        clip = _hold_audio(hold, rate)[: max(0, n - start)]
        audio[start : start + len(clip), 1] = clip  # replaces the agent line, noise included
    rendered = []
    for utterance in script.say:
        channel = 0 if utterance.who == "customer" else 1
        start = round(utterance.at * rate)
        clip = _speak(utterance, rate)[: max(0, n - start)]
        audio[start : start + len(clip), channel] += clip
        rendered.append(
            RenderedUtterance(
                utterance.who,
                utterance.text,
                start / rate,
                (start + len(clip)) / rate,
                utterance.expect,
            )
        )
    np.clip(audio, -1.0, 32767 / 32768, out=audio)
    return RenderedCall(script, audio, rendered)


def write_stereo_wav(path: str | Path, audio: np.ndarray, rate: int) -> None:
    pcm = np.round(audio * 32768.0).clip(-32768, 32767).astype("<i2")
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(2)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(pcm.tobytes())
