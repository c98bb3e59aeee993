"""Shared benchmark plumbing: the machine's description, a real ``assist serve`` process,
its ``/metrics`` page, CPU and memory from ``/proc``, percentiles, and the progress bar.

Used by ``bench/run.py`` (latency and capacity), ``bench/micro.py`` (components) and
``bench/asr_quality.py`` (transcription quality). Nothing here knows about cues.
"""

from __future__ import annotations

import collections
import json
import math
import os
import platform
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
READY_LINE = "assist serving on"
START_TIMEOUT_S = 300.0  # model loading on a busy 2-core machine can take a while


# the machine ---------------------------------------------------------------------------


def gpu() -> str | None:
    """``name, memory`` of each NVIDIA GPU, or None without a driver."""
    if shutil.which("nvidia-smi") is None:
        return None
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=name,memory.total", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=20,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return "; ".join(line.strip() for line in out.splitlines()) or None


# Instruction sets that change how fast (and, in the last bits, what) CTranslate2's int8
# kernels compute: hosts of one model name differ in them.
ISA_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8")


def machine() -> dict[str, Any]:
    cpu = "unknown"
    flags: set[str] = set()
    with open("/proc/cpuinfo") as fh:
        for line in fh:
            if line.startswith("model name"):  # the first processor's; then its flags
                cpu = line.split(":", 1)[1].strip()
            elif line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                break
    mem_kb = int(Path("/proc/meminfo").read_text().split()[1])
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "isa": [flag for flag in ISA_FLAGS if flag in flags],
        "memory_gb": round(mem_kb / 1e6, 1),
        "gpu": gpu(),
        "python": platform.python_version(),
        "load_average_1m": round(os.getloadavg()[0], 2),  # others' work skews the numbers
    }


def reference_encode_ms(repeats: int = 5) -> dict[str, Any]:
    """How fast this host is at the recognizer's main work, apart from our code: the median
    milliseconds of one CTranslate2 Whisper ``tiny.en`` encoder pass over a full 30 s window
    (1 x 80 x 3000 mel frames of zeros, int8, one thread), after one warm-up pass.

    Cloud hosts of one name ("AMD EPYC, 2 cores") differ by a factor of two from day to day,
    and capacity with them; sweeps compare through this number. Raises ``ModelNotAvailable``
    without the bundled model (``assist.asr.model``)."""
    import ctranslate2

    from assist.asr.model import BUNDLED, resolve_model_path

    model = ctranslate2.models.Whisper(
        str(resolve_model_path(BUNDLED)), device="cpu", compute_type="int8", intra_threads=1
    )
    features = ctranslate2.StorageView.from_array(np.zeros((1, 80, 3000), dtype=np.float32))
    model.encode(features)
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        model.encode(features)
        samples.append((time.perf_counter() - started) * 1000)
    return {
        "median_ms": round(float(np.median(samples)), 1),
        "min_ms": round(min(samples), 1),
        "what": "one Whisper tiny.en encoder pass, 30 s window, int8, 1 thread (CTranslate2 "
        f"{ctranslate2.__version__})",
    }


# /proc ---------------------------------------------------------------------------------


