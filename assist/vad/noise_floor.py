"""A channel's noise floor (dBFS), for judging loudness against the line's own noise.

Lines differ by 30 dB in their noise: a clean VoIP leg is digitally quiet, an old copper
line or a cheap headset hisses at -45 dBFS. Fixed levels can't tell hiss from hold music
or from faint speech; "this far above the line's floor" can. Used by the hold inference
(music must stand above the agent line's floor) and the voice gate (speech must start
above its channel's floor). Pure.
"""

from __future__ import annotations

import math
from collections import deque

from assist.vocabulary import WINDOW_S


class NoiseFloor:
    """A channel's noise floor by minimum statistics (R. Martin, "Noise power spectral
    density estimation based on optimal smoothing and minimum statistics", IEEE Trans.
    Speech Audio Process. 9(5), 2001, here on broadband levels): one minimum 32 ms window
    level (dBFS) per ``BLOCK_WINDOWS`` (about a second) over the last ``horizon_s`` of media
    time, and the floor is the second lowest of those minima (the lowest while there is only
    one): speech and music have gaps, line noise has none, so a second's quietest window is
    the noise, and one odd second (the fade-in of hold music that replaces a hissing line, a
    dropout) doesn't move the floor. Windows fed as None (digital silence, lost audio, a
    voice) don't count but time passes; with none counted within the horizon the last floor
    stands (a faint echo under a hiss scores as speech for as long as the agent talks, and
    the hiss is still there). ``dbfs`` is +inf until a window has counted. Pure."""

    BLOCK_WINDOWS = 31  # about 1 s of 32 ms windows

    def __init__(self, horizon_s: float) -> None:
        self._blocks = max(1, math.ceil(horizon_s / (self.BLOCK_WINDOWS * WINDOW_S)))
        self._minima: deque[tuple[int, float]] = deque()  # (block number, its quietest dBFS)
        self._last = math.inf  # the floor while a window counted within the horizon

    def feed(self, index: int, dbfs: float | None) -> None:
        """Window number ``index`` at ``dbfs`` (None: it doesn't count)."""
        block = index // self.BLOCK_WINDOWS
        while self._minima and self._minima[0][0] <= block - self._blocks:
            self._minima.popleft()
        if dbfs is not None:
            if self._minima and self._minima[-1][0] == block:
                self._minima[-1] = (block, min(self._minima[-1][1], dbfs))
            else:
                self._minima.append((block, dbfs))
        if self._minima:
            self._last = sorted(level for _, level in self._minima)[:2][-1]

    @property
    def dbfs(self) -> float:
        """The floor (dBFS): +inf until a window has counted, the last one while none has
        within the horizon."""
        return self._last
