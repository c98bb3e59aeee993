"""Text cues: the detectors decide from the text models' scores, in media time.

Words are built as faster-whisper returns them: each with its leading space, and
punctuation attached to the word before it.
"""

from __future__ import annotations

import dataclasses

import pytest

from assist.config import CustomerFrustrationConfig, NegativePhrasingConfig
from assist.detectors.customer_frustration import CustomerFrustrationDetector
from assist.detectors.negative_phrasing import (
    NegativePhrasingDetector,
    decide_phrasing,
    quote_times,
)
from assist.events import Transcript, TranscriptWord
from assist.scorecard import said_during
from assist.text.phrases import CATEGORIES
from assist.vocabulary import CueKind, TextScores

LABELS = ("none", *CATEGORIES)


def transcript(channel: str, text: str, start_s: float, end_s: float) -> Transcript:
    """Words spaced evenly over the utterance, each with Whisper's leading space."""
    words = text.split()
    step = (end_s - start_s) / len(words)
    return Transcript(
        call_id="c1",
        channel=channel,
        utterance_id=1,
        text=text,
        start_s=start_s,
        end_s=end_s,
        final=True,
        words=[
            TranscriptWord(
                word=" " + w,
                start_s=round(start_s + i * step, 3),
                end_s=round(start_s + (i + 1) * step, 3),
                probability=0.9,
            )
            for i, w in enumerate(words)
        ],
    )


def agent_scores(
    text: str, score: float = 0.0, category: str = "cant_wont", empathy: float = 0.0
) -> TextScores:
    """The negative-phrasing head's probabilities: ``score`` on ``category``."""
    phrasing = {label: 0.0 for label in LABELS}
    phrasing["none"] = 1.0 - score
    phrasing[category] = score
    return TextScores(
        text,
        "agent",
        phrasing=phrasing,
        phrasing_model_threshold=0.5,
        empathy=empathy,
        empathy_model_threshold=0.4,
    )


def customer_scores(text: str, score: float) -> TextScores:
    return TextScores(text, "customer", frustration=score, frustration_model_threshold=0.45)


def test_negative_phrasing_is_found_at_the_sentence_end_with_the_quote_in_media_time() -> None:
    detector = NegativePhrasingDetector(NegativePhrasingConfig())
    said = transcript("agent", "I can't refund that today", 10.0, 12.5)
    (finding,) = detector.on_scores(said, agent_scores(said.text, 0.9))
    assert finding.kind == CueKind.NEGATIVE_PHRASING
    assert finding.at_s == 12.5
    assert (finding.span_start_s, finding.span_end_s) == (10.0, 11.0)  # "I can't"
    assert finding.measured == 0.9
    assert finding.threshold == 0.5
    assert finding.details["quote"] == "I can't"
    assert finding.details["category"] == "cant_wont"
    assert finding.details["suggestion"] == (
        "While I'm not able to refund that today, what I can do is ..."
    )
    assert finding.details["second_opinion"] is False


def test_the_evidence_says_when_the_second_opinion_decided() -> None:
    detector = NegativePhrasingDetector(NegativePhrasingConfig())
    said = transcript("agent", "I can't refund that today", 10.0, 12.5)
    scores = dataclasses.replace(agent_scores(said.text, 0.7), second_opinion=True)
    (finding,) = detector.on_scores(said, scores)
    assert finding.details["second_opinion"] is True


def test_min_score_replaces_the_models_threshold_both_ways() -> None:
    said = transcript("agent", "I can't refund that", 1.0, 2.0)
    looser = NegativePhrasingDetector(NegativePhrasingConfig(min_score=0.3))
    stricter = NegativePhrasingDetector(NegativePhrasingConfig(min_score=0.95))
    assert [f.threshold for f in looser.on_scores(said, agent_scores(said.text, 0.4))] == [0.3]
    assert stricter.on_scores(said, agent_scores(said.text, 0.9)) == []


def test_unflagged_agent_sentence_is_no_finding() -> None:
    said = transcript("agent", "Let me check that for you", 1.0, 2.0)
    detector = NegativePhrasingDetector(NegativePhrasingConfig())
    assert detector.on_scores(said, agent_scores(said.text, 0.1)) == []


