"""Latency and capacity: the component micro-benchmarks (``bench/micro.py``), then for each
N of a sweep, N concurrent synthesized calls streamed in real time over real sockets to a
fresh ``assist serve`` process (transcription and text models on).

For every scripted cue moment (interruptions, holds, dead air, monologues, negative
phrasing, frustration, pace: the truth of ``bench/loadgen.py``) the delay runs from the
moment the cue became true in the audio to the nudge's arrival on the agent's socket; the
sender paces 20 ms frames on its own clock, so a delay includes frame and VAD-window
buffering, processing, transcription for the text cues, and fan-out. Also: recall, false
nudges per call-hour, the final-transcript delay after each utterance's end, the ASR
queue (length, wait, shed requests), server CPU and memory per call.

    python bench/run.py [--calls 1 2 4 8] [--seconds 90] [--ramp-s 60] [--device cpu|cuda]
                        [--out bench/results]

On a real floor calls are at independent points of their conversations. So for N > 1 the
call slots start spread over a ramp (``--ramp-s``, default 60 s, about a scripted call's
length) and everything is measured over the ``--seconds`` after it, when all N run:
scripted moments before it, server counters and CPU before it are not counted. With
``--ramp-s 0`` the slots start together 0.1 s apart, slot k on script k mod 7, so the same
scripts run in step: a burst of simultaneous utterances no real floor makes (the sweeps
before 2026-12-02 ran that way).

Capacity: the largest N of the sweep at which every cue's p95 stayed under its goal (audio
cues 0.3 s, text cues 2.0 s), and every smaller N did too. Writes ``DIR/results.json``,
``DIR/summary.md``, ``DIR/delay_vs_calls.png`` and ``DIR/cpu_per_call.png``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from assist.config import Settings  # noqa: E402
from assist.replay import FRAME_S, stream_call  # noqa: E402
from bench import report  # noqa: E402
from bench.common import (  # noqa: E402
    ProgressBar,
    busy_share,
    cpu_by_role,
    histogram_quantile,
    http_get,
    label_value,
    machine,
    machine_cpu_ticks,
    parse_metrics,
    percentiles,
    process_cpu_s,
    process_rss_mb,
    reference_encode_ms,
    start_server,
    stop_server,
    thread_cpu_s,
)
from bench.loadgen import (  # noqa: E402
    GOAL_S,
    MATCH_WINDOW_S,
    STAGGER_S,
    CallPlan,
    LoopLag,
    call_jobs,
    cue_stats,
    load_calls,
    stream_calls,
    transcript_delays,
)
from bench.micro import run_micro  # noqa: E402

DEFAULT_CALLS = [1, 2, 4, 8]
DEFAULT_SECONDS = 90.0
DEFAULT_RAMP_S = 60.0  # about one scripted call's mean length (24-96 s): phases spread over it
WARM_UP_S = 8.0  # media seconds of the warm-up call (the dispute's first sentence)


def own_cpu_s() -> float:
    """CPU seconds of this process (the load generator), all threads."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def by_label(samples: dict[str, float], key: str) -> dict[str, float]:
    return {label_value(labels, key) or "": value for labels, value in samples.items()}


async def measure(
    port: int,
    pid: int,
    plans: list[CallPlan],
    n: int,
    seconds: float,
    ramp_s: float,
    window_opens: Callable[[], dict[str, Any]],
) -> dict[str, Any]:
    """Stream the calls while sampling the server once a second; the raw measurements, with
    ``window_opens()``'s snapshot of the server taken as the measured window opens (after
    the ramp; at once without one)."""
    url = f"ws://127.0.0.1:{port}"
    metrics_url = f"http://127.0.0.1:{port}/metrics"
    total_s = ramp_s + seconds
    bar = ProgressBar(f"[N={n}]", total_s, "s of audio")
    seen = {"nudges": 0, "finals": 0}
    queue: list[float] = []
    rss: list[float] = []

    def on_event(event: dict[str, Any]) -> None:
        if event["type"] == "nudge":
            seen["nudges"] += 1
        elif event["type"] == "transcript" and event["final"]:
            seen["finals"] += 1

    async def sample(t0: float) -> None:
        while True:
            page = parse_metrics(await asyncio.to_thread(http_get, metrics_url))
            queue.append(page.get("assist_asr_queue", {}).get("", 0.0))
            rss.append(process_rss_mb(pid))
            done = time.monotonic() - t0
            state = "ramp" if done < ramp_s else ""
            state = "draining" if done > total_s + (n - 1) * STAGGER_S else state
            bar.update(
                min(done, total_s),
                f"{seen['nudges']} nudges, {seen['finals']} finals, "
                f"ASR queue {queue[-1]:.0f} {state}",
            )
            await asyncio.sleep(1.0)  # sampling period, not a timing

    async def open_window(t0: float) -> dict[str, Any]:
        await asyncio.sleep(max(0.0, t0 + ramp_s - time.monotonic()))  # the ramp's end
        return await asyncio.to_thread(window_opens)

    lag = LoopLag()
    t0 = time.monotonic()
    window = asyncio.create_task(open_window(t0))
    helpers = [asyncio.create_task(sample(t0)), asyncio.create_task(lag.run())]
    try:
        calls = await stream_calls(call_jobs(url, plans, n, seconds, on_event, ramp_s=ramp_s))
    finally:
        for task in helpers:
            task.cancel()
        await asyncio.gather(*helpers, return_exceptions=True)
    opened = await window
    bar.close(f"{total_s:.0f} s of audio x {n} in {time.monotonic() - t0:.0f} s wall")
    return {
        "calls": calls,
        "queue": queue[int(ramp_s) :],  # samples once a second: the measured window's
        "rss": rss,
        "loop_lag": lag.late_s,
        "window": opened,
    }


