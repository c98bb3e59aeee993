"""Benchmark outputs: ``results.json``, the Markdown summary and the PNG plots.

Plots need matplotlib (the ``[bench]`` extra); without it the JSON and the summary are
still written and ``results.json`` says the plots were skipped.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

from bench.common import pyplot
from bench.loadgen import AUDIO_CUES, GOAL_S, TEXT_CUES

KIND_ORDER = [*AUDIO_CUES, *TEXT_CUES]


def write(results: dict[str, Any], out: Path) -> list[str]:
    """Write every output into ``out``; the names written."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    if importlib.util.find_spec("matplotlib") is not None:
        plot_delays(results, out / "delay_vs_calls.png")
        plot_cpu(results, out / "cpu_per_call.png")
        results["plots"] = ["delay_vs_calls.png", "cpu_per_call.png"]
        written += results["plots"]
    else:
        results["plots"] = "skipped: matplotlib not installed (pip install -e '.[bench]')"
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    (out / "summary.md").write_text(summary(results))
    return ["results.json", "summary.md", *written]


def _kinds(runs: list[dict[str, Any]]) -> list[str]:
    seen = {k for r in runs for k, c in r["cues"].items() if c["expected"]}
    return [k for k in KIND_ORDER if k in seen] + sorted(seen - set(KIND_ORDER))


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{1000 * value:.0f} ms"


def _s(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f} s"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.0f} %"


def _speed_note(m: dict[str, Any]) -> str:
    """ "; reference encode N ms" when the sweep measured the host's speed (older: "")."""
    speed = m.get("reference_encode")
    return f"; reference encode {speed['median_ms']:g} ms ({speed['what']})" if speed else ""


