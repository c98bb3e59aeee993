"""The GPU benchmark: batched recognition across calls, and how many real-time calls one
GPU carries. One prepared script for a CUDA machine (it also runs on a CPU, to test it).

    python bench/gpu.py OUT [--device cuda] [--stages batch sweep fleet]
                            [--cublas-links DIR] [--batch-sizes 1 2 4 8 16 32]
                            [--floors 8 30] [--calls 16 32 64] [--seconds 45]
                            [--fleet 8x48 12x44] [--server-env KEY=VALUE ...]

The check, then the stages, each writing one JSON file into OUT (plus ``gpu.log``, the
console output):

* ``check`` (``check.json``): Python, ctranslate2 and its CUDA device count, nvidia-smi,
  whether ``libcublas.so.12`` / ``libcublasLt.so.12`` load (ctranslate2 4.x is built
  against CUDA 12), and a real load of tiny.en on the device with one recognition. Fails
  with the fix in the message; nothing else runs unless it passes. On a CUDA-13-only
  machine ``--cublas-links DIR`` makes ``DIR/libcublas.so.12`` and ``libcublasLt.so.12``
  point to the CUDA 13 libraries it finds, and restarts the script with DIR first on
  ``LD_LIBRARY_PATH`` (the loader reads it only at start-up), so everything it starts
  inherits it.
* ``batch`` (``batch.json``): utterances per second by batch size with the windowed
  encoder (``WhisperRecognizer``, the service's own code), per window floor: real recorded
  phone prompts (``bench/window_floor.py``'s set, 8 kHz calls' path), consecutive groups of
  the batch size, one warm-up step, then steps until ``--min-utterances`` and
  ``--min-seconds``; ms per step (p50, p95), and the word error rate of the batched
  results (each result must be its own utterance's) with the full-window retries.
* ``sweep`` (``sweep.json``): ``bench/run.py``'s capacity sweep with ASR on the device: N
  real-time calls over real sockets to one fresh ``assist serve`` per N; capacity at the
  standard goals (audio cues 0.3 s, text cues 2.0 s) and at the GPU goal for text cues
  (``--text-goal-s``, 0.5 s).
* ``fleet`` (``fleet.json``): P ``bench/run.py`` processes at once, each a server with N
  calls sharing the GPU (``8x48``: 8 servers x 48 calls = 384; ``12x44`` = 528, past the
  goal of 500 calls per GPU): one server process runs the audio path of all its calls on
  one event loop, so a GPU's worth of calls needs several. Per process the cue p95s; pass
  when every process meets the goals.

Servers get ``ASSIST_ASR__MAX_BATCH`` = the largest batch size unless ``--server-env``
sets it; the ``batch`` stage decodes with the service's ``[asr] beam_size`` as the servers
do (``--server-env ASSIST_ASR__BEAM_SIZE=1`` for greedy in every stage). Exit status 0
when the stages ran (numbers are results, not assertions), 2 when the check failed.
"""

from __future__ import annotations

import argparse
import ctypes
import glob
import itertools
import json
import os
import platform
import site
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import gpu, machine  # noqa: E402

CUBLAS = ("libcublas.so", "libcublasLt.so")  # + ".12" (wanted) / ".13" (found)
# Where a CUDA 13 cuBLAS usually lives: the toolkit, and the nvidia-cublas wheel (PyTorch's)
CUDA13_GLOBS = (
    "/usr/local/cuda*/lib64",
    "/usr/local/cuda*/targets/x86_64-linux/lib",
    "/usr/lib/x86_64-linux-gnu",
    "/opt/**/site-packages/nvidia/cublas/lib",
    "/opt/**/site-packages/nvidia/cu13/lib",
    "/usr/**/site-packages/nvidia/cublas/lib",
    "/usr/**/site-packages/nvidia/cu13/lib",
)
RELAUNCHED = "ASSIST_GPU_BENCH_RELAUNCHED"


class CheckFailed(RuntimeError):
    """A prerequisite is missing; the message says how to fix it."""


def log(message: str) -> None:
    print(message, flush=True)


# check ---------------------------------------------------------------------------------


