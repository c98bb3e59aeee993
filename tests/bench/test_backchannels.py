"""Smoke run of ``bench/backchannels.py`` as a user runs it (a subprocess, the real model,
Piper and espeak-ng): one backchannel in every voice and one hold-music file with the
noise clips, at two floors. Checks the outputs' structure and what holds on any CPU: the
guard leaves no short final heard as nothing where the full window heard words."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.asr, pytest.mark.speech]

ROOT = Path(__file__).resolve().parents[2]


def test_backchannels_writes_counts_per_floor_and_a_plot(tmp_path):
    command = [sys.executable, "bench/backchannels.py", "--floors", "30", "8", "--limit", "1"]
    done = subprocess.run(
        [*command, "--out", str(tmp_path)], cwd=ROOT, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-2000:]
    results = json.loads((tmp_path / "backchannels.json").read_text())
    assert (tmp_path / "backchannels.png").stat().st_size > 0
    assert "| 8 s |" in done.stdout
    full, windowed = results["floors"]["30.0"], results["floors"]["8.0"]
    assert full["backchannels"] == windowed["backchannels"] == 5  # one word, five voices
    assert full["non_speech"] == windowed["non_speech"] == 16 + 2 * 4  # music, noise, clicks
    assert full["redone"] == {}  # the full window is never judged
    heard = {r["source"] for r in results["rows"]["30.0"] if r["kind"] == "speech" and r["text"]}
    for row in results["rows"]["8.0"]:
        assert row["ms"] > 0 and row["seconds"] > 0
        if row["kind"] == "speech" and row["source"] in heard:
            assert row["text"], row
    assert set(windowed["redone"]) <= {"empty", "no_speech", "repetition"}