async def warm_up(port: int, plan: CallPlan) -> None:
    """One short call at 4x real time, so the first use of the ASR and text models (their
    buffers, lazy initialisation) is not charged to the measured calls."""
    start = {
        "type": "start",
        "call_id": "bench-warm-up",
        "agent_id": "bench-warm-up",
        "sample_rate": plan.call.sample_rate,
        "encoding": "mulaw",
        "channels": ["customer", "agent"],
    }
    frames = plan.frames[: round(WARM_UP_S / FRAME_S)]
    await stream_call(f"ws://127.0.0.1:{port}", start, frames, speed=4.0)


def counters_since(
    before: dict[str, dict[str, float]], after: dict[str, dict[str, float]]
) -> dict[str, dict[str, float]]:
    """Counter and histogram samples accumulated between two scrapes (gauges: ``after``)."""
    return {
        name: {
            labels: value - before.get(name, {}).get(labels, 0.0)
            if name.endswith(("_total", "_bucket", "_count", "_sum"))
            else value
            for labels, value in samples.items()
        }
        for name, samples in after.items()
    }


def one_run(
    plans: list[CallPlan], n: int, seconds: float, device: str, ramp_s: float = 0.0
) -> dict[str, Any]:
    """A fresh server for N calls (its CPU and memory are theirs alone). Server counters,
    CPU and the machine's load are taken over the measured window (after the ramp)."""
    print(f"[N={n}] starting a server, warming it up ...", file=sys.stderr, flush=True)
    server, port = start_server({"ASSIST_ASR__ENABLED": "true", "ASSIST_ASR__DEVICE": device})
    metrics_url = f"http://127.0.0.1:{port}/metrics"

    def snapshot() -> dict[str, Any]:
        return {
            "page": parse_metrics(http_get(metrics_url)),
            "cpu": process_cpu_s(server.pid),
            "own": own_cpu_s(),
            "threads": thread_cpu_s(server.pid),
            "ticks": machine_cpu_ticks(),
            "load": os.getloadavg()[0],
            "wall": time.monotonic(),
        }

    try:
        health = json.loads(http_get(f"http://127.0.0.1:{port}/healthz"))
        asyncio.run(warm_up(port, plans[0]))
        idle_rss = process_rss_mb(server.pid)
        raw = asyncio.run(measure(port, server.pid, plans, n, seconds, ramp_s, snapshot))
        start, end = raw["window"], snapshot()
        final_rss = process_rss_mb(server.pid)
    finally:
        stop_server(server)
    wall = end["wall"] - start["wall"]
    server_cpu = end["cpu"] - start["cpu"]
    by_role = cpu_by_role(server.pid, start["threads"], end["threads"])
    own_cpu = end["own"] - start["own"]
    machine_busy = busy_share(start["ticks"], end["ticks"])
    page = counters_since(start["page"], end["page"])
    load_before, load_after = start["load"], end["load"]

    calls = raw["calls"]
    media_s = sum(c.streamed_s - c.measured_from_s for c in calls)  # in the window
    transcripts = [e for c in calls for e, _ in c.measured_transcripts()]
    finals = sum(1 for e in transcripts if e["final"])
    partials = len(transcripts) - finals
    waits = page.get("assist_asr_final_seconds_bucket", {})
    shed = by_label(page.get("assist_asr_shed_total", {}), "reason")
    peak_rss = max([final_rss, *raw["rss"]])
    return {
        "calls": n,
        "seconds": seconds,
        "ramp_s": ramp_s,
        "calls_streamed": len(calls),
        "refused": [c.result.error for c in calls if c.result.error],
        "call_hours": round(media_s / 3600, 4),
        "wall_s": round(wall, 1),
        "cues": cue_stats(calls),
        "transcript_delay": percentiles(transcript_delays(calls)),
        "asr": {
            "device": health["asr"].get("device"),
            "model": health["asr"].get("model"),
            "workers": health["asr"].get("workers"),
            "finals": finals,
            "partials": partials,
            "queue_max": max(raw["queue"], default=0.0),
            "queue_mean": round(float(np.mean(raw["queue"])), 2) if raw["queue"] else 0.0,
            # utterance end known -> final transcript: the wait for a worker + recognition
            "final_wait_p50_s": _round(histogram_quantile(waits, 0.50)),
            "final_wait_p95_s": _round(histogram_quantile(waits, 0.95)),
            "shed": {reason: count for reason, count in shed.items() if count},
            "shed_total": sum(shed.values()),
            "batches": by_label(page.get("assist_asr_batches_total", {}), "batch"),
            "full_window_retries": by_label(
                page.get("assist_asr_full_window_retries_total", {}), "reason"
            ),
        },
        "audio_dropped_s": round(
            sum(page.get("assist_audio_dropped_seconds_total", {}).values()), 3
        ),
        "cpu": {
            "server_cpu_s": round(server_cpu, 2),
            "server_cores_used": round(server_cpu / wall, 3),
            # where it went: cores used by the event loop, the recognizer, other threads
            "server_cores_by_role": {role: round(v / wall, 3) for role, v in by_role.items()},
            # core-seconds per second of call audio: the share of one core a call costs
            "server_core_share_per_call": round(server_cpu / media_s, 4),
            "loadgen_cores_used": round(own_cpu / wall, 3),
            "machine_busy_share": round(machine_busy, 3),  # all processes, all cores
            # the 1-minute load average as the calls started and ended (others' work too)
            "load_average_1m": [round(load_before, 2), round(load_after, 2)],
        },
        "memory": {
            "server_warm_rss_mb": round(idle_rss, 1),  # models loaded, one call done
            "server_peak_rss_mb": round(peak_rss, 1),
            "per_call_mb": round((peak_rss - idle_rss) / n, 1),  # growth over warm, / N
        },
        "loadgen_loop_lag": percentiles(raw["loop_lag"]),
    }