def loads(name: str) -> str | None:
    """None if the shared library ``name`` loads, else the loader's error."""
    try:
        ctypes.CDLL(name)
    except OSError as exc:
        return str(exc)
    return None


def cuda13_candidates() -> list[str]:
    """Folders that may hold CUDA 13's cuBLAS: ldconfig's cache, the toolkit, the wheels."""
    folders: list[str] = []
    try:
        out = subprocess.run(["ldconfig", "-p"], capture_output=True, text=True, timeout=20)
        folders += [
            str(Path(line.split("=>")[-1].strip()).parent)
            for line in out.stdout.splitlines()
            if "libcublas.so.13" in line
        ]
    except (OSError, subprocess.SubprocessError):
        pass
    for pattern in CUDA13_GLOBS:
        folders += sorted(glob.glob(pattern, recursive=True))
    for packages in site.getsitepackages():
        folders += [f"{packages}/nvidia/cublas/lib", f"{packages}/nvidia/cu13/lib"]
    return list(dict.fromkeys(folders))


def find_cuda13_cublas(candidates: list[str]) -> Path | None:
    """The first of ``candidates`` holding ``libcublas.so.13`` and ``libcublasLt.so.13``."""
    for folder in candidates:
        if all((Path(folder) / f"{lib}.13").exists() for lib in CUBLAS):
            return Path(folder)
    return None


def link_cublas(folder: Path, candidates: list[str] | None = None) -> Path:
    """Make ``folder/libcublas.so.12`` and ``libcublasLt.so.12`` point to CUDA 13's (the
    first of ``candidates`` that has them, default ``cuda13_candidates()``); return that
    CUDA 13 folder. Raises ``CheckFailed`` when none has them."""
    source = find_cuda13_cublas(cuda13_candidates() if candidates is None else candidates)
    if source is None:
        raise CheckFailed(
            "no libcublas.so.13 / libcublasLt.so.13 found (ldconfig, /usr/local/cuda*, the "
            "nvidia-cublas wheel): install CUDA 13's cuBLAS, or CUDA 12's"
        )
    folder.mkdir(parents=True, exist_ok=True)
    for lib in CUBLAS:
        link = folder / f"{lib}.12"
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(source / f"{lib}.13")
    return source


def relaunch_with(folder: Path) -> None:
    """Restart this script with ``folder`` first on ``LD_LIBRARY_PATH`` (never returns)."""
    env = dict(os.environ)
    env["LD_LIBRARY_PATH"] = ":".join(p for p in (str(folder), env.get("LD_LIBRARY_PATH")) if p)
    env[RELAUNCHED] = "1"
    log(f"restarting with LD_LIBRARY_PATH={env['LD_LIBRARY_PATH']}")
    os.execve(sys.executable, [sys.executable, *sys.argv], env)


def check(device: str) -> dict[str, Any]:
    """The prerequisites, each with what was seen; raises ``CheckFailed`` with the fix."""
    import ctranslate2

    from assist.asr.model import load_model

    info: dict[str, Any] = {
        "python": platform.python_version(),
        "ctranslate2": ctranslate2.__version__,
        "gpu": gpu(),
        "ld_library_path": os.environ.get("LD_LIBRARY_PATH", ""),
    }
    if device == "cuda":
        try:
            info["cuda_devices"] = int(ctranslate2.get_cuda_device_count())
        except Exception as exc:
            info["cuda_devices"] = 0
            info["cuda_error"] = str(exc)
        if not info["cuda_devices"]:
            raise CheckFailed(
                f"ctranslate2 sees no CUDA device ({info.get('cuda_error', 'count 0')}); "
                f"nvidia-smi: {info['gpu']}. Is the driver there, and this a CUDA build?"
            )
        info["cublas"] = {f"{lib}.12": loads(f"{lib}.12") or "loads" for lib in CUBLAS}
        missing = [name for name, state in info["cublas"].items() if state != "loads"]
        if missing:
            raise CheckFailed(
                f"{', '.join(missing)} will not load: ctranslate2 {info['ctranslate2']} needs "
                "CUDA 12's cuBLAS. On a CUDA-13-only machine run this script with "
                "--cublas-links DIR (links to CUDA 13's libraries, then a restart with DIR on "
                "LD_LIBRARY_PATH), or make them yourself: ln -s .../libcublas.so.13 "
                "DIR/libcublas.so.12; ln -s .../libcublasLt.so.13 DIR/libcublasLt.so.12; "
                "export LD_LIBRARY_PATH=DIR:$LD_LIBRARY_PATH"
            )
    started = time.perf_counter()
    loaded = load_model("tiny.en", device)
    info["load"] = {
        "device": loaded.device,
        "compute_type": loaded.compute_type,
        "load_s": round(time.perf_counter() - started, 2),
    }
    if loaded.device != device:
        raise CheckFailed(
            f"tiny.en loaded on {loaded.device}, not {device}: see the warning above "
            "(the service falls back to the CPU when CUDA fails)"
        )
    return info


