"""Pace calibration: the agent's speaking rate as the pace cue measures it, on real recorded
speech and on a natural neural voice (Piper) at normal and fast rates.

Each call runs through the live pipeline in-process (Silero VAD, voice gate, utterance
cutting, faster-whisper tiny.en on the 8 kHz mu-law line, the pace detector), in media time.
Per call: the highest rate the pace cue measured (speaking rate: words a minute of turn
time, in-turn pauses included), the same over voiced time only (articulation rate: the old
definition), the pace nudges at the configured threshold, and the word error rate of each
channel's finals against the script.

Calls:

* ``recorded``: Debian's Asterisk prompts (a professional human voice, CC-BY-SA-3.0),
  alternating customer and agent (the prompts of ``bench/asr_quality.py``);
* ``recorded-turns``: the same 24 prompts all on the agent line, 0.6 s apart (long turns
  whose pauses count as turn time);
* ``piper-normal`` / ``piper-brisk`` / ``piper-fast``: an agent explaining a billing issue in
  multi-sentence turns, Piper's ``en_US-joe-medium`` voice at ``length_scale`` 1.0, 0.85 and
  0.7 (0.7 speaks 1/0.7 = 1.43 times as fast as normal: clearly fast);
* ``test-natural_agent`` / ``test-fast_agent``: the e2e tests' calls (tests/calls), the same
  lines in Piper's voice at length_scale 1.0 and 0.7;
* ``demo-espeak`` / ``demo-piper``: the bundled demo call's script in either voice.

    python bench/pace.py [--out bench/results]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from assist.asr.model import load_model  # noqa: E402
from assist.asr.wer import word_error_rate  # noqa: E402
from assist.asr.whisper import WhisperRecognizer  # noqa: E402
from assist.config import PaceConfig, Settings  # noqa: E402
from assist.detectors.pace import PaceDetector  # noqa: E402
from assist.pipeline import CallPipeline  # noqa: E402
from assist.replay import encode_frames  # noqa: E402
from assist.synth.recorded import prompt_call  # noqa: E402
from assist.synth.render import RenderedCall, render  # noqa: E402
from assist.synth.script import CallScript, Utterance  # noqa: E402
from assist.vad.silero import SileroModel  # noqa: E402
from assist.vocabulary import CallSpec  # noqa: E402
from bench.asr_quality import choose_prompts  # noqa: E402
from bench.common import machine  # noqa: E402

# An agent's side of a billing call: multi-sentence turns, as agents explain things.
AGENT_TURNS = [
    "Thanks for calling, my name is Sam. I can see your account here. What can I do for you?",
    "I understand. Let me pull up your last two bills so we can compare them. "
    "Okay, the March bill has a one time charge for the new router. "
    "That is why it came out higher than usual.",
    "Sure. The router fee was forty nine dollars, and it was added when the technician "
    "visited on the twelfth. You should only see it once. "
    "From April on, your bill goes back to the regular amount.",
    "I can do that for you. I will split the router fee over the next three months, "
    "so each bill is about sixteen dollars higher instead of forty nine at once. "
    "There is no extra cost for that.",
    "Yes, I have set it up now. You will get an email with the new payment plan in a few "
    "minutes. If anything looks wrong, just reply to that email and we will fix it.",
    "You are welcome. Is there anything else I can help you with today?",
]
CUSTOMER_TURNS = [
    "Hi, my bill is much higher this month.",
    "Why is it so high?",
    "Can I pay that in parts?",
    "Okay, that would help.",
    "Great, thank you so much.",
    "No, that is all.",
]


def explaining_call(length_scale: float) -> CallScript:
    """The billing call in Piper's voice, the agent at ``length_scale``: turns laid one after
    the other with 0.8 s gaps (each line's length estimated at 2.6 words a second, then
    checked: a line never starts before the previous one ended)."""
    say = []
    at = 0.5
    for agent, customer in zip(AGENT_TURNS, CUSTOMER_TURNS, strict=True):
        say.append(Utterance(who="agent", at=at, text=agent, length_scale=length_scale))
        at += len(agent.split()) / 2.6 * length_scale + 0.8
        say.append(Utterance(who="customer", at=at, text=customer))
        at += len(customer.split()) / 2.6 + 0.8
    return CallScript(name=f"piper-{length_scale}", duration_s=at + 2.0, tts="piper", say=say)


def lay_out(script: CallScript) -> RenderedCall:
    """Render, then move lines later where a line would start before the previous one ended
    (the text-length estimate in ``explaining_call`` is only an estimate), and render again."""
    call = render(script)
    shift = 0.0
    say = []
    last_end = 0.0
    for line, rendered in zip(script.say, call.utterances, strict=True):
        start = line.at + shift
        if start < last_end + 0.8:
            shift += last_end + 0.8 - start
            start = last_end + 0.8
        say.append(line.model_copy(update={"at": round(start, 3)}))
        last_end = start + rendered.end_s - rendered.start_s
    if shift == 0.0:
        return call
    fixed = script.model_copy(update={"say": say, "duration_s": last_end + 2.0})
    return render(fixed)


def run_call(call: RenderedCall, recognizer: WhisperRecognizer, vad: SileroModel) -> dict[str, Any]:
    """Stream the call through the pipeline (mu-law, 8 kHz, media time) with real ASR."""
    settings = Settings()
    spec = CallSpec("pace-bench", "pace-bench", 8000, "mulaw", ("customer", "agent"))
    pipeline = CallPipeline(settings, vad, spec, asr=True)
    # The articulation rate beside the speaking rate: the same detector, no pauses counted.
    voiced = PaceDetector(PaceConfig(max_pause_s=0.0, max_words_per_minute=1e9))
    pipeline._detectors.append(voiced)  # bench only: observe, never nudges
    nudges: list[str] = []
    texts: dict[str, list[str]] = {"customer": [], "agent": []}

    def handle(out: Any) -> None:
        nudges.extend(str(n.kind) for n in out.nudges)
        for utterance in out.utterances:
            if not utterance.final:
                continue
            (recognized,) = recognizer.recognize([utterance.audio])
            result = pipeline.on_transcript(utterance, recognized)
            texts[utterance.channel].append(recognized.text)
            handle(result)

    for frame in encode_frames(call.audio, call.sample_rate, "mulaw"):
        handle(pipeline.feed_audio(frame))
    handle(pipeline.finish())
    pace = next(d for d in pipeline._detectors if isinstance(d, PaceDetector) and d is not voiced)
    wer = {}
    for who in ("customer", "agent"):
        reference = " ".join(u.text for u in call.utterances if u.who == who)
        errors, words = word_error_rate(reference, " ".join(texts[who]))
        wer[who] = round(errors / max(words, 1), 3)
    agent_words = sum(len(u.text.split()) for u in call.utterances if u.who == "agent")
    agent_voiced = sum(u.end_s - u.start_s for u in call.utterances if u.who == "agent")
    return {
        "duration_s": round(call.script.duration_s, 1),
        "speaking_rate_wpm_max": round(pace.max_rate, 1),
        "articulation_rate_wpm_max": round(voiced.max_rate, 1),
        "script_words_per_voiced_minute": round(60 * agent_words / agent_voiced, 1),
        "pace_nudges": nudges.count("pace"),
        "nudges": nudges,
        "wer": wer,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = parser.parse_args()
    loaded = load_model("tiny.en", device="cpu", cpu_threads=2)
    recognizer = WhisperRecognizer(loaded, window_floor_s=Settings().asr.window_floor_s)
    vad = SileroModel()
    customer, agent = choose_prompts(24)
    demo = CallScript.load(ROOT / "assist" / "synth" / "scripts" / "demo.toml")
    calls_dir = ROOT / "tests" / "calls"
    calls = {
        "recorded": lambda: prompt_call(customer, agent),
        "recorded-turns": lambda: prompt_call([], customer + agent, pause_s=0.6),
        "piper-normal": lambda: lay_out(explaining_call(1.0)),
        "piper-brisk": lambda: lay_out(explaining_call(0.85)),
        "piper-fast": lambda: lay_out(explaining_call(0.7)),
        "test-natural_agent": lambda: render(CallScript.load(calls_dir / "natural_agent.toml")),
        "test-fast_agent": lambda: render(CallScript.load(calls_dir / "fast_agent.toml")),
        "demo-espeak": lambda: render(demo.model_copy(update={"tts": "espeak"})),
        "demo-piper": lambda: render(demo.model_copy(update={"tts": "piper"})),
    }
    results: dict[str, Any] = {
        "benchmark": "pace calibration: speaking rate on recorded and neural speech",
        "machine": machine(),
        "threshold_wpm": Settings().cues.pace.max_words_per_minute,
        "calls": {},
    }
    for name, make in calls.items():
        started = time.perf_counter()
        try:
            call = make()
        except RuntimeError as exc:  # espeak-ng or Piper not installed
            print(f"[{name}] skipped: {exc}", flush=True)
            continue
        results["calls"][name] = run_call(call, recognizer, vad)
        print(f"[{name}] {results['calls'][name]} ({time.perf_counter() - started:.0f} s)")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "pace.json").write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {args.out}/pace.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
