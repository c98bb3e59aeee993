"""Speed of ``assist assess``: x real time on a batch of 2-channel recorded calls.

Renders the benchmark's call scripts (``bench/loadgen.SCRIPTS``: every cue kind, 40-96 s
each) as 8 kHz 16-bit stereo WAVs, ``--copies`` of each (each copy 1 % quieter than the
last, so every file is new content for the resume ledger), and assesses the folder with
``assist.assess.batch.assess`` exactly as ``assist assess`` does: Whisper (``--model``,
tiny.en by default) and the text models on, worker processes, a fresh SQLite store.

Per worker count: audio seconds / wall seconds (x real time) of the whole run, model
loading in the workers included, and per call its decode and assessment times. The machine
is shared with other work: the load average (1 min) before and after each run is in the
JSON; read the numbers with it. CPU seconds (this process and its workers) don't depend on
what else runs: ``x_real_time_per_cpu_s`` is audio per CPU second, and
``x_real_time_idle_estimate`` what the run would reach on ``min(workers, cores)`` idle cores
(perfect sharing between workers: an upper bound). Writes ``assess.json`` and
``assess.png`` (x real time per worker count, measured and estimated, against the 15x goal
and the 40x stretch; needs matplotlib, ``[bench]``).

    python bench/assess.py [--workers 2] [--copies 2] [--model tiny.en] [--device cpu]
                           [--out bench/results]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from assist.assess.batch import AssessOptions, assess  # noqa: E402
from assist.assess.worker import CallOutcome  # noqa: E402
from assist.config import Settings  # noqa: E402
from assist.synth.render import render, write_stereo_wav  # noqa: E402
from assist.synth.script import CallScript  # noqa: E402
from bench.common import machine, pyplot  # noqa: E402
from bench.loadgen import SCRIPTS  # noqa: E402

GOAL_X, STRETCH_X = 15.0, 40.0


def write_batch(folder: Path, copies: int) -> float:
    """The batch's WAVs in ``folder`` (agent ``aN`` per script); returns its audio seconds."""
    folder.mkdir(parents=True, exist_ok=True)
    total = 0.0
    for i, path in enumerate(SCRIPTS):
        call = render(CallScript.load(path))
        for copy in range(copies):
            audio = call.audio * (1.0 - 0.01 * copy)
            write_stereo_wav(folder / f"a{i + 1}_{path.stem}-{copy}.wav", audio, call.sample_rate)
            total += len(audio) / call.sample_rate
    return total


def _cpu_s() -> float:
    """User + system CPU seconds of this process and its waited-for children."""
    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        usage = resource.getrusage(who)
        total += usage.ru_utime + usage.ru_stime
    return total


def run(folder: Path, workers: int, model: str, device: str | None) -> dict[str, Any]:
    """One assessment of ``folder`` with ``workers`` processes, into a fresh store."""
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(store={"path": str(Path(tmp) / "calls.sqlite3")}, asr={"model": model})
        calls: list[dict[str, Any]] = []

        def seen(outcome: CallOutcome) -> None:
            calls.append(
                {
                    "call_id": outcome.job.call_id,
                    "audio_s": round(outcome.duration_s, 2),
                    "wall_s": round(outcome.wall_s, 3),
                    **{k: round(v, 3) for k, v in outcome.timings.items()},
                    "error": outcome.error,
                }
            )

        load_before = os.getloadavg()[0]
        cpu_before = _cpu_s()
        started = time.perf_counter()
        summary = assess(
            AssessOptions([folder], workers=workers, out_dir=Path(tmp), device=device),
            settings,
            on_call=seen,
        )
        wall = time.perf_counter() - started
        cpu = _cpu_s() - cpu_before  # this process and its (joined) worker processes
    assert not summary.problems, summary.problems
    return {
        "workers": workers,
        "calls": len(summary.assessed),
        "audio_s": round(summary.audio_s, 1),
        "wall_s": round(wall, 2),
        "x_real_time": round(summary.audio_s / wall, 2),
        "cpu_s": round(cpu, 2),
        # CPU seconds are what the work costs whoever else runs: on idle cores the run
        # would take cpu_s / min(workers, cores) at best
        "x_real_time_per_cpu_s": round(summary.audio_s / cpu, 2),
        "x_real_time_idle_estimate": round(
            summary.audio_s / cpu * min(workers, os.cpu_count() or 1), 2
        ),
        "load_average_1m_before": round(load_before, 2),
        "load_average_1m_after": round(os.getloadavg()[0], 2),
        "per_call": calls,
    }


def plot(results: dict[str, Any], path: Path) -> None:
    """x real time per worker count, with the goal and the stretch."""
    plt = pyplot()

    runs = results["runs"]
    fig, ax = plt.subplots(figsize=(6, 3.6))
    labels = [f"{r['workers']} worker(s)\nload {r['load_average_1m_before']:.1f}" for r in runs]
    xs = range(len(runs))
    ax.bar([x - 0.2 for x in xs], [r["x_real_time"] for r in runs], 0.4, color="#1f6feb",
           label="measured (shared machine)")  # fmt: skip
    ax.bar([x + 0.2 for x in xs], [r["x_real_time_idle_estimate"] for r in runs], 0.4,
           color="#9ec5fe", label="idle cores (from CPU s)")  # fmt: skip
    ax.set_xticks(list(xs), labels)
    ax.axhline(GOAL_X, color="#d9822b", linestyle="--", label=f"goal {GOAL_X:g}x")
    ax.axhline(STRETCH_X, color="#8a94a3", linestyle=":", label=f"stretch {STRETCH_X:g}x")
    for i, r in enumerate(runs):
        ax.text(i - 0.2, r["x_real_time"], f"{r['x_real_time']:.1f}x", ha="center", va="bottom")
        estimate = r["x_real_time_idle_estimate"]
        ax.text(i + 0.2, estimate, f"{estimate:.1f}x", ha="center", va="bottom")
    ax.set_ylabel("x real time")
    m = results["machine"]
    ax.set_title(f"assist assess, {results['model']}, {m['cores']} cores", fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark (module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[os.cpu_count() or 1])
    parser.add_argument("--copies", type=int, default=2)
    parser.add_argument("--model", default="tiny.en")
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default="cpu")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results"))
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "calls"
        audio_s = write_batch(folder, args.copies)
        print(f"batch: {len(list(folder.iterdir()))} calls, {audio_s / 60:.1f} min of audio")
        runs = []
        for workers in args.workers:
            result = run(folder, workers, args.model, args.device)
            print(
                f"{workers} worker(s): {result['x_real_time']:.1f}x real time "
                f"({result['audio_s']:.0f} s of audio in {result['wall_s']:.1f} s; load "
                f"{result['load_average_1m_before']:.1f} -> {result['load_average_1m_after']:.1f}; "
                f"{result['x_real_time_per_cpu_s']:.1f} s of audio per CPU second)"
            )
            runs.append(result)
    results = {
        "benchmark": "assess",
        "model": args.model,
        "device": args.device,
        "copies": args.copies,
        "scripts": [p.stem for p in SCRIPTS],
        "machine": machine(),
        "goal_x": GOAL_X,
        "stretch_x": STRETCH_X,
        "runs": runs,
    }
    (out / "assess.json").write_text(json.dumps(results, indent=2) + "\n")
    try:
        plot(results, out / "assess.png")
    except ImportError:
        print("matplotlib not installed: no plot (pip install -e '.[bench]')")
    print(f"wrote {out / 'assess.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
