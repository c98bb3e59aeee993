"""Line conditions: the audio cues of the test calls under the ways real lines differ.

A suite built only from our own clean synthesized calls tunes to them. This benchmark takes
the e2e tests' calls (``tests/calls``: interruptions, holds with music, silence and
announcements, dead air, monologues, a muted agent, echo both ways) and renders each again
under other line conditions: a hissing line (noise floor at -50, -45 and -40 dBFS, 30, 25 and
20 dB below the speech), Piper's natural voice instead of espeak-ng, a strong late echo of
the agent on the customer line, a faint one under the hiss, and a dispersive one over a
natural voice (a call's own echo keeps its direction). Each runs through the live
pipeline in-process (mu-law at 8 kHz, real Silero VAD, media time, no ASR: these are the
audio cues), and its nudges are matched against the call's truth (``assist.synth.truth``:
the script's exact speech spans and holds under the service's thresholds): a nudge of the
right kind within ``TOLERANCE_S`` of its moment is a hit, every other one is false, every
unmatched truth a miss.

    python bench/line_conditions.py [--calls NAME ...] [--conditions NAME ...] [--out DIR]

Writes ``line_conditions.json`` (per condition: hits, misses, false nudges; per call:
the nudges and the truth) and ``line_conditions.png`` under ``--out`` (default
``bench/results``); prints a Markdown table and each call with a miss or a false nudge.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from assist.config import Settings  # noqa: E402
from assist.pipeline import CallPipeline  # noqa: E402
from assist.replay import FRAME_S, encode_frames  # noqa: E402
from assist.synth.render import RenderedCall, render  # noqa: E402
from assist.synth.script import CallScript  # noqa: E402
from assist.synth.truth import expected_cues  # noqa: E402
from assist.vad.silero import SileroModel  # noqa: E402
from assist.vocabulary import CallSpec  # noqa: E402
from bench.common import machine, pyplot, write_results  # noqa: E402

CALLS_DIR = ROOT / "tests" / "calls"
CALLS = (
    "interruptions",
    "holds",
    "silence_hold",
    "hold_announcements",
    "dead_air",
    "monologue",
    "smooth",
    "muted_agent",
    "echo_monologue",
    "echo_interruption",
    "customer_echo_interruption",
)
# name -> changes to the call script's top-level fields
CONDITIONS: dict[str, dict[str, Any]] = {
    "as scripted": {},
    "hiss -50 dBFS": {"noise_dbfs": -50.0},
    "hiss -45 dBFS": {"noise_dbfs": -45.0},
    "Piper voice": {"tts": "piper"},
    "Piper voice, hiss -45 dBFS": {"tts": "piper", "noise_dbfs": -45.0},
    "echo 12 dB down, 250 ms": {"echo": {"delay_ms": 250.0, "level_db": -12.0}},
    "echo 30 dB down under hiss -45 dBFS": {
        "echo": {"delay_ms": 120.0, "level_db": -30.0},
        "noise_dbfs": -45.0,
    },
    "Piper voice, echo 15 dB down, hiss -50 dBFS": {
        "tts": "piper",
        "echo": {"delay_ms": 60.0, "level_db": -15.0, "dispersion_ms": 4.0},
        "noise_dbfs": -50.0,
    },
    "hiss -40 dBFS": {"noise_dbfs": -40.0},
}
AUDIO_CUES = ("interruption", "long_hold", "dead_air", "monologue")
TOLERANCE_S = 1.0  # a nudge this close to its truth's moment is a hit (media s)


def render_under(name: str, changes: dict[str, Any]) -> RenderedCall:
    """``tests/calls/NAME.toml`` rendered with ``changes`` to its top-level fields; an
    echo condition keeps the direction of a script's own echo."""
    script = CallScript.load(CALLS_DIR / f"{name}.toml")
    if "echo" in changes and script.echo is not None:
        changes = {**changes, "echo": {**changes["echo"], "on": script.echo.on}}
    return render(script.changed(**changes))