# batch ---------------------------------------------------------------------------------


def batch_stage(
    device: str,
    sizes: list[int],
    floors: list[float],
    min_utterances: int,
    min_seconds: float,
    beam_size: int = 1,
) -> dict[str, Any]:
    """Utterances per second by batch size and window floor (module docstring), finals
    decoded with ``beam_size`` (1 = greedy)."""
    from assist.asr.model import load_model
    from assist.asr.wer import word_error_rate
    from assist.asr.whisper import WhisperRecognizer
    from bench.window_floor import prompts, utterance

    loaded = load_model("tiny.en", device)
    chosen = prompts(None)
    clips = [utterance(name, 8000, seed=i) for i, (name, _, _) in enumerate(chosen)]
    references = [text for _, _, text in chosen]
    seconds = np.array([len(c) / 16000 for c in clips])
    out: dict[str, Any] = {
        "device": loaded.device,
        "compute_type": loaded.compute_type,
        "beam_size": beam_size,
        "utterances": {
            "n": len(clips),
            "seconds_mean": round(float(seconds.mean()), 2),
            "seconds_max": round(float(seconds.max()), 2),
        },
        "floors": {},
    }
    for floor in floors:
        retries: list[str] = []
        recognizer = WhisperRecognizer(
            loaded, beam_size, floor, on_full_window_retry=retries.append
        )
        rows = {}
        for size in sizes:
            groups = (
                [(start + k) % len(clips) for k in range(size)]
                for start in itertools.count(0, size)
            )
            recognizer.recognize([clips[i] for i in next(groups)])  # warm-up: this shape
            retries.clear()
            steps: list[float] = []
            errors = words = done = 0
            while done < min_utterances or sum(steps) < min_seconds:
                index = next(groups)
                t0 = time.perf_counter()
                results = recognizer.recognize([clips[i] for i in index])
                steps.append(time.perf_counter() - t0)
                done += size
                for i, result in zip(index, results, strict=True):
                    e, n = word_error_rate(references[i], result.text)
                    errors, words = errors + e, words + n
            total = sum(steps)
            rows[str(size)] = {
                "steps": len(steps),
                "utterances": done,
                "utterances_per_s": round(done / total, 1),
                "ms_per_step_p50": round(1000 * float(np.percentile(steps, 50)), 1),
                "ms_per_step_p95": round(1000 * float(np.percentile(steps, 95)), 1),
                "ms_per_utterance": round(1000 * total / done, 2),
                "wer": round(errors / words, 4),
                "full_window_retries": len(retries),
            }
            log(f"[batch] floor {floor:g} s, batch {size}: {rows[str(size)]}")
        out["floors"][f"{floor:g}"] = rows
    return out


# sweep and fleet -----------------------------------------------------------------------


def capacity_at(runs: list[dict[str, Any]], text_goal_s: float) -> dict[str, Any]:
    """``bench/run.py``'s capacity with the text cues' goal replaced by ``text_goal_s``."""
    from bench.loadgen import GOAL_S

    text_kinds = {"negative_phrasing", "customer_frustration", "pace"}
    best, failing_at, failing = 0, None, []
    for run in sorted(runs, key=lambda r: r["calls"]):
        failing = [
            kind
            for kind, cue in run["cues"].items()
            if cue["expected"]
            and (
                cue["p95_s"] is None
                or cue["p95_s"] >= (text_goal_s if kind in text_kinds else GOAL_S.get(kind, 0.3))
            )
        ]
        if failing:
            failing_at = run["calls"]
            break
        best = run["calls"]
    return {"calls": best, "first_failing_calls": failing_at, "failing_cues": failing}


