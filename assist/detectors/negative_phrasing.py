"""``negative_phrasing``: an agent sentence like "I can't", "it's our policy", "you have
to", blame or "not my department", decided from the text model's scores.

The sentence is negative phrasing when 1 - P(none) reaches the threshold
(``[cues.negative_phrasing] min_score``, or the one stored with the model when that is 0);
its category is the most probable non-"none" class. A sentence holding a benign idiom
("there's no charge", "I can't wait to help") and no phrase of its category is let go
unless the score reaches ``STRONG_SCORE``. An utterance fires as a whole at the threshold,
or through one of its sentences alone at ``SENTENCE_ALONE`` (so one negative sentence
among neutral ones is not diluted), and the strongest of these is quoted (an utterance of
several sentences fires as a whole only with its category's phrase in it, or at
``STRONG_SCORE``); what ``assist.text.context.excused`` excuses given the customer's
previous turn (a line problem, "no problem" answering thanks, a bare "Right.") is let
go. The finding is at the utterance's end, quotes the phrase that carries the category
(placed in media time through the word timestamps) and carries the positive rewrite
(worded in ``assist.nudges``). Pure.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from assist.config import NegativePhrasingConfig
from assist.detectors import CueDetector
from assist.events import Transcript
from assist.nudges import rewrite
from assist.text.context import PreviousTurns, excused
from assist.text.phrases import benign_idiom, find_phrase
from assist.vocabulary import CueKind, Finding, TextScores

# A sentence with a benign idiom and no phrase of its category is flagged only when the
# model is this sure.
STRONG_SCORE = 0.9
# One sentence of a longer utterance fires on its own at this score (decide_utterance).
SENTENCE_ALONE = 0.9


@dataclass(frozen=True, slots=True)
class PhrasingDecision:
    """A sentence judged negative phrasing: its category and how strongly (0-1)."""

    category: str
    score: float


def decide_phrasing(
    text: str,
    probabilities: Sequence[float],
    labels: Sequence[str],
    threshold: float,
    several_sentences: bool = False,
) -> PhrasingDecision | None:
    """The decision on one agent sentence (``several_sentences``: an utterance of several
    judged as a whole) from the model's class probabilities (``labels[0]`` is "none");
    None when it is not negative phrasing.

    Short of ``STRONG_SCORE``, text with no phrase of its category is let go when it holds
    a benign idiom, or when it is several sentences: the whole is judged so that one
    negative sentence among neutral ones is not diluted, and when no sentence carries the
    category the score is spread over the utterance and a nudge would have nothing to
    quote (field case F10's echoed monologue as Whisper heard it on one CPU, "to do
    grammar and charge. So there are no surprising, ...", policy 0.56)."""
    score = float(1.0 - probabilities[0])
    if not text or score < threshold:
        return None
    best = max(range(1, len(labels)), key=lambda i: probabilities[i])
    category = labels[best]
    unquoted = score < STRONG_SCORE and find_phrase(text, category) is None
    if unquoted and (several_sentences or benign_idiom(text)):
        return None
    return PhrasingDecision(category, score)


def decide_sentence(
    scores: TextScores, threshold: float, previous: str | None = None
) -> PhrasingDecision | None:
    """The decision on one agent sentence's scores (``decide_phrasing``), knowing the
    customer's previous turn: what ``assist.text.context.excused`` excuses (a line problem,
    "no problem" answering thanks, a bare "Right.") is never negative phrasing."""
    if not scores.phrasing or excused("agent", previous, scores.text):
        return None
    phrasing = scores.phrasing
    return decide_phrasing(
        scores.text,
        list(phrasing.values()),
        list(phrasing),
        threshold,
        several_sentences=len(scores.sentences) > 1,
    )


def decide_utterance(
    scores: TextScores, threshold: float, previous: str | None = None
) -> tuple[TextScores, PhrasingDecision] | None:
    """What of an agent utterance fires most strongly, with its decision: the utterance as
    a whole at ``threshold``, or one of its ``sentences`` alone at ``SENTENCE_ALONE`` (or
    ``threshold`` when higher), each through ``decide_sentence``. None when nothing fires.

    A sentence judged without its neighbours loses what they say ("..., but here's what I
    can do"), so alone it must be clearly negative; the utterance as a whole dilutes one
    negative sentence among neutral ones, so that one is still caught."""
    alone = max(threshold, SENTENCE_ALONE)
    candidates = [(scores, threshold), *((s, alone) for s in scores.sentences)]
    fired = [
        (part, decision)
        for part, at in candidates
        if (decision := decide_sentence(part, at, previous)) is not None
    ]
    return max(fired, key=lambda f: f[1].score) if fired else None


def quote_span(utterance: str, sentence: TextScores, category: str) -> tuple[tuple[int, int], str]:
    """Where the phrase of ``category`` is in the utterance (characters) and its rewrite:
    the sentence's phrase (``assist.nudges.rewrite``) moved by the sentence's offset."""
    found = rewrite(sentence.text, category)
    offset = sentence.span[0] if sentence.span is not None else 0
    if sentence.span is None and sentence.text != utterance:
        offset = max(0, utterance.find(sentence.text))
    return (offset + found.span[0], offset + found.span[1]), found.suggestion


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
        self._turns = PreviousTurns()

    def on_final(self, transcript: Transcript, speech_s: float) -> list[Finding]:
        """Remember the final (the previous turn of the sentences after it)."""
        self._turns.add(transcript.channel, transcript.start_s, transcript.end_s, transcript.text)
        return []

    def on_scores(self, transcript: Transcript, scores: TextScores) -> list[Finding]:
        """A finding at the end of an agent utterance one of whose sentences the model flags
        (``decide_utterance``, with the customer's previous turn): ``measured`` = that
        sentence's 1 - P(none); ``details`` carry the category, the quoted phrase, the
        utterance and the rewrite; the span is the quote's media time."""
        if scores.speaker != "agent" or not scores.phrasing:
            return []
        threshold = threshold_of(scores, self._cfg)
        previous = self._turns.before("agent", transcript.start_s)
        fired = decide_utterance(scores, threshold, previous)
        if fired is None:
            return []
        sentence, decision = fired
        span, suggestion = quote_span(scores.text, sentence, decision.category)
        start_s, end_s = quote_times(transcript, span)
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
                    "quote": scores.text[span[0] : span[1]],
                    "text": scores.text,
                    "suggestion": suggestion,
                    "utterance_id": transcript.utterance_id,
                    "second_opinion": sentence.second_opinion,
                },
            )
        ]
