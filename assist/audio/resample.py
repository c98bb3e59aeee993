"""Streaming sample-rate conversion that keeps state across frames (soxr).

A model that needs another rate than the line gets its own ``StreamResampler`` per
channel, so frame boundaries never click and the sample count stays exact over a call.
"""

from __future__ import annotations

import numpy as np
import soxr


class StreamResampler:
    """Convert a mono float32 stream from ``in_rate`` to ``out_rate`` chunk by chunk."""

    def __init__(self, in_rate: int, out_rate: int) -> None:
        self.in_rate = in_rate
        self.out_rate = out_rate
        self._stream = (
            None if in_rate == out_rate else soxr.ResampleStream(in_rate, out_rate, 1, "float32")
        )

    def process(self, samples: np.ndarray, last: bool = False) -> np.ndarray:
        """Resample the next chunk (mono, shape (samples,), cast to float32).

        The output length varies from chunk to chunk (the filter holds back a delay, so the
        first chunks may come back empty); ``last=True`` flushes what it holds at the end of the
        stream. With equal rates the input is returned unchanged.
        """
        if self._stream is None:
            return samples
        return self._stream.resample_chunk(samples.astype(np.float32, copy=False), last=last)

    def reset(self) -> None:
        """Start a new stream (after ``process(..., last=True)`` flushed the old one): the
        filter forgets what it held, as at a discontinuity (audio lost in between)."""
        if self._stream is not None:
            self._stream.clear()