def summary(results: dict[str, Any]) -> str:
    m = results["machine"]
    runs = results["runs"]
    gpu = m["gpu"] or "no GPU"
    lines = [
        "# Latency and capacity benchmark",
        "",
        f"{m['cpu']} ({', '.join(m.get('isa', [])) or 'ISA not recorded'}), {m['cores']} "
        f"cores, {m['memory_gb']} GB, {gpu}; Python {m['python']}; "
        f"load average {m['load_average_1m']} at the start{_speed_note(m)}. "
        f"`{results['command']}`, {results['created']}, {results['wall_s']:.0f} s in all.",
        "",
        "Delays run from the moment a cue became true in the audio (the call scripts' "
        "truth) to the nudge on the agent's socket; calls are streamed in real time.",
        "",
        *_ramp_line(results["config"].get("ramp_s", 0.0), results["config"]["seconds"]),
        "## Capacity",
        "",
        "| device | calls | limited by |",
        "| --- | --- | --- |",
    ]
    for device, calls in results["capacity"].items():
        detail = results.get("capacity_detail", {}).get(device, {})
        why = (
            f"{', '.join(detail['failing_cues'])} at {detail['first_failing_calls']} calls"
            if detail.get("failing_cues")
            else "not reached in this sweep"
        )
        lines.append(f"| {device} | {calls} | {why} |")
    goals = ", ".join(f"{k} {v:g} s" for k, v in GOAL_S.items())
    lines += ["", f"Goals (p95): {goals}.", ""]

    lines += [
        "## Cue delay p95 (recall) by load",
        "",
        "| cue | " + " | ".join(_calls(r["calls"]) for r in runs) + " |",
        "| --- |" + " --- |" * len(runs),
    ]
    for kind in _kinds(runs):
        cells = []
        for r in runs:
            c = r["cues"].get(kind)
            cells.append(
                "-" if not c or not c["expected"] else f"{_ms(c['p95_s'])} ({_pct(c['recall'])})"
            )
        lines.append(f"| {kind} (goal {GOAL_S.get(kind, 0):g} s) | " + " | ".join(cells) + " |")
    lines.append("")

    for r in runs:
        lines += [
            f"### {_calls(r['calls'])} ("
            f"{r['calls_streamed']} streamed in turn, "
            f"{r['call_hours'] * 60:.1f} call-minutes)",
            "",
            "| cue | n | p50 | p95 | p99 | max | recall | false per call-hour |",
            "| --- | --- | --- | --- | --- | --- | --- | --- |",
        ]
        for kind, c in sorted(r["cues"].items(), key=lambda kc: _order(kc[0])):
            lines.append(
                f"| {kind} | {c['n']} | {_ms(c['p50_s'])} | {_ms(c['p95_s'])} | "
                f"{_ms(c['p99_s'])} | {_ms(c['max_s'])} | {_pct(c['recall'])} | "
                f"{c['false_per_hour']:g} |"
            )
        lines.append("")
        lines += cue_error_lines(r)

    lines += [
        "## Transcripts, ASR queue, CPU and memory",
        "",
        "| calls | final transcript delay p50 / p95 / p99 | ASR wait p95 | ASR queue max | "
        "shed | audio dropped | server CPU per call | server cores (event loop / "
        "recognizer / other) | machine busy (load average) | memory growth per call |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in runs:
        t, a, cpu, mem = r["transcript_delay"], r["asr"], r["cpu"], r["memory"]
        shed = ", ".join(f"{k} {v:g}" for k, v in a["shed"].items() if v) or "0"
        load = cpu.get("load_average_1m")  # start -> end of the calls (older runs: none)
        busy = _pct(cpu["machine_busy_share"]) + (f" ({load[0]:g} -> {load[1]:g})" if load else "")
        lines.append(
            f"| {r['calls']} | {_s(t['p50_s'])} / {_s(t['p95_s'])} / {_s(t['p99_s'])} | "
            f"{_s(a['final_wait_p95_s'])} | {a['queue_max']:g} | {shed} | "
            f"{r['audio_dropped_s']:g} s | {_pct(cpu['server_core_share_per_call'])} of a core | "
            f"{cpu['server_cores_used']:.2f}{_by_role(cpu)} | {busy} | "
            f"{mem['per_call_mb']:g} MB |"
        )
    lines += [
        "",
        f"ASR: {runs[0]['asr']['model']} on {runs[0]['asr']['device']}, "
        f"{runs[0]['asr']['workers']} worker(s). The load generator shares the machine "
        "(its own CPU is in results.json).",
        "",
    ]

    micro = results.get("micro")
    if micro:
        lines += [
            "## Component micro-benchmarks",
            "",
            "| operation | median | p95 | n | what |",
            "| --- | --- | --- | --- | --- |",
        ]
        for name, e in micro.items():
            if isinstance(e, dict):
                lines.append(
                    f"| {name} | {e['median_ms']:.3f} ms | {e['p95_ms']:.3f} ms | {e['n']} | "
                    f"{e.get('what', '')} |"
                )
        lines.append("")
    return "\n".join(lines)


def _calls(n: int) -> str:
    return "1 call" if n == 1 else f"{n} calls"


def _order(kind: str) -> int:
    return KIND_ORDER.index(kind) if kind in KIND_ORDER else len(KIND_ORDER)


def plot_delays(results: dict[str, Any], path: Path) -> None:
    plt = pyplot()
    runs = results["runs"]
    ns = [r["calls"] for r in runs]
    kinds = _kinds(runs)
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    for ax, group, goal, title in (
        (axes[0], AUDIO_CUES, 0.3, "Audio cues"),
        (axes[1], TEXT_CUES, 2.0, "Text cues and final transcripts"),
    ):
        lowest = 0.0
        for kind in (k for k in kinds if k in group):
            p95 = [_nan(r["cues"].get(kind, {}).get("p95_s")) for r in runs]
            ax.plot(ns, p95, "o-", label=f"{kind} p95")
            lowest = min([lowest, *(v for v in p95 if v == v)])  # v == v: not NaN
        if group is TEXT_CUES:
            p95 = [_nan(r["transcript_delay"]["p95_s"]) for r in runs]
            ax.plot(ns, p95, "s--", color="grey", label="final transcript p95")
        ax.axhline(goal, color="red", linestyle="--", label=f"goal {goal:g} s")
        ax.set_ylim(bottom=lowest)
        _label(ax, ns, "delay to the agent's socket (s)", title)
        ax.legend(fontsize=8)
    _finish(plt, fig, results, path)


def plot_cpu(results: dict[str, Any], path: Path) -> None:
    plt = pyplot()
    runs = results["runs"]
    ns = [r["calls"] for r in runs]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.5))
    ax1.plot(ns, [100 * r["cpu"]["server_core_share_per_call"] for r in runs], "o-")
    _label(ax1, ns, "% of one core per call", "Server CPU per call (VAD, cues, ASR, text, sockets)")
    ax1.set_ylim(bottom=0)
    ax2.plot(ns, [r["cpu"]["server_cores_used"] for r in runs], "o-", label="server")
    ax2.plot(ns, [r["cpu"]["loadgen_cores_used"] for r in runs], "o-", label="load generator")
    cores = results["machine"]["cores"]
    busy = [cores * r["cpu"]["machine_busy_share"] for r in runs]
    ax2.plot(ns, busy, "s--", color="grey", label="whole machine (other work too)")
    ax2.axhline(cores, color="red", linestyle="--", label=f"{cores} cores")
    _label(ax2, ns, "cores busy", "Cores used")
    ax2.set_ylim(bottom=0)
    ax2.legend(fontsize=8)
    _finish(plt, fig, results, path)


