"""Nudge policy: which findings reach the agent. Pure, media time only.

Every finding is kept for the scorecard; the policy only decides what interrupts the
agent: a per-kind cooldown (no two nudges of a kind closer than it in media time, in
whichever order their findings arrive), dedupe of identical findings, kinds the agent
snoozed, and a per-call budget that only ``budget_exempt_severity`` (and worse) may exceed.
"""

from __future__ import annotations

from collections import Counter

from assist.config import PolicyConfig
from assist.events import Nudge
from assist.nudges import evidence_for, message_for
from assist.vocabulary import CueKind, Finding

_SEVERITY_RANK = {"info": 0, "warning": 1, "critical": 2}


class NudgePolicy:
    """One call's nudge policy (``[policy]``): ``decide`` turns a finding into a nudge or
    holds it back, counting why in ``suppressed``."""

    def __init__(self, config: PolicyConfig, call_id: str, agent_id: str) -> None:
        self._cfg = config
        self._call_id = call_id
        self._agent_id = agent_id
        # media times of the nudges sent, per kind: a finding may arrive after a later one
        # (text findings wait for the recognizer, whose workers finish out of order)
        self._sent_at_s: dict[str, list[float]] = {}
        self._seen: set[tuple[str, float, float]] = set()
        self._snoozed_until: dict[str, float] = {}  # kind -> media time
        self.sent = 0
        self.suppressed: Counter[str] = Counter()  # reason -> count

    def snooze(self, kind: CueKind, until_s: float) -> None:
        """The agent asked for quiet: no nudge of ``kind`` before ``until_s`` (media time),
        critical ones excepted."""
        self._snoozed_until[kind] = max(until_s, self._snoozed_until.get(kind, -1.0))

    def decide(self, finding: Finding) -> Nudge | None:
        """The nudge for ``finding``, or None when the policy holds it back."""
        key = (finding.kind, round(finding.span_start_s, 3), round(finding.at_s, 3))
        if key in self._seen:
            self.suppressed["duplicate"] += 1
            return None
        self._seen.add(key)
        critical = finding.severity == "critical"
        if finding.at_s < self._snoozed_until.get(finding.kind, -1.0) and not critical:
            self.suppressed["snoozed"] += 1
            return None
        cooldown = self._cfg.cooldown_s.of(finding.kind)
        sent_at = self._sent_at_s.setdefault(finding.kind, [])
        if any(abs(finding.at_s - at) < cooldown for at in sent_at):
            self.suppressed["cooldown"] += 1
            return None
        exempt = (
            _SEVERITY_RANK[finding.severity] >= _SEVERITY_RANK[self._cfg.budget_exempt_severity]
        )
        if self.sent >= self._cfg.budget_per_call and not exempt:
            self.suppressed["budget"] += 1
            return None
        sent_at.append(finding.at_s)
        self.sent += 1
        message, suggestion = message_for(finding)
        return Nudge(
            id=f"{self._call_id}-{self.sent}",
            call_id=self._call_id,
            agent_id=self._agent_id,
            kind=finding.kind,
            severity=finding.severity,
            message=message,
            suggestion=suggestion,
            media_time_s=round(finding.at_s, 3),
            evidence=evidence_for(finding),
        )
