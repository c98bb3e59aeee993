"""Conversation state in media time: who speaks, overlaps, silences and holds.

Fed one 32 ms window per channel in lockstep (the same window index on every channel),
it runs each channel's voice gate and the hold tracker, keeps the running totals a
scorecard needs, and hands the detectors a ``Tick``: the state at the end of the window
plus the transitions that happened in it. Pure, no I/O, no clocks.

Speech on the agent line during a hold is nobody's talk until the hold tracker has judged
it (``assist.hold``: a recorded announcement, or the agent back): meanwhile the detectors
see the agent's gate as it was before it (``GateView``, not in speech), its edges are held
back and its talk and overlap time is kept aside. An announcement's time is dropped; the
agent's return is added to the totals and handed to the segmenter as ``released_speech``
(never to the detectors as an onset: the customer was on hold, nobody was interrupted).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from assist.config import Settings
from assist.hold import HoldEdge, HoldTracker, Interlude, SpeechState
from assist.vad.gate import SpeechEdge, VoiceGate
from assist.vad.stream import LOST_DBFS
from assist.vocabulary import WINDOW_S, WindowActivity

# Media times are sums of 32 ms windows: compare thresholds with this slack so that
# 0.7999999999999998 s counts as 0.8 s.
TIME_EPS_S = 1e-9


@dataclass(frozen=True, slots=True)
class GateView:
    """A channel's speech frozen as it stood before an interlude (media s): what the
    detectors see of the agent while speech on the agent line during a hold is judged."""

    in_speech: bool
    speech_start_s: float
    speech_end_s: float
    last_voiced_end_s: float

    @classmethod
    def quiet_copy(cls, gate: SpeechState) -> GateView:
        """``gate``'s times, not in speech."""
        return cls(False, gate.speech_start_s, gate.speech_end_s, gate.last_voiced_end_s)


