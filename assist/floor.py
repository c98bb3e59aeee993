"""What supervisors see of one live call: its state, how urgent it is, and its alerts.

Pure: built from the call's pipeline after each processed chunk. Attention ranks the
floor view: critical alerts first, then long holds, then calls with many cues.
"""

from __future__ import annotations

from collections import Counter

from assist.config import FloorConfig
from assist.events import Alert, CallState, CallStateName, Nudge
from assist.pipeline import CallPipeline

REPEAT_MESSAGES = {
    "interruption": "Agent has interrupted the customer {n}x.",
    "customer_frustration": "Customer frustration is escalating ({n} moments).",
    "negative_phrasing": "Negative phrasing {n}x in this call.",
}


class FloorView:
    """Per-call floor state and alert rules."""

    def __init__(self, config: FloorConfig, call_id: str, agent_id: str) -> None:
        self._cfg = config
        self._call_id = call_id
        self._agent_id = agent_id
        self.cue_counts: Counter[str] = Counter()
        self.last_alert: str | None = None
        self._critical = False

    def alerts_for(self, nudges: list[Nudge]) -> list[Alert]:
        alerts = []
        for nudge in nudges:
            self.cue_counts[nudge.kind] += 1
            message = None
            if nudge.kind in self._cfg.alert_kinds or nudge.severity == "critical":
                message = nudge.message
            elif self.cue_counts[nudge.kind] == self._cfg.repeat_alerts.get(nudge.kind):
                template = REPEAT_MESSAGES.get(nudge.kind, "{kind} {n} times in this call.")
                message = template.format(kind=nudge.kind, n=self.cue_counts[nudge.kind])
            if message is None:
                continue
            self._critical = self._critical or nudge.severity == "critical"
            self.last_alert = message
            alerts.append(
                Alert(
                    call_id=self._call_id,
                    agent_id=self._agent_id,
                    kind=nudge.kind,
                    severity=nudge.severity,
                    message=message,
                    media_time_s=nudge.media_time_s,
                )
            )
        return alerts

    def state(self, pipeline: CallPipeline) -> CallState:
        tracker = pipeline.tracker
        speaking = [role for role, gate in tracker.gates.items() if gate.in_speech]
        hold = tracker.hold
        now = tracker.t_s
        name: CallStateName
        if hold.on:
            name = "on_hold"
        elif len(speaking) > 1:
            name = "overlap"
        elif speaking:
            name = "talking"
        else:
            name = "silent"
        hold_s = round(now - hold.start_s, 1) if hold.on else None
        attention = (
            100 * self._critical
            + (50 if hold_s is not None and hold_s >= 45 else 0)
            + 5 * sum(self.cue_counts.values())
        )
        return CallState(
            call_id=self._call_id,
            agent_id=self._agent_id,
            state=name,
            speaking=speaking,
            media_time_s=round(now, 2),
            hold_started_s=round(hold.start_s, 2) if hold.on else None,
            hold_s=hold_s,
            cue_counts=dict(self.cue_counts),
            last_alert=self.last_alert,
            attention=attention,
        )