@pytest.mark.parametrize(
    ("text", "score", "flagged"),
    [
        ("There's no charge for that.", 0.6, False),  # benign idiom, no phrase, not sure
        ("There's no charge for that.", 0.95, True),  # ... unless the model is very sure
        ("I can't wait to help, but I can't refund it.", 0.6, True),  # the phrase is there
    ],
)
def test_benign_idioms_need_a_strong_score(text: str, score: float, flagged: bool) -> None:
    probabilities = [1.0 - score, score] + [0.0] * (len(LABELS) - 2)
    assert (decide_phrasing(text, probabilities, LABELS, 0.5) is not None) is flagged


def test_frustration_without_acknowledgement_is_a_finding() -> None:
    detector = CustomerFrustrationDetector(CustomerFrustrationConfig())
    said = transcript("customer", "This is the third time I called", 5.0, 7.0)
    (finding,) = detector.on_scores(said, customer_scores(said.text, 0.97))
    assert finding.kind == CueKind.CUSTOMER_FRUSTRATION
    assert (finding.at_s, finding.span_start_s, finding.span_end_s) == (7.0, 5.0, 7.0)
    assert finding.details["quote"] == said.text
    assert [(m.kind, m.acknowledged) for m in detector.moments] == [("customer_frustration", False)]


def test_an_earlier_acknowledgement_suppresses_the_frustration_nudge_within_the_window() -> None:
    detector = CustomerFrustrationDetector(CustomerFrustrationConfig())  # 45 s window
    ack = transcript("agent", "I understand how frustrating that is", 10.0, 12.0)
    assert detector.on_scores(ack, agent_scores(ack.text, empathy=0.9)) == []
    within = transcript("customer", "This is a nightmare", 50.0, 57.0)  # 45 s after
    assert detector.on_scores(within, customer_scores(within.text, 0.9)) == []
    later = transcript("customer", "I am sick of this", 55.0, 57.5)  # 45.5 s after
    assert [f.kind for f in detector.on_scores(later, customer_scores(later.text, 0.9))] == [
        "customer_frustration"
    ]
    assert [(m.kind, m.acknowledged) for m in detector.moments] == [
        ("empathy", False),
        ("customer_frustration", True),
        ("customer_frustration", False),
    ]


def test_calm_customer_is_not_a_moment() -> None:
    detector = CustomerFrustrationDetector(CustomerFrustrationConfig())
    said = transcript("customer", "Okay thank you", 1.0, 2.0)
    assert detector.on_scores(said, customer_scores(said.text, 0.2)) == []
    assert detector.moments == []


def test_an_acknowledgement_after_the_sentence_does_not_count_even_if_judged_first() -> None:
    """Agent finals are transcribed first: a later acknowledgement can arrive earlier."""
    detector = CustomerFrustrationDetector(CustomerFrustrationConfig())
    ack = transcript("agent", "I understand how frustrating that is", 20.0, 22.0)
    detector.on_scores(ack, agent_scores(ack.text, empathy=0.9))
    earlier = transcript("customer", "This is the third time I called", 5.0, 7.0)
    assert [f.kind for f in detector.on_scores(earlier, customer_scores(earlier.text, 0.9))] == [
        "customer_frustration"
    ]


def test_quote_times_place_the_phrase_with_words_as_whisper_returns_them() -> None:
    said = transcript("agent", "Sorry, I can't refund that.", 3.0, 8.0)  # 5 words, 1 s each
    assert [w.word for w in said.words][:2] == [" Sorry,", " I"]
    assert quote_times(said, (7, 14)) == (4.0, 6.0)  # "I can't"
    stripped = said.model_copy(
        update={"words": [w.model_copy(update={"word": w.word.strip()}) for w in said.words]}
    )
    assert quote_times(stripped, (7, 14)) == (4.0, 6.0)


def test_quote_times_skip_redacted_words_and_fall_back_to_the_utterance() -> None:
    said = transcript("agent", "my card is [card] okay", 3.0, 8.0)
    redacted = said.model_copy(
        update={
            "words": [
                w.model_copy(update={"word": "[redacted]"}) if w.word == " [card]" else w
                for w in said.words
            ]
        }
    )
    assert quote_times(redacted, (3, 7)) == (4.0, 5.0)  # "card"
    assert quote_times(redacted, (11, 17)) == (3.0, 8.0)  # "[card]": no word to place


def test_said_during_reads_like_the_sentence() -> None:
    said = transcript("agent", "I can't refund that", 1.0, 3.0)
    assert said_during([said], 1.0, 3.0) == {"agent": "I can't refund that"}