def run_call(call: RenderedCall, vad: SileroModel, settings: Settings) -> list[tuple[str, float]]:
    """The call's audio-cue nudges ``(kind, media s)``: streamed through the pipeline as the
    live service gets it (mu-law, 20 ms frames, CTI hold events where the script has
    them), no ASR."""
    spec = CallSpec("line-conditions", "bench", call.sample_rate, "mulaw", ("customer", "agent"))
    pipeline = CallPipeline(settings, vad, spec, asr=False)
    cti = {}  # frame index -> hold on / off, sent before that frame
    for hold in call.script.hold:
        if hold.cti:
            cti[round(hold.at / FRAME_S)] = True
            cti[round((hold.at + hold.duration) / FRAME_S)] = False
    nudges: list[tuple[str, float]] = []
    for i, frame in enumerate(encode_frames(call.audio, call.sample_rate, "mulaw")):
        if i in cti:
            pipeline.set_hold(cti[i])
        nudges += [(str(n.kind), n.media_time_s) for n in pipeline.feed_audio(frame).nudges]
    nudges += [(str(n.kind), n.media_time_s) for n in pipeline.finish().nudges]
    return [n for n in nudges if n[0] in AUDIO_CUES]


def match(
    got: list[tuple[str, float]], want: list[tuple[str, float]]
) -> tuple[int, list[tuple[str, float]], list[tuple[str, float]]]:
    """(hits, missed truths, false nudges): each truth takes the nearest unused nudge of its
    kind within ``TOLERANCE_S``."""
    unused = list(got)
    missed = []
    for kind, at_s in want:
        near = [n for n in unused if n[0] == kind and abs(n[1] - at_s) <= TOLERANCE_S]
        if near:
            unused.remove(min(near, key=lambda n: abs(n[1] - at_s)))
        else:
            missed.append((kind, at_s))
    return len(want) - len(missed), missed, unused


def table(results: dict[str, Any]) -> str:
    columns = ("calls", "cues", "hits", "missed", "false")
    return "\n".join(
        [
            "| condition | calls | cues | hits | missed | false nudges |",
            "| --- | --- | --- | --- | --- | --- |",
            *(
                "| " + " | ".join([name, *(str(totals[c]) for c in columns)]) + " |"
                for name, totals in results["conditions"].items()
            ),
        ]
    )


def plot(results: dict[str, Any], path: Path) -> None:
    plt = pyplot()
    names = list(results["conditions"])
    totals = [results["conditions"][n] for n in names]
    fig, ax = plt.subplots(figsize=(9, 0.5 * len(names) + 1.5))
    y = range(len(names))
    ax.barh([i + 0.2 for i in y], [t["missed"] for t in totals], 0.4, label="missed cues")
    ax.barh([i - 0.2 for i in y], [t["false"] for t in totals], 0.4, label="false nudges")
    ax.set_yticks(list(y), names)
    ax.invert_yaxis()
    ax.set_xlabel(f"count over {totals[0]['calls'] if totals else 0} calls (audio cues)")
    ax.set_title("Audio cues of the test calls under line conditions")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", nargs="+", default=list(CALLS), choices=CALLS)
    parser.add_argument(
        "--conditions", nargs="+", default=list(CONDITIONS), choices=list(CONDITIONS)
    )
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = parser.parse_args(argv)
    settings = Settings()
    vad = SileroModel()
    results: dict[str, Any] = {
        "benchmark": "line conditions: audio cues of the test calls on real-line conditions",
        "machine": machine(),
        "tolerance_s": TOLERANCE_S,
        "conditions": {},
        "calls": {},
    }
    started = time.perf_counter()
    for condition in args.conditions:
        totals = {"calls": 0, "cues": 0, "hits": 0, "missed": 0, "false": 0}
        for name in args.calls:
            call = render_under(name, CONDITIONS[condition])
            want = [(c.kind, round(c.at_s, 3)) for c in expected_cues(call, settings.cues)]
            got = run_call(call, vad, settings)
            hits, missed, false = match(got, want)
            totals["calls"] += 1
            totals["cues"] += len(want)
            totals["hits"] += hits
            totals["missed"] += len(missed)
            totals["false"] += len(false)
            results["calls"][f"{name} | {condition}"] = {
                "truth": want,
                "nudges": got,
                "missed": missed,
                "false": false,
            }
            if missed or false:
                print(f"[{condition}] {name}: missed {missed}, false {false}", flush=True)
        results["conditions"][condition] = totals
        elapsed = time.perf_counter() - started
        print(f"[{condition}] {totals} ({elapsed:.0f} s so far)", flush=True)
    write_results(args.out, "line_conditions", results, table, plot)
    return 0


if __name__ == "__main__":
    sys.exit(main())
