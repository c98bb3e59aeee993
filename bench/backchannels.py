"""Backchannels and non-speech through the encoder window: what a short window hears.

Live, many utterances the segmenter cuts are one-word backchannels ("Right.", "Mm-hmm.")
and a few are music or noise the VAD took for speech. This plays ``BACKCHANNELS`` in
five voices (Piper's customer and agent voices, three espeak-ng voices) and non-speech
clips (Asterisk's music on hold at four lengths and four passages of each file, white
noise and clicks at two levels) through an 8 kHz mu-law line with the segmenter's rolls of
line noise, to the service's own ``WhisperRecognizer`` at each floor (finals: words on),
one utterance at a time. Per floor: backchannels heard as nothing, by the windowed pass
alone and with the guard (which redoes a short final heard as nothing and words Whisper
judges not speech, ``full_window_reason``); non-speech heard as words; WER on the
backchannels; ms per utterance; the redos by reason.

    python bench/backchannels.py [--floors 30 15 8] [--limit N] [--out bench/results]

Writes ``backchannels.json`` (every utterance's text) and ``backchannels.png``, and prints
a Markdown table. Needs the ``[voices]`` extra (Piper) and espeak-ng.
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from assist.asr.model import load_model  # noqa: E402
from assist.asr.wer import word_error_rate  # noqa: E402
from assist.audio.codecs import decode, mulaw_encode  # noqa: E402
from assist.audio.resample import StreamResampler  # noqa: E402
from assist.synth.render import MOH_DIR, _piper_tts, _tts, read_wav_mono  # noqa: E402
from bench.common import pyplot, recognizer_run_header, write_results  # noqa: E402
from bench.window_floor import (  # noqa: E402
    NOISE_DBFS,
    POST_ROLL_S,
    PRE_ROLL_S,
    _FirstPass,
    timed_recognition,
)

LINE_RATE = 8000  # Hz: a mu-law phone line
BACKCHANNELS = [
    "Right.",
    "Okay.",
    "Sure.",
    "Yes.",
    "Yeah.",
    "No.",
    "Mm-hmm.",
    "Uh-huh.",
    "I see.",
    "Got it.",
    "Thanks.",
    "Perfect.",
    "Of course.",
    "Alright.",
    "Great.",
]
ESPEAK_VOICES = ["en-us+m3", "en-us+f3", "en-gb+m1"]
ESPEAK_WPM = 170
# Every backchannel is played in each voice, in this order: Piper's two sides, then espeak-ng
VOICES = ["piper-customer", "piper-agent", *(f"espeak-{voice}" for voice in ESPEAK_VOICES)]
MUSIC_SECONDS = [0.6, 1.0, 1.5, 2.5]  # clips of each hold-music file, at each passage
MUSIC_PASSAGES = 4  # passages of each file, 13 s apart (the shortest file is 73 s)
MUSIC_LEVEL_DBFS = -24.0  # RMS, as hold music plays in the synthesized calls
NOISE_LEVELS_DBFS = [-30.0, -40.0]  # white noise RMS; clicks peak 20 dB higher
NOISE_SECONDS = [0.5, 1.0, 2.0]


def on_the_line(audio: np.ndarray, seed: int) -> np.ndarray:
    """``audio`` (float32 at 8 kHz) as the recognizer gets it: the segmenter's rolls of line
    noise around it, mu-law on the wire, the service's resampler to 16 kHz."""
    rng = np.random.default_rng(seed)
    pre, post = (
        np.zeros(round(s * LINE_RATE), dtype=np.float32) for s in (PRE_ROLL_S, POST_ROLL_S)
    )
    line = np.concatenate([pre, audio.astype(np.float32), post])
    line += rng.standard_normal(len(line)).astype(np.float32) * np.float32(10 ** (NOISE_DBFS / 20))
    line = np.clip(line, -1.0, 32767 / 32768)
    wire = decode(mulaw_encode(line), "mulaw")
    return StreamResampler(LINE_RATE, 16000).process(wire, last=True).astype(np.float32)


