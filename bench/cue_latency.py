"""Audio-cue latency and capacity: N concurrent synthesized calls, streamed in real time
over real sockets to a real ``assist serve`` process.

For every nudge, the delay is measured from the moment the cue became true in the audio
(the call's ground truth, ``assist.synth.truth``) to the nudge's arrival on the agent's
socket; the sender paces 20 ms frames on its own monotonic clock, so a delay includes the
frame and VAD-window buffering (up to 20 + 32 ms), processing and fan-out. Also reports
recall, false nudges, the server's CPU per call, its memory, and how late the sender ran.

    python bench/cue_latency.py [--calls 1 10 50] [--seconds 90] [--asr] [--out bench/results]

Without ``--asr`` the server runs VAD and the audio cues only (their own cost); with it,
every call is also transcribed by the shared ASR pool, which overloads 2 cores quickly:
the audio cues must keep their delay while the pool sheds (counted) work.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from assist.config import Settings  # noqa: E402
from assist.replay import encode_frames, stream_call  # noqa: E402
from assist.synth.render import RenderedCall, render  # noqa: E402
from assist.synth.script import CallScript  # noqa: E402
from assist.synth.truth import ExpectedCue, expected_cues  # noqa: E402

SCRIPTS = [
    ROOT / "assist/synth/scripts/demo.toml",
    ROOT / "tests/calls/interruptions.toml",
    ROOT / "tests/calls/dead_air.toml",
    ROOT / "tests/calls/monologue.toml",
    ROOT / "tests/calls/smooth.toml",
]
MATCH_WINDOW_S = 1.0  # a nudge further than this from every expected moment is false
GOAL_S = 0.3


def machine() -> dict[str, Any]:
    cpu = "unknown"
    with open("/proc/cpuinfo") as fh:
        for line in fh:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem_kb = int(Path("/proc/meminfo").read_text().split()[1])
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gb": round(mem_kb / 1e6, 1),
        "gpu": None,
        "python": platform.python_version(),
    }


def scrape_metric(url: str, name: str) -> dict[str, float]:
    """Samples of one metric from a /metrics page, keyed by their label text."""
    with urllib.request.urlopen(url, timeout=10) as response:
        text = response.read().decode()
    out = {}
    for line in text.splitlines():
        if line.startswith(name) and not line.startswith(name + "_"):
            labels, value = line[len(name) :].rsplit(" ", 1)
            out[labels or "total"] = float(value)
    return out


def process_cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def process_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS"):
            return int(line.split()[1]) / 1024
    return 0.0


def match(nudges: list[tuple[dict[str, Any], float]], truth: list[ExpectedCue]):
    """Pair each expected cue with the nearest unused nudge of its kind."""
    used: set[int] = set()
    delays: dict[str, list[float]] = {}
    missed: dict[str, int] = {}
    for cue in truth:
        best = None
        for i, (nudge, _) in enumerate(nudges):
            if i in used or nudge["kind"] != cue.kind:
                continue
            gap = abs(nudge["media_time_s"] - cue.at_s)
            if gap <= MATCH_WINDOW_S and (best is None or gap < best[0]):
                best = (gap, i)
        if best is None:
            missed[cue.kind] = missed.get(cue.kind, 0) + 1
            continue
        used.add(best[1])
        delays.setdefault(cue.kind, []).append(nudges[best[1]][1] - cue.at_s)
    false = {}
    for i, (nudge, _) in enumerate(nudges):
        if i not in used:
            false[nudge["kind"]] = false.get(nudge["kind"], 0) + 1
    return delays, missed, false


async def run_calls(
    url: str, calls: list[RenderedCall], n: int, seconds: float, stagger_s: float
) -> dict[str, Any]:
    settings = Settings()
    jobs = []
    for k in range(n):
        call = calls[k % len(calls)]
        frames = encode_frames(call.audio, call.sample_rate, "mulaw")
        frames = frames[: int(seconds / 0.02)]
        truth = [c for c in expected_cues(call, settings.cues) if c.at_s <= len(frames) * 0.02]
        start = {
            "type": "start",
            "call_id": f"bench-{n}-{k}",
            "agent_id": f"agent-{k}",
            "sample_rate": call.sample_rate,
            "encoding": "mulaw",
            "channels": ["customer", "agent"],
        }
        jobs.append((start, frames, truth, k * stagger_s))

    async def one(start, frames, truth, delay):
        await asyncio.sleep(delay)  # staggered call starts, like a real floor
        result = await stream_call(url, start, frames, speed=1.0)
        return result, truth

    results = await asyncio.gather(*(one(*job) for job in jobs))
    per_kind: dict[str, dict[str, Any]] = {}
    for result, truth in results:
        delays, missed, false = match(result.nudge_arrivals(), truth)
        for kind in {c.kind for c in truth} | set(delays) | set(false):
            entry = per_kind.setdefault(kind, {"delays": [], "missed": 0, "false": 0})
            entry["delays"] += delays.get(kind, [])
            entry["missed"] += missed.get(kind, 0)
            entry["false"] += false.get(kind, 0)
    call_hours = sum(len(job[1]) * 0.02 for job in jobs) / 3600
    cues = {}
    for kind, entry in sorted(per_kind.items()):
        found = len(entry["delays"])
        delays = np.array(entry["delays"] or [0.0])
        cues[kind] = {
            "n": found,
            # None where nothing matched: there is no delay to give
            **{
                f"p{q}_s": round(float(np.percentile(delays, q)), 4) if found else None
                for q in (50, 95, 99)
            },
            "max_s": round(float(delays.max()), 4) if found else None,
            # None: no moment of this kind was scripted (its nudges all count as false)
            "recall": round(found / (found + entry["missed"]), 4)
            if found + entry["missed"]
            else None,
            "false_per_hour": round(entry["false"] / call_hours, 2),
        }
    return {"cues": cues, "call_hours": round(call_hours, 4)}


def start_server() -> tuple[subprocess.Popen[str], int]:
    """A fresh ``assist serve`` on a free port; its call records stay in memory."""
    os.environ.setdefault("ASSIST_STORE__BACKEND", "memory")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "assist.cli", "serve", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert server.stdout is not None
    while "assist serving on" not in server.stdout.readline():
        if server.poll() is not None:
            raise RuntimeError("server failed to start")
    return server, port


def bench(args: argparse.Namespace) -> dict[str, Any]:
    calls = [render(CallScript.load(path)) for path in SCRIPTS]
    runs = []
    for n in args.calls:
        server, port = start_server()  # a fresh process per N: CPU and memory are its own
        try:
            idle_rss = process_rss_mb(server.pid)
            cpu_before = process_cpu_s(server.pid)
            wall_before = time.monotonic()
            print(f"[{n:3d} calls] streaming {args.seconds:.0f} s of audio each ...", flush=True)
            url = f"ws://127.0.0.1:{port}"
            run = asyncio.run(run_calls(url, calls, n, args.seconds, 0.1))
            cpu = process_cpu_s(server.pid) - cpu_before
            wall = time.monotonic() - wall_before
            media_s = run.pop("call_hours") * 3600
            run.update(
                {
                    "calls": n,
                    "seconds": args.seconds,
                    "server_cpu_s": round(cpu, 2),
                    "cpu_core_share_per_call": round(cpu / media_s, 4),
                    "server_cpu_cores_used": round(cpu / wall, 3),
                    "server_rss_mb": round(process_rss_mb(server.pid), 1),
                    "server_idle_rss_mb": round(idle_rss, 1),
                }
            )
            metrics_url = f"http://127.0.0.1:{port}/metrics"
            run["asr_shed"] = scrape_metric(metrics_url, "assist_asr_shed_total")
            run["asr_transcripts"] = scrape_metric(metrics_url, "assist_transcripts_total")
            run["audio_dropped_s"] = scrape_metric(
                metrics_url, "assist_audio_dropped_seconds_total"
            )
            worst = max((c["p95_s"] or 0 for c in run["cues"].values()), default=0.0)
            print(
                f"[{n:3d} calls] worst cue p95 {worst * 1000:.0f} ms, "
                f"{100 * run['cpu_core_share_per_call']:.2f}% of a core per call",
                flush=True,
            )
            runs.append(run)
        finally:
            server.terminate()
            server.wait(timeout=30)
    capacity = max(
        (r["calls"] for r in runs if all((c["p95_s"] or 0) < GOAL_S for c in r["cues"].values())),
        default=0,
    )
    return {
        "benchmark": "audio cue latency",
        "asr": args.asr,
        "machine": machine(),
        "goal_p95_s": GOAL_S,
        "runs": runs,
        "capacity": {"cpu": capacity},
    }


def plot(results: dict[str, Any], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = results["runs"]
    ns = [r["calls"] for r in runs]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    for kind in sorted({k for r in runs for k in r["cues"]}):
        p95_ms = [1000 * (r["cues"].get(kind, {}).get("p95_s") or np.nan) for r in runs]
        ax1.plot(ns, p95_ms, "o-", label=kind)
    ax1.axhline(GOAL_S * 1000, color="red", linestyle="--", label="goal 300 ms")
    ax1.set_xlabel("concurrent calls")
    ax1.set_ylabel("p95 delay to agent socket (ms)")
    ax1.set_title("Audio cue delay vs load")
    ax1.legend()
    ax2.plot(ns, [100 * r["cpu_core_share_per_call"] for r in runs], "o-")
    ax2.set_xlabel("concurrent calls")
    ax2.set_ylabel("% of one core per call")
    ax2.set_title("Server CPU per call (VAD + cues + sockets)")
    ax2.set_ylim(bottom=0)
    fig.suptitle(f"{results['machine']['cpu']}, {results['machine']['cores']} cores")
    fig.tight_layout()
    fig.savefig(out)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, nargs="+", default=[1, 10, 50])
    parser.add_argument("--seconds", type=float, default=90.0, help="audio per call (max 90)")
    parser.add_argument("--asr", action="store_true", help="transcribe every call too")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    os.environ["ASSIST_ASR__ENABLED"] = "true" if args.asr else "false"
    results = bench(args)
    stem = "cue_latency_asr" if args.asr else "cue_latency"
    (args.out / f"{stem}.json").write_text(json.dumps(results, indent=2) + "\n")
    plot(results, args.out / f"{stem}.png")
    print(f"wrote {args.out}/{stem}.json and .png; capacity {results['capacity']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
