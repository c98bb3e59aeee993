"""Smoke run of the benchmark entry point: ``bench/run.py`` with one short call and the quick
micro stage, as a user runs it (a subprocess, a real server, real time). Checks the
outputs' structure only: latency values depend on the machine."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from assist.config import Settings
from bench.common import ISA_FLAGS
from bench.loadgen import load_calls, slot_schedule

pytestmark = [pytest.mark.e2e, pytest.mark.asr, pytest.mark.speech]

ROOT = Path(__file__).resolve().parents[2]
SECONDS = 25.0  # of audio: the dispute call's first frustration and negative phrasing


def firm_kinds_within(seconds: float) -> set[str]:
    """Cue kinds scripted (not optional) in the audio one call slot streams."""
    kinds = set()
    for _, plan, frames in slot_schedule(load_calls(Settings().cues), 0, seconds):
        kinds |= {t.kind for t in plan.truth if not t.optional and t.at_s <= frames * 0.02}
    return kinds


def test_run_writes_results_summary_and_plots(tmp_path):
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng not installed")
    out = tmp_path / "results"
    command = [sys.executable, "bench/run.py", "--calls", "1", "--seconds", str(SECONDS)]
    done = subprocess.run(
        [*command, "--out", str(out), "--micro-quick"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "s of audio" in done.stderr  # the progress bar

    results = json.loads((out / "results.json").read_text())
    machine = results["machine"]
    assert machine["cores"] >= 1 and machine["cpu"] and machine["memory_gb"] > 0
    assert "gpu" in machine
    # the host's speed, so sweeps on other hosts (or days) compare
    assert machine["reference_encode"]["median_ms"] > 0
    assert set(machine["isa"]) <= set(ISA_FLAGS)  # the flags int8 speed depends on

    [run] = results["runs"]
    assert run["calls"] == 1 and run["seconds"] == SECONDS
    want = firm_kinds_within(SECONDS)
    assert want >= {"customer_frustration", "negative_phrasing"}
    assert want <= set(run["cues"])
    for cue in run["cues"].values():
        assert {"p50_s", "p95_s", "p99_s", "n", "recall", "false_per_hour"} <= set(cue)
        assert cue["n"] <= cue["expected"] or cue["expected"] == 0
    assert run["transcript_delay"]["n"] >= 1  # ASR was on: finals reached the agent
    assert {"queue_max", "final_wait_p95_s", "shed"} <= set(run["asr"])
    assert run["cpu"]["server_core_share_per_call"] > 0
    roles = run["cpu"]["server_cores_by_role"]
    assert roles["event_loop"] > 0 and roles["recognizer"] > 0  # ASR threads run lowered
    assert sum(roles.values()) == pytest.approx(run["cpu"]["server_cores_used"], abs=0.05)
    assert run["memory"]["server_peak_rss_mb"] > 0

    device = run["asr"]["device"]
    assert results["capacity"][device] in (0, 1)
    micro = ("decode_resample_mulaw_8k_frame", "vad_window", "vad_window_both_channels")
    for name in (*micro, "asr_tiny.en_batch1"):
        assert results["micro"][name]["median_ms"] > 0
    assert "fanout_1000_delivered" in results["micro"]

    summary = (out / "summary.md").read_text()
    assert "## Capacity" in summary and "negative_phrasing" in summary
    assert "(event loop / recognizer / other)" in summary
    assert "reference encode" in summary
    for png in ("delay_vs_calls.png", "cpu_per_call.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_window_floor_writes_the_table_json_and_plot(tmp_path):
    """``bench/window_floor.py`` on one sentence and one short prompt, two floors: the
    service's recognizer on real recorded speech (a beam of 2 and no silence tail, recorded
    in the JSON), a row per floor, and the plot again from the JSON alone (``--plot-only``)."""
    command = [sys.executable, "bench/window_floor.py", "--floors", "30", "8", "--beam-size", "2"]
    command += ["--rates", "8000", "--limit", "1", "--no-silence-tail", "--out", str(tmp_path)]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "| 30 s (full) | 8 kHz |" in done.stdout and "| 8 s | 8 kHz |" in done.stdout
    results = json.loads((tmp_path / "window_floor.json").read_text())
    assert results["beam_size"] == 2 and results["silence_tail"] is False
    for floor in ("30.0", "8.0"):
        run = results["floors"]["8000"][floor]
        assert {"customer", "all", "short"} <= set(run)
        assert run["all"]["words"] > 0 and 0 <= run["all"]["wer"] <= 1
        assert run["all"]["ms_per_utterance"]["mean"] > 0
    assert len(results["rows"]["8000/8.0"]) == 2  # the sentence and the short prompt
    versus = results["against_full_window"]["8000"]["8.0"]["all"]
    assert versus["utterances"] == 1 and versus["ci95"][0] <= versus["points"] <= versus["ci95"][1]
    png = tmp_path / "window_floor.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    png.unlink()
    again = subprocess.run(
        [sys.executable, "bench/window_floor.py", "--plot-only", "--out", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert again.returncode == 0, again.stderr[-3000:]
    assert png.is_file() and "| 8 s | 8 kHz |" in again.stdout
    # judged against a reference run's 30 s rows (here a copy of itself: no difference)
    reference = tmp_path / "reference.json"
    reference.write_text((tmp_path / "window_floor.json").read_text())
    command = [sys.executable, "bench/window_floor.py", "--plot-only", "--out", str(tmp_path)]
    compared = subprocess.run(
        [*command, "--reference", str(reference)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert compared.returncode == 0, compared.stderr[-3000:]
    assert "vs the reference's 30 s (beam 2)" in compared.stdout
    results = json.loads((tmp_path / "window_floor.json").read_text())
    assert results["against_reference"]["8000"]["8.0"]["all"]["points"] == versus["points"]
    assert results["against_reference"]["8000"]["30.0"]["all"]["points"] == 0.0
