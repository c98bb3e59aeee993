"""A second opinion for a text head: where the first head (MiniLM features) is unsure of a
sentence, a second head that also sees the e5 embedding (``assist.text.encoder``) decides.

Why a cascade: the e5 embedding lifts the hard cases (litotes, sarcasm) and what Whisper
hears of natural speech, but costs about three times MiniLM's CPU per sentence, and most
sentences are clear to the small head. Measured on the customer-frustration sets
(docs/text-models-log.md, "A second opinion where the head is unsure"): the cascade
decides the held-out sets, the hard cases and Piper's recognizer output like the e5 head
alone while asking it about 16-18 % of the sentences.
Negative phrasing has had one too since 2026-12-03 (13 % of its held-out sentences asked).

Invariant: merged probabilities are decided against the *first* head's threshold. The
second head's flag score (1 - P(nothing to flag)) is moved in logit space so that its own
threshold lands on the first head's; among the flag classes its own mix is kept. So every
caller (detectors, ``assist classify``, training's evaluation) keeps one threshold per cue.
Only that point is matched: other cut-offs read the merged score as it is (``[cues.*]
min_score``, and a sentence alone firing at 0.9, ``SENTENCE_ALONE``), so a second opinion
can lift an unsure sentence past them as well as drop it under the threshold.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from assist.text.encoder import TokenStates
from assist.text.heads import Head, HeadMismatch, move_threshold
from assist.text.top import TOP_SUFFIX, FineTunedTop, TopMismatch, averaged

# The first head's flag score (1 - P(nothing to flag)) in which the second head is asked,
# inclusive. Chosen on the frustration sets: 0.1-0.95 and 0.2-0.9 gave the same held-out
# and hard-case F1 (0.946) as 0.3-0.8 while asking about 41 % and 28 % of all evaluation
# sentences and pieces instead of 18 %; 0.4-0.7 lost 0.4-0.8 points (docs/text-models-log.md).
UNSURE_BAND = (0.30, 0.80)
SECOND_SUFFIX = ".second.onnx"  # <task>.second.onnx beside <task>.onnx

Probabilities = Callable[[np.ndarray], np.ndarray]  # features [n, dim] -> [n, classes]


def unsure(first: np.ndarray, band: tuple[float, float] = UNSURE_BAND) -> np.ndarray:
    """Rows of the first head's probabilities [n, classes] whose flag score lies in ``band``."""
    flag = 1.0 - first[:, 0]
    return (flag >= band[0]) & (flag <= band[1])


def merge(
    first: np.ndarray,
    second: np.ndarray,
    rows: np.ndarray,
    first_threshold: float,
    second_threshold: float,
) -> np.ndarray:
    """The first head's probabilities [n, classes] with the rows ``rows`` (bool [n]) taken
    from the second head's ``second`` [rows.sum(), classes], its flag score moved so that
    ``second_threshold`` maps onto ``first_threshold`` (module docstring). float64."""
    merged = np.array(first, dtype=np.float64)
    if rows.any():
        merged[rows] = move_threshold(second, second_threshold, first_threshold)
    return merged


def cascade(
    texts: Sequence[str],
    features: np.ndarray,
    first: Probabilities,
    second: Probabilities,
    with_e5: Callable[[Sequence[str], np.ndarray], np.ndarray],
    first_threshold: float,
    second_threshold: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Class probabilities [n, classes] of ``texts`` (MiniLM ``features`` [n, FEATURE_DIM]):
    ``first`` on all, ``second`` on ``with_e5(unsure texts, their features)`` only; and
    which rows the second head decided (bool [n])."""
    first_probabilities = first(features)
    rows = unsure(first_probabilities)
    if not rows.any():
        return np.asarray(first_probabilities, dtype=np.float64), rows
    chosen = [text for text, ask in zip(texts, rows, strict=True) if ask]
    second_probabilities = second(with_e5(chosen, features[rows]))
    merged = merge(
        first_probabilities, second_probabilities, rows, first_threshold, second_threshold
    )
    return merged, rows


class JudgingHead:
    """A task's exported head, with its second opinion when ``<task>.second.onnx`` sits
    beside ``<task>.onnx`` and its fine-tuned top when ``<task>.top.onnx`` does
    (``assist.text.top``). ``labels`` and ``threshold`` are the first head's. Raises
    ``HeadMismatch`` when the first head wants e5 features or the second doesn't, or their
    labels differ, and ``TopMismatch`` for a top on other input or labels, or without the
    weight and threshold ``assist train-text`` gives it (caught at start, not on a live
    call's first sentence)."""

    def __init__(self, folder: Path, task: str) -> None:
        self.first = Head(folder / f"{task}.onnx")
        second = folder / f"{task}{SECOND_SUFFIX}"
        self.second = Head(second) if second.is_file() else None
        if self.first.e5:
            raise HeadMismatch(f"{self.first.path} wants e5 features: only a second opinion may")
        if self.second is not None and (
            not self.second.e5 or self.second.labels != self.first.labels
        ):
            raise HeadMismatch(
                f"{second} is no second opinion for {self.first.path} (it needs e5 features "
                "and the same labels): rebuild them with assist train-text"
            )
        self.labels = self.first.labels
        self.threshold = self.first.threshold
        self.path = self.first.path
        top_path = folder / f"{task}{TOP_SUFFIX}"
        self.top = FineTunedTop(top_path) if top_path.is_file() else None
        if self.top is not None and (
            self.top.labels != self.labels or self.top.weight is None or self.top.threshold is None
        ):
            raise TopMismatch(
                f"{top_path} is no top for {self.first.path} (it needs the same labels, a "
                "weight and a threshold): rebuild them with assist train-text"
            )

    def judge_alone(self) -> None:
        """Drop the second opinion (its encoder is not installed): the first head decides
        every sentence, at its own threshold."""
        self.second = None

    def probabilities(
        self,
        texts: Sequence[str],
        features: np.ndarray,
        with_e5: Callable[[Sequence[str], np.ndarray], np.ndarray],
        states: TokenStates | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Class probabilities [n, classes] and which rows the second head decided (bool
        [n]; ``cascade`` when there is a second opinion, else none), averaged with the
        top's when there is one, which reads ``states`` (the texts' token states from
        ``SentenceEncoder.encode_with_states``). Raises ``ValueError`` when a top has no
        ``states``."""
        if self.second is None:
            probabilities = np.asarray(self.first.probabilities(features), dtype=np.float64)
            asked = np.zeros(len(probabilities), dtype=bool)
        else:
            probabilities, asked = cascade(
                texts,
                features,
                self.first.probabilities,
                self.second.probabilities,
                with_e5,
                self.first.threshold,
                self.second.threshold,
            )
        if self.top is None:
            return probabilities, asked
        if states is None:
            raise ValueError(f"{self.top.path} reads token states: pass the texts' states")
        top = self.top.probabilities(states)
        weight, threshold = self.top.weight, self.top.threshold
        assert weight is not None and threshold is not None  # checked in __init__
        return averaged(probabilities, top, weight, threshold, self.threshold), asked
