"""What supervisors see of one live call: its state, how urgent it is, and its alerts.

Pure: built from the call's ``CallSnapshot`` after each processed chunk and from the
nudges it sent. Attention ranks the floor view: critical alerts first, then calls on hold
longer than ``[floor] attention_hold_s``, then calls with many cues. Alert wording lives
in ``assist.nudges``.
"""

from __future__ import annotations

from collections import Counter

from assist.config import FloorConfig
from assist.events import Alert, CallState, CallStateName, Nudge
from assist.nudges import repeat_alert_message
from assist.vocabulary import CallSnapshot


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
        """Count the nudges; the floor alerts they raise (``[floor] alert_kinds``, any
        critical nudge, or a kind reaching its ``[floor.repeat_alerts]`` count)."""
        alerts = []
        for nudge in nudges:
            self.cue_counts[nudge.kind] += 1
            count = self.cue_counts[nudge.kind]
            message = None
            if nudge.kind in self._cfg.alert_kinds or nudge.severity == "critical":
                message = nudge.message
            elif count == self._cfg.repeat_alerts.of(nudge.kind):
                message = repeat_alert_message(nudge.kind, count)
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

    def state(self, snapshot: CallSnapshot) -> CallState:
        """The call as the floor shows it at the snapshot's media time."""
        speaking = list(snapshot.speaking)
        now = snapshot.t_s
        on_hold = snapshot.hold_start_s is not None
        name: CallStateName
        if on_hold:
            name = "on_hold"
        elif len(speaking) > 1:
            name = "overlap"
        elif speaking:
            name = "talking"
        else:
            name = "silent"
        hold_s = (
            round(now - snapshot.hold_start_s, 1) if snapshot.hold_start_s is not None else None
        )
        long_hold = hold_s is not None and hold_s >= self._cfg.attention_hold_s
        attention = 100 * self._critical + 50 * long_hold + 5 * sum(self.cue_counts.values())
        return CallState(
            call_id=self._call_id,
            agent_id=self._agent_id,
            state=name,
            speaking=speaking,
            media_time_s=round(now, 2),
            hold_started_s=(
                round(snapshot.hold_start_s, 2) if snapshot.hold_start_s is not None else None
            ),
            hold_s=hold_s,
            cue_counts=dict(self.cue_counts),
            last_alert=self.last_alert,
            attention=attention,
        )
