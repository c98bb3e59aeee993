"""Whisper's encoder window floor: word error rate and speed per floor on real phone speech.

Every Asterisk prompt of 6-25 words (Debian's recorded 8 kHz human speech with reference
transcripts: the population ``bench/asr_quality.py`` samples from), split alternately into
a customer and an agent set as that benchmark does, and every prompt of 2-5 words (short
utterances, where the floor decides the window: "Thank you.", "Call waiting."), is cut
as the live segmenter cuts an
utterance (0.3 s pre-roll, 0.15 s post-roll of -60 dBFS line noise) and brought to 16 kHz
the way each call rate reaches the recognizer: an 8 kHz mu-law call through the service's
streaming resampler, a 16 kHz PCM16 call as sent. Each utterance is recognized by the
service's own ``WhisperRecognizer`` at every floor in turn (floors interleaved per
utterance, so a busy machine slows all floors alike), one CPU thread, tiny.en int8, short
windows followed by the silence tail as in the service (``--no-silence-tail``: without).

Per floor and rate, for the customer and agent sentences and the short utterances: word
error rate with the repetition guard (what the service does) and of the windowed pass
alone (no guard), the utterances redone with the full window and why, and milliseconds
per utterance (mean, p50, p95). Floor 30 is Whisper's full window (the reference): each
floor's WER minus its, per group, with a 95 % interval from a paired bootstrap over the
prompts (the same audio at every floor, so the line noise cancels out of the difference
but not out of either WER). ``--noise-seeds`` plays every prompt once per seed with other
line noise, which shows how much the noise alone moves a WER. ``--reference FILE`` (the
``window_floor.json`` of another run on the same audio: same prompts, rates and noise
seeds) also compares every floor with that run's 30 s rows: e.g. beam search against the
greedy full window the service used before.
Writes ``window_floor.json`` (every utterance's text too) and ``window_floor.png`` (WER
and ms per utterance by floor; needs matplotlib, the ``[bench]`` extra).

    python bench/window_floor.py [--floors 30 15 10 8 6 5 4 3 2] [--rates 8000 16000]
                                 [--noise-seeds 0 1 2] [--threads 1] [--beam-size 3]
                                 [--no-silence-tail] [--limit N]
                                 [--reference OTHER/window_floor.json]
                                 [--out bench/results]
    python bench/window_floor.py --plot-only [--reference FILE] [--out bench/results]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from assist.asr.model import load_model  # noqa: E402
from assist.asr.wer import word_error_rate  # noqa: E402
from assist.asr.whisper import FULL_WINDOW_S, WhisperRecognizer, _Decoded  # noqa: E402
from assist.audio.codecs import decode, mulaw_encode  # noqa: E402
from assist.audio.resample import StreamResampler  # noqa: E402
from assist.config import AsrConfig  # noqa: E402
from assist.synth.recorded import SOUNDS, prompt_texts  # noqa: E402
from assist.synth.render import read_wav_mono  # noqa: E402
from assist.vocabulary import Recognized  # noqa: E402
from bench.common import recognizer_run_header, write_results  # noqa: E402

PRE_ROLL_S, POST_ROLL_S = 0.3, 0.15  # the segmenter's defaults ([utterances])
NOISE_DBFS = -60.0  # line noise, as in assist.synth.recorded.prompt_call
SEED_STRIDE = 100_000  # prompt i's noise seed under --noise-seeds s: i + s * SEED_STRIDE
BOOTSTRAP_RESAMPLES = 2000


class _FirstPass(WhisperRecognizer):
    """The service's recognizer, keeping the text of an utterance's first pass (the
    windowed one) before the guard redoes it with longer windows. One utterance a call."""

    first_pass: str | None = None

    def recognize(self, batch: list[np.ndarray], words: bool = True) -> list[Recognized]:
        self.first_pass = None
        return super().recognize(batch, words)

    def _one(self, audio: np.ndarray, frames: int | None, options: dict[str, Any]) -> _Decoded:
        decoded = super()._one(audio, frames, options)
        if self.first_pass is None:
            self.first_pass = decoded.recognized().text
        return decoded


def timed_recognition(
    recognizer: _FirstPass, audio: np.ndarray, retried: list[str]
) -> tuple[Recognized, dict[str, Any]]:
    """One utterance (float32 at 16 kHz) through ``recognizer``, whose redos append their
    reason to ``retried``: the result and its row fields (ms, the redo's reason, the text
    with the guard and of the first pass alone)."""
    retried.clear()
    started = time.perf_counter()
    (result,) = recognizer.recognize([audio])
    return result, {
        "ms": round(1000 * (time.perf_counter() - started), 1),
        "retry": retried[0] if retried else None,
        "text": result.text,
        "first_pass": recognizer.first_pass or "",
    }


def prompts(limit: int | None, short: bool = False) -> list[tuple[str, str, str]]:
    """(name, group, reference): every 6-25-word prompt, alternating groups ``customer`` and
    ``agent``; with ``short`` also every 2-5-word prompt, group ``short``."""
    texts = prompt_texts()

    def spoken(name: str, low: int, high: int) -> bool:
        text = texts[name]
        return low <= len(text.split()) <= high and "..." not in text and "<" not in text

    names = sorted(n for n in texts if spoken(n, 6, 25))
    names = names[:limit] if limit else names
    chosen = [(n, ("customer", "agent")[i % 2], texts[n]) for i, n in enumerate(names)]
    if short:
        few = sorted(n for n in texts if spoken(n, 2, 5))
        chosen += [(n, "short", texts[n]) for n in (few[:limit] if limit else few)]
    return chosen


def utterance(name: str, rate: int, seed: int) -> np.ndarray:
    """The prompt as the recognizer gets it from a call at ``rate``: float32, 16 kHz."""
    audio, source_rate = read_wav_mono(SOUNDS / f"{name}.wav")
    rng = np.random.default_rng(seed)
    pad = [np.zeros(int(s * source_rate), dtype=np.float32) for s in (PRE_ROLL_S, POST_ROLL_S)]
    audio = np.concatenate([pad[0], audio.astype(np.float32), pad[1]])
    audio += rng.standard_normal(len(audio)).astype(np.float32) * np.float32(
        10 ** (NOISE_DBFS / 20)
    )
    audio = np.clip(audio, -1.0, 32767 / 32768)
    if rate == 8000:  # mu-law on the wire, the service's resampler to 16 kHz
        line = decode(mulaw_encode(audio), "mulaw")
        return StreamResampler(8000, 16000).process(line, last=True).astype(np.float32)
    import soxr  # a 16 kHz PCM16 call: the caller's upsampling, 16-bit on the wire

    wide = soxr.resample(audio, source_rate, rate)
    return (np.round(wide * 32768.0).clip(-32768, 32767) / 32768.0).astype(np.float32)


GROUPS = {  # summary group -> the prompt groups in it
    "customer": ("customer",),
    "agent": ("agent",),
    "all": ("customer", "agent"),  # the sentences
    "short": ("short",),
}


def summarize(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Per group (``GROUPS``): WER guarded and of the first pass, ms per utterance, and the
    full-window retries by reason."""
    out: dict[str, Any] = {}
    for group, members in GROUPS.items():
        mine = [r for r in rows if r["channel"] in members]
        if not mine:
            continue
        words = sum(r["words"] for r in mine)
        ms = np.array([r["ms"] for r in mine])
        reasons: dict[str, int] = {}
        for r in mine:
            if r["retry"]:
                reasons[r["retry"]] = reasons.get(r["retry"], 0) + 1
        out[group] = {
            "wer": round(pooled_wer(mine), 4),
            "wer_first_pass": round(sum(r["errors_first_pass"] for r in mine) / words, 4),
            "words": words,
            "utterances": len(mine),
            "ms_per_utterance": {
                "mean": round(float(ms.mean()), 1),
                "p50": round(float(np.percentile(ms, 50)), 1),
                "p95": round(float(np.percentile(ms, 95)), 1),
            },
            "full_window_retries": reasons,
        }
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--floors", type=float, nargs="+", default=[30, 15, 10, 8, 6, 5, 4, 3, 2])
    parser.add_argument("--rates", type=int, nargs="+", default=[8000, 16000])
    parser.add_argument("--threads", type=int, default=1, help="CPU threads of the recognizer")
    parser.add_argument(
        "--noise-seeds",
        type=int,
        nargs="+",
        default=[0],
        help="play every prompt once per seed, each with its own line noise",
    )
    parser.add_argument("--model", default="tiny.en")
    parser.add_argument(
        "--beam-size",
        type=int,
        default=AsrConfig().beam_size,
        help="decoder beam at every floor (default: the service's [asr] beam_size; 1 = greedy)",
    )
    parser.add_argument(
        "--no-silence-tail",
        action="store_true",
        help="short windows' encoder output as it is, not followed by the encoding of silence",
    )
    parser.add_argument("--limit", type=int, default=None, help="first N prompts (smoke runs)")
    parser.add_argument("--no-short", action="store_true", help="sentences only")
    parser.add_argument(
        "--reference",
        type=Path,
        default=None,
        help="window_floor.json of a run on the same audio: every floor against its 30 s rows too",
    )
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    parser.add_argument(
        "--plot-only", action="store_true", help="table and plot of OUT/window_floor.json"
    )
    args = parser.parse_args()
    if args.plot_only:
        return replot(args.out, args.reference)
    load_before = os.getloadavg()
    loaded = load_model(args.model, "cpu", cpu_threads=args.threads)
    retried: list[str] = []
    recognizers = {
        floor: _FirstPass(
            loaded,
            args.beam_size,
            floor,
            on_full_window_retry=retried.append,
            silence_tail=not args.no_silence_tail,
        )
        for floor in args.floors
    }
    chosen = prompts(args.limit, short=not args.no_short)
    durations = []
    rows: dict[tuple[int, float], list[dict[str, Any]]] = {
        (r, f): [] for r in args.rates for f in args.floors
    }
    started = time.perf_counter()
    plays = [(p, seed) for p in enumerate(chosen) for seed in args.noise_seeds]
    for done, ((i, (name, channel, reference)), seed) in enumerate(plays):
        for rate in args.rates:
            audio = utterance(name, rate, seed=i + seed * SEED_STRIDE)
            if rate == args.rates[0] and seed == args.noise_seeds[0]:
                durations.append((channel, len(audio) / 16000))
            for floor, recognizer in recognizers.items():
                result, timed = timed_recognition(recognizer, audio, retried)
                errors, words = word_error_rate(reference, result.text)
                first, _ = word_error_rate(reference, timed["first_pass"])
                rows[(rate, floor)].append(
                    {
                        "name": name,
                        "seed": seed,
                        "channel": channel,
                        "seconds": round(len(audio) / 16000, 3),
                        "errors": errors,
                        "errors_first_pass": first,
                        "words": words,
                        **timed,
                    }
                )
        print(f"\r{done + 1}/{len(plays)} prompts x noise seeds", end="", flush=True)
    print(f"  ({time.perf_counter() - started:.0f} s)")
    sentences = np.array([s for group, s in durations if group != "short"])
    short = np.array([s for group, s in durations if group == "short"] or [0.0])
    results: dict[str, Any] = {
        **recognizer_run_header(
            "Whisper encoder window floor: WER and speed on recorded phone speech",
            load_before,
            args.model,
            loaded.compute_type,
        ),
        "cpu_threads": args.threads,
        "beam_size": args.beam_size,
        "silence_tail": not args.no_silence_tail,
        "noise_seeds": args.noise_seeds,
        "utterances": {
            "sentences": len(sentences),
            "sentence_seconds_mean": round(float(sentences.mean()), 2),
            "sentence_seconds_p50": round(float(np.median(sentences)), 2),
            "sentence_seconds_max": round(float(sentences.max()), 2),
            "short": sum(1 for group, _ in durations if group == "short"),
            "short_seconds_mean": round(float(short.mean()), 2),
        },
        "floors": {
            str(rate): {str(f): summarize(rows[(rate, f)]) for f in args.floors}
            for rate in args.rates
        },
        "against_full_window": against_full_window(rows),
        **reference_comparison(rows, args.reference),
        "wer_by_noise_seed": {
            f"{rate}/{f}": per_seed_wer(rows[(rate, f)]) for rate in args.rates for f in args.floors
        },
        "rows": {f"{rate}/{f}": rows[(rate, f)] for rate in args.rates for f in args.floors},
    }
    write_results(args.out, "window_floor", results, table, plot)
    return 0


