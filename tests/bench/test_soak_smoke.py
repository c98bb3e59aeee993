"""Smoke run of the soak benchmark, as a user runs it (a subprocess, a real ``assist serve``,
two real-time calls for about 20 s). Checks the outputs' structure and the accounting of
audio, not the numbers a short run on a shared machine gives (``bench/soak.py`` docstring);
and the slope fit on known lines."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bench.soak import fit_slope

ROOT = Path(__file__).resolve().parents[2]


def test_the_slope_fit_reads_mb_per_hour_and_tells_a_leak_from_noise():
    t_s = [60.0 * i for i in range(31)]  # 30 minutes, a sample a minute
    noise = [(-1) ** i * 2.0 for i in range(31)]
    flat = fit_slope(t_s, [500.0 + n for n in noise])
    assert abs(flat["slope_mb_per_hour"]) < 1.0 and flat["flat"]
    leak = fit_slope(t_s, [500.0 + 40.0 * t / 3600 + n for t, n in zip(t_s, noise, strict=True)])
    assert leak["slope_mb_per_hour"] == pytest.approx(40.0, abs=1.0) and not leak["flat"]
    assert leak["span_minutes"] == 30.0 and leak["residual_std_mb"] == pytest.approx(2.0, abs=0.1)
    assert fit_slope([0.0, 1.0], [1.0, 2.0])["slope_mb_per_hour"] is None  # too few samples


@pytest.mark.e2e
@pytest.mark.asr
@pytest.mark.speech
def test_soak_writes_json_and_plot_and_accounts_for_the_audio(tmp_path):
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng not installed")
    out = tmp_path / "results"
    command = [sys.executable, "bench/soak.py", "--calls", "2", "--minutes", "0.3"]
    done = subprocess.run(
        [*command, "--sample-s", "2", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "soak 2 calls" in done.stderr  # the progress bar
    results = json.loads((out / "soak.json").read_text())
    assert results["settings"]["calls"] == 2 and results["settings"]["store"] == "sqlite"
    assert results["machine"]["cores"] >= 1 and results["load_average_1m"]["max"] >= 0
    assert len(results["samples"]) >= 5 and results["rss"]["max_mb"] > 0
    assert {"slope_mb_per_hour", "slope_stderr_mb_per_hour", "flat"} <= set(
        results["rss"]["after_warmup"]
    )
    assert results["calls"] == {**results["calls"], "done": 2, "failed": 0}
    audio = results["audio"]
    assert audio["sent_s"] == pytest.approx(36.0, abs=0.1)  # 2 calls x 18 s
    # every second sent was processed or counted as dropped
    assert audio["processed_s"] + audio["dropped_s"] == pytest.approx(audio["sent_s"], abs=0.1)
    assert results["server_exit_code"] == 0  # SIGTERM: a graceful stop
    assert (out / "soak.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