def _cpu_s_and_nice(stat: Path) -> tuple[float, int]:
    """(user + system CPU seconds, nice value) from a ``/proc/.../stat`` file (a process's:
    all its threads; a task's: that thread)."""
    fields = stat.read_text().rsplit(")", 1)[1].split()  # after "(comm)", which may hold spaces
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK"), int(fields[16])


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process, all its threads."""
    return _cpu_s_and_nice(Path(f"/proc/{pid}/stat"))[0]


def thread_cpu_s(pid: int) -> dict[int, tuple[float, int]]:
    """Each thread of a process: native id -> (user + system CPU seconds, nice value).
    Threads that end between the directory listing and the read are left out."""
    threads = {}
    for entry in Path(f"/proc/{pid}/task").iterdir():
        try:
            threads[int(entry.name)] = _cpu_s_and_nice(entry / "stat")
        except OSError:
            continue
    return threads


def cpu_by_role(
    pid: int, before: dict[int, tuple[float, int]], after: dict[int, tuple[float, int]]
) -> dict[str, float]:
    """CPU seconds between two ``thread_cpu_s`` samples of the server, by role:
    ``event_loop`` (the main thread: audio pipeline, WebSockets, publishing), ``recognizer``
    (threads below the main thread's priority: the ASR workers and CTranslate2's own, which
    start lowered by ``[asr] nice``) and ``other`` (text models, store, everything else).
    A thread that ended before ``after`` is missing from the split (the server's threads
    live as long as it does)."""
    main_nice = after.get(pid, before.get(pid, (0.0, 0)))[1]
    roles = {"event_loop": 0.0, "recognizer": 0.0, "other": 0.0}
    for tid, (cpu_s, nice) in after.items():
        spent = cpu_s - before.get(tid, (0.0, nice))[0]
        role = "event_loop" if tid == pid else "recognizer" if nice > main_nice else "other"
        roles[role] += spent
    return {role: round(spent, 2) for role, spent in roles.items()}


def process_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS"):
            return int(line.split()[1]) / 1024
    return 0.0


def recognizer_run_header(
    benchmark: str, load_before: Iterable[float], model: str, compute_type: str
) -> dict[str, Any]:
    """The first keys of a recognizer benchmark's JSON: what ran, on which machine, how
    loaded it was before (``load_before``, 1/5/15 min) and after, with which model."""
    return {
        "benchmark": benchmark,
        "machine": machine(),
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "model": model,
        "compute_type": compute_type,
    }


def pyplot() -> Any:
    """matplotlib's ``pyplot`` on the Agg backend (files only, no display); raises
    ``ImportError`` without the ``bench`` extra."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def write_results(
    out: Path,
    stem: str,
    results: dict[str, Any],
    table: Callable[[dict[str, Any]], str],
    plot: Callable[[dict[str, Any], Path], None],
) -> None:
    """Write ``OUT/STEM.json`` and ``OUT/STEM.png`` (``plot``), and print the Markdown
    ``table`` of ``results`` and where the JSON went."""
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{stem}.json"
    path.write_text(json.dumps(results, indent=1) + "\n")
    print(table(results))
    print(f"wrote {path}")
    plot(results, out / f"{stem}.png")


def machine_cpu_ticks() -> tuple[int, int]:
    """(busy, total) clock ticks of all cores since boot, from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    return sum(values) - idle, sum(values)


def busy_share(before: tuple[int, int], after: tuple[int, int]) -> float:
    """Share of the whole machine's CPU time that was busy between two samples (0-1)."""
    total = after[1] - before[1]
    return (after[0] - before[0]) / total if total else 0.0


# the server ----------------------------------------------------------------------------


class ServerProcess(subprocess.Popen):  # type: ignore[type-arg]
    """``assist serve`` whose output is drained by a thread (a full pipe would stall it);
    the last lines are kept for error messages."""

    port: int
    log: collections.deque[str]
    ready: threading.Event

    def log_tail(self, lines: int = 30) -> str:
        return "".join(list(self.log)[-lines:])


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(env: Mapping[str, str] | None = None) -> tuple[ServerProcess, int]:
    """A fresh ``assist serve`` on a free port, models loaded; call records in memory.

    ``env`` adds ``ASSIST_*`` settings on top of this process's environment.
    """
    port = free_port()
    full_env = {**os.environ, "ASSIST_STORE__BACKEND": "memory", **(env or {})}
    server = ServerProcess(
        [sys.executable, "-m", "assist.cli", "serve", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=ROOT,
        env=full_env,
    )
    server.port = port
    server.log = collections.deque(maxlen=400)
    server.ready = threading.Event()

    def drain() -> None:
        assert server.stdout is not None
        for line in server.stdout:
            server.log.append(line)
            if READY_LINE in line:
                server.ready.set()

    threading.Thread(target=drain, name=f"server-{port}-log", daemon=True).start()
    deadline = time.monotonic() + START_TIMEOUT_S
    while not server.ready.wait(timeout=0.2):
        if server.poll() is not None or time.monotonic() > deadline:
            stop_server(server)
            raise RuntimeError(f"assist serve did not start:\n{server.log_tail()}")
    return server, port


def stop_server(server: subprocess.Popen[str]) -> None:
    if server.poll() is None:
        server.terminate()
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=10)


