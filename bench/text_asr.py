"""The text models' labelled lines as the live pipeline hears them.

Each line of a labelled set is spoken by espeak-ng (the ``assist synth`` voices, agent or
customer), put through the telephone band the service receives (8 kHz, faint seeded line
noise, G.711 mu-law there and back), resampled to 16 kHz and transcribed by Whisper
``tiny.en`` with the live recognizer as the service builds it for finals
(``assist.asr.whisper.WhisperRecognizer`` with ``[asr]``'s defaults: beam, encoder window
floor, silence tail; word timestamps). ``--greedy-full-window`` decodes as the recognizer did
before 2026-12-03 (greedy, Whisper's 30 s window), as every transcript committed before
2026-12-06 was made: the training copies the fine-tuned tops train on still are.
The transcripts go to ``models/data/<set>.<split>.<engine>.tsv`` beside the labels;
``assist train-text`` reads the held-out ones to report F1 on recognizer output next to F1
on clean text, and a top can train on the training ones (``assist.text.train.HEARD_SOURCES``,
``Task.top_heard``). Speech and transcripts are cached under the synth
cache (``$ASSIST_SYNTH_CACHE``), so a rerun costs only the lines that changed.

    python bench/text_asr.py [--sets negative_phrasing customer_frustration hard_cases]
                             [--split heldout] [--limit N] [--out models/data]
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import logging
import sys
import time
from pathlib import Path

import numpy as np
import soxr

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from assist.audio.codecs import decode, mulaw_encode  # noqa: E402
from assist.config import AsrConfig  # noqa: E402
from assist.synth import render  # noqa: E402

log = logging.getLogger("text_asr")

LINE_RATE = 8000
ASR_RATE = 16000
NOISE_DBFS = -60.0
MODEL = "tiny.en"
# Whose voice speaks a set's lines (sets with a speaker column use it per line).
SET_SPEAKER = {"negative_phrasing": "agent", "empathy": "agent", "customer_frustration": "customer"}
WORDS_PER_MINUTE = 150
# How the service decodes finals by default (beam, encoder window floor, silence tail).
LIVE = AsrConfig()


def voice_key(speaker: str, tts: str) -> str:
    """Which synth voice says ``speaker``'s lines with engine ``tts``."""
    return f"piper:{speaker}" if tts == "piper" else render.VOICES[speaker]


