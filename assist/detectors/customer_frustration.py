"""``customer_frustration``: a customer sentence that sounds fed up, not yet acknowledged.

Decided from the text models' scores: an utterance is frustrated when its frustration
score reaches the threshold (``[cues.customer_frustration] min_score``, or the one stored
with the model when that is 0), or one of its sentences' alone reaches
``SENTENCE_ALONE`` (as for negative phrasing). It becomes a finding (at the utterance's
end, quoting its most frustrated sentence) unless the agent acknowledged feelings within
``acknowledged_within_s`` before it ended: the agent's utterances count as
acknowledgements when the empathy model's score of the utterance or one of its sentences
reaches its stored threshold. What ``assist.text.context.excused`` excuses given the
agent's previous turn (a line problem, "no worries" answering an apology, "no, that is
all" answering "anything else?") is never frustration, nor quoted. Transcripts may come
back out of order (agent finals are transcribed first), so only acknowledgements that
ended before count. Every acknowledgement and every frustrated utterance is kept as a
``Moment`` for the scorecard, nudged or not. Pure.
"""

from __future__ import annotations

from dataclasses import dataclass

from assist.config import CustomerFrustrationConfig
from assist.detectors import CueDetector
from assist.detectors.negative_phrasing import SENTENCE_ALONE
from assist.events import Transcript
from assist.text.context import PreviousTurns, excused, line_problem
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


def frustrated_sentence(
    scores: TextScores, threshold: float, previous: str | None = None
) -> TextScores | None:
    """What of a customer utterance is most frustrated: the utterance as a whole at
    ``threshold``, or one of its ``sentences`` alone at ``SENTENCE_ALONE`` (or
    ``threshold`` when higher); a sentence ``excused`` given ``previous`` never counts
    (``assist.text.context``). None when nothing is."""
    if scores.speaker != "customer":
        return None
    alone = max(threshold, SENTENCE_ALONE)
    candidates = [(scores, threshold), *((s, alone) for s in scores.sentences)]
    fired = [
        part
        for part, at in candidates
        if part.text
        and part.frustration is not None
        and part.frustration >= at
        and not excused("customer", previous, part.text)
    ]
    return max(fired, key=lambda s: s.frustration or 0.0) if fired else None


def is_frustrated(
    scores: TextScores, config: CustomerFrustrationConfig, previous: str | None = None
) -> bool:
    """A customer utterance with a sentence the frustration model flags
    (``frustrated_sentence``)."""
    threshold = frustration_threshold(scores, config)
    return frustrated_sentence(scores, threshold, previous) is not None


def acknowledges(scores: TextScores) -> bool:
    """An agent utterance with a sentence that acknowledges the customer's feelings (the
    empathy model at or above its stored threshold; a line problem never does)."""
    return scores.speaker == "agent" and any(
        not line_problem(sentence.text)
        and sentence.empathy is not None
        and sentence.empathy_model_threshold is not None
        and sentence.empathy >= sentence.empathy_model_threshold
        for sentence in scores.parts
    )


def quoted_part(scores: TextScores, fired: TextScores, previous: str | None) -> TextScores:
    """What to quote of a customer utterance whose ``fired`` part (``frustrated_sentence``)
    fired: that sentence, or when the whole utterance fired, its most frustrated sentence
    that context does not excuse (the whole when every one is)."""
    if fired is scores and scores.sentences:
        quotable = [s for s in scores.sentences if not excused("customer", previous, s.text)]
        return max(quotable, key=lambda s: s.frustration or 0.0) if quotable else scores
    return fired


class CustomerFrustrationDetector(CueDetector):
    """Frustrated customer sentences -> findings, unless recently acknowledged."""

    kind = CueKind.CUSTOMER_FRUSTRATION

    def __init__(self, config: CustomerFrustrationConfig) -> None:
        self._cfg = config
        self._acknowledged_at: list[float] = []  # end times (media s) of acknowledgements
        self._turns = PreviousTurns()
        self.moments: list[Moment] = []

    def on_final(self, transcript: Transcript, speech_s: float) -> list[Finding]:
        """Remember the final (the previous turn of the sentences after it)."""
        self._turns.add(transcript.channel, transcript.start_s, transcript.end_s, transcript.text)
        return []

    def on_scores(self, transcript: Transcript, scores: TextScores) -> list[Finding]:
        """Note an agent acknowledgement, or judge a customer utterance: a finding at its
        end (``measured`` = its most frustrated sentence's score, quoted) unless an
        acknowledgement ended within ``acknowledged_within_s`` before it. Both kinds are
        kept in ``moments``."""
        if acknowledges(scores):
            self._acknowledged_at.append(transcript.end_s)
            self.moments.append(Moment("empathy", transcript.end_s, transcript.text))
            return []
        threshold = frustration_threshold(scores, self._cfg)
        previous = self._turns.before("customer", transcript.start_s)
        sentence = frustrated_sentence(scores, threshold, previous)
        if sentence is None:
            return []
        window = self._cfg.acknowledged_within_s
        acknowledged = any(0.0 <= transcript.end_s - at <= window for at in self._acknowledged_at)
        self.moments.append(
            Moment("customer_frustration", transcript.end_s, transcript.text, acknowledged)
        )
        if acknowledged:
            return []
        assert sentence.frustration is not None  # frustrated_sentence checked it
        return [
            Finding(
                kind=self.kind,
                at_s=transcript.end_s,
                span_start_s=transcript.start_s,
                span_end_s=transcript.end_s,
                rule="cues.customer_frustration.min_score",
                threshold=threshold,
                measured=sentence.frustration,
                unit="score",
                details={
                    "quote": quoted_part(scores, sentence, previous).text,
                    "utterance_id": transcript.utterance_id,
                    "second_opinion": sentence.second_opinion,
                },
            )
        ]