def sweep_stage(
    device: str, calls: list[int], seconds: float, text_goal_s: float
) -> dict[str, Any]:
    """``bench/run.py``'s sweep (no micro stage) with ASR on ``device``."""
    from assist.config import Settings
    from bench.loadgen import load_calls
    from bench.run import capacity, one_run

    plans = load_calls(Settings().cues)
    runs = []
    for n in sorted(calls):
        run = one_run(plans, n, seconds, device)
        runs.append(run)
        p95 = {k: c["p95_s"] for k, c in run["cues"].items() if c["p95_s"] is not None}
        log(
            f"[sweep] N={n} on {run['asr']['device']}: cue p95 {p95}; transcript p95 "
            f"{run['transcript_delay']['p95_s']} s; ASR batches {run['asr']['batches']}; "
            f"{run['cpu']['server_cores_used']} server cores"
        )
    best, detail = capacity(runs)
    return {
        "runs": runs,
        "capacity": {"calls": best, **detail},
        "capacity_text_goal": {"text_goal_s": text_goal_s, **capacity_at(runs, text_goal_s)},
    }


def fleet_stage(device: str, shapes: list[str], seconds: float, work: Path) -> dict[str, Any]:
    """P ``bench/run.py`` processes of N calls each at once, per shape ``PxN``."""
    out: dict[str, Any] = {}
    for shape in shapes:
        processes, per = (int(x) for x in shape.lower().split("x"))
        started = time.monotonic()
        children = []
        for p in range(processes):
            folder = work / f"fleet-{shape}-{p}"
            command = [
                sys.executable,
                str(ROOT / "bench" / "run.py"),
                "--calls",
                str(per),
                "--seconds",
                str(seconds),
                "--no-micro",
                "--device",
                device,
                "--out",
                str(folder),
            ]
            logfile = open(work / f"fleet-{shape}-{p}.log", "w")  # noqa: SIM115 (closed below)
            children.append(
                (
                    folder,
                    logfile,
                    subprocess.Popen(command, stdout=logfile, stderr=subprocess.STDOUT),
                )
            )
        rows = []
        for folder, logfile, child in children:
            status = child.wait()
            logfile.close()
            result_path = folder / "results.json"
            if status != 0 or not result_path.exists():
                tail = Path(logfile.name).read_text()[-2000:]
                rows.append({"status": status, "log_tail": tail})
                continue
            run = json.loads(result_path.read_text())["runs"][0]
            rows.append(
                {
                    "status": status,
                    "device": run["asr"]["device"],
                    "cues_p95_s": {k: c["p95_s"] for k, c in run["cues"].items()},
                    "recall": {k: c["recall"] for k, c in run["cues"].items()},
                    "transcript_p95_s": run["transcript_delay"]["p95_s"],
                    "asr": run["asr"],
                    "cpu": run["cpu"],
                    "passes_standard": capacity_at([run], 2.0)["calls"] == per,
                    "passes_text_0_5_s": capacity_at([run], 0.5)["calls"] == per,
                }
            )
        ok = [r for r in rows if r["status"] == 0]
        out[shape] = {
            "processes": processes,
            "calls_per_process": per,
            "calls": processes * per,
            "wall_s": round(time.monotonic() - started, 1),
            "all_pass_standard": len(ok) == processes and all(r["passes_standard"] for r in ok),
            "all_pass_text_0_5_s": len(ok) == processes and all(r["passes_text_0_5_s"] for r in ok),
            "worst_p95_s": {
                kind: max(
                    (r["cues_p95_s"][kind] for r in ok if r["cues_p95_s"].get(kind) is not None),
                    default=None,
                )
                for kind in {k for r in ok for k in r["cues_p95_s"]}
            },
            "processes_detail": rows,
        }
        brief = {k: v for k, v in out[shape].items() if k != "processes_detail"}
        log(f"[fleet] {shape}: {json.dumps(brief)}")
    return out