def spoken(voice: str, text: str) -> np.ndarray:
    """``text`` said by ``voice`` (one of ``VOICES``), float32 at 8 kHz."""
    synthesizer, _, name = voice.partition("-")
    if synthesizer == "piper":
        return _piper_tts(name, 1.0, text, LINE_RATE)
    if synthesizer == "espeak":
        return _tts(name, ESPEAK_WPM, text, LINE_RATE)
    raise ValueError(f"voice {voice!r}: not one of {VOICES}")


def speech_clips(limit: int | None) -> list[tuple[str, str, np.ndarray]]:
    """(voice, text, audio at 8 kHz) for each backchannel in each of ``VOICES``; the
    non-speech clips are played after these (their seeds follow on)."""
    return [(voice, text, spoken(voice, text)) for text in BACKCHANNELS[:limit] for voice in VOICES]


def non_speech_clips(limit: int | None) -> list[tuple[str, float, np.ndarray]]:
    """(source, seconds, audio at 8 kHz): hold music from every Asterisk file, white noise
    and clicks (impulses every 0.14 s), seeded."""
    import soxr

    clips = []
    for path in sorted(MOH_DIR.glob("*.wav"))[:limit]:
        music, rate = read_wav_mono(path)
        music = soxr.resample(music, rate, LINE_RATE).astype(np.float32)
        for (k, seconds), passage in itertools.product(
            enumerate(MUSIC_SECONDS), range(MUSIC_PASSAGES)
        ):
            start = round((5 + 7 * k + 13 * passage) * LINE_RATE)  # another passage each
            clip = music[start : start + round(seconds * LINE_RATE)]
            rms = float(np.sqrt(np.mean(clip**2))) or 1.0
            clips.append(
                (f"music {path.stem}", seconds, clip / rms * 10 ** (MUSIC_LEVEL_DBFS / 20))
            )
    rng = np.random.default_rng(7)
    for level in NOISE_LEVELS_DBFS:
        for seconds in NOISE_SECONDS:
            noise = rng.standard_normal(round(seconds * LINE_RATE)) * 10 ** (level / 20)
            clips.append((f"white noise {level:.0f} dBFS", seconds, noise.astype(np.float32)))
        clicks = np.zeros(LINE_RATE, dtype=np.float32)
        clicks[::1100] = 10 ** ((level + 20) / 20)
        clips.append((f"clicks {level + 20:.0f} dBFS", 1.0, clicks))
    return clips


def has_words(text: str) -> bool:
    return any(ch.isalnum() for ch in text)


def summarize(speech: list[dict[str, Any]], other: list[dict[str, Any]]) -> dict[str, Any]:
    """One floor's counts over its speech rows and non-speech rows."""
    words = sum(r["words"] for r in speech)
    retries: dict[str, int] = {}
    for r in speech + other:
        if r["retry"]:
            retries[r["retry"]] = retries.get(r["retry"], 0) + 1
    return {
        "backchannels": len(speech),
        "heard_as_nothing": sum(not has_words(r["text"]) for r in speech),
        "heard_as_nothing_first_pass": sum(not has_words(r["first_pass"]) for r in speech),
        "wer": round(sum(r["errors"] for r in speech) / words, 4) if words else 0.0,
        "non_speech": len(other),
        "non_speech_heard_as_words": sum(has_words(r["text"]) for r in other),
        "non_speech_heard_as_words_first_pass": sum(has_words(r["first_pass"]) for r in other),
        "ms_per_backchannel": round(float(np.mean([r["ms"] for r in speech])), 1),
        "ms_per_non_speech": round(float(np.mean([r["ms"] for r in other])), 1),
        "redone": retries,
    }


