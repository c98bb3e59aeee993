"""Conversation state in media time: who speaks, overlaps, silences and holds.

Fed one 32 ms window per channel in lockstep (the same window index on every channel),
it runs each channel's voice gate and the hold tracker, keeps the running totals a
scorecard needs, and hands the detectors a ``Tick``: the state at the end of the window
plus the transitions that happened in it. Pure, no I/O, no clocks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from assist.config import Settings
from assist.hold import HoldEdge, HoldTracker
from assist.vad.gate import SpeechEdge, VoiceGate
from assist.vocabulary import WINDOW_S, WindowActivity

# Media times are sums of 32 ms windows: compare thresholds with this slack so that
# 0.7999999999999998 s counts as 0.8 s.
TIME_EPS_S = 1e-9


@dataclass(slots=True)
class Tick:
    """The conversation at media time ``t_s`` (end of the window just processed)."""

    t_s: float
    gates: dict[str, VoiceGate]
    hold: HoldTracker
    speech_edges: list[tuple[str, SpeechEdge]] = field(default_factory=list)
    hold_edges: list[HoldEdge] = field(default_factory=list)
    audio_lost: bool = False  # a window of this tick never arrived (overload, pause)

    def anyone_speaking(self) -> bool:
        """Whether any channel's gate is in speech at ``t_s``."""
        return any(g.in_speech for g in self.gates.values())


@dataclass(slots=True)
class ConversationTotals:
    """Running sums over the call, in seconds of media time."""

    talk_s: dict[str, float] = field(default_factory=dict)
    overlap_s: float = 0.0
    holds: list[tuple[float, float | None]] = field(default_factory=list)  # (start, end)
    duration_s: float = 0.0


class ConversationTracker:
    """One call's conversation in media time: a voice gate per role, the hold tracker and
    the scorecard's running totals, advanced one 32 ms window at a time. Pure."""

    def __init__(self, settings: Settings, roles: list[str]) -> None:
        self.roles = roles
        self.gates = {role: VoiceGate(settings.vad) for role in roles}
        self.hold = HoldTracker(settings.cues.hold_inference)
        self.totals = ConversationTotals(talk_s={role: 0.0 for role in roles})
        self.t_s = 0.0
        self._pending_hold_edges: list[HoldEdge] = []

    def set_cti_hold(self, on: bool) -> None:
        """A CTI hold event, effective at the current media time."""
        edge = self.hold.set_cti(on, self.t_s)
        if edge is not None:
            self._record_hold(edge)
            self._pending_hold_edges.append(edge)

    def feed(self, windows: dict[str, WindowActivity]) -> Tick:
        """Advance one 32 ms window; ``windows`` maps each role to its activity in the same window.

        Returns the ``Tick`` at the window's end (``t_s``, media seconds) with the speech and
        hold edges it caused, the CTI hold edges set since the last tick, and ``audio_lost``
        when a window's level is NaN (audio that never arrived). Only the agent window feeds
        the hold inference.
        """
        tick = Tick(t_s=self.t_s, gates=self.gates, hold=self.hold)
        tick.hold_edges.extend(self._pending_hold_edges)
        self._pending_hold_edges.clear()
        end_s = 0.0
        for role, window in windows.items():
            end_s = window.end_s
            if math.isnan(window.dbfs):
                tick.audio_lost = True
            edge = self.gates[role].feed(window)
            if edge is not None:
                tick.speech_edges.append((role, edge))
            if role == "agent":
                hold_edge = self.hold.feed_agent_window(window, self.gates[role].in_speech)
                if hold_edge is not None:
                    self._record_hold(hold_edge)
                    tick.hold_edges.append(hold_edge)
        self.t_s = tick.t_s = end_s
        self._accumulate()
        return tick

    def _accumulate(self) -> None:
        totals = self.totals
        totals.duration_s = self.t_s
        talking = [role for role, gate in self.gates.items() if gate.in_speech]
        for role in talking:
            totals.talk_s[role] += WINDOW_S
        if len(talking) > 1:
            totals.overlap_s += WINDOW_S

    def _record_hold(self, edge: HoldEdge) -> None:
        holds = self.totals.holds
        if edge.on:
            holds.append((edge.at_s, None))
        elif holds and holds[-1][1] is None:
            holds[-1] = (holds[-1][0], edge.at_s)