@dataclass(slots=True)
class Tick:
    """The conversation at media time ``t_s`` (end of the window just processed)."""

    t_s: float
    gates: dict[str, SpeechState]
    hold: HoldTracker
    speech_edges: list[tuple[str, SpeechEdge]] = field(default_factory=list)
    hold_edges: list[HoldEdge] = field(default_factory=list)
    audio_lost: bool = False  # a window of this tick never arrived (overload, pause)
    # role -> (start, end or None while still talking), media s: speech held back during a
    # hold that turned out to be the agent's; for the utterance segmenter, not the detectors.
    released_speech: dict[str, tuple[float, float | None]] = field(default_factory=dict)

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
    the scorecard's running totals, advanced one 32 ms window at a time. Pure.

    ``gates`` is what the detectors and the floor see: each role's voice gate, except the
    agent's while an interlude on hold is judged (module docstring)."""

    def __init__(self, settings: Settings, roles: list[str]) -> None:
        self.roles = roles
        self._line_gates = {role: VoiceGate(settings.vad) for role in roles}
        self.gates: dict[str, SpeechState] = dict(self._line_gates)
        self.hold = HoldTracker(settings.cues.hold_inference, settings.cues.long_hold.min_hold_s)
        self.totals = ConversationTotals(talk_s={role: 0.0 for role in roles})
        self.t_s = 0.0
        self._pending_hold_edges: list[HoldEdge] = []
        self._held_talk_s = 0.0  # agent speech of the interlude being judged
        self._held_overlap_s = 0.0

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
        the hold inference (with both gates).
        """
        tick = self._new_tick()
        agent = self._line_gates.get("agent")
        was_judging = self.hold.interlude_pending
        # The agent's gate before this window: what the detectors keep seeing if it starts
        # an interlude.
        before = GateView.quiet_copy(agent) if agent is not None and self.hold.on else None
        end_s = 0.0
        edges: list[tuple[str, SpeechEdge]] = []
        for role, window in windows.items():
            end_s = window.end_s
            if math.isnan(window.dbfs):
                tick.audio_lost = True
            edge = self._line_gates[role].feed(window)
            if edge is not None:
                edges.append((role, edge))
        if agent is not None and "agent" in windows:
            customer = self._line_gates.get("customer")
            self._hold_edge(tick, self.hold.feed_agent_window(windows["agent"], agent, customer))
        verdict = self.hold.take_interlude()
        held_back = was_judging or self.hold.interlude_pending or verdict is not None
        tick.speech_edges = [(r, e) for r, e in edges if not (held_back and r == "agent")]
        self.t_s = tick.t_s = end_s
        if not was_judging and self.hold.interlude_pending and before is not None:
            self.gates["agent"] = before
        self._settle_interlude(tick, verdict)
        self._accumulate()
        return tick

    def skip(self, first_index: int, end_index: int) -> list[Tick]:
        """Audio lost on every channel in windows ``first_index .. end_index - 1`` (a gap:
        paused, discarded or shed), in O(1) whatever its length: ``t_s`` moves to the end of
        the last lost window and the totals with it (lost time is neither talk nor silence).

        Only the first and the last lost window are fed (``feed``); the ones in between would
        change nothing: the first closes every gate at its start (``VoiceGate``), no talk
        accumulates after it, and the hold tracker judges a lost window by its index alone
        (music evidence ages out by index, a line-silence hold ends at the first lost window, a
        music hold where the music stopped, an interlude once its wait has passed). Returns
        their ticks (one for a one-window gap), both ``audio_lost``; the last at the gap's
        end. A CTI hold goes on through the gap."""
        ticks = [self.feed(self._lost(first_index))]
        if end_index - 1 > first_index:
            ticks.append(self.feed(self._lost(end_index - 1)))
        return ticks

    def _lost(self, index: int) -> dict[str, WindowActivity]:
        return {role: WindowActivity(index, 0.0, LOST_DBFS) for role in self.roles}

    def finish(self) -> Tick:
        """End of the call: an interlude still judged is decided (``HoldTracker.finish``).
        The ``Tick`` at the current media time with what that changed."""
        tick = self._new_tick()
        agent = self._line_gates.get("agent")
        if agent is not None:
            self._hold_edge(tick, self.hold.finish(agent))
        self._settle_interlude(tick, self.hold.take_interlude())
        return tick

    def _new_tick(self) -> Tick:
        tick = Tick(t_s=self.t_s, gates=self.gates, hold=self.hold)
        tick.hold_edges.extend(self._pending_hold_edges)
        self._pending_hold_edges.clear()
        return tick

    def _hold_edge(self, tick: Tick, edge: HoldEdge | None) -> None:
        if edge is not None:
            self._record_hold(edge)
            tick.hold_edges.append(edge)

    def _settle_interlude(self, tick: Tick, verdict: Interlude | None) -> None:
        """Apply a verdict: an announcement's held time is dropped; the agent's return is
        counted and released to the segmenter; the detectors see the agent's gate again."""
        if verdict is None:
            return
        self.gates["agent"] = self._line_gates["agent"]
        if not verdict.announcement:
            self.totals.talk_s["agent"] += self._held_talk_s
            self.totals.overlap_s += self._held_overlap_s
            tick.released_speech["agent"] = (verdict.start_s, verdict.end_s)
        self._held_talk_s = self._held_overlap_s = 0.0

    def _accumulate(self) -> None:
        totals = self.totals
        totals.duration_s = self.t_s
        talking = [role for role, gate in self.gates.items() if gate.in_speech]
        for role in talking:
            totals.talk_s[role] += WINDOW_S
        if len(talking) > 1:
            totals.overlap_s += WINDOW_S
        if self.hold.interlude_pending and self._line_gates["agent"].in_speech:
            self._held_talk_s += WINDOW_S
            if len(talking) > 0:  # the agent view is quiet: anyone talking overlaps it
                self._held_overlap_s += WINDOW_S

    def _record_hold(self, edge: HoldEdge) -> None:
        holds = self.totals.holds
        if edge.retracted:
            if holds and holds[-1][1] is None:
                holds.pop()  # that hold never was
        elif edge.on:
            holds.append((edge.at_s, None))
        elif holds and holds[-1][1] is None:
            holds[-1] = (holds[-1][0], edge.at_s)
