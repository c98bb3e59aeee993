"""One channel's voice activity stream: 8 kHz samples in, scored 32 ms windows out.

Pure numpy; the scoring model comes in through the ``VadScorer`` protocol (in production
the shared Silero ONNX session, ``assist.vad.silero.SileroModel``), so the pipeline never
imports onnxruntime. Each window is prefixed with the previous window's last 32 samples
and carries the model's recurrent state, as Silero VAD expects.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from assist.vocabulary import WINDOW_SAMPLES, WindowActivity

CONTEXT_SAMPLES = 32
STATE_SHAPE = (2, 1, 128)


class VadScorer(Protocol):
    """Scores one window: ``run(window, state) -> (speech probability, new state)``."""

    def run(self, window: np.ndarray, state: np.ndarray) -> tuple[float, np.ndarray]:
        """Speech probability (0-1) of one window, ``CONTEXT_SAMPLES + WINDOW_SAMPLES`` float32
        samples at 8 kHz (shape (288,)), given the recurrent state (float32, ``STATE_SHAPE``);
        returned with the new state."""
        ...


SILENT_DBFS = -100.0
# Level of audio that never arrived: NaN compares false with every threshold, so a lost
# window is neither speech, nor music, nor line silence.
LOST_DBFS = float("nan")


class VadStream:
    """Cuts one channel's 8 kHz samples into windows and scores each one."""

    def __init__(self, model: VadScorer) -> None:
        self._model = model
        self._state = np.zeros(STATE_SHAPE, dtype=np.float32)
        self._buffer = np.zeros(CONTEXT_SAMPLES + WINDOW_SAMPLES, dtype=np.float32)
        self._filled = 0  # samples of the current window already in _buffer
        self._index = 0

    @property
    def position(self) -> int:
        """8 kHz samples taken so far (absolute sample index of the next one)."""
        return self._index * WINDOW_SAMPLES + self._filled

    def skip_to(self, position: int) -> tuple[int, int]:
        """Audio lost up to absolute 8 kHz sample ``position`` (past the current window):
        O(1), no window is scored. Returns ``(first, end)``, the lost windows
        ``first .. end - 1``: the one in progress (its heard start is lost with it) through the
        last one the gap covers. The window ``position`` falls in starts with silence for
        its lost part, and the model's recurrent state starts afresh, as at a new stream.
        Raises ``ValueError`` when ``position`` does not pass the current window."""
        first = self._index
        end = position // WINDOW_SAMPLES
        if end <= first:
            raise ValueError(
                f"a gap to sample {position} does not pass window {first}: fill it instead"
            )
        self._index = end
        self._filled = position - end * WINDOW_SAMPLES
        self._buffer[:] = 0.0
        self._state = np.zeros(STATE_SHAPE, dtype=np.float32)
        return first, end

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
