"""`assist train-text` rebuilds the committed text models bit for bit from the data."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from assist.text.classify import HEAD_FILES

pytestmark = pytest.mark.train

ROOT = Path(__file__).resolve().parents[2]


def test_training_reproduces_the_committed_models(tmp_path: Path) -> None:
    run = subprocess.run(
        [sys.executable, "-m", "assist.cli", "train-text", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert run.returncode == 0, run.stderr
    assert "held-out F1" in run.stderr  # progress is logged
    for name in HEAD_FILES:
        assert (tmp_path / name).read_bytes() == (ROOT / "models" / name).read_bytes(), name
        stem = name.removesuffix(".onnx")
        for suffix in (".metrics.json", ".md"):
            rebuilt = (tmp_path / f"{stem}{suffix}").read_text()
            assert rebuilt == (ROOT / "models" / f"{stem}{suffix}").read_text(), stem + suffix
