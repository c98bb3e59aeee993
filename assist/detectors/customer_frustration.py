"""``customer_frustration``: a customer sentence that sounds fed up, not yet acknowledged.

Decided from the text models' scores: the sentence is frustrated when the frustration
score reaches the threshold (``[cues.customer_frustration] min_score``, or the one stored
with the model when that is 0). It becomes a finding (at the sentence's end) unless the
agent acknowledged feelings within ``acknowledged_within_s`` before it ended: the agent's
sentences count as acknowledgements when the empathy model's score reaches its stored
threshold. Transcripts may come back out of order (agent finals are transcribed first),
so only acknowledgements that ended before count. Every acknowledgement and every
frustrated sentence is kept as a ``Moment`` for the scorecard, nudged or not. Pure.
"""

from __future__ import annotations

from dataclasses import dataclass

from assist.config import CustomerFrustrationConfig
from assist.detectors import CueDetector
from assist.events import Transcript
from assist.vocabulary import CueKind, Finding, TextScores


@dataclass(frozen=True, slots=True)
class Moment:
    """A sentence the text models noticed, for the scorecard."""

    kind: str  # "empathy" (agent acknowledged) or "customer_frustration"
    at_s: float  # media time the sentence ended
    text: str
    acknowledged: bool = False  # frustration only: the agent had acknowledged already


def frustration_threshold(scores: TextScores, config: CustomerFrustrationConfig) -> float:
    """``min_score`` when set, else the model's own threshold."""
    return config.min_score or float(scores.frustration_model_threshold or 0.5)


def is_frustrated(scores: TextScores, config: CustomerFrustrationConfig) -> bool:
    """A customer sentence the frustration model flags."""
    return (
        scores.speaker == "customer"
        and bool(scores.text)
        and scores.frustration is not None
        and scores.frustration >= frustration_threshold(scores, config)
    )


def acknowledges(scores: TextScores) -> bool:
    """An agent sentence that acknowledges the customer's feelings (the empathy model at
    or above its stored threshold)."""
    return (
        scores.speaker == "agent"
        and scores.empathy is not None
        and scores.empathy_model_threshold is not None
        and scores.empathy >= scores.empathy_model_threshold
    )


class CustomerFrustrationDetector(CueDetector):
    """Frustrated customer sentences -> findings, unless recently acknowledged."""

    kind = CueKind.CUSTOMER_FRUSTRATION

    def __init__(self, config: CustomerFrustrationConfig) -> None:
        self._cfg = config
        self._acknowledged_at: list[float] = []  # end times (media s) of acknowledgements
        self.moments: list[Moment] = []

    def on_scores(self, transcript: Transcript, scores: TextScores) -> list[Finding]:
        """Note an agent acknowledgement, or judge a customer sentence: a finding at its end
        (``measured`` = the frustration score) unless an acknowledgement ended within
        ``acknowledged_within_s`` before it. Both kinds are kept in ``moments``."""
        if acknowledges(scores):
            self._acknowledged_at.append(transcript.end_s)
            self.moments.append(Moment("empathy", transcript.end_s, transcript.text))
            return []
        if not is_frustrated(scores, self._cfg):
            return []
        window = self._cfg.acknowledged_within_s
        acknowledged = any(0.0 <= transcript.end_s - at <= window for at in self._acknowledged_at)
        self.moments.append(
            Moment("customer_frustration", transcript.end_s, transcript.text, acknowledged)
        )
        if acknowledged:
            return []
        assert scores.frustration is not None  # is_frustrated checked it
        return [
            Finding(
                kind=self.kind,
                at_s=transcript.end_s,
                span_start_s=transcript.start_s,
                span_end_s=transcript.end_s,
                rule="cues.customer_frustration.min_score",
                threshold=frustration_threshold(scores, self._cfg),
                measured=scores.frustration,
                unit="score",
                details={"quote": transcript.text, "utterance_id": transcript.utterance_id},
            )
        ]