def _round(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)


def passes(run: dict[str, Any]) -> tuple[bool, list[str]]:
    """Every cue with scripted moments was detected and its p95 is under its goal."""
    failing = []
    for kind, cue in run["cues"].items():
        if not cue["expected"]:
            continue  # only false nudges of this kind: counted, not a delay
        if cue["p95_s"] is None or cue["p95_s"] >= GOAL_S.get(kind, 0.3):
            failing.append(kind)
    return not failing, failing


def capacity(runs: list[dict[str, Any]]) -> tuple[int, dict[str, Any]]:
    """The largest N that passed, with every smaller N of the sweep passing too."""
    best, detail = 0, {}
    for run in sorted(runs, key=lambda r: r["calls"]):
        ok, failing = passes(run)
        if not ok:
            detail = {"first_failing_calls": run["calls"], "failing_cues": failing}
            break
        best = run["calls"]
    return best, detail


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, nargs="+", default=DEFAULT_CALLS, metavar="N")
    parser.add_argument(
        "--seconds", type=float, default=DEFAULT_SECONDS, help="seconds of audio per call slot"
    )
    parser.add_argument(
        "--ramp-s",
        type=float,
        default=DEFAULT_RAMP_S,
        help="call starts spread over this many seconds before the measured window "
        "(independent phases, as on a real floor; not for one call); 0 = all together, "
        "the same scripts in step",
    )
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu", help="for ASR")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    parser.add_argument("--micro-quick", action="store_true", help="short micro stage (CI)")
    parser.add_argument("--no-micro", action="store_true", help="skip the micro-benchmarks")
    args = parser.parse_args()
    started = time.monotonic()
    results: dict[str, Any] = {
        "benchmark": "live-call assist: cue latency, transcripts and capacity",
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": " ".join(["python bench/run.py", *sys.argv[1:]]),
        "machine": {**machine(), "reference_encode": reference_encode_ms()},
        "config": {
            "calls": args.calls,
            "seconds": args.seconds,
            "ramp_s": args.ramp_s,
            "device": args.device,
            "goal_p95_s": GOAL_S,
            "match_window_s": MATCH_WINDOW_S,
            "stagger_s": STAGGER_S,
        },
    }
    if not args.no_micro:
        bar = ProgressBar("[micro]", 1, "stages")
        results["micro"] = run_micro(
            args.device, args.micro_quick, lambda stage: bar.update(0, stage)
        )
        bar.close(f"done in {results['micro']['wall_s']:.0f} s")

    plans = load_calls(Settings().cues)
    results["config"]["scripts"] = [p.name for p in plans]
    runs = []
    for n in sorted(args.calls):
        run = one_run(plans, n, args.seconds, args.device, args.ramp_s if n > 1 else 0.0)
        runs.append(run)
        worst = {k: c["p95_s"] for k, c in run["cues"].items() if c["p95_s"] is not None}
        print(
            f"[N={n}] cue p95 (s) {worst}; transcript p95 "
            f"{run['transcript_delay']['p95_s']} s; "
            f"{100 * run['cpu']['server_core_share_per_call']:.1f} % of a core per call",
            file=sys.stderr,
            flush=True,
        )
    results["runs"] = runs
    device = runs[0]["asr"]["device"] or args.device  # what the server really used
    best, detail = capacity(runs)
    results["capacity"] = {device: best}
    results["capacity_detail"] = {device: {"calls": best, **detail}}
    results["wall_s"] = round(time.monotonic() - started, 1)
    written = report.write(results, args.out)
    print(f"capacity {results['capacity']}; wrote {', '.join(written)} in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