def _label(ax: Any, ns: list[int], ylabel: str, title: str) -> None:
    ax.set_xlabel("concurrent calls")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.set_xticks(ns)


def _finish(plt: Any, fig: Any, results: dict[str, Any], path: Path) -> None:
    _title(fig, results)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _nan(value: float | None) -> float:
    return float("nan") if value is None else value


def _title(fig: Any, results: dict[str, Any]) -> None:
    m = results["machine"]
    device = ", ".join(results["capacity"])
    fig.suptitle(f"{m['cpu']}, {m['cores']} cores, ASR on {device}")


def _by_role(cpu: dict[str, Any]) -> str:
    """ " (loop / recognizer / other)" in cores, when the run recorded it (older runs: "")."""
    roles = cpu.get("server_cores_by_role")
    if not roles:
        return ""
    return f" ({roles['event_loop']:.2f} / {roles['recognizer']:.2f} / {roles['other']:.2f})"


def _ramp_line(ramp_s: float, seconds: float) -> list[str]:
    """How the calls were started: one sentence and a blank line."""
    if ramp_s > 0:
        text = (
            f"For N > 1 the call slots started spread over a {ramp_s:.0f} s ramp (independent "
            f"phases, as on a real floor); every number is over the {seconds:.0f} s after it."
        )
    else:
        text = "The call slots started together, 0.1 s apart (the same scripts in step)."
    return [text, ""]


def cue_error_lines(run: dict[str, Any]) -> list[str]:
    """The run's false nudges (call script, media time, evidence) and missed moments (call
    script, media time) as Markdown tables; runs from before they were listed: nothing."""
    cues = sorted(run["cues"].items(), key=lambda kc: _order(kc[0]))
    false = [
        f"| {kind} | {n['script']} | {n['media_time_s']:.2f} | {n['explanation']} |"
        for kind, c in cues
        for n in c.get("false_nudges", [])
    ]
    missed = [
        f"| {kind} | {m['script']} | {m['media_time_s']:.2f} |"
        for kind, c in cues
        for m in c.get("missed_moments", [])
    ]
    lines = []
    if false:
        lines += ["False nudges:", "", "| cue | call script | media s | evidence |"]
        lines += ["| --- | --- | --- | --- |", *false, ""]
    if missed:
        lines += ["Missed moments:", "", "| cue | call script | media s |"]
        lines += ["| --- | --- | --- |", *missed, ""]
    return lines
