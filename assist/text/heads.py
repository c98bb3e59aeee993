"""The trained heads: softmax regression on sentence features, as ONNX files.

A head is one affine layer and a softmax, fitted here in float64 numpy (deterministic:
fixed data order, fixed steps, no randomness) and saved as a tiny ONNX graph
``features [n, FEATURE_DIM] -> probabilities [n, classes]`` (``FEATURE_DIM_E5`` for a
second opinion, ``assist.text.second_opinion``). Its class names and decision
threshold travel inside the file as metadata, so a model file is self-describing and the
runtime needs nothing but onnxruntime to use it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort

from assist.text.encoder import FEATURE_RECIPE, FEATURE_RECIPE_E5


class HeadMismatch(ValueError):
    """A head trained on other features than this code computes."""


@dataclass(frozen=True, slots=True)
class HeadFit:
    """A fitted head, float64: ``weights`` shape (features, classes), ``bias`` (classes,)."""

    weights: np.ndarray  # [features, classes] float64
    bias: np.ndarray  # [classes]


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax of ``logits``, shape (n, classes), shifted by each row's max for
    numerical stability."""
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=1, keepdims=True)


def move_threshold(probabilities: np.ndarray, source: float, target: float) -> np.ndarray:
    """``probabilities`` [n, classes] (class 0: nothing to flag) with the flag score (1 -
    P(class 0)) moved in logit space so that ``source`` lands on ``target``; the mix among
    the flag classes kept. float64."""
    probabilities = np.asarray(probabilities, dtype=np.float64)

    def logit(p: np.ndarray | float) -> np.ndarray:
        q = np.clip(np.asarray(p, dtype=np.float64), 1e-6, 1 - 1e-6)
        return np.log(q / (1 - q))

    flag = 1.0 - probabilities[:, 0]
    moved = 1.0 / (1.0 + np.exp(-(logit(flag) - logit(source) + logit(target))))
    rest = probabilities[:, 1:]
    mix = rest / np.maximum(rest.sum(axis=1, keepdims=True), 1e-12)
    out = np.empty_like(probabilities)
    out[:, 0] = 1.0 - moved
    out[:, 1:] = mix * moved[:, None]
    return out


class _SplitFeatures:
    """A feature matrix [n, dim] held for fast full-batch products: the columns with more
    than 5 % non-zeros (the sentence embeddings) as a dense float64 array, the rest (the
    hashed n-grams, over 99 % zeros) as a scipy CSR matrix, each with its transpose laid
    out for reading. Each descent step reads the whole matrix twice; split, a step costs
    about a fifth of the dense product. Training only (scipy: the ``train`` extra)."""

    def __init__(self, features: np.ndarray) -> None:
        from scipy import sparse  # the service never fits

        x = features.astype(np.float64)
        self.shape = x.shape
        self.dense = (x != 0).mean(axis=0) > 0.05  # [dim] bool
        self.x_dense = np.ascontiguousarray(x[:, self.dense])
        self.x_dense_t = np.ascontiguousarray(self.x_dense.T)
        self.x_sparse = sparse.csr_matrix(x[:, ~self.dense])
        self.x_sparse_t = self.x_sparse.T.tocsr()

    def times(self, w: np.ndarray) -> np.ndarray:
        """``x @ w`` for ``w`` [dim, k]: [n, k]."""
        return self.x_dense @ w[self.dense] + self.x_sparse @ w[~self.dense]

    def transposed_times(self, e: np.ndarray) -> np.ndarray:
        """``x.T @ e`` for ``e`` [n, k]: [dim, k]."""
        out = np.empty((self.shape[1], e.shape[1]))
        out[self.dense] = self.x_dense_t @ e
        out[~self.dense] = self.x_sparse_t @ e
        return out