def table(results: dict[str, Any]) -> str:
    lines = [
        "| floor | backchannels heard as nothing (windowed pass alone) | WER | non-speech heard "
        "as words (alone) | ms per backchannel | ms per non-speech clip | redone |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for floor, s in results["floors"].items():
        redone = ", ".join(f"{k} {v}" for k, v in s["redone"].items()) or "0"
        lines.append(
            f"| {float(floor):g} s | {s['heard_as_nothing']} of {s['backchannels']} "
            f"({s['heard_as_nothing_first_pass']}) | {100 * s['wer']:.1f} % | "
            f"{s['non_speech_heard_as_words']} of {s['non_speech']} "
            f"({s['non_speech_heard_as_words_first_pass']}) | {s['ms_per_backchannel']:.0f} | "
            f"{s['ms_per_non_speech']:.0f} | {redone} |"
        )
    return "\n".join(lines)


def plot(results: dict[str, Any], path: Path) -> None:
    plt = pyplot()

    floors = list(results["floors"])
    x = np.arange(len(floors))
    fig, ax = plt.subplots(figsize=(7, 4))
    for offset, (key, label) in enumerate(
        [
            ("heard_as_nothing_first_pass", "backchannels heard as nothing, windowed pass"),
            ("heard_as_nothing", "backchannels heard as nothing, with the guard"),
            ("non_speech_heard_as_words", "non-speech heard as words, with the guard"),
        ]
    ):
        ax.bar(
            x + 0.27 * (offset - 1), [results["floors"][f][key] for f in floors], 0.27, label=label
        )
    ax.set_xticks(x, [f"{float(f):g} s" for f in floors])
    ax.set_xlabel("encoder window floor")
    ax.set_ylabel("utterances")
    ax.set_title(
        f"{results['floors'][floors[0]]['backchannels']} backchannels, "
        f"{results['floors'][floors[0]]['non_speech']} non-speech clips, 8 kHz line"
    )
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--floors", type=float, nargs="+", default=[30.0, 15.0, 8.0])
    parser.add_argument("--model", default="tiny.en")
    parser.add_argument("--limit", type=int, default=None, help="first N words / music files")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = parser.parse_args()
    load_before = os.getloadavg()
    loaded = load_model(args.model, "cpu", cpu_threads=1)
    retried: list[str] = []
    recognizers = {
        floor: _FirstPass(loaded, 1, floor, on_full_window_retry=retried.append)
        for floor in args.floors
    }
    plays = [("speech", voice, text, audio) for voice, text, audio in speech_clips(args.limit)]
    plays += [("non-speech", src, "", audio) for src, _, audio in non_speech_clips(args.limit)]
    rows: dict[float, list[dict[str, Any]]] = {floor: [] for floor in args.floors}
    started = time.perf_counter()
    for seed, (kind, source, reference, clip) in enumerate(plays):
        audio = on_the_line(clip, seed)
        for floor, recognizer in recognizers.items():
            result, timed = timed_recognition(recognizer, audio, retried)
            errors, words = word_error_rate(reference, result.text) if reference else (0, 0)
            rows[floor].append(
                {
                    "kind": kind,
                    "source": source,
                    "reference": reference,
                    "seconds": round(len(audio) / 16000, 3),
                    "errors": errors,
                    "words": words,
                    **timed,
                }
            )
        print(f"\r{seed + 1}/{len(plays)} clips", end="", flush=True)
    print(f"  ({time.perf_counter() - started:.0f} s)")
    results: dict[str, Any] = {
        **recognizer_run_header(
            "backchannels and non-speech through the encoder window",
            load_before,
            args.model,
            loaded.compute_type,
        ),
        "floors": {
            str(floor): summarize(
                [r for r in rows[floor] if r["kind"] == "speech"],
                [r for r in rows[floor] if r["kind"] == "non-speech"],
            )
            for floor in args.floors
        },
        "rows": {str(floor): rows[floor] for floor in args.floors},
    }
    write_results(args.out, "backchannels", results, table, plot)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
