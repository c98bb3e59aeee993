"""``interruption``: the agent starts talking while the customer is talking, and both
keep talking for ``min_overlap_s``. Fires the moment the overlap reaches the threshold.

The overlap is measured on voiced audio: from the agent's onset to the end of the last
window in which both sides still sounded like speech, while the agent's turn lasts (its
gate bridges short pauses, and a pause up to ``agent_pause_tolerance_s`` keeps the same
onset). Backchannels ("mm-hmm", "right") end before the threshold;
an agent who starts just as the customer finishes sees the customer fall silent for
more than ``customer_gap_tolerance_s`` and the overlap ends.
"""

from __future__ import annotations

from assist.config import InterruptionConfig
from assist.conversation import TIME_EPS_S, Tick
from assist.detectors import CueDetector
from assist.vocabulary import CueKind, Finding


class InterruptionDetector(CueDetector):
    """The agent starting to talk over the customer -> at most one ``warning`` finding per
    agent turn (rules in the module docstring). Needs both channels."""

    kind = CueKind.INTERRUPTION

    def __init__(self, config: InterruptionConfig) -> None:
        self._cfg = config
        self._overlap_start_s: float | None = None
        self._fired_this_turn = False  # one finding per agent turn, pauses included

    def on_tick(self, tick: Tick) -> list[Finding]:
        """A finding the moment the voiced overlap since the agent's onset reaches
        ``min_overlap_s`` (``measured`` = the overlap, s; the span runs from the onset)."""
        agent = tick.gates.get("agent")
        customer = tick.gates.get("customer")
        if agent is None or customer is None:
            return []
        # The agent's turn goes on across a short pause ("Okay, ... have you tried ...").
        agent_present = (
            agent.in_speech or tick.t_s - agent.speech_end_s <= self._cfg.agent_pause_tolerance_s
        )
        if not agent_present:
            self._fired_this_turn = False
        for role, edge in tick.speech_edges:
            new_onset = role == "agent" and edge.start and self._overlap_start_s is None
            if new_onset and not self._fired_this_turn:
                customer_was_talking = customer.in_speech and customer.speech_start_s < edge.at_s
                self._overlap_start_s = edge.at_s if customer_was_talking else None
        if self._overlap_start_s is None:
            return []
        customer_still_talking = (
            customer.last_voiced_end_s >= tick.t_s - self._cfg.customer_gap_tolerance_s
        )
        if not (agent_present and customer_still_talking):
            self._overlap_start_s = None
            return []
        overlap = min(agent.last_voiced_end_s, customer.last_voiced_end_s) - self._overlap_start_s
        if overlap + TIME_EPS_S < self._cfg.min_overlap_s:
            return []
        start = self._overlap_start_s
        self._overlap_start_s = None
        self._fired_this_turn = True
        return [
            Finding(
                kind=self.kind,
                at_s=tick.t_s,
                span_start_s=start,
                span_end_s=tick.t_s,
                rule="cues.interruption.min_overlap_s",
                threshold=self._cfg.min_overlap_s,
                measured=overlap,
                severity="warning",
            )
        ]