def pooled_wer(rows: list[dict[str, Any]]) -> float:
    """Word errors over reference words of ``rows`` (0 when they have no words)."""
    words = sum(r["words"] for r in rows)
    return sum(r["errors"] for r in rows) / words if words else 0.0


def paired_difference(
    reference: list[dict[str, Any]], rows: list[dict[str, Any]], seed: int = 0
) -> dict[str, Any]:
    """WER of ``rows`` minus that of ``reference`` (the same utterances at another floor,
    matched by prompt name and noise seed), in points, with a 95 % percentile interval
    from ``BOOTSTRAP_RESAMPLES`` resamples of the prompts (a prompt's noise seeds go
    together: they are the same speech). Raises ``ValueError`` when the rows don't match."""
    key = {(r["name"], r.get("seed", 0)): r for r in reference}
    if len(key) != len(rows) or any((r["name"], r.get("seed", 0)) not in key for r in rows):
        raise ValueError("paired_difference needs the same utterances on both sides")
    names = sorted({r["name"] for r in rows})
    index = {name: i for i, name in enumerate(names)}
    # per prompt: [errors here, errors at the reference, words]
    counts = np.zeros((len(names), 3))
    for r in rows:
        ref = key[(r["name"], r.get("seed", 0))]
        counts[index[r["name"]]] += (r["errors"], ref["errors"], r["words"])

    def points(c: np.ndarray) -> np.ndarray:
        return 100 * (c[..., 0] - c[..., 1]) / np.maximum(c[..., 2], 1)

    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(names), size=(BOOTSTRAP_RESAMPLES, len(names)))
    spread = points(counts[picks].sum(axis=1))
    low, high = np.percentile(spread, [2.5, 97.5])
    return {
        "points": round(float(points(counts.sum(axis=0))), 2),
        "ci95": [round(float(low), 2), round(float(high), 2)],
        "prompts": len(names),
        "utterances": len(rows),
    }