def http_get(url: str, timeout_s: float = 10.0) -> str:
    with urllib.request.urlopen(url, timeout=timeout_s) as response:
        return str(response.read().decode())


# /metrics ------------------------------------------------------------------------------


def parse_metrics(text: str) -> dict[str, dict[str, float]]:
    """Prometheus text -> sample name -> label text (``""`` without labels) -> value."""
    out: dict[str, dict[str, float]] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        sample, value = line.rsplit(" ", 1)
        name, _, labels = sample.partition("{")
        out.setdefault(name, {})["{" + labels if labels else ""] = float(value)
    return out


def scrape_metric(url: str, name: str) -> dict[str, float]:
    """Samples of one metric from a /metrics page, keyed by their label text."""
    samples = parse_metrics(http_get(url)).get(name, {})
    return {labels or "total": value for labels, value in samples.items()}


def label_value(labels: str, key: str) -> str | None:
    """``le`` from ``{channel="agent",le="0.5"}`` and the like."""
    for part in labels.strip("{}").split(","):
        k, _, v = part.partition("=")
        if k == key:
            return v.strip('"')
    return None


def histogram_quantile(buckets: Mapping[str, float], q: float) -> float | None:
    """Quantile ``q`` (0-1) of a cumulative histogram's ``_bucket`` samples, interpolated
    linearly inside the bucket as Prometheus does; None when it holds no observations."""
    bounds = sorted(
        (math.inf if le == "+Inf" else float(le), count)
        for labels, count in buckets.items()
        if (le := label_value(labels, "le")) is not None
    )
    if not bounds or bounds[-1][1] == 0:
        return None
    rank = q * bounds[-1][1]
    lower, below = 0.0, 0.0
    for bound, count in bounds:
        if count >= rank:
            if math.isinf(bound):
                return lower  # beyond the last finite bucket: its bound is all we know
            return lower + (bound - lower) * (rank - below) / max(count - below, 1e-9)
        lower, below = bound, count
    return lower


# statistics ----------------------------------------------------------------------------


def percentiles(values: Iterable[float], unit: str = "s", digits: int = 4) -> dict[str, Any]:
    """``n``, ``p50_<unit>``, ``p95_<unit>``, ``p99_<unit>``, ``max_<unit>`` (None if empty)."""
    data = np.asarray(list(values), dtype=float)
    out: dict[str, Any] = {"n": len(data)}
    for q in (50, 95, 99):
        out[f"p{q}_{unit}"] = round(float(np.percentile(data, q)), digits) if len(data) else None
    out[f"max_{unit}"] = round(float(data.max()), digits) if len(data) else None
    return out


# progress ------------------------------------------------------------------------------


class ProgressBar:
    """One line on stderr, redrawn in place on a terminal (a new line every 10 s when
    stderr is a file or a CI log)."""

    WIDTH = 24  # characters of bar

    def __init__(self, label: str, total: float, unit: str) -> None:
        self.label = label
        self.total = total
        self.unit = unit
        self._tty = sys.stderr.isatty()
        self._last_line_s = -math.inf

    def update(self, done: float, note: str = "") -> None:
        share = min(max(done / self.total, 0.0), 1.0) if self.total else 1.0
        filled = round(share * self.WIDTH)
        bar = "█" * filled + "░" * (self.WIDTH - filled)
        text = f"{self.label} {done:.0f}/{self.total:.0f} {self.unit} ▕{bar}▏ {note}"
        if self._tty:
            sys.stderr.write("\r\x1b[2K" + text)
            sys.stderr.flush()
        elif time.monotonic() - self._last_line_s >= 10.0:
            self._last_line_s = time.monotonic()
            print(text, file=sys.stderr, flush=True)

    def close(self, note: str = "") -> None:
        if self._tty:
            sys.stderr.write("\r\x1b[2K")
        print(f"{self.label} {note}", file=sys.stderr, flush=True)
