"""``negative_phrasing``: an agent sentence like "I can't", "it's our policy", "you have
to", blame or "not my department", decided from the text model's scores.

The sentence is negative phrasing when 1 - P(none) reaches the threshold
(``[cues.negative_phrasing] min_score``, or the one stored with the model when that is 0);
its category is the most probable non-"none" class. A sentence holding a benign idiom
("there's no charge", "I can't wait to help") and no phrase of its category is let go
unless the score reaches ``STRONG_SCORE``. The finding is at the sentence's end, quotes
the phrase that carries the category (placed in media time through the word
timestamps) and carries the positive rewrite (worded in ``assist.nudges``). Pure.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from assist.config import NegativePhrasingConfig
from assist.detectors import CueDetector
from assist.events import Transcript
from assist.nudges import rewrite
from assist.text.phrases import benign_idiom, find_phrase
from assist.vocabulary import CueKind, Finding, TextScores

# A sentence with a benign idiom and no phrase of its category is flagged only when the
# model is this sure.
STRONG_SCORE = 0.9


@dataclass(frozen=True, slots=True)
class PhrasingDecision:
    """A sentence judged negative phrasing: its category and how strongly (0-1)."""

    category: str
    score: float


def decide_phrasing(
    text: str, probabilities: Sequence[float], labels: Sequence[str], threshold: float
) -> PhrasingDecision | None:
    """The decision on one agent sentence from the model's class probabilities
    (``labels[0]`` is "none"); None when it is not negative phrasing."""
    score = float(1.0 - probabilities[0])
    if not text or score < threshold:
        return None
    best = max(range(1, len(labels)), key=lambda i: probabilities[i])
    category = labels[best]
    if score < STRONG_SCORE and find_phrase(text, category) is None and benign_idiom(text):
        return None
    return PhrasingDecision(category, score)


def threshold_of(scores: TextScores, config: NegativePhrasingConfig) -> float:
    """``min_score`` when set, else the model's own threshold."""
    return config.min_score or float(scores.phrasing_model_threshold or 0.5)


def word_spans(text: str, words: Sequence[str]) -> list[tuple[int, int] | None]:
    """Characters of ``text`` each word covers, found in order; None for a word not in
    the text (redacted). Works with or without the recognizer's leading spaces."""
    spans: list[tuple[int, int] | None] = []
    position = 0
    for word in words:
        token = word.strip()
        at = text.find(token, position) if token else -1
        if at < 0:
            spans.append(None)
            continue
        spans.append((at, at + len(token)))
        position = at + len(token)
    return spans


def quote_times(transcript: Transcript, span: tuple[int, int]) -> tuple[float, float]:
    """Media time of the words that overlap characters ``span`` of the text; the whole
    utterance when no word can be placed."""
    spans = word_spans(transcript.text, [w.word for w in transcript.words])
    hit = [
        word
        for word, chars in zip(transcript.words, spans, strict=True)
        if chars is not None and chars[0] < span[1] and chars[1] > span[0]
    ]
    if not hit:
        return (transcript.start_s, transcript.end_s)
    return (hit[0].start_s, hit[-1].end_s)


class NegativePhrasingDetector(CueDetector):
    """Agent sentences the negative-phrasing model flags -> findings with quote and rewrite."""

    kind = CueKind.NEGATIVE_PHRASING

    def __init__(self, config: NegativePhrasingConfig) -> None:
        self._cfg = config

    def on_scores(self, transcript: Transcript, scores: TextScores) -> list[Finding]:
        """A finding at the end of an agent sentence the model flags (``decide_phrasing``):
        ``measured`` = 1 - P(none); ``details`` carry the category, the quoted phrase and its
        rewrite; the span is the quote's media time."""
        if scores.speaker != "agent" or not scores.phrasing:
            return []
        threshold = threshold_of(scores, self._cfg)
        labels = list(scores.phrasing)
        decision = decide_phrasing(scores.text, list(scores.phrasing.values()), labels, threshold)
        if decision is None:
            return []
        found = rewrite(scores.text, decision.category)
        start_s, end_s = quote_times(transcript, found.span)
        return [
            Finding(
                kind=self.kind,
                at_s=transcript.end_s,
                span_start_s=start_s,
                span_end_s=end_s,
                rule="cues.negative_phrasing.min_score",
                threshold=threshold,
                measured=decision.score,
                unit="score",
                details={
                    "category": decision.category,
                    "quote": scores.text[found.span[0] : found.span[1]],
                    "text": scores.text,
                    "suggestion": found.suggestion,
                    "utterance_id": transcript.utterance_id,
                },
            )
        ]
