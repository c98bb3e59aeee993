"""Soak: N concurrent real-time calls for a long time against one ``assist serve``, its
memory sampled, the slope of its RSS fitted, and every loss of audio counted.

    .venv/bin/python bench/soak.py                          # 20 calls, 30 minutes
    .venv/bin/python bench/soak.py --calls 4 --minutes 2    # a short run

The server is a real ``assist serve`` (``bench.common.start_server``) with the default
configuration (transcription and text cues on; ``--device`` for ASR) and a SQLite store in
a temporary folder, so records are written for the whole run. The load is the benchmark's
call mix (``bench.loadgen``): ``--calls`` slots, each streaming the scripted calls back to
back in real time, each call with its own agent event stream; every slot's last call is
cut at ``--minutes``. Every ``--sample-s`` the server's RSS (``/proc``), CPU and
``/metrics`` are sampled, and the machine's load (others' work skews everything on a
shared machine).

Results: ``soak.json`` and ``soak.png`` in ``--out`` (default ``bench/results/``):

* ``rss.slope_mb_per_hour``: least-squares slope of RSS after the warm-up (the first
  ``--warmup-minutes``, default a fifth of the run, at most 5 minutes: models and
  allocator pools settling), with its standard error and the residual noise; ``flat``
  when the slope is within two standard errors of zero or the RSS it implies over the
  run stays inside the residual noise.
* ``audio``: seconds sent, processed, dropped by the server's ingest queues
  (``assist_audio_dropped_seconds_total``), and calls that failed on the client side;
  ``asr``: utterances shed by reason (partials shed under load are expected on a small
  CPU: the cues keep working, the live transcript gets coarser).
* ``server_exit_code``: ``assist serve`` stopped with SIGTERM after the run (0 =
  graceful: every call ended, records written).
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import json
import math
import os
import signal
import sys
import tempfile
import time
from collections.abc import Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from assist.config import Settings
from bench.common import (
    ROOT,
    ProgressBar,
    busy_share,
    histogram_quantile,
    http_get,
    machine,
    machine_cpu_ticks,
    parse_metrics,
    process_cpu_s,
    process_rss_mb,
    start_server,
    stop_server,
)
from bench.loadgen import CallPlan, StreamedCall, call_jobs, load_calls

COUNTERS = {  # /metrics samples kept at every sample, by short name
    "calls_active": "assist_calls_active",
    "audio_s": "assist_audio_seconds_total",
    "dropped_s": "assist_audio_dropped_seconds_total",
    "asr_queue": "assist_asr_queue",
    "store_queue": "assist_store_queue",
    "store_waits": "assist_store_queue_waits_total",
}


@dataclass
class Load:
    """What the client side saw."""

    calls_done: int = 0
    calls_failed: int = 0
    sent_s: float = 0.0
    nudges: int = 0
    finals: int = 0
    failures: list[str] = field(default_factory=list)


def metric_sum(metrics: dict[str, dict[str, float]], name: str) -> float:
    return sum(metrics.get(name, {}).values())


def by_label(metrics: dict[str, dict[str, float]], name: str, key: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for labels, value in metrics.get(name, {}).items():
        part = dict(p.split("=", 1) for p in labels.strip("{}").split(",") if "=" in p)
        label = part.get(key, "").strip('"')
        out[label] = out.get(label, 0.0) + value
    return out


def fit_slope(t_s: list[float], rss_mb: list[float]) -> dict[str, Any]:
    """Least-squares line through (hours, MB): slope, its standard error, the residual
    standard deviation and whether the slope is flat within noise."""
    if len(t_s) < 3:
        return {"samples": len(t_s), "slope_mb_per_hour": None, "flat": None}
    hours = np.asarray(t_s) / 3600.0
    mb = np.asarray(rss_mb)
    (slope, intercept), cov = np.polyfit(hours, mb, 1, cov=True)
    residual = mb - (slope * hours + intercept)
    stderr = float(math.sqrt(max(cov[0][0], 0.0)))
    noise = float(residual.std(ddof=2))
    span_h = float(hours[-1] - hours[0])
    flat = abs(slope) <= 2 * stderr or abs(slope) * span_h <= 2 * noise
    return {
        "samples": len(t_s),
        "slope_mb_per_hour": round(float(slope), 3),
        "slope_stderr_mb_per_hour": round(stderr, 3),
        "residual_std_mb": round(noise, 3),
        "span_minutes": round(span_h * 60, 2),
        "flat": bool(flat),
    }


async def run_load(url: str, plans: list[CallPlan], n: int, seconds: float, load: Load) -> None:
    """``n`` slots, each streaming the mix back to back in real time for ``seconds``
    (``bench.loadgen.call_jobs``); a call that fails is counted (and its slot goes on),
    never fatal to the run."""

    async def counted(index: int, job: Coroutine[Any, Any, StreamedCall]) -> None:
        try:
            streamed = await job
        except Exception as exc:  # the run goes on; the failure is reported
            load.calls_failed += 1
            load.failures.append(f"call {index}: {type(exc).__name__}: {exc}"[:300])
            return
        result = streamed.result
        if result.error is not None or result.scorecard is None:
            load.calls_failed += 1
            reason = result.error or "no scorecard"
            load.failures.append(f"{streamed.name} #{index}: {reason}"[:300])
        else:
            load.calls_done += 1
        load.sent_s += streamed.streamed_s
        load.nudges += len(result.nudges)
        load.finals += sum(1 for e in result.events if e["type"] == "transcript" and e["final"])

    jobs = call_jobs(url, plans, n, seconds, id_prefix="soak")
    await asyncio.gather(*(counted(i, job) for i, job in enumerate(jobs)))


async def sample_server(
    pid: int, metrics_url: str, every_s: float, samples: list[dict[str, Any]], t0: float
) -> None:
    """Every ``every_s``: RSS, CPU and the /metrics counters of the server, and the load. A
    scrape that fails (a starved server) keeps the last counters and says so
    (``scraped`` false); RSS and CPU come from /proc all the same."""
    counters = dict.fromkeys(COUNTERS, 0.0)
    while True:
        scraped = True
        try:
            page = await asyncio.to_thread(http_get, metrics_url, 30.0)
            metrics = parse_metrics(page)
            counters = {key: metric_sum(metrics, name) for key, name in COUNTERS.items()}
        except OSError:  # urllib's errors and timeouts
            scraped = False
        samples.append(
            {
                "t_s": round(time.monotonic() - t0, 2),
                "rss_mb": round(process_rss_mb(pid), 2),
                "cpu_s": round(process_cpu_s(pid), 2),
                "load_1m": round(os.getloadavg()[0], 2),
                "scraped": scraped,
                **counters,
            }
        )
        await asyncio.sleep(every_s)  # pacing the sampler, not logic


async def soak(args: argparse.Namespace) -> dict[str, Any]:
    seconds = args.minutes * 60.0
    warmup_s = (
        args.warmup_minutes * 60.0 if args.warmup_minutes is not None else min(seconds / 5, 300.0)
    )
    plans = load_calls(Settings().cues)
    store = Path(tempfile.mkdtemp(prefix="soak-")) / "calls.sqlite3"
    env = {
        "ASSIST_STORE__BACKEND": "sqlite",
        "ASSIST_STORE__PATH": str(store),
        "ASSIST_ASR__DEVICE": args.device,
    }
    the_machine = machine()
    server, port = start_server(env)
    atexit.register(stop_server, server)  # killed midway (SIGTERM): no orphan server
    url = f"ws://127.0.0.1:{port}"
    metrics_url = f"http://127.0.0.1:{port}/metrics"
    load = Load()
    samples: list[dict[str, Any]] = []
    progress = ProgressBar(f"soak {args.calls} calls", seconds, "s")
    ticks_before = machine_cpu_ticks()
    t0 = time.monotonic()
    sampler = asyncio.create_task(
        sample_server(server.pid, metrics_url, args.sample_s, samples, t0)
    )

    async def show() -> None:
        while True:
            last = samples[-1] if samples else {}
            progress.update(
                time.monotonic() - t0,
                f"rss {last.get('rss_mb', 0):.0f} MB, {load.calls_done} calls done, "
                f"dropped {last.get('dropped_s', 0):.1f} s, load {os.getloadavg()[0]:.1f}",
            )
            await asyncio.sleep(1.0)

    shower = asyncio.create_task(show())
    try:
        await run_load(url, plans, args.calls, seconds, load)
        await asyncio.sleep(args.sample_s)  # one more sample after the last call
    finally:
        for task in (sampler, shower):
            task.cancel()
        await asyncio.gather(sampler, shower, return_exceptions=True)
        wall_s = time.monotonic() - t0
        ticks_after = machine_cpu_ticks()
        final = parse_metrics(await asyncio.to_thread(http_get, metrics_url, 120.0))
        stop_server(server)  # SIGTERM: a graceful stop exits 0
        progress.close(f"done: {load.calls_done} calls, exit code {server.returncode}")
    steady = [s for s in samples if s["t_s"] >= warmup_s]
    lag = final.get("assist_processing_lag_seconds_bucket", {})
    shed = by_label(final, "assist_asr_shed_total", "reason")
    first, last = samples[0], samples[-1]
    return {
        "machine": the_machine,
        "settings": {
            "calls": args.calls,
            "minutes": args.minutes,
            "sample_s": args.sample_s,
            "warmup_minutes": round(warmup_s / 60, 2),
            "device": args.device,
            "store": "sqlite",
            "config": "default (transcription and text cues on)",
        },
        "wall_s": round(wall_s, 1),
        "machine_busy_share": round(busy_share(ticks_before, ticks_after), 3),
        "load_average_1m": {
            "start": the_machine["load_average_1m"],
            "mean": round(float(np.mean([s["load_1m"] for s in samples])), 2),
            "max": max(s["load_1m"] for s in samples),
        },
        "rss": {
            "start_mb": first["rss_mb"],
            "end_mb": last["rss_mb"],
            "max_mb": max(s["rss_mb"] for s in samples),
            "after_warmup": fit_slope([s["t_s"] for s in steady], [s["rss_mb"] for s in steady]),
            "whole_run": fit_slope([s["t_s"] for s in samples], [s["rss_mb"] for s in samples]),
        },
        "server_cores": round((last["cpu_s"] - first["cpu_s"]) / max(wall_s, 1e-9), 3),
        "calls": {
            "done": load.calls_done,
            "failed": load.calls_failed,
            "failures": load.failures[:20],
            "max_active": max(s["calls_active"] for s in samples),
        },
        "failed_scrapes": sum(1 for s in samples if not s["scraped"]),
        "audio": {
            "sent_s": round(load.sent_s, 1),
            "processed_s": round(metric_sum(final, "assist_audio_seconds_total"), 1),
            "dropped_s": round(metric_sum(final, "assist_audio_dropped_seconds_total"), 2),
            "processing_lag_p95_s": histogram_quantile(lag, 0.95),
            "processing_lag_p99_s": histogram_quantile(lag, 0.99),
        },
        "asr": {
            "finals_received": load.finals,
            "shed": {reason: int(count) for reason, count in sorted(shed.items())},
            "queue_max": max(s["asr_queue"] for s in samples),
        },
        "nudges_received": load.nudges,
        "store": {
            "queue_max": max(s["store_queue"] for s in samples),
            "queue_waits": int(metric_sum(final, "assist_store_queue_waits_total")),
        },
        "server_exit_code": server.returncode,
        "samples": samples,
    }


def plot(results: dict[str, Any], path: Path) -> bool:
    """RSS over the run with the fitted line after the warm-up, calls live beside it."""
    try:
        import matplotlib
    except ImportError:
        return False
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    samples = results["samples"]
    minutes = np.asarray([s["t_s"] for s in samples]) / 60
    rss = [s["rss_mb"] for s in samples]
    fig, ax = plt.subplots(figsize=(8, 4.5))
    ax.plot(minutes, rss, label="server RSS (MB)", color="tab:blue")
    fit = results["rss"]["after_warmup"]
    warm = results["settings"]["warmup_minutes"]
    if fit["slope_mb_per_hour"] is not None:
        steady = [(m, r) for m, r in zip(minutes, rss, strict=True) if m >= warm]
        xs = np.asarray([m for m, _ in steady])
        ys = np.asarray([r for _, r in steady])
        slope, intercept = np.polyfit(xs, ys, 1)
        ax.plot(
            xs,
            slope * xs + intercept,
            "--",
            color="tab:red",
            label=f"fit after warm-up: {fit['slope_mb_per_hour']:+.1f} MB/h",
        )
    ax.axvline(warm, color="grey", linewidth=0.8, linestyle=":")
    ax.set_xlabel("minutes")
    ax.set_ylabel("MB")
    calls = ax.twinx()
    calls.plot(minutes, [s["calls_active"] for s in samples], color="tab:green", alpha=0.4)
    calls.set_ylabel("calls live", color="tab:green")
    s = results["settings"]
    ax.set_title(
        f"Soak: {s['calls']} calls, {s['minutes']:g} min, dropped audio "
        f"{results['audio']['dropped_s']:g} s, load {results['load_average_1m']['mean']:g}"
    )
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=20, help="concurrent calls (20)")
    parser.add_argument("--minutes", type=float, default=30.0, help="length of the run (30)")
    parser.add_argument("--sample-s", type=float, default=10.0, help="sampling period (10)")
    parser.add_argument("--warmup-minutes", type=float, default=None)
    parser.add_argument("--device", choices=["cpu", "cuda", "auto"], default="cpu")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # atexit stops the server
    if args.calls < 1 or args.minutes <= 0 or args.sample_s <= 0:
        parser.error("--calls, --minutes and --sample-s must be positive")
    results = asyncio.run(soak(args))
    args.out.mkdir(parents=True, exist_ok=True)
    png = args.out / "soak.png"
    results["plot"] = png.name if plot(results, png) else "skipped: matplotlib not installed"
    (args.out / "soak.json").write_text(json.dumps(results, indent=2) + "\n")
    fit = results["rss"]["after_warmup"]
    print(
        f"soak: {results['calls']['done']} calls ({results['calls']['failed']} failed), "
        f"RSS {results['rss']['start_mb']:.0f} -> {results['rss']['end_mb']:.0f} MB, "
        f"slope {fit['slope_mb_per_hour']} MB/h (flat: {fit['flat']}), "
        f"dropped audio {results['audio']['dropped_s']} s, "
        f"server exit {results['server_exit_code']}; {args.out / 'soak.json'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
