"""TextCueDetector: text-model verdicts on final transcripts -> findings, in media time."""

from __future__ import annotations

from assist.config import CuesConfig
from assist.detectors.text_cues import TextCueDetector, quote_times
from assist.events import Transcript, TranscriptWord
from assist.text.classify import TextVerdict


def transcript(channel: str, text: str, start_s: float, end_s: float) -> Transcript:
    """Words spaced evenly over the utterance, with Whisper's leading spaces."""
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


def agent_verdict(
    text: str, score: float = 0.0, category: str | None = None, empathy: float = 0.0
) -> TextVerdict:
    flagged = category is not None
    return TextVerdict(
        text,
        "agent",
        "negative_phrasing" if flagged else None,
        score,
        0.5,
        category=category,
        suggestion="What I can do is ..." if flagged else None,
        span=(0, 7) if flagged else None,
        empathy=empathy,
        empathy_threshold=0.4,
    )


def customer_verdict(text: str, score: float) -> TextVerdict:
    """As the classifier says it: flagged at its threshold (0.45) or above."""
    return TextVerdict(
        text, "customer", "customer_frustration" if score >= 0.45 else None, score, 0.45
    )


def test_negative_phrasing_is_found_at_the_sentence_end_with_the_quote_in_media_time() -> None:
    detector = TextCueDetector(CuesConfig())
    said = transcript("agent", "I can't refund that today", 10.0, 12.5)
    (finding,) = detector.feed(said, agent_verdict(said.text, 0.9, "cant_wont"))
    assert finding.kind == "negative_phrasing"
    assert finding.at_s == 12.5
    assert (finding.span_start_s, finding.span_end_s) == (10.0, 11.0)  # "I can't"
    assert finding.measured == 0.9
    assert finding.threshold == 0.5
    assert finding.details["quote"] == "I can't"
    assert finding.details["category"] == "cant_wont"
    assert finding.details["suggestion"] == "What I can do is ..."


def test_unflagged_agent_sentence_is_no_finding() -> None:
    said = transcript("agent", "Let me check that for you", 1.0, 2.0)
    assert TextCueDetector(CuesConfig()).feed(said, agent_verdict(said.text, 0.1)) == []


def test_frustration_without_acknowledgement_is_a_finding() -> None:
    detector = TextCueDetector(CuesConfig())
    said = transcript("customer", "This is the third time I called", 5.0, 7.0)
    (finding,) = detector.feed(said, customer_verdict(said.text, 0.97))
    assert finding.kind == "customer_frustration"
    assert (finding.at_s, finding.span_start_s, finding.span_end_s) == (7.0, 5.0, 7.0)
    assert finding.details["quote"] == said.text
    assert [(m.kind, m.acknowledged) for m in detector.moments] == [("customer_frustration", False)]


def test_an_earlier_acknowledgement_suppresses_the_frustration_nudge_within_the_window() -> None:
    detector = TextCueDetector(CuesConfig())  # acknowledged_within_s = 45
    ack = transcript("agent", "I understand how frustrating that is", 10.0, 12.0)
    assert detector.feed(ack, agent_verdict(ack.text, empathy=0.9)) == []
    within = transcript("customer", "This is a nightmare", 50.0, 57.0)  # 45 s after
    assert detector.feed(within, customer_verdict(within.text, 0.9)) == []
    later = transcript("customer", "I am sick of this", 55.0, 57.5)  # 45.5 s after
    assert [f.kind for f in detector.feed(later, customer_verdict(later.text, 0.9))] == [
        "customer_frustration"
    ]
    assert [(m.kind, m.acknowledged) for m in detector.moments] == [
        ("empathy", False),
        ("customer_frustration", True),
        ("customer_frustration", False),
    ]


def test_calm_customer_is_not_a_moment() -> None:
    detector = TextCueDetector(CuesConfig())
    said = transcript("customer", "Okay thank you", 1.0, 2.0)
    assert detector.feed(said, customer_verdict(said.text, 0.2)) == []
    assert detector.moments == []


def test_quote_times_fall_back_to_the_utterance_when_words_dont_spell_the_text() -> None:
    said = transcript("agent", "my card is [card]", 3.0, 5.0)
    redacted = said.model_copy(update={"text": "my card is [card] okay"})
    assert quote_times(redacted, (0, 2)) == (3.0, 5.0)
    assert quote_times(said, (3, 7)) == (3.5, 4.0)  # "card"


def test_an_acknowledgement_after_the_sentence_does_not_count_even_if_judged_first() -> None:
    """Agent finals are transcribed first: a later acknowledgement can arrive earlier."""
    detector = TextCueDetector(CuesConfig())
    ack = transcript("agent", "I understand how frustrating that is", 20.0, 22.0)
    detector.feed(ack, agent_verdict(ack.text, empathy=0.9))
    earlier = transcript("customer", "This is the third time I called", 5.0, 7.0)
    assert [f.kind for f in detector.feed(earlier, customer_verdict(earlier.text, 0.9))] == [
        "customer_frustration"
    ]
