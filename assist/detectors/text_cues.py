"""``negative_phrasing`` and ``customer_frustration``: cues from what was said.

Fed each final transcript with the text models' verdict on it. An agent sentence the
negative-phrasing model flags is a finding at the sentence's end, with its category, the
quoted phrase (placed in media time through the word timestamps) and the rewrite. A
customer sentence the frustration model flags is a finding unless the agent acknowledged
feelings (the empathy model) within ``acknowledged_within_s`` before it ended: the
feeling was already heard. Every acknowledgement and every frustrated sentence is kept
for the scorecard, nudged or not. Pure: media time only.
"""

from __future__ import annotations

from dataclasses import dataclass

from assist.config import CuesConfig
from assist.events import Finding, Transcript
from assist.text.classify import TextVerdict
from assist.text.rewrites import CATEGORY_LABELS


@dataclass(frozen=True, slots=True)
class Moment:
    """A sentence the text models noticed, for the scorecard."""

    kind: str  # "empathy" (agent acknowledged) or "customer_frustration"
    at_s: float  # media time the sentence ended
    text: str
    acknowledged: bool = False  # frustration only: the agent had acknowledged already


def quote_times(transcript: Transcript, span: tuple[int, int]) -> tuple[float, float]:
    """Media time of the words that overlap characters ``span`` of the text.

    Whisper's words concatenate (with their leading spaces) to the text; when they don't
    (redaction rewrote some), the whole utterance is the answer.
    """
    whole = (transcript.start_s, transcript.end_s)
    joined = "".join(w.word for w in transcript.words)
    offset = len(joined) - len(joined.lstrip())
    if joined.strip() != transcript.text.strip() or not transcript.words:
        return whole
    start = end = None
    position = -offset
    for word in transcript.words:
        word_start, word_end = position, position + len(word.word)
        position = word_end
        if word_end <= span[0] or word_start >= span[1]:
            continue
        start = word.start_s if start is None else start
        end = word.end_s
    return (start, end) if start is not None and end is not None else whole


class TextCueDetector:
    def __init__(self, cues: CuesConfig) -> None:
        self._frustration = cues.customer_frustration
        # End times of the agent's acknowledgements. Transcripts may come back out of
        # order (agent finals are transcribed first), so only ones before count.
        self._acknowledged_at: list[float] = []
        self.moments: list[Moment] = []

    def feed(self, transcript: Transcript, verdict: TextVerdict) -> list[Finding]:
        if verdict.speaker == "agent":
            if verdict.acknowledges:
                self._acknowledged_at.append(transcript.end_s)
                self.moments.append(Moment("empathy", transcript.end_s, transcript.text))
            return self._negative_phrasing(transcript, verdict)
        return self._customer_frustration(transcript, verdict)

    def _negative_phrasing(self, transcript: Transcript, verdict: TextVerdict) -> list[Finding]:
        if verdict.kind != "negative_phrasing" or verdict.category is None or not verdict.span:
            return []
        start_s, end_s = quote_times(transcript, verdict.span)
        return [
            Finding(
                kind="negative_phrasing",
                at_s=transcript.end_s,
                span_start_s=start_s,
                span_end_s=end_s,
                rule="cues.negative_phrasing.min_score",
                threshold=verdict.threshold,
                measured=verdict.score,
                unit="score",
                details={
                    "category": verdict.category,
                    "category_label": CATEGORY_LABELS[verdict.category],
                    "quote": verdict.quote,
                    "text": transcript.text,
                    "suggestion": verdict.suggestion,
                    "utterance_id": transcript.utterance_id,
                },
            )
        ]

    def _customer_frustration(self, transcript: Transcript, verdict: TextVerdict) -> list[Finding]:
        if verdict.kind != "customer_frustration":
            return []
        window = self._frustration.acknowledged_within_s
        acknowledged = any(0.0 <= transcript.end_s - at <= window for at in self._acknowledged_at)
        self.moments.append(
            Moment("customer_frustration", transcript.end_s, transcript.text, acknowledged)
        )
        if acknowledged:
            return []
        return [
            Finding(
                kind="customer_frustration",
                at_s=transcript.end_s,
                span_start_s=transcript.start_s,
                span_end_s=transcript.end_s,
                rule="cues.customer_frustration.min_score",
                threshold=verdict.threshold,
                measured=verdict.score,
                unit="score",
                details={"quote": transcript.text, "utterance_id": transcript.utterance_id},
            )
        ]
