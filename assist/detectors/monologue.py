"""``monologue``: the agent has held the floor for ``min_turn_s`` with no customer turn.

The agent's turn starts at their first speech after the customer's last turn and ends
when the customer talks for ``customer_turn_min_s`` (a backchannel is not a turn), when
both sides are silent for ``max_pause_s``, or at a hold. One finding per turn.
"""

from __future__ import annotations

from assist.config import MonologueConfig
from assist.conversation import TIME_EPS_S, Tick
from assist.detectors import CueDetector
from assist.vocabulary import CueKind, Finding


class MonologueDetector(CueDetector):
    """The agent holding the floor for ``min_turn_s`` with no customer turn -> one ``info``
    finding per agent turn (rules in the module docstring)."""

    kind = CueKind.MONOLOGUE

    def __init__(self, config: MonologueConfig) -> None:
        self._cfg = config
        self._turn_start_s: float | None = None
        self._fired = False

    def on_tick(self, tick: Tick) -> list[Finding]:
        """A finding the moment the agent's current turn reaches ``min_turn_s`` (``measured`` =
        the turn so far, s; the span runs from its start). Needs the agent channel."""
        agent = tick.gates.get("agent")
        if agent is None:
            return []
        customer = tick.gates.get("customer")
        # Voiced length, not gate time: the gate's hangover must not turn a backchannel
        # into a turn.
        customer_turn = (
            customer is not None
            and customer.in_speech
            and customer.last_voiced_end_s - customer.speech_start_s
            >= self._cfg.customer_turn_min_s - TIME_EPS_S
        )
        last_speech_end = max(gate.speech_end_s for gate in tick.gates.values())
        long_pause = (
            not tick.anyone_speaking() and tick.t_s - last_speech_end >= self._cfg.max_pause_s
        )
        if customer_turn or long_pause or tick.hold.on:
            self._turn_start_s = None
            return []
        if not agent.in_speech:
            return []
        if self._turn_start_s is None:
            customer_end = customer.speech_end_s if customer is not None else 0.0
            self._turn_start_s = max(agent.speech_start_s, customer_end)
            self._fired = False
        turn = tick.t_s - self._turn_start_s
        if self._fired or turn + TIME_EPS_S < self._cfg.min_turn_s:
            return []
        self._fired = True
        return [
            Finding(
                kind=self.kind,
                at_s=tick.t_s,
                span_start_s=self._turn_start_s,
                span_end_s=tick.t_s,
                rule="cues.monologue.min_turn_s",
                threshold=self._cfg.min_turn_s,
                measured=turn,
                severity="info",
            )
        ]
