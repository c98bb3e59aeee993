"""``dead_air``: nobody speaks for ``min_silence_s`` while the call is not on hold.

The silence is counted from the latest of: the end of the last speech on any channel,
the end of the last hold, the end of the last lost audio, the start of the call. Hold time
never counts: while music on the agent line may still become a (backdated) hold, the
decision waits for it.
"""

from __future__ import annotations

from assist.config import DeadAirConfig
from assist.conversation import TIME_EPS_S, Tick
from assist.detectors import CueDetector
from assist.vocabulary import CueKind, Finding


class DeadAirDetector(CueDetector):
    """Silence on every channel for ``min_silence_s`` while not on hold -> one ``info``
    finding per silence (rules in the module docstring)."""

    kind = CueKind.DEAD_AIR

    def __init__(self, config: DeadAirConfig) -> None:
        self._cfg = config
        self._not_before_s = 0.0  # silence never counts from before this (hold end, lost audio)
        self._fired = False

    def on_tick(self, tick: Tick) -> list[Finding]:
        """A finding the moment the silence reaches ``min_silence_s`` (``measured`` = its length,
        s; the span is the silence). Nothing on hold, while anyone speaks, or while music on
        the agent line may still become a hold."""
        for edge in tick.hold_edges:
            if not edge.on:
                self._not_before_s = edge.at_s
        if tick.audio_lost:
            # Nobody knows what was said in audio that never arrived: count afresh after it.
            self._not_before_s = tick.t_s
        if tick.hold.on or tick.anyone_speaking():
            self._fired = False
            return []
        if self._fired or tick.hold.music_pending:
            return []  # pending music: wait for the hold decision, it may backdate
        silence_start = max(
            self._not_before_s, *(gate.speech_end_s for gate in tick.gates.values())
        )
        silence = tick.t_s - silence_start
        if silence + TIME_EPS_S < self._cfg.min_silence_s:
            return []
        self._fired = True
        return [
            Finding(
                kind=self.kind,
                at_s=tick.t_s,
                span_start_s=silence_start,
                span_end_s=tick.t_s,
                rule="cues.dead_air.min_silence_s",
                threshold=self._cfg.min_silence_s,
                measured=silence,
                severity="info",
            )
        ]
