"""``bench/gpu.py`` without a GPU: its cuBLAS links, its capacity rule, and its batch stage
run as a user runs it (a subprocess) on the CPU, where the same recognizer code batches.
The numbers are the machine's; only the structure and the batched results' correctness
are checked."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench.gpu import CheckFailed, capacity_at, link_cublas

ROOT = Path(__file__).resolve().parents[2]


def test_cublas_12_names_are_linked_to_the_cuda_13_libraries(tmp_path):
    cuda13 = tmp_path / "cuda13"
    cuda13.mkdir()
    for lib in ("libcublas.so.13", "libcublasLt.so.13"):
        (cuda13 / lib).write_bytes(b"")
    links = tmp_path / "links"
    assert link_cublas(links, [str(tmp_path / "nothing"), str(cuda13)]) == cuda13
    assert (links / "libcublas.so.12").resolve() == cuda13 / "libcublas.so.13"
    assert (links / "libcublasLt.so.12").resolve() == cuda13 / "libcublasLt.so.13"
    assert link_cublas(links, [str(cuda13)]) == cuda13  # again: links replaced, no error


def test_no_cuda_13_libraries_is_a_clear_failure(tmp_path):
    with pytest.raises(CheckFailed, match=r"no libcublas\.so\.13"):
        link_cublas(tmp_path / "links", [str(tmp_path)])


def run(calls: int, **p95: float | None) -> dict:
    cues = {
        kind: {"expected": 1, "p95_s": value}
        for kind, value in {"interruption": 0.2, "dead_air": 0.1, **p95}.items()
    }
    cues["monologue"] = {"expected": 0, "p95_s": None}  # no scripted moment: not judged
    return {"calls": calls, "cues": cues}


def test_capacity_at_the_gpu_text_goal():
    runs = [
        run(16, negative_phrasing=0.45, customer_frustration=0.4),
        run(32, negative_phrasing=0.49, customer_frustration=0.6),
        run(64, negative_phrasing=1.5, customer_frustration=1.2),
    ]
    assert capacity_at(runs, 0.5) == {
        "calls": 16,
        "first_failing_calls": 32,
        "failing_cues": ["customer_frustration"],
    }
    assert capacity_at(runs, 2.0)["calls"] == 64
    runs.append(run(128, interruption=0.35, negative_phrasing=0.3))
    assert capacity_at(runs, 2.0)["failing_cues"] == ["interruption"]
    runs.append(run(256, negative_phrasing=None))  # a cue never detected fails
    assert capacity_at(runs[-1:], 2.0)["failing_cues"] == ["negative_phrasing"]


@pytest.mark.asr
def test_the_batch_stage_runs_on_the_cpu(tmp_path):
    out = tmp_path / "gpu"
    command = [
        *(sys.executable, "bench/gpu.py", str(out), "--device", "cpu", "--stages", "batch"),
        *("--batch-sizes", "1", "4", "--floors", "8", "--min-utterances", "8"),
        *("--min-seconds", "0"),
    ]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    check = json.loads((out / "check.json").read_text())
    assert check["ok"] and check["load"]["device"] == "cpu"
    batch = json.loads((out / "batch.json").read_text())
    assert batch["device"] == "cpu" and batch["utterances"]["n"] >= 100
    assert batch["beam_size"] == 3  # the service's default, as the sweep's servers decode
    for size in ("1", "4"):
        row = batch["floors"]["8"][size]
        assert row["utterances"] >= 8 and row["utterances_per_s"] > 0
        assert row["wer"] <= 0.15  # each batched result is its own utterance's text
    assert "[batch] floor 8 s, batch 4" in (out / "gpu.log").read_text()
