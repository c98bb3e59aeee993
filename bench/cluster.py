"""A floor of workers: what the NATS bus adds to a nudge's trip, and what a second worker
adds to capacity. Real ``nats-server`` and PostgreSQL, started here on loopback ports.

1. Cross-worker nudge delay. Worker B (this process) publishes nudges for an agent whose
   stream is open on worker A (a second process): the delay runs from ``to_agent`` on B to
   the nudge leaving A's stream queue (``Subscription.get``), on the machine's monotonic
   clock, which both processes share. The same nudges reach a stream on B itself (the
   embedded path); "added" is the cross-worker delay less that local delay, per nudge.
   Nudges are sent at ``--rate`` per second. Goal: added p95 <= 20 ms on loopback.
2. Capacity, 2 workers vs 1, audio cues only (ASR off): for each N of ``--calls``, N
   concurrent real-time calls over real sockets (the mix of ``bench/loadgen.py``) to one
   ``assist serve`` worker, then split between two workers, every worker on the bus and
   the PostgreSQL store; worker i is pinned to core i (``taskset``; ``--no-pin``: not), so
   each worker has one core of its own, as on a machine of its own, while the load
   generator, NATS and PostgreSQL share the machine. Capacity: the largest N at which
   every audio cue's p95 delay stayed under its goal (0.3 s), as in ``bench/run.py``, and
   every smaller N did too. On a machine shared with other work (the load generator
   included) that number moves with the other load, so each run also records every
   worker's CPU per call (% of a core, all its threads): 100 / that is the calls one core
   carries, the number that sizes a floor.

    python bench/cluster.py [--nudges 2000] [--rate 200] [--calls 8 16 24 32 48]
                            [--seconds 20] [--out bench/results]

Writes ``DIR/cluster.json`` and ``DIR/cluster.png``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from assist.cluster.bus import ClusterHub  # noqa: E402
from assist.config import ClusterConfig, Settings  # noqa: E402
from assist.events import Evidence, Nudge  # noqa: E402
from bench.common import (  # noqa: E402
    machine,
    percentiles,
    process_cpu_s,
    pyplot,
    start_server,
    stop_server,
)
from bench.loadgen import (  # noqa: E402
    AUDIO_CUES,
    GOAL_S,
    call_jobs,
    cue_stats,
    load_calls,
    stream_calls,
)

# The servers the tests use (tests/cluster/servers.py): nats-server and PostgreSQL.
from tests.cluster.servers import NatsServer, PostgresServer  # noqa: E402

AGENT = "bench-agent"
GOAL_ADDED_P95_MS = 20.0


def nudge(i: int) -> Nudge:
    """Nudge number ``i`` of the delay run (a realistic size: evidence and a quote)."""
    return Nudge(
        id=f"bench-call-{i}",
        call_id="bench-call",
        agent_id=AGENT,
        kind="interruption",
        severity="warning",
        message="You talked over the customer. Let them finish.",
        suggestion="Pause, then answer the last thing they said.",
        media_time_s=float(i),
        evidence=Evidence(
            rule="overlap",
            threshold=0.8,
            measured=1.3,
            unit="s",
            span_start_s=float(i) - 1.3,
            span_end_s=float(i),
            explanation="agent speech overlapped customer speech for 1.3 s",
            details={"quote": "I understand but you need to listen to what I am saying"},
        ),
    )


async def _arrivals(hub: ClusterHub, count: int, out: dict[int, float]) -> None:
    """Take ``count`` nudges from an agent stream on ``hub``: arrival time per number."""
    sub = hub.subscribe_agent(AGENT)
    while len(out) < count:
        message = json.loads(await sub.get())
        if message["type"] == "nudge":
            out[int(message["id"].rsplit("-", 1)[1])] = time.monotonic()


async def receiver(bus: str, count: int) -> None:
    """Worker A (a process of its own): an agent stream; prints ``ready``, then the arrival
    time of every nudge as JSON."""
    hub = ClusterHub(ClusterConfig(bus=bus), "bench-a")
    await hub.start()
    await hub.joined.wait()
    arrivals: dict[int, float] = {}
    task = asyncio.create_task(_arrivals(hub, count, arrivals))
    while AGENT not in hub._agent_bus or hub._agent_bus[AGENT] is None:  # noqa: ASYNC110
        await asyncio.sleep(0.01)  # the agent's subject is being subscribed
    print("ready", flush=True)
    await task
    print(json.dumps(arrivals), flush=True)
    await hub.close()


async def nudge_delay(bus: str, count: int, rate: float) -> dict[str, Any]:
    """Part 1 (module docstring): local, cross-worker and added delay percentiles (ms)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        __file__,
        "--receiver",
        bus,
        "--nudges",
        str(count),
        stdout=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None
    ready = (await proc.stdout.readline()).decode()
    if ready.strip() != "ready":
        raise RuntimeError(f"receiver did not start: {ready!r}")
    hub = ClusterHub(ClusterConfig(bus=bus), "bench-b")
    await hub.start()
    await hub.joined.wait()
    local: dict[int, float] = {}
    local_task = asyncio.create_task(_arrivals(hub, count, local))
    sent: dict[int, float] = {}
    print(f"delay: {count} nudges at {rate:.0f}/s over the bus ...", file=sys.stderr)
    t0 = time.monotonic()
    for i in range(count):
        await asyncio.sleep(max(0.0, t0 + i / rate - time.monotonic()))  # pacing the sender
        sent[i] = time.monotonic()
        hub.to_agent(AGENT, nudge(i))
    await local_task
    line = (await proc.stdout.readline()).decode()
    await proc.wait()
    await hub.close()
    remote = {int(k): v for k, v in json.loads(line).items()}
    local_ms = [(local[i] - sent[i]) * 1000 for i in range(count)]
    cross_ms = [(remote[i] - sent[i]) * 1000 for i in range(count)]
    added_ms = [c - loc for c, loc in zip(cross_ms, local_ms, strict=True)]
    out = {
        "nudges": count,
        "rate_per_s": rate,
        "local": percentiles(local_ms, "ms", 3),
        "cross_worker": percentiles(cross_ms, "ms", 3),
        "added": percentiles(added_ms, "ms", 3),
        "goal_added_p95_ms": GOAL_ADDED_P95_MS,
        "samples_ms": {
            "local": [round(v, 3) for v in local_ms],
            "cross_worker": [round(v, 3) for v in cross_ms],
        },
    }
    out["passed"] = out["added"]["p95_ms"] <= GOAL_ADDED_P95_MS
    return out


