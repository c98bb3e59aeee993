"""One module per cue, all behind one ``Detector`` protocol: a newcomer finds any cue's
decision, threshold and evidence in ``assist/detectors/<kind>.py``.

Detectors are pure objects fed three kinds of events, in media time:

* ``on_tick``: the conversation after each 32 ms window (audio cues: interruption,
  long_hold, dead_air, monologue);
* ``on_final``: an agent or customer final transcript with its voiced time (pace);
* ``on_scores``: the text models' scores of a final transcript (negative_phrasing,
  customer_frustration).

Each returns the findings that became true; a detector ignores the events it has no use
for (``CueDetector`` gives the no-op defaults). Wording lives in ``assist.nudges``.
"""

from __future__ import annotations

from typing import Protocol

from assist.config import CuesConfig
from assist.conversation import Tick
from assist.events import Transcript
from assist.vocabulary import CueKind, Finding, TextScores


class Detector(Protocol):
    """A cue's decision: events in, findings of ``kind`` out."""

    kind: CueKind

    def on_tick(self, tick: Tick) -> list[Finding]:
        """Findings that became true in the 32 ms window ending at ``tick.t_s``."""
        ...

    def on_final(self, transcript: Transcript, speech_s: float) -> list[Finding]:
        """Findings from a final transcript; ``speech_s`` is the voiced seconds the gate
        measured in it."""
        ...

    def on_scores(self, transcript: Transcript, scores: TextScores) -> list[Finding]:
        """Findings from the text models' scores of a final transcript."""
        ...


class CueDetector:
    """No-op defaults for the events a detector doesn't use."""

    kind: CueKind

    def on_tick(self, tick: Tick) -> list[Finding]:
        """The conversation after one 32 ms window (media time ``tick.t_s``)."""
        return []

    def on_final(self, transcript: Transcript, speech_s: float) -> list[Finding]:
        """A final transcript; ``speech_s`` is the voiced time the gate measured in it."""
        return []

    def on_scores(self, transcript: Transcript, scores: TextScores) -> list[Finding]:
        """The text models' scores of a final transcript."""
        return []


def build_detectors(cues: CuesConfig) -> list[Detector]:
    """One detector per ``CueKind``, configured from ``[cues.*]``."""
    from assist.detectors.customer_frustration import CustomerFrustrationDetector
    from assist.detectors.dead_air import DeadAirDetector
    from assist.detectors.interruption import InterruptionDetector
    from assist.detectors.long_hold import LongHoldDetector
    from assist.detectors.monologue import MonologueDetector
    from assist.detectors.negative_phrasing import NegativePhrasingDetector
    from assist.detectors.pace import PaceDetector

    return [
        InterruptionDetector(cues.interruption),
        LongHoldDetector(cues.long_hold),
        DeadAirDetector(cues.dead_air),
        MonologueDetector(cues.monologue),
        PaceDetector(cues.pace),
        NegativePhrasingDetector(cues.negative_phrasing),
        CustomerFrustrationDetector(cues.customer_frustration),
    ]