def by_group(full: list[dict[str, Any]], mine: list[dict[str, Any]]) -> dict[str, Any]:
    """``paired_difference`` of ``mine`` against ``full`` per group (``GROUPS``) that
    ``mine`` has rows of."""
    out = {}
    for group, members in GROUPS.items():
        here = [r for r in mine if r["channel"] in members]
        if here:
            out[group] = paired_difference([r for r in full if r["channel"] in members], here)
    return out


def against_full_window(
    rows: dict[tuple[int, float], list[dict[str, Any]]],
) -> dict[str, dict[str, dict[str, Any]]]:
    """Per rate and floor below 30 s, per group (``GROUPS``): ``paired_difference`` against
    the 30 s rows of the same rate; empty without a 30 s floor."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for (rate, floor), mine in rows.items():
        full = rows.get((rate, FULL_WINDOW_S))
        if full is None or floor >= FULL_WINDOW_S:
            continue
        out.setdefault(str(rate), {})[str(floor)] = by_group(full, mine)
    return out


def saved_rows(results: dict[str, Any]) -> dict[tuple[int, float], list[dict[str, Any]]]:
    """The ``rows`` of a written ``window_floor.json``, keyed (rate, floor) again."""
    return {
        (int(rate), float(floor)): rows
        for key, rows in results["rows"].items()
        for rate, floor in [key.split("/")]
    }


def reference_comparison(
    rows: dict[tuple[int, float], list[dict[str, Any]]], reference: Path | None
) -> dict[str, Any]:
    """``{"reference": {...}, "against_reference": {rate: {floor: {group: difference}}}}``:
    every floor of ``rows`` against the 30 s rows of the same rate in the run written to
    ``reference`` (``paired_difference``; the same prompts and noise seeds), with that
    run's beam and tail; ``{}`` without a reference. Raises ``ValueError`` when the
    reference has no 30 s rows for a rate or other utterances."""
    if reference is None:
        return {}
    other = json.loads(reference.read_text())
    theirs = saved_rows(other)
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for (rate, floor), mine in rows.items():
        full = theirs.get((rate, FULL_WINDOW_S))
        if full is None:
            raise ValueError(f"{reference} has no 30 s rows at {rate} Hz")
        out.setdefault(str(rate), {})[str(floor)] = by_group(full, mine)
    described = {k: other.get(k) for k in ("beam_size", "silence_tail", "noise_seeds")}
    return {"reference": {"file": str(reference), **described}, "against_reference": out}


def per_seed_wer(rows: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """WER per noise seed and group: how much the line noise alone moves it."""
    seeds = sorted({r.get("seed", 0) for r in rows})
    return {
        str(seed): {
            group: round(pooled_wer(mine), 4)
            for group, members in GROUPS.items()
            if (mine := [r for r in rows if r.get("seed", 0) == seed and r["channel"] in members])
        }
        for seed in seeds
    }


def replot(out: Path, reference: Path | None = None) -> int:
    """``--plot-only``: the table and plot of ``out/window_floor.json`` again (with the
    paired differences computed from its rows when it was written before them, and
    against ``reference``'s 30 s rows when given; the file is then rewritten with them)."""
    path = out / "window_floor.json"
    results = json.loads(path.read_text())
    rows = saved_rows(results)
    if "against_full_window" not in results:
        results["against_full_window"] = against_full_window(rows)
    if reference is not None:
        results.update(reference_comparison(rows, reference))
        path.write_text(json.dumps(results, indent=1))
    print(table(results))
    plot(results, out / "window_floor.png")
    return 0


def plot(results: dict[str, Any], out: Path) -> None:
    """WER (with the guard) of the customer and agent sentences and the short utterances,
    and ms per sentence, by floor, one column per call rate; skipped without matplotlib."""
    try:
        import matplotlib
    except ImportError:
        print("plot skipped: matplotlib not installed (pip install -e '.[bench]')")
        return
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rates = list(results["floors"])
    fig, axes = plt.subplots(2, len(rates), figsize=(5.5 * len(rates), 7), squeeze=False)
    for col, rate in enumerate(rates):
        floors = sorted(results["floors"][rate], key=float)
        x = [float(f) for f in floors]
        top, bottom = axes[0][col], axes[1][col]
        for group in ("customer", "agent", "short"):
            runs = [results["floors"][rate][f].get(group) for f in floors]
            if all(r is not None for r in runs):
                (line,) = top.plot(x, [100 * r["wer"] for r in runs], marker="o", label=group)
                if x[-1] >= FULL_WINDOW_S and group != "short":  # the goal: full + 0.5
                    top.axhline(100 * runs[-1]["wer"] + 0.5, linestyle=":", color=line.get_color())
        top.set_title(f"{int(rate) // 1000} kHz calls: WER by window floor")
        top.set_ylabel("word error rate (%)")
        top.legend(title="dotted: full window + 0.5 point", fontsize=8, title_fontsize=8)
        for group in ("all", "short"):
            if any(group not in results["floors"][rate][f] for f in floors):
                continue  # --no-short
            ms = [results["floors"][rate][f][group]["ms_per_utterance"]["mean"] for f in floors]
            bottom.plot(x, ms, marker="o", label="sentences" if group == "all" else group)
        bottom.set_xlabel("encoder window floor (s; 30 = Whisper's full window)")
        bottom.set_ylabel("ms per utterance (mean)")
        bottom.set_ylim(bottom=0)
        bottom.legend(fontsize=8)
    m = results["machine"]
    fig.suptitle(
        f"{results['model']} {results['compute_type']}, beam {results.get('beam_size', 1)}, "
        f"{'' if results.get('silence_tail', False) else 'no '}silence tail, "
        f"{results['cpu_threads']} thread, "
        f"{m['cpu']} ({m['cores']} cores); load average {results['load_average_before'][0]}"
        f" -> {results['load_average_after'][0]}"
    )
    fig.tight_layout()
    fig.savefig(out)
    print(f"wrote {out}")


def table(results: dict[str, Any]) -> str:
    """The per-floor table as Markdown, one row per floor and rate: WER with the guard
    (without it in brackets) of the customer and agent sentences and of the short
    utterances, the customer's and agent's WER minus the full window's (points, 95 %
    interval), ms per utterance (mean), and the utterances redone with 30 s."""
    by_reference = results.get("against_reference")
    reference = results.get("reference", {})
    extra = (
        f" customer / agent vs the reference's 30 s (beam {reference.get('beam_size')}) |"
        if by_reference
        else ""
    )
    lines = [
        "| floor | rate | WER customer | WER agent | WER short | customer / agent vs 30 s "
        f"(95 % interval) |{extra} ms/sentence | ms/short | redone with 30 s |",
        "| --- | --- | --- | --- | --- | --- |"
        + (" --- |" if extra else "")
        + " --- | --- | --- |",
    ]

    def versus(rate: str, floor: str, differences: dict[str, Any]) -> str:
        groups = differences.get(rate, {}).get(floor)
        if not groups:
            return "-"
        return " / ".join(
            f"{d['points']:+.1f} ({d['ci95'][0]:+.1f} to {d['ci95'][1]:+.1f})"
            for group in ("customer", "agent")
            if (d := groups.get(group))
        )

    def wer(s: dict[str, Any], group: str) -> str:
        if group not in s:
            return "-"
        g = s[group]
        return f"{100 * g['wer']:.1f} % ({100 * g['wer_first_pass']:.1f} %)"

    for rate, floors in results["floors"].items():
        for floor, s in floors.items():
            label = "30 s (full)" if float(floor) >= FULL_WINDOW_S else f"{float(floor):g} s"
            reasons: dict[str, int] = {}
            for g in ("all", "short"):
                for k, v in s.get(g, {}).get("full_window_retries", {}).items():
                    reasons[k] = reasons.get(k, 0) + v
            why = ", ".join(f"{k} {v}" for k, v in sorted(reasons.items()))
            ms_short = s["short"]["ms_per_utterance"]["mean"] if "short" in s else None
            full = versus(rate, floor, results.get("against_full_window", {}))
            lines.append(
                f"| {label} | {int(rate) // 1000} kHz | {wer(s, 'customer')} | {wer(s, 'agent')} "
                f"| {wer(s, 'short')} | {full} "
                + (f"| {versus(rate, floor, by_reference)} " if by_reference else "")
                + f"| {s['all']['ms_per_utterance']['mean']:.0f} "
                f"| {'-' if ms_short is None else f'{ms_short:.0f}'} "
                f"| {sum(reasons.values())}{f' ({why})' if why else ''} |"
            )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
