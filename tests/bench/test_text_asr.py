"""The recognizer-output sets behind the text models' cards (``bench/text_asr.py``).

The full sets take minutes of Whisper time, so they are committed
(``models/data/*.heldout.<engine>.tsv``) and ``assist train-text`` reads them; here a
small sample is redone for real (espeak-ng, the telephone band, Whisper ``tiny.en``) and
must read like the committed transcripts, and the committed files must hold exactly the
labelled lines they claim to.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from assist.asr.wer import word_error_rate
from assist.config import AsrConfig
from assist.text.train import RECOGNIZERS
from bench import text_asr

pytestmark = [pytest.mark.asr, pytest.mark.speech]

DATA = Path(__file__).resolve().parents[2] / "models" / "data"
SETS = ("negative_phrasing", "customer_frustration", "hard_cases")


def rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh, delimiter="\t", quoting=csv.QUOTE_NONE))


TRANSCRIPTS = sorted(path.name for engine in RECOGNIZERS for path in DATA.glob(f"*.{engine}.tsv"))


def test_every_set_has_its_transcripts() -> None:
    for name in SETS:
        for engine in RECOGNIZERS:
            assert f"{name}.heldout.{engine}.tsv" in TRANSCRIPTS


@pytest.mark.parametrize("transcripts", TRANSCRIPTS)
def test_the_committed_transcripts_cover_their_labelled_set(transcripts: str) -> None:
    stem, _engine, _tsv = transcripts.rsplit(".", 2)
    labelled = rows(DATA / f"{stem}.tsv")
    heard = rows(DATA / transcripts)
    assert [(r["text"], r["label"]) for r in heard] == [(r["text"], r["label"]) for r in labelled]
    assert all(r["recognized"].strip() for r in heard)


def test_a_sample_transcribed_again_reads_like_the_committed_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ASSIST_SYNTH_CACHE", str(tmp_path))  # no cached transcripts
    committed = rows(DATA / "hard_cases.heldout.espeak.tsv")
    sample = [r for r in committed if r["class"] == "context"][:2] + committed[:1]
    transcribe = text_asr.Transcriber(threads=2)
    for row in sample:
        again = transcribe(row["text"], row["speaker"])
        errors, words = word_error_rate(row["recognized"], again)
        # another CPU may take another SIMD path in Whisper: close, not always equal
        assert errors <= max(1, words // 4), (row["recognized"], again)
    transcribe.save()
    assert (tmp_path / "recognized.json").is_file()


def test_transcripts_are_decoded_as_the_service_decodes_finals() -> None:
    live = AsrConfig()
    recognizer = text_asr.Transcriber(threads=1).recognizer
    assert (recognizer.beam_size, recognizer.window_floor_s, recognizer.silence_tail) == (
        live.beam_size,
        live.window_floor_s,
        live.silence_tail,
    )
    before = text_asr.Transcriber(threads=1, asr=None).recognizer  # --greedy-full-window
    assert (before.beam_size, before.window_floor_s) == (1, 30.0)


def test_a_transcript_is_cached_per_decoding() -> None:
    keys = {
        text_asr.decoding_key(None),
        text_asr.decoding_key(AsrConfig()),
        text_asr.decoding_key(AsrConfig(beam_size=1)),
        text_asr.decoding_key(AsrConfig(window_floor_s=30.0)),
        text_asr.decoding_key(AsrConfig(silence_tail=False)),
    }
    assert len(keys) == 5
    assert text_asr.decoding_key(None) == ""  # the keys cached before live decoding
