"""Audio-only cue detectors: pure objects fed one ``Tick`` at a time, returning findings."""

from __future__ import annotations

from typing import Protocol

from assist.config import CuesConfig
from assist.conversation import Tick
from assist.events import Finding


class Detector(Protocol):
    def feed(self, tick: Tick) -> list[Finding]: ...


def build_detectors(cues: CuesConfig) -> list[Detector]:
    from assist.detectors.dead_air import DeadAirDetector
    from assist.detectors.interruption import InterruptionDetector
    from assist.detectors.long_hold import LongHoldDetector
    from assist.detectors.monologue import MonologueDetector

    return [
        InterruptionDetector(cues.interruption),
        LongHoldDetector(cues.long_hold),
        DeadAirDetector(cues.dead_air),
        MonologueDetector(cues.monologue),
    ]
