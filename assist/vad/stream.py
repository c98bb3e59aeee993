"""One channel's voice activity stream: 8 kHz samples in, scored 32 ms windows out.

Pure numpy; the scoring model comes in through the ``VadScorer`` protocol (in production
the shared Silero ONNX session, ``assist.vad.silero.SileroModel``), so the pipeline never
imports onnxruntime. Each window is prefixed with the previous window's last 32 samples
and carries the model's recurrent state, as Silero VAD expects.

A call's channels move in lockstep (the same samples per frame), so their windows complete
together: ``feed_lockstep`` scores them in one model run per window step where the scorer
is a ``BatchVadScorer``. The model runs on the event loop for every window of every
channel, and for Silero one run of two windows costs little more than a run of one (about
0.17 against 0.15 ms on one core: onnxruntime's per-run overhead outweighs the model).
"""

from __future__ import annotations

from collections.abc import Sequence
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


class BatchVadScorer(VadScorer, Protocol):
    """A ``VadScorer`` that also scores windows of several streams in one run."""

    def run_batch(self, windows: np.ndarray, states: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Windows of B independent streams, float32 (B, 288), and their states stacked on
        axis 1, (2, B, 128) -> (speech probabilities (B,), new states (2, B, 128)); row ``i``
        exactly as ``run(windows[i], states[:, i:i + 1])`` would score it."""
        ...


def _score(
    model: VadScorer, windows: list[np.ndarray], states: list[np.ndarray]
) -> list[tuple[float, np.ndarray]]:
    """(probability, new state) of each stream's window: one batched run where the model
    is a ``BatchVadScorer`` and there is more than one window, else one run each."""
    run_batch = getattr(model, "run_batch", None)
    if len(windows) > 1 and run_batch is not None:
        probabilities, new_states = run_batch(np.stack(windows), np.concatenate(states, axis=1))
        return [
            (float(p), np.ascontiguousarray(new_states[:, i : i + 1, :]))
            for i, p in enumerate(probabilities)
        ]
    return [model.run(w, s) for w, s in zip(windows, states, strict=True)]


def feed_lockstep(
    streams: Sequence[VadStream], samples: Sequence[np.ndarray], scored: bool = True
) -> list[list[WindowActivity]]:
    """``[stream.feed(s, scored) for stream, s in zip(streams, samples)]``, with the windows
    that complete at the same step of several streams (a call's channels: same sample
    counts) scored in one model run. The streams must share one model. Each stream's
    windows are still scored in order, with its own state, so the result is the same as
    feeding each stream alone."""
    out: list[list[WindowActivity]] = [[] for _ in streams]
    taken = [0] * len(streams)
    while True:
        ready = []
        for i, (stream, chunk) in enumerate(zip(streams, samples, strict=True)):
            taken[i] = stream._fill(chunk, taken[i])
            if stream._filled == WINDOW_SAMPLES:
                ready.append(i)
        if not ready:
            return out
        if scored:
            model = streams[ready[0]]._model
            scores = _score(
                model,
                [streams[i]._buffer for i in ready],
                [streams[i]._state for i in ready],
            )
        for k, i in enumerate(ready):
            stream = streams[i]
            if scored:
                stream._state = scores[k][1]
                out[i].append(stream._emit(scores[k][0]))
            else:
                out[i].append(stream._emit(None))


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
        return feed_lockstep([self], [samples], scored)[0]

    def _fill(self, samples: np.ndarray, pos: int) -> int:
        """Copy ``samples[pos:]`` into the window in progress until it is full or they run
        out; returns the new ``pos``. A full window waits for ``_emit``."""
        if self._filled == WINDOW_SAMPLES:
            return pos
        take = min(WINDOW_SAMPLES - self._filled, len(samples) - pos)
        start = CONTEXT_SAMPLES + self._filled
        self._buffer[start : start + take] = samples[pos : pos + take]
        self._filled += take
        return pos + take

    def _emit(self, prob: float | None) -> WindowActivity:
        """The full window with its speech probability (None: lost, not scored), and the
        next one started with its context; the state was already advanced by the caller."""
        window = self._buffer[CONTEXT_SAMPLES:]
        power = float(np.dot(window, window)) / WINDOW_SAMPLES
        dbfs = 10.0 * np.log10(power) if power > 1e-10 else SILENT_DBFS
        if prob is None:
            prob, dbfs = 0.0, LOST_DBFS
        activity = WindowActivity(self._index, prob, dbfs)
        self._index += 1
        self._buffer[:CONTEXT_SAMPLES] = self._buffer[-CONTEXT_SAMPLES:]
        self._filled = 0
        return activity