def telephone_audio(text: str, speaker: str, tts: str = "espeak") -> np.ndarray:
    """``text`` spoken in ``speaker``'s synth voice (espeak-ng, or Piper's natural voice) as
    the service hears it: 8 kHz mu-law with line noise, back to float32 at 16 kHz (the
    recognizer's rate)."""
    if tts == "piper":
        speech = render._piper_tts(speaker, 1.0, text, LINE_RATE)
    else:
        speech = render._tts(render.VOICES[speaker], WORDS_PER_MINUTE, text, LINE_RATE)
    seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "little")
    pad = np.zeros(LINE_RATE // 4, dtype=np.float32)  # a quarter second either side
    line = np.concatenate([pad, speech, pad])
    noise = np.random.default_rng(seed).standard_normal(len(line)).astype(np.float32)
    line = np.clip(line + noise * np.float32(10 ** (NOISE_DBFS / 20)), -1.0, 32767 / 32768)
    heard = decode(mulaw_encode(line), "mulaw")
    return soxr.resample(heard, LINE_RATE, ASR_RATE).astype(np.float32)


def decoding_key(asr: AsrConfig | None) -> str:
    """How finals are decoded, as part of a transcript's cache key: ``[asr]``'s beam, window
    floor and silence tail, or "" for greedy decoding in the full 30 s window (``None``, the
    keys written before the live options were used)."""
    if asr is None:
        return ""
    tail = "tail" if asr.silence_tail else "notail"
    return f"|beam{asr.beam_size}|floor{asr.window_floor_s:g}|{tail}"


class Transcriber:
    """Whisper ``tiny.en`` on the CPU decoding finals as the live service does (``asr``,
    ``[asr]``'s defaults unless given; ``None``: greedy in the full 30 s window), and a
    disk cache of its transcripts keyed by model, decoding, voice, speed and text."""

    def __init__(self, threads: int = 2, tts: str = "espeak", asr: AsrConfig | None = LIVE) -> None:
        from assist.asr.model import load_model
        from assist.asr.whisper import WhisperRecognizer

        self.tts = tts
        self._decoding = decoding_key(asr)
        loaded = load_model(MODEL, device="cpu", cpu_threads=threads)
        self.recognizer = (
            WhisperRecognizer(loaded) if asr is None else WhisperRecognizer.for_finals(loaded, asr)
        )
        self._cache = render.cache_dir() / "recognized.json"
        self._known: dict[str, str] = (
            json.loads(self._cache.read_text()) if self._cache.is_file() else {}
        )

    def __call__(self, text: str, speaker: str) -> str:
        """What the recognizer makes of ``text`` said by ``speaker`` (cached)."""
        voice = voice_key(speaker, self.tts)
        key = f"{MODEL}{self._decoding}|{voice}|{WORDS_PER_MINUTE}|{NOISE_DBFS}|{text}"
        if key not in self._known:
            (heard,) = self.recognizer.recognize([telephone_audio(text, speaker, self.tts)])
            self._known[key] = heard.text.strip()
        return self._known[key]

    def save(self) -> None:
        """Write the transcript cache."""
        tmp = self._cache.with_suffix(".tmp")
        tmp.write_text(json.dumps(self._known, indent=0, sort_keys=True))
        tmp.replace(self._cache)


def read_rows(path: Path) -> list[dict[str, str]]:
    """The rows of a labelled TSV (``text``, ``label`` and for mixed sets ``speaker``)."""
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh, delimiter="\t", quoting=csv.QUOTE_NONE))


def recognize_set(
    name: str, split: str, data: Path, out: Path, transcribe: Transcriber, limit: int | None
) -> Path:
    """Transcribe ``data/<name>.<split>.tsv`` into ``out/<name>.<split>.recognized.tsv``
    (the input's columns plus ``recognized``); returns the written path."""
    rows = read_rows(data / f"{name}.{split}.tsv")[:limit]
    started = time.perf_counter()
    for i, row in enumerate(rows, 1):
        speaker = row.get("speaker") or SET_SPEAKER[name]
        row["recognized"] = " ".join(transcribe(row["text"], speaker).split())  # one line
        if i % 25 == 0 or i == len(rows):
            log.info("%s: %d/%d lines (%.0f s)", name, i, len(rows), time.perf_counter() - started)
            transcribe.save()
    path = out / f"{name}.{split}.{transcribe.tts}.tsv"
    columns = [*rows[0].keys()] if rows else ["text", "label", "recognized"]
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(
            fh, columns, delimiter="\t", quoting=csv.QUOTE_NONE, quotechar=None, lineterminator="\n"
        )
        writer.writeheader()
        writer.writerows(rows)
    return path


def main(argv: list[str] | None = None) -> int:
    """Transcribe the chosen sets; returns the exit status."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--sets", nargs="+", default=["negative_phrasing", "customer_frustration", "hard_cases"]
    )
    parser.add_argument("--split", default="heldout")
    parser.add_argument("--limit", type=int, help="only the first N lines of each set")
    parser.add_argument("--data", type=Path, default=ROOT / "models" / "data")
    parser.add_argument("--out", type=Path, default=ROOT / "models" / "data")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--tts", choices=["espeak", "piper"], default="espeak")
    parser.add_argument(
        "--greedy-full-window",
        action="store_true",
        help="decode greedily in Whisper's 30 s window (the recognizer before 2026-12-03)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    transcribe = Transcriber(args.threads, args.tts, None if args.greedy_full_window else LIVE)
    for name in args.sets:
        path = recognize_set(name, args.split, args.data, args.out, transcribe, args.limit)
        log.info("wrote %s", path)
    transcribe.save()
    return 0


if __name__ == "__main__":
    sys.exit(main())
