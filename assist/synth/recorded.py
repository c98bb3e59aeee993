"""Calls made of real recorded telephone speech: Debian's Asterisk core sound prompts.

``asterisk-core-sounds-en-wav`` has 8 kHz recordings of a human voice (CC-BY-SA-3.0);
``asterisk-core-sounds-en`` has their transcripts. A call lays prompts alternately on the
customer and agent channels with pauses between turns, and keeps each prompt's reference
text and exact span: ground truth for word error rate and transcript delay.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

from assist.synth.render import RenderedCall, RenderedUtterance, read_wav_mono
from assist.synth.script import CallScript

SOUNDS = Path("/usr/share/asterisk/sounds/en")
TRANSCRIPTS = Path("/usr/share/doc/asterisk-core-sounds-en/core-sounds-en.txt.gz")


def prompt_texts() -> dict[str, str]:
    """Prompt name -> reference text, for prompts that are spoken words (no tones)."""
    if not TRANSCRIPTS.exists() or not SOUNDS.exists():
        raise RuntimeError(
            "needs Debian packages asterisk-core-sounds-en-wav and asterisk-core-sounds-en"
        )
    texts = {}
    with gzip.open(TRANSCRIPTS, "rt", encoding="utf-8", errors="replace") as fh:
        for line in fh:
            name, sep, text = line.partition(":")
            name, text = name.strip(), text.strip()
            annotated = "[" in text or "(" in text  # tones, notes: not what is said
            if not sep or line.startswith(";") or "/" in name or not text or annotated:
                continue
            if (SOUNDS / f"{name}.wav").exists():
                texts[name] = text
    return texts


def prompt_call(
    customer: list[str],
    agent: list[str],
    pause_s: float = 0.8,
    noise_dbfs: float = -60.0,
    seed: int = 3,
) -> RenderedCall:
    """Alternate customer and agent prompts (customer first), ``pause_s`` between turns."""
    texts = prompt_texts()
    turns: list[tuple[str, str]] = []
    for i in range(max(len(customer), len(agent))):
        if i < len(customer):
            turns.append(("customer", customer[i]))
        if i < len(agent):
            turns.append(("agent", agent[i]))
    rate = 8000
    clips = []
    for who, name in turns:
        audio, source_rate = read_wav_mono(SOUNDS / f"{name}.wav")
        if source_rate != rate:
            raise ValueError(f"{name}: expected 8 kHz, got {source_rate}")
        clips.append((who, name, audio))
    total = sum(len(a) for _, _, a in clips) + int((len(clips) + 1) * pause_s * rate)
    rng = np.random.default_rng(seed)
    mix = rng.standard_normal((total, 2)).astype(np.float32) * np.float32(10 ** (noise_dbfs / 20))
    utterances = []
    position = int(pause_s * rate)
    for who, name, audio in clips:
        channel = 0 if who == "customer" else 1
        mix[position : position + len(audio), channel] += audio
        utterances.append(
            RenderedUtterance(who, texts[name], position / rate, (position + len(audio)) / rate)
        )
        position += len(audio) + int(pause_s * rate)
    script = CallScript(name="recorded", duration_s=total / rate, sample_rate=rate)
    return RenderedCall(script, np.clip(mix, -1.0, 32767 / 32768), utterances)
