"""``long_hold``: the call has been on hold for ``min_hold_s``; remind every
``remind_every_s`` after that, critical once the hold passes ``critical_after_s``.

A CTI hold goes on through lost audio (a pause, a gap) with its timer running, and the
reminders due inside the gap come as one, at its end; an inferred hold ends where the audio
that showed it stopped (``ConversationTracker.skip``)."""

from __future__ import annotations

import math

from assist.config import LongHoldConfig
from assist.conversation import TIME_EPS_S, Tick
from assist.detectors import CueDetector
from assist.vocabulary import CueKind, Finding


class LongHoldDetector(CueDetector):
    """A hold reaching ``min_hold_s``, then every ``remind_every_s`` -> one finding per
    reminder, ``critical`` once the hold has lasted ``critical_after_s``."""

    kind = CueKind.LONG_HOLD

    def __init__(self, config: LongHoldConfig) -> None:
        self._cfg = config
        self._next_at_s: float | None = None
        self._reminder = 0

    def on_tick(self, tick: Tick) -> list[Finding]:
        """A reminder when the current hold reaches its next threshold: ``measured`` = seconds on
        hold, ``threshold`` = this reminder's (``min_hold_s + k * remind_every_s``), ``details``
        the reminder number (from 1) and the hold's source (cti, music, line_silence)."""
        hold = tick.hold
        if not hold.on:
            self._next_at_s = None
            return []
        if self._next_at_s is None:
            self._next_at_s = hold.start_s + self._cfg.min_hold_s
            self._reminder = 0
        if tick.t_s + TIME_EPS_S < self._next_at_s:
            return []
        held = tick.t_s - hold.start_s
        # A gap (lost audio) moves t_s on in one tick: the reminders that fell due inside it
        # fire once, at its end, as the latest of them (O(1), however long the gap).
        every = self._cfg.remind_every_s
        due = 1 + math.floor((tick.t_s + TIME_EPS_S - self._next_at_s) / every)
        self._next_at_s += (due - 1) * every
        threshold = self._next_at_s - hold.start_s
        self._reminder += due
        self._next_at_s += every
        return [
            Finding(
                kind=self.kind,
                at_s=tick.t_s,
                span_start_s=hold.start_s,
                span_end_s=tick.t_s,
                # The first reminder is at min_hold_s, the later ones remind_every_s apart.
                rule="cues.long_hold."
                + ("min_hold_s" if self._reminder == 1 else "remind_every_s"),
                threshold=threshold,
                measured=held,
                severity="critical" if held >= self._cfg.critical_after_s else "warning",
                details={"reminder": self._reminder, "source": hold.source},
            )
        ]