def fit_softmax_regression(
    features: np.ndarray,
    labels: np.ndarray,
    n_classes: int,
    l2: float = 1e-3,
    steps: int = 1500,
    learning_rate: float = 2.0,
) -> HeadFit:
    """Class-balanced, L2-regularised cross-entropy by Nesterov gradient descent.

    Full batch, so the result depends only on the data and the arguments (the features
    are split as ``_SplitFeatures`` for speed; the products are the same to float64
    rounding).
    """
    x = _SplitFeatures(features)
    n, dim = x.shape
    counts = np.bincount(labels, minlength=n_classes).astype(np.float64)
    # Balanced: every class weighs as much in the loss, however many examples it has.
    sample_weight = (n / (n_classes * np.maximum(counts, 1.0)))[labels] / n
    onehot = np.eye(n_classes)[labels]
    w = np.zeros((dim, n_classes))
    b = np.zeros(n_classes)
    w_velocity = np.zeros_like(w)
    b_velocity = np.zeros_like(b)
    momentum = 0.9
    for _ in range(steps):
        w_ahead = w + momentum * w_velocity
        b_ahead = b + momentum * b_velocity
        error = (softmax(x.times(w_ahead) + b_ahead) - onehot) * sample_weight[:, None]
        grad_w = x.transposed_times(error) + l2 * w_ahead
        grad_b = error.sum(axis=0)
        w_velocity = momentum * w_velocity - learning_rate * grad_w
        b_velocity = momentum * b_velocity - learning_rate * grad_b
        w = w + w_velocity
        b = b + b_velocity
    return HeadFit(w, b)


def predict(fit: HeadFit, features: np.ndarray) -> np.ndarray:
    """Class probabilities, shape (n, classes), of features shape (n, FEATURE_DIM), in float64
    numpy (training and evaluation; the service runs the exported ONNX)."""
    return softmax(features.astype(np.float64) @ fit.weights + fit.bias)


def export_onnx(
    fit: HeadFit, labels: list[str], threshold: float, path: Path, recipe: str = FEATURE_RECIPE
) -> None:
    """Write the head as ONNX (opset 17) with its labels, threshold and feature recipe
    (``FEATURE_RECIPE`` or ``FEATURE_RECIPE_E5``) as metadata."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    dim, n_classes = fit.weights.shape
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["features", "weights"], ["scaled"]),
            helper.make_node("Add", ["scaled", "bias"], ["logits"]),
            helper.make_node("Softmax", ["logits"], ["probabilities"], axis=1),
        ],
        path.stem,
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, ["n", dim])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["n", n_classes])],
        initializer=[
            numpy_helper.from_array(fit.weights.astype(np.float32), "weights"),
            numpy_helper.from_array(fit.bias.astype(np.float32), "bias"),
        ],
    )
    model = helper.make_model(
        graph,
        producer_name="live-call-assist",
        opset_imports=[helper.make_opsetid("", 17)],
    )
    model.ir_version = 8  # readable by every onnxruntime this project supports
    helper.set_model_props(
        model,
        {
            "labels": json.dumps(labels),
            "threshold": f"{threshold:.4f}",
            "features": recipe,
        },
    )
    onnx.checker.check_model(model)
    path.write_bytes(model.SerializeToString())


def single_threaded_session(path: Path) -> tuple[ort.InferenceSession, dict[str, str]]:
    """An onnxruntime CPU session of the graph at ``path`` on one thread (the service runs
    many calls side by side) and the graph's metadata properties."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return session, dict(session.get_modelmeta().custom_metadata_map)


class Head:
    """A trained head loaded for inference."""

    def __init__(self, path: Path) -> None:
        self._session, meta = single_threaded_session(path)
        recipe = meta.get("features")
        if recipe not in (FEATURE_RECIPE, FEATURE_RECIPE_E5):
            raise HeadMismatch(
                f"{path} was trained on features {recipe!r}, this code computes "
                f"{FEATURE_RECIPE!r} or {FEATURE_RECIPE_E5!r}: rebuild it with assist train-text"
            )
        self.e5 = recipe == FEATURE_RECIPE_E5  # its features end with the e5 embedding
        self.labels: list[str] = json.loads(meta["labels"])
        self.threshold = float(meta["threshold"])
        self.path = path

    def probabilities(self, features: np.ndarray) -> np.ndarray:
        """Class probabilities, shape (n, classes) in ``labels`` order, of features shape
        (n, FEATURE_DIM), or (n, FEATURE_DIM_E5) when ``e5`` (cast to float32)."""
        (probs,) = self._session.run(None, {"features": features.astype(np.float32)})
        return np.asarray(probs)
