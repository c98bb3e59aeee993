"""Judge utterances: negative phrasing and empathy for the agent, frustration for the
customer. One encoder pass per utterance feeds every head of that speaker.

Used live (on final transcripts, off the event loop) and by ``assist classify``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np

from assist.nudges import ACKNOWLEDGE_FEELINGS
from assist.text.encoder import SentenceEncoder
from assist.text.heads import Head
from assist.text.rewrites import Rewrite, benign_idiom, rewrite

Speaker = Literal["agent", "customer"]
SPEAKERS: tuple[Speaker, ...] = ("agent", "customer")
DEFAULT_MODELS_DIR = Path(__file__).resolve().parents[2] / "models"
HEAD_FILES = ("negative_phrasing.onnx", "customer_frustration.onnx", "empathy.onnx")
# A sentence with a benign idiom ("there's no charge") and no phrase of its category is
# flagged only when the model is this sure.
STRONG_SCORE = 0.9


def phrasing_decision(
    text: str, probabilities: np.ndarray, threshold: float, labels: Sequence[str]
) -> tuple[str, Rewrite] | None:
    """(category, rewrite) when an agent sentence is negative phrasing, else None."""
    score = float(1.0 - probabilities[0])
    if not text or score < threshold:
        return None
    category = labels[int(np.argmax(probabilities[1:])) + 1]
    found = rewrite(text, category)
    if score < STRONG_SCORE and found.span == (0, len(text)) and benign_idiom(text):
        return None
    return category, found


class ModelsMissing(FileNotFoundError):
    """A head's ONNX file is not in the models folder."""


@dataclass(frozen=True, slots=True)
class TextVerdict:
    """What the text models make of one utterance."""

    text: str
    speaker: Speaker
    kind: str | None  # the nudge kind it would raise, None when not flagged
    score: float  # how strongly it is flagged, 0-1
    threshold: float
    category: str | None = None  # negative phrasing only
    suggestion: str | None = None
    span: tuple[int, int] | None = None  # characters of ``text`` that triggered it
    empathy: float | None = None  # agent only: acknowledgement score, 0-1
    empathy_threshold: float | None = None

    @property
    def acknowledges(self) -> bool:
        """The agent acknowledged the customer's feelings (credited, suppresses nudges)."""
        return (
            self.empathy is not None
            and self.empathy_threshold is not None
            and self.empathy >= self.empathy_threshold
        )

    @property
    def quote(self) -> str | None:
        return self.text[self.span[0] : self.span[1]] if self.span else None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "text": self.text,
            "speaker": self.speaker,
            "kind": self.kind,
            "score": round(self.score, 4),
            "threshold": self.threshold,
            "category": self.category,
            "suggestion": self.suggestion,
            "span": list(self.span) if self.span else None,
            "quote": self.quote,
        }
        if self.speaker == "agent":
            out["empathy"] = None if self.empathy is None else round(self.empathy, 4)
            out["acknowledges"] = self.acknowledges
        return out


class TextClassifier:
    """Loads the encoder and the three heads; ``classify`` is thread-safe."""

    def __init__(
        self,
        models_dir: Path | None = None,
        threads: int = 1,
        phrasing_min_score: float = 0.0,
        frustration_min_score: float = 0.0,
    ) -> None:
        """``*_min_score``: the flagging threshold in place of the one stored in the
        model (0 keeps the model's; ``[cues.*] min_score`` live)."""
        folder = models_dir or DEFAULT_MODELS_DIR
        missing = [name for name in HEAD_FILES if not (folder / name).is_file()]
        if missing:
            raise ModelsMissing(
                f"text models missing in {folder}: {', '.join(missing)} "
                "(rebuild them with: assist train-text)"
            )
        self.encoder = SentenceEncoder(threads)
        self.negative_phrasing = Head(folder / "negative_phrasing.onnx")
        self.frustration = Head(folder / "customer_frustration.onnx")
        self.empathy = Head(folder / "empathy.onnx")
        self.negative_phrasing.threshold = phrasing_min_score or self.negative_phrasing.threshold
        self.frustration.threshold = frustration_min_score or self.frustration.threshold

    def classify(self, speaker: Speaker, texts: Sequence[str]) -> list[TextVerdict]:
        if speaker not in SPEAKERS:
            raise ValueError(f"speaker must be one of {SPEAKERS}, not {speaker!r}")
        texts = [t.strip() for t in texts]
        features = self.encoder.encode(texts)
        if speaker == "customer":
            scores = _flag_scores(self.frustration, features)
            return [self._frustration(t, float(s)) for t, s in zip(texts, scores, strict=True)]
        phrasing = self.negative_phrasing.probabilities(features)
        empathy = _flag_scores(self.empathy, features)
        return [
            self._negative_phrasing(text, probs, float(ack))
            for text, probs, ack in zip(texts, phrasing, empathy, strict=True)
        ]

    def _frustration(self, text: str, score: float) -> TextVerdict:
        head = self.frustration
        flagged = bool(text) and score >= head.threshold
        return TextVerdict(
            text,
            "customer",
            "customer_frustration" if flagged else None,
            float(score),
            head.threshold,
            suggestion=ACKNOWLEDGE_FEELINGS if flagged else None,
            span=(0, len(text)) if flagged else None,
        )

    def _negative_phrasing(self, text: str, probs: np.ndarray, empathy: float) -> TextVerdict:
        head = self.negative_phrasing
        score = float(1.0 - probs[0])
        verdict = TextVerdict(
            text,
            "agent",
            None,
            score,
            head.threshold,
            empathy=empathy,
            empathy_threshold=self.empathy.threshold,
        )
        decision = phrasing_decision(text, probs, head.threshold, head.labels)
        if decision is None:
            return verdict
        category, found = decision
        return replace(
            verdict,
            kind="negative_phrasing",
            category=category,
            suggestion=found.suggestion,
            span=found.span,
        )


def _flag_scores(head: Head, features: np.ndarray) -> np.ndarray:
    """1 - P(nothing to flag) per text."""
    return 1.0 - head.probabilities(features)[:, 0]


class LiveTextJudge:
    """The text models for live calls, on their own worker thread: an utterance takes a
    few milliseconds of CPU, which must not stall the event loop carrying the audio."""

    def __init__(self, classifier: TextClassifier) -> None:
        self.classifier = classifier
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="text")

    def judge(self, speaker: Speaker, text: str) -> asyncio.Future[TextVerdict]:
        loop = asyncio.get_running_loop()
        return loop.run_in_executor(self._executor, self._one, speaker, text)

    def _one(self, speaker: Speaker, text: str) -> TextVerdict:
        return self.classifier.classify(speaker, [text])[0]

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