def worker_env(bus: str, dsn: str, worker_id: str) -> dict[str, str]:
    return {
        "ASSIST_CLUSTER__BUS": bus,
        "ASSIST_CLUSTER__WORKER_ID": worker_id,
        "ASSIST_STORE__BACKEND": "postgresql",
        "ASSIST_STORE__DSN": dsn,
        "ASSIST_ASR__ENABLED": "false",
    }


async def capacity_run(
    bus: str, dsn: str, workers: int, n: int, seconds: float, plans: list[Any], pin: bool
) -> dict[str, Any]:
    """N calls split over ``workers`` fresh workers: audio cue stats and pass/fail."""
    servers = [
        start_server(worker_env(bus, dsn, f"cap-{workers}-{n}-{i}"))[0] for i in range(workers)
    ]
    if pin:  # worker i on core i, all its threads: a worker is one core, as on its own box
        for i, server in enumerate(servers):
            cmd = ["taskset", "-a", "-cp", str(i % (os.cpu_count() or 1)), str(server.pid)]
            await asyncio.to_thread(subprocess.run, cmd, check=True, capture_output=True)
    try:
        shares = [n // workers + (1 if i < n % workers else 0) for i in range(workers)]
        print(f"capacity: {n} calls on {workers} worker(s) {shares} ...", file=sys.stderr)
        cpu_before = [process_cpu_s(server.pid) for server in servers]
        wall_before = time.monotonic()
        parts = await asyncio.gather(
            *(
                stream_calls(
                    call_jobs(
                        f"ws://127.0.0.1:{server.port}",
                        plans,
                        share,
                        seconds,
                        id_prefix=f"w{workers}-{i}",
                    )
                )
                for i, (server, share) in enumerate(zip(servers, shares, strict=True))
                if share
            )
        )
        wall_s = time.monotonic() - wall_before
        cpu_s = [process_cpu_s(s.pid) - b for s, b in zip(servers, cpu_before, strict=True)]
    finally:
        for server in servers:
            stop_server(server)
    calls = [c for part in parts for c in part]
    # each worker's CPU per call: the share of a core one call costs it (busy machine or not)
    per_call = [
        round(100 * cpu / wall_s / share, 2) for cpu, share in zip(cpu_s, shares, strict=True)
    ]
    cues = {k: v for k, v in cue_stats(calls).items() if k in AUDIO_CUES}
    failing = [k for k, v in cues.items() if v["p95_s"] is not None and v["p95_s"] > GOAL_S[k]]
    return {
        "calls": n,
        "workers": workers,
        "cues": cues,
        "passed": not failing,
        "failing": failing,
        "worker_cpu_pct_per_call": per_call,
        # other work on the machine competes for the same cores: this says how much
        "load_avg_1m": round(os.getloadavg()[0], 2),
    }


def capacity_of(runs: list[dict[str, Any]]) -> int:
    """The largest N that passed with every smaller N passing too (0: none)."""
    best = 0
    for run in sorted(runs, key=lambda r: r["calls"]):
        if not run["passed"]:
            break
        best = run["calls"]
    return best


def plot(results: dict[str, Any], path: Path) -> None:
    plt = pyplot()

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    delay = results["nudge_delay"]
    for name in ("local", "cross_worker"):
        data = np.sort(np.asarray(delay["samples_ms"][name]))
        left.plot(data, np.arange(1, len(data) + 1) / len(data), label=name.replace("_", "-"))
    left.axvline(delay["local"]["p95_ms"] + GOAL_ADDED_P95_MS, ls=":", c="grey")
    left.set(
        xlabel="nudge delay (ms)",
        ylabel="share of nudges",
        title=f"added by the bus: p95 {delay['added']['p95_ms']:.2f} ms (goal 20)",
        xscale="log",
    )
    left.legend()
    for workers, runs in results["capacity_runs"].items():
        xs = [r["calls"] for r in runs]
        ys = [
            max((c["p95_s"] or 0.0) for c in r["cues"].values()) if r["cues"] else 0 for r in runs
        ]
        right.plot(
            xs, ys, "o-", label=f"{workers} worker(s): capacity {results['capacity'][workers]}"
        )
    right.axhline(0.3, ls=":", c="grey", label="goal 0.3 s")
    right.set(xlabel="concurrent calls", ylabel="worst audio cue p95 (s)", title="capacity")
    right.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    nats = NatsServer()
    nats.start()
    pg = PostgresServer()
    pg.start()
    try:
        results: dict[str, Any] = {
            "benchmark": "cluster: cross-worker nudge delay, capacity of 2 workers vs 1",
            "when": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": machine(),
            "nudge_delay": await nudge_delay(nats.url, args.nudges, args.rate),
        }
        d = results["nudge_delay"]
        print(
            f"delay p95: local {d['local']['p95_ms']} ms, cross-worker "
            f"{d['cross_worker']['p95_ms']} ms, added {d['added']['p95_ms']} ms",
            file=sys.stderr,
        )
        plans = load_calls(Settings().cues)
        runs: dict[str, list[dict[str, Any]]] = {"1": [], "2": []}
        for workers in (1, 2):
            for n in args.calls:
                run = await capacity_run(
                    nats.url, pg.database(), workers, n, args.seconds, plans, args.pin
                )
                runs[str(workers)].append(run)
                if not run["passed"]:
                    break  # past capacity: larger N only take longer
        results["capacity_runs"] = runs
        results["capacity"] = {w: capacity_of(r) for w, r in runs.items()}
        results["seconds_per_run"] = args.seconds
        results["pinned"] = args.pin
        return results
    finally:
        pg.stop()
        nats.remove()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nudges", type=int, default=2000)
    parser.add_argument("--rate", type=float, default=200.0, help="nudges per second")
    parser.add_argument("--calls", type=int, nargs="+", default=[8, 16, 24, 32, 48])
    parser.add_argument("--seconds", type=float, default=20.0, help="audio per capacity run")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    parser.add_argument(
        "--no-pin",
        dest="pin",
        action="store_false",
        help="let workers use every core (default: worker i pinned to core i with taskset)",
    )
    parser.add_argument("--receiver", help=argparse.SUPPRESS)  # worker A's process
    args = parser.parse_args()
    if args.receiver:
        asyncio.run(receiver(args.receiver, args.nudges))
        return 0
    os.environ.pop("ASSIST_CLUSTER__BUS", None)
    results = asyncio.run(main_async(args))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "cluster.json").write_text(json.dumps(results, indent=1) + "\n")
    plot(results, args.out / "cluster.png")
    print(
        f"capacity {results['capacity']} calls; added nudge delay p95 "
        f"{results['nudge_delay']['added']['p95_ms']} ms; wrote {args.out}/cluster.json, "
        "cluster.png",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
