"""Hold state of a call: CTI hold events, or inferred from the agent channel's audio.

When an agent puts a call on hold, what the agent channel carries (what the customer
hears) turns into hold music, or the line goes digitally silent. Silero scores music as
non-speech, so music is "loud but not speech" most of the time over a few seconds.
Inferred holds are backdated to the first window of the music or silence run, so hold
time never also counts as dead air. Pure: fed one agent window at a time.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import Literal

from assist.config import HoldInferenceConfig
from assist.vocabulary import WINDOW_S, WindowActivity

HoldSource = Literal["cti", "music", "line_silence"]

# Share of the music span that makes a hold likely enough to hold back dead air until the
# music decision is made (a door slam or a cough is far shorter).
MUSIC_PENDING_FRACTION = 0.25


@dataclass(frozen=True, slots=True)
class HoldEdge:
    """The call went on (``on``) or off hold at ``at_s`` media seconds, on evidence from
    ``source``; an inferred hold's start is backdated to the first window of that evidence."""

    on: bool
    at_s: float
    source: HoldSource


class HoldTracker:
    """A call's hold state: on while a CTI hold is on or a hold is inferred from the agent
    channel (rules in the module docstring).

    ``on``, ``source`` and ``start_s`` (media s) describe the current or last hold. Fed one
    agent window at a time (``feed_agent_window``) and CTI events (``set_cti``). Pure.
    """

    def __init__(self, config: HoldInferenceConfig) -> None:
        self._cfg = config
        self._music_window = max(1, round(config.music_window_s / WINDOW_S))
        self._music_end_windows = max(1, round(config.music_end_s / WINDOW_S))
        self._silence_windows = max(1, round(config.line_silence_min_s / WINDOW_S))
        self._recent: deque[int] = deque()  # indexes of music-like windows in the span
        self._last_music_index = -math.inf
        self._silence_run_start: int | None = None
        self._cti_on = False
        self._inferred: HoldSource | None = None
        self.on = False
        self.source: HoldSource | None = None
        self.start_s = 0.0
        self._last_end_s = 0.0

    @property
    def music_pending(self) -> bool:
        """Music has started on the agent line but is not yet a hold (the decision takes
        up to ``music_window_s``): whatever silence came before may turn out to be hold."""
        if self.on or not self._cfg.music_enabled:
            return False
        return len(self._recent) >= MUSIC_PENDING_FRACTION * self._music_window

    def set_cti(self, on: bool, at_s: float) -> HoldEdge | None:
        """A CTI hold event at ``at_s`` media seconds; the edge when the call's hold state flips,
        else None (CTI on during an inferred hold keeps its start, source becomes cti)."""
        self._cti_on = on
        return self._settle(at_s, "cti")

    def feed_agent_window(self, window: WindowActivity, agent_in_speech: bool) -> HoldEdge | None:
        """Update the inferred hold from one agent-channel window."""
        i = window.index
        music_like = (
            window.dbfs >= self._cfg.music_min_dbfs
            and window.speech_probability <= self._cfg.music_max_speech_probability
        )
        if agent_in_speech:
            # The agent's own consonants and breaths are loud non-speech windows too:
            # music evidence only counts once the agent has stopped talking.
            music_like = False
            self._recent.clear()
        if music_like:
            self._recent.append(i)
            self._last_music_index = i
        while self._recent and self._recent[0] <= i - self._music_window:
            self._recent.popleft()
        silent = window.dbfs <= self._cfg.line_silence_max_dbfs
        if silent:
            if self._silence_run_start is None:
                self._silence_run_start = i
        else:
            self._silence_run_start = None

        if self._inferred == "music":
            if agent_in_speech:
                return self._end_inferred(window.end_s)
            if i - self._last_music_index >= self._music_end_windows:
                return self._end_inferred((self._last_music_index + 1) * WINDOW_S)
        elif self._inferred == "line_silence":
            if not silent:
                return self._end_inferred(i * WINDOW_S)
        elif not agent_in_speech:
            enough_music = len(self._recent) >= self._cfg.music_fraction * self._music_window
            if self._cfg.music_enabled and music_like and enough_music:
                self._inferred = "music"
                return self._settle(self._recent[0] * WINDOW_S, "music")
            run = self._silence_run_start
            long_silence = run is not None and i - run + 1 >= self._silence_windows
            if self._cfg.line_silence_enabled and run is not None and long_silence:
                self._inferred = "line_silence"
                return self._settle(run * WINDOW_S, "line_silence")
        return None

    def _end_inferred(self, at_s: float) -> HoldEdge | None:
        """The inferred hold is over: its evidence must not start the next one."""
        source = self._inferred
        assert source is not None
        self._inferred = None
        self._recent.clear()
        self._silence_run_start = None
        return self._settle(at_s, source)

    def _settle(self, at_s: float, source: HoldSource) -> HoldEdge | None:
        """Recompute on = CTI or inferred; report an edge when it flips."""
        on = self._cti_on or self._inferred is not None
        if on == self.on:
            if on and source == "cti" and self.source != "cti":
                self.source = "cti"  # CTI confirms an inferred hold: keep its start
            return None
        self.on = on
        if on:
            # Backdated starts never reach into the previous hold.
            self.start_s = max(at_s, self._last_end_s)
            self.source = source
        edge = HoldEdge(on, self.start_s if on else max(at_s, self.start_s), source)
        if not on:
            self.source = None
            self._last_end_s = edge.at_s
        return edge
