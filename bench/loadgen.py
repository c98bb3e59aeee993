"""The load: a mix of synthesized calls with known truth, streamed as N concurrent real-time
calls over real sockets, and what came back matched against that truth.

Truth comes from the call scripts, never from the server: the audio cues from
``assist.synth.truth.expected_cues`` (exact speech spans, the service's thresholds), the
text cues from the scripts' ``expect`` labels (true when the labelled sentence ends), and
``pace`` from the scripted words over the agent's speaking time, by the pace rule.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from assist.config import CuesConfig, PaceConfig
from assist.detectors.pace import speaking_rate
from assist.replay import FRAME_S, ReplayResult, encode_frames, stream_call
from assist.synth.render import RenderedCall, render
from assist.synth.script import CallScript
from assist.synth.truth import expected_cues
from bench.common import ROOT, percentiles

# In this order: slot k of a run starts at call k (mod len) and plays them back to back,
# so one call already sees text cues (dispute) and interruptions; 4 see every kind but
# the monologue, which needs a 64 s agent turn.
SCRIPTS = [
    ROOT / "assist/synth/scripts/dispute.toml",  # negative phrasing, frustration
    ROOT / "tests/calls/interruptions.toml",  # three interruptions, a backchannel
    ROOT / "tests/calls/fast_agent.toml",  # pace (Piper at length_scale 0.7)
    ROOT / "assist/synth/scripts/demo.toml",  # interruption, music hold, dead air
    ROOT / "tests/calls/dead_air.toml",  # two dead-air moments, one pause that isn't
    ROOT / "tests/calls/monologue.toml",  # a monologue, dead air
    ROOT / "tests/calls/smooth.toml",  # nothing at all
]

AUDIO_CUES = ("interruption", "long_hold", "dead_air", "monologue")
TEXT_CUES = ("negative_phrasing", "customer_frustration", "pace")
GOAL_S = {**dict.fromkeys(AUDIO_CUES, 0.3), **dict.fromkeys(TEXT_CUES, 2.0)}  # p95 goals
# A nudge further than this (media s) from every scripted moment of its kind is false.
# Text nudges are stamped with the sentence's end as the server's voice gate cut it,
# audio nudges with the frame that crossed the threshold.
MATCH_WINDOW_S = {**dict.fromkeys(AUDIO_CUES, 1.0), **dict.fromkeys(TEXT_CUES, 2.5)}
PACE_MARGIN = 0.05  # scripted rates within 5 % of the pace threshold are too close to call
STAGGER_S = 0.1  # call starts are 0.1 s apart when there is no ramp (all in step)


@dataclass(frozen=True, slots=True)
class Truth:
    kind: str
    at_s: float  # media time the cue becomes true
    optional: bool = False  # a nudge here is neither a hit nor false; no nudge is no miss


def pace_truth(call: RenderedCall, cfg: PaceConfig) -> list[Truth]:
    """The pace rule on the script: agent utterances of ``min_utterance_s`` or more that
    ended in the last ``window_s``, scripted words over their turn time (audible time, plus
    the pauses of up to ``max_pause_s`` between two of them that no customer line falls
    in), judged by ``speaking_rate`` as the detector judges (``min_words``,
    ``min_turn_s``). Rates within ``PACE_MARGIN`` of the threshold are optional (Whisper's
    word count and the voice gate's cut decide those)."""
    out: list[Truth] = []
    window: list[tuple[int, float, float, float]] = []  # words, speech s, pause before, end s
    fast = False
    customer = [(u.start_s, u.end_s) for u in call.utterances if u.who == "customer"]
    previous_end: float | None = None
    for u in sorted((u for u in call.utterances if u.who == "agent"), key=lambda u: u.end_s):
        speech_s = u.end_s - u.start_s
        if speech_s < cfg.min_utterance_s:
            previous_end = None  # a short line between two long ones breaks the chain
            continue
        pause = 0.0 if previous_end is None else u.start_s - previous_end
        filled = any(previous_end is not None and s < u.start_s and e > previous_end
                     for s, e in customer)  # fmt: skip
        in_turn = previous_end is not None and 0.0 < pause <= cfg.max_pause_s and not filled
        previous_end = u.end_s
        window.append((len(u.text.split()), speech_s, pause if in_turn else 0.0, u.end_s))
        window = [w for w in window if w[3] >= u.end_s - cfg.window_s]
        # the first line's pause leads from a line outside the window: not counted
        turn_s = sum(w[1] for w in window) + sum(w[2] for w in window[1:])
        rate = speaking_rate(sum(w[0] for w in window), turn_s, cfg)  # words per minute
        if rate is None:
            continue
        close = abs(rate / cfg.max_words_per_minute - 1.0) <= PACE_MARGIN
        if rate > cfg.max_words_per_minute and not fast:
            out.append(Truth("pace", u.end_s, optional=close))
        elif close and not fast:
            out.append(Truth("pace", u.end_s, optional=True))
        fast = rate > cfg.max_words_per_minute
    return out


def call_truth(call: RenderedCall, cues: CuesConfig) -> list[Truth]:
    every = [Truth(c.kind, c.at_s) for c in expected_cues(call, cues, text=True)]
    return sorted(every + pace_truth(call, cues.pace), key=lambda t: t.at_s)


@dataclass
class CallPlan:
    name: str
    call: RenderedCall
    truth: list[Truth]
    frames: list[bytes]  # 20 ms mu-law frames, interleaved customer/agent

    @property
    def duration_s(self) -> float:
        return len(self.frames) * FRAME_S


def load_calls(cues: CuesConfig, names: list[Path] | None = None) -> list[CallPlan]:
    """Render every script once (espeak-ng output is cached on disk)."""
    plans = []
    for path in names or SCRIPTS:
        call = render(CallScript.load(path))
        frames = encode_frames(call.audio, call.sample_rate, "mulaw")
        plans.append(CallPlan(path.stem, call, call_truth(call, cues), frames))
    return plans


def slot_schedule(
    plans: list[CallPlan], slot: int, seconds: float
) -> list[tuple[float, CallPlan, int]]:
    """(start offset s, call, frames to send) for one slot: its calls back to back until
    ``seconds`` of audio, the last one cut short."""
    out = []
    offset = 0.0
    i = slot
    while offset < seconds - FRAME_S / 2:
        plan = plans[i % len(plans)]
        frames = min(len(plan.frames), round((seconds - offset) / FRAME_S))
        out.append((offset, plan, frames))
        offset += frames * FRAME_S
        i += 1
    return out


@dataclass
class StreamedCall:
    name: str
    result: ReplayResult
    truth: list[Truth]
    streamed_s: float  # media seconds sent
    measured_from_s: float = 0.0  # media time of this call at which the measured window opens

    def measured_transcripts(self) -> list[tuple[dict[str, Any], float]]:
        """Each transcript event (partial or final) of an utterance that ended in the
        measured window, with its arrival; a final sent again as ``corrected`` (a later
        utterance showed it carried part of a number) is the same recognition, left out."""
        result = self.result
        return [
            (event, arrival)
            for event, arrival in zip(result.events, result.arrivals, strict=True)
            if event["type"] == "transcript"
            and not event.get("corrected")
            and event["end_s"] >= self.measured_from_s
        ]


def slot_start_s(slot: int, n: int, ramp_s: float) -> float:
    """When slot ``slot`` of ``n`` starts (s after the first): spread evenly over ``ramp_s``,
    so on a steady floor the calls are at independent points of their scripts; 0 = all at
    once, ``STAGGER_S`` apart (the same scripts in step: a burst no real floor makes)."""
    return slot * ramp_s / n if ramp_s > 0 else slot * STAGGER_S


def window_truth(truth: list[Truth], from_s: float, to_s: float) -> list[Truth]:
    """The call's scripted moments with those outside [``from_s``, ``to_s``] (media s: the
    measured window, the audio actually streamed) made optional."""
    return [t if from_s <= t.at_s <= to_s else Truth(t.kind, t.at_s, optional=True) for t in truth]


def call_jobs(
    url: str,
    plans: list[CallPlan],
    n: int,
    seconds: float,
    on_event: Callable[[dict[str, Any]], None] | None = None,
    id_prefix: str = "bench",
    ramp_s: float = 0.0,
) -> list[Coroutine[Any, Any, StreamedCall]]:
    """One coroutine per call of N slots, timed from now (call on the running loop); every
    call has its own agent event stream. A slot's next call starts when the previous one's
    audio ends (its stop and the draining of its transcripts overlap the next call). Call
    ids start with ``id_prefix`` (distinct per server sharing one store), and agent ids do
    for any other prefix than the default. A call that fails raises from its coroutine.

    ``ramp_s`` 0: every slot streams ``seconds`` of audio in real time, all starting
    together. ``ramp_s`` > 0: the slots start spread over the ramp (``slot_start_s``) and
    all stream until ``ramp_s + seconds``; the measured window is the last ``seconds``,
    when all N run at independent phases: a scripted moment before it is optional (a
    nudge there is neither a hit nor false, no nudge no miss)."""
    loop = asyncio.get_running_loop()
    t0 = loop.time()

    async def one(slot: int, j: int, at_s: float, plan: CallPlan, count: int) -> StreamedCall:
        await asyncio.sleep(max(0.0, t0 + at_s - loop.time()))  # the call's start time
        start = {
            "type": "start",
            "call_id": f"{id_prefix}-{n}-{slot}-{j}",
            "agent_id": f"agent-{n}-{slot}-{j}"
            if id_prefix == "bench"
            else f"{id_prefix}-agent-{n}-{slot}-{j}",
            "sample_rate": plan.call.sample_rate,
            "encoding": "mulaw",
            "channels": ["customer", "agent"],
        }

        def seen(event: dict[str, Any], _elapsed: float) -> None:
            if on_event is not None:
                on_event(event)

        result = await stream_call(url, start, plan.frames[:count], speed=1.0, on_event=seen)
        streamed_s = count * FRAME_S
        measured_from_s = max(0.0, ramp_s - at_s)
        truth = window_truth(plan.truth, measured_from_s, streamed_s)
        return StreamedCall(plan.name, result, truth, streamed_s, measured_from_s)

    def slot_jobs(slot: int) -> list[Coroutine[Any, Any, StreamedCall]]:
        start = slot_start_s(slot, n, ramp_s)
        until = ramp_s + seconds - start if ramp_s > 0 else seconds
        return [
            one(slot, j, start + offset, plan, count)
            for j, (offset, plan, count) in enumerate(slot_schedule(plans, slot, until))
        ]

    return [job for slot in range(n) for job in slot_jobs(slot)]


async def stream_calls(jobs: list[Coroutine[Any, Any, StreamedCall]]) -> list[StreamedCall]:
    """Stream the calls of ``call_jobs`` and return them in slot order."""
    return list(await asyncio.gather(*jobs))


def match(
    nudges: list[tuple[dict[str, Any], float]], truth: list[Truth]
) -> tuple[dict[str, list[float]], dict[str, list[float]], dict[str, list[dict[str, Any]]]]:
    """Pair each scripted moment with the nearest unused nudge of its kind within its
    window: (delays per kind in s, the missed moments per kind (media s), the false
    nudges per kind)."""
    used: set[int] = set()
    delays: dict[str, list[float]] = {}
    missed: dict[str, list[float]] = {}
    for cue in sorted(truth, key=lambda t: t.optional):  # firm moments pick first
        best: tuple[float, int] | None = None
        for i, (nudge, _) in enumerate(nudges):
            if i in used or nudge["kind"] != cue.kind:
                continue
            gap = abs(nudge["media_time_s"] - cue.at_s)
            if gap <= MATCH_WINDOW_S.get(cue.kind, 1.0) and (best is None or gap < best[0]):
                best = (gap, i)
        if best is None:
            if not cue.optional:
                missed.setdefault(cue.kind, []).append(cue.at_s)
            continue
        used.add(best[1])
        if not cue.optional:
            # arrival on the agent socket (s after the first frame) - the moment in audio
            delays.setdefault(cue.kind, []).append(nudges[best[1]][1] - cue.at_s)
    false: dict[str, list[dict[str, Any]]] = {}
    for i, (nudge, _) in enumerate(nudges):
        if i not in used:
            false.setdefault(nudge["kind"], []).append(nudge)
    return delays, missed, false


def cue_stats(calls: list[StreamedCall]) -> dict[str, dict[str, Any]]:
    """Per cue kind: delay percentiles, recall and false nudges per call-hour. A nudge sent
    again (``corrected``: the sentence it quoted was redacted further) replaces the first,
    which alone is matched. Each false nudge is listed (``false_nudges``: its call script,
    media time and the evidence's measured value and explanation), and each missed moment
    (``missed_moments``: its call script and media time), so a run says what went wrong,
    not only how often."""
    per_kind: dict[str, dict[str, Any]] = {}
    for streamed in calls:
        first_sent = [(e, t) for e, t in streamed.result.nudge_arrivals() if not e.get("corrected")]
        delays, missed, false = match(first_sent, streamed.truth)
        firm = {t.kind for t in streamed.truth if not t.optional}
        for kind in firm | set(delays) | set(false):
            entry = per_kind.setdefault(kind, {"delays": [], "missed": [], "false": []})
            entry["delays"] += delays.get(kind, [])
            entry["missed"] += [
                {"script": streamed.name, "media_time_s": at} for at in missed.get(kind, [])
            ]
            entry["false"] += [_false_nudge(streamed.name, n) for n in false.get(kind, [])]
    call_hours = sum(c.streamed_s for c in calls) / 3600
    cues = {}
    for kind, entry in sorted(per_kind.items()):
        found = len(entry["delays"])
        expected = found + len(entry["missed"])
        cues[kind] = {
            **percentiles(entry["delays"]),
            "expected": expected,
            # None: no moment of this kind was scripted (its nudges all count as false)
            "recall": round(found / expected, 4) if expected else None,
            "false": len(entry["false"]),
            "false_per_hour": round(len(entry["false"]) / call_hours, 2) if call_hours else None,
            "false_nudges": entry["false"],
            "missed_moments": entry["missed"],
            "goal_p95_s": GOAL_S.get(kind),
        }
    return cues


def _false_nudge(script: str, nudge: dict[str, Any]) -> dict[str, Any]:
    evidence = nudge.get("evidence") or {}
    return {
        "script": script,
        "media_time_s": nudge["media_time_s"],
        "measured": evidence.get("measured"),
        "explanation": evidence.get("explanation"),
    }


def transcript_delays(calls: list[StreamedCall]) -> list[float]:
    """Final transcript arrival minus its utterance's end (media s; paced at speed 1.0, so
    the two clocks agree), for utterances that ended in the measured window."""
    return [
        arrival - event["end_s"]
        for streamed in calls
        for event, arrival in streamed.measured_transcripts()
        if event["final"]
    ]


class LoopLag:
    """How late this process's event loop wakes up (the sender's pacing suffers alike)."""

    def __init__(self, every_s: float = 0.05) -> None:
        self.every_s = every_s
        self.late_s: list[float] = []

    async def run(self) -> None:
        while True:
            asked = time.monotonic()
            await asyncio.sleep(self.every_s)
            self.late_s.append(max(0.0, time.monotonic() - asked - self.every_s))
