"""A fine-tuned top for a text head: MiniLM's last two layers trained for the task
(``assist fine-tune-text``, ``assist.text.fine_tune``), run here without torch, and how
its probabilities join the head's.

The top reads the token states of MiniLM's layer 4 (``encoder.TOP_INPUT``), which the
encoder computes for the head's features anyway, so a sentence costs one more small graph
(a median of 0.8 ms on one core, int8, next to the encoder's 5.2 ms; measured
2026-12-05, docs/text-models-log.md) and no second encoder run.

Averaging: ``(1 - weight) * head + weight * top``, where ``head`` is what the head decides
with (its second opinion included). The average's own threshold (chosen by ``assist
train-text`` on out-of-fold predictions) is moved onto the head's in logit space, as a
second opinion's is (``assist.text.second_opinion``), so every caller keeps one threshold
per cue. A top ships beside its head as ``<task>.top.onnx`` with the weight and that
threshold as metadata; without the file the head decides alone.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from assist.text.encoder import TOP_INPUT, TokenStates
from assist.text.heads import move_threshold, single_threaded_session

if TYPE_CHECKING:
    from assist.text.train import Dataset

TOP_SUFFIX = ".top.onnx"  # <task>.top.onnx beside <task>.onnx
OOF_SUFFIX = ".top-oof.npz"  # its out-of-fold predictions (training only, models/tops/)
TOP_RECIPE = f"minilm-l6-int8 {TOP_INPUT} token states"


class TopMismatch(ValueError):
    """A top for another input, other labels or other training lines."""


def lines_sha256(dataset: Dataset) -> str:
    """Hash of a training set's lines in order (label, text and which line a recognizer's
    copy is of): a top and its out-of-fold predictions are only valid for these."""
    digest = hashlib.sha256()
    for text, label, copy_of in zip(dataset.texts, dataset.labels, dataset.copy_of, strict=True):
        digest.update(f"{label}\t{copy_of}\t{text}\n".encode())
    return digest.hexdigest()


def averaged(
    head: np.ndarray, top: np.ndarray, weight: float, threshold: float, head_threshold: float
) -> np.ndarray:
    """``(1 - weight) * head + weight * top`` (each [n, classes]) with its ``threshold``
    moved onto ``head_threshold`` (module docstring). float64 [n, classes]."""
    mean = (1.0 - weight) * np.asarray(head, dtype=np.float64) + weight * np.asarray(top)
    return move_threshold(mean, threshold, head_threshold)


def copy_with_metadata(source: Path, target: Path, changes: dict[str, str | None]) -> None:
    """Copy the ONNX graph ``source`` to ``target`` with its metadata properties changed:
    each key of ``changes`` set to its value, or removed where the value is None."""
    import onnx

    model = onnx.load(str(source))
    props = {p.key: p.value for p in model.metadata_props}
    for key, value in changes.items():
        if value is None:
            props.pop(key, None)
        else:
            props[key] = value
    del model.metadata_props[:]
    onnx.helper.set_model_props(model, props)
    target.write_bytes(model.SerializeToString())


def write_with_average(source: Path, target: Path, weight: float, threshold: float) -> None:
    """Copy the top graph ``source`` to ``target`` with ``weight`` and the average's
    ``threshold`` added to its metadata (what ``JudgingHead`` needs to use it)."""
    copy_with_metadata(source, target, {"weight": f"{weight:.4f}", "threshold": f"{threshold:.4f}"})


class FineTunedTop:
    """A top's ONNX graph loaded for inference: ``labels``; ``weight`` and ``threshold``
    (None in a freshly fine-tuned file, before ``assist train-text`` chose them);
    ``lines_sha256`` of its training lines. Raises ``TopMismatch`` for a graph on another
    input than ``TOP_RECIPE``."""

    def __init__(self, path: Path) -> None:
        self._session, meta = single_threaded_session(path)
        if meta.get("input") != TOP_RECIPE:
            raise TopMismatch(
                f"{path} reads {meta.get('input')!r}, this code gives {TOP_RECIPE!r}: "
                "rebuild it with assist fine-tune-text"
            )
        self.labels: list[str] = json.loads(meta["labels"])
        self.lines_sha256 = meta.get("lines_sha256", "")
        # recognizer copies of the lines it also trained on, per source (Task.top_heard)
        self.recognizer_copies: dict[str, int] = json.loads(meta.get("recognizer_copies", "{}"))
        self.weight = float(meta["weight"]) if "weight" in meta else None
        self.threshold = float(meta["threshold"]) if "threshold" in meta else None
        self.path = path

    def probabilities(self, states: TokenStates) -> np.ndarray:
        """Class probabilities [n, classes] (float64, ``labels`` order) of a padded batch,
        each text run alone on its real tokens: the int8 graph quantizes its activations
        with one scale per run, so a batch would let one text's score move with the
        others'."""
        return self.probabilities_of_states(states.unpadded())

    def probabilities_of_states(self, rows: Sequence[np.ndarray]) -> np.ndarray:
        """Like ``probabilities`` for unpadded token states (each [tokens, EMBEDDING_DIM])."""
        out = np.zeros((len(rows), len(self.labels)))
        for i, row in enumerate(rows):
            states = np.ascontiguousarray(row[None], dtype=np.float32)
            mask = np.ones((1, len(row)), dtype=np.float32)
            (probabilities,) = self._session.run(None, {"states": states, "mask": mask})
            out[i] = probabilities[0]
        return out