# main ----------------------------------------------------------------------------------


class Tee:
    """Console output also written to ``OUT/gpu.log``."""

    def __init__(self, path: Path) -> None:
        self._file = open(path, "a")  # noqa: SIM115 (lives as long as the process)
        self._stdout = sys.stdout

    def write(self, text: str) -> int:
        self._file.write(text)
        self._file.flush()
        return self._stdout.write(text)

    def flush(self) -> None:
        self._stdout.flush()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="folder for the JSON files (e.g. $OUT)")
    parser.add_argument("--device", choices=["cuda", "cpu"], default="cuda")
    parser.add_argument(
        "--stages",
        nargs="*",
        default=["batch", "sweep", "fleet"],
        choices=["batch", "sweep", "fleet"],
        help="after the check, which always runs",
    )
    parser.add_argument("--cublas-links", type=Path, default=None, metavar="DIR")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 2, 4, 8, 16, 32])
    parser.add_argument(
        "--floors", type=float, nargs="+", default=None, help="default: [asr] window_floor_s and 30"
    )
    parser.add_argument("--min-utterances", type=int, default=128)
    parser.add_argument("--min-seconds", type=float, default=2.0)
    parser.add_argument("--calls", type=int, nargs="+", default=[16, 32, 64])
    parser.add_argument("--seconds", type=float, default=45.0, help="audio per call slot")
    parser.add_argument("--fleet", nargs="*", default=["8x48", "12x44"], metavar="PxN")
    parser.add_argument("--text-goal-s", type=float, default=0.5)
    parser.add_argument("--server-env", nargs="*", default=[], metavar="KEY=VALUE")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    sys.stdout = Tee(args.out / "gpu.log")  # type: ignore[assignment]

    relink = args.device == "cuda" and args.cublas_links and not os.environ.get(RELAUNCHED)
    if relink and any(loads(f"{lib}.12") is not None for lib in CUBLAS):
        source = link_cublas(args.cublas_links.resolve())
        log(f"linked cuBLAS 12 names in {args.cublas_links} to {source}")
        relaunch_with(args.cublas_links.resolve())

    os.environ.setdefault("ASSIST_ASR__MAX_BATCH", str(max(args.batch_sizes)))
    for pair in args.server_env:
        key, _, value = pair.partition("=")
        os.environ[key] = value  # inherited by every server this script starts
    from assist.config import Settings

    floors = args.floors or [Settings().asr.window_floor_s, 30.0]
    summary: dict[str, Any] = {"machine": machine(), "args": vars(args) | {"out": str(args.out)}}
    log(f"bench/gpu.py on {summary['machine']}")

    def write(name: str, data: dict[str, Any]) -> None:
        (args.out / f"{name}.json").write_text(json.dumps(data, indent=1, default=str) + "\n")
        log(f"wrote {args.out / name}.json")

    try:
        info = check(args.device)
        log(f"[check] {json.dumps(info)}")
        write("check", {**summary, "ok": True, **info})
    except CheckFailed as exc:
        log(f"[check] FAILED: {exc}")
        write("check", {**summary, "ok": False, "error": str(exc)})
        return 2
    if "batch" in args.stages:
        write(
            "batch",
            {
                **summary,
                **batch_stage(
                    args.device,
                    args.batch_sizes,
                    floors,
                    args.min_utterances,
                    args.min_seconds,
                    beam_size=Settings().asr.beam_size,
                ),
            },
        )
    if "sweep" in args.stages:
        write(
            "sweep",
            {**summary, **sweep_stage(args.device, args.calls, args.seconds, args.text_goal_s)},
        )
    if "fleet" in args.stages and args.fleet:
        work = Path(os.environ.get("TMPDIR", "/tmp")) / "assist-gpu-fleet"
        work.mkdir(parents=True, exist_ok=True)
        write("fleet", {**summary, **fleet_stage(args.device, args.fleet, args.seconds, work)})
    return 0


if __name__ == "__main__":
    sys.exit(main())
