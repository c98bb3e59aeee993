"""Ground truth for a rendered call: when each cue really becomes true.

Audio cues are computed from the script's exact speech spans and holds with the same
thresholds the service uses, independently of the VAD: this is what the detectors are
measured against. Text cues are the script's own labels (``expect``), true when the
labelled sentence ends.
"""

from __future__ import annotations

from dataclasses import dataclass

from assist.config import CuesConfig
from assist.synth.render import RenderedCall


@dataclass(frozen=True, slots=True)
class ExpectedCue:
    """A cue the call should raise: its kind and the media time (s) it becomes true."""

    kind: str
    at_s: float  # media time the cue becomes true


def expected_cues(call: RenderedCall, cues: CuesConfig, text: bool = False) -> list[ExpectedCue]:
    """Every cue of the call; the text cues only with ``text`` (they need ASR)."""
    out: list[ExpectedCue] = []
    if text:
        out += [ExpectedCue(u.expect, u.end_s) for u in call.utterances if u.expect]
    out += _interruptions(call, cues)
    out += _long_holds(call, cues)
    out += _dead_air(call, cues)
    out += _monologues(call, cues)
    return sorted(out, key=lambda c: c.at_s)


def _spans(call: RenderedCall, who: str) -> list[tuple[float, float]]:
    return sorted((u.start_s, u.end_s) for u in call.utterances if u.who == who)


def _interruptions(call: RenderedCall, cues: CuesConfig) -> list[ExpectedCue]:
    need = cues.interruption.min_overlap_s
    out = []
    for a0, a1 in _spans(call, "agent"):
        for c0, c1 in _spans(call, "customer"):
            if c0 < a0 < c1 and min(a1, c1) - a0 >= need:
                out.append(ExpectedCue("interruption", a0 + need))
    return out


def _long_holds(call: RenderedCall, cues: CuesConfig) -> list[ExpectedCue]:
    out = []
    for hold in call.script.hold:
        at = hold.at + cues.long_hold.min_hold_s
        while at <= hold.at + hold.duration:
            out.append(ExpectedCue("long_hold", at))
            at += cues.long_hold.remind_every_s
    return out


def _dead_air(call: RenderedCall, cues: CuesConfig) -> list[ExpectedCue]:
    busy = [(u.start_s, u.end_s) for u in call.utterances]
    busy += [(h.at, h.at + h.duration) for h in call.script.hold]
    busy.sort()
    out = []
    quiet_from = 0.0
    for start, end in [*busy, (call.script.duration_s, call.script.duration_s)]:
        if start - quiet_from >= cues.dead_air.min_silence_s:
            out.append(ExpectedCue("dead_air", quiet_from + cues.dead_air.min_silence_s))
        quiet_from = max(quiet_from, end)
    return out


def _monologues(call: RenderedCall, cues: CuesConfig) -> list[ExpectedCue]:
    cfg = cues.monologue
    customer_turns = [
        (s, e) for s, e in _spans(call, "customer") if e - s >= cfg.customer_turn_min_s
    ]
    out: list[ExpectedCue] = []
    turn_start: float | None = None
    last_end = 0.0
    for a0, a1 in _spans(call, "agent"):
        broken = any(last_end <= c0 < a0 for c0, _ in customer_turns)
        if turn_start is None or broken or a0 - last_end >= cfg.max_pause_s:
            turn_start = a0
        if a1 - turn_start >= cfg.min_turn_s and (not out or out[-1].at_s < turn_start):
            out.append(ExpectedCue("monologue", turn_start + cfg.min_turn_s))
        last_end = a1
    return out
