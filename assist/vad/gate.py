"""Per-channel speech gate: hysteresis over VAD windows, media-time transitions.

A channel enters speech after ``min_speech_s`` of windows at or above the onset
probability, and leaves it after ``min_silence_s`` below the offset probability. Both
transitions are backdated to the first window of the run that caused them, so segment
times are those of the audio, not of the decision. A lost window (audio that never
arrived: a pause, a gap) ends speech at its start. Pure: ``feed`` takes one window.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from assist.config import VadConfig
from assist.vad.noise_floor import NoiseFloor
from assist.vocabulary import WINDOW_S, WindowActivity

# Speech goes on in windows this much closer to the noise floor than it may start in
CONTINUATION_SNR_SLACK_DB = 8.0


@dataclass(frozen=True, slots=True)
class SpeechEdge:
    """A confirmed transition: speech started (``start``) or ended, at ``at_s`` media time."""

    start: bool
    at_s: float


class VoiceGate:
    """One channel's speech gate: hysteresis over its scored windows (module docstring).

    ``in_speech``, ``speech_start_s``, ``speech_end_s`` and ``last_voiced_end_s`` (media s)
    are read by the conversation tracker and the detectors. Pure.
    """

    def __init__(self, config: VadConfig) -> None:
        self._cfg = config
        self._onset_windows = max(1, math.ceil(config.min_speech_s / WINDOW_S - 1e-9))
        self._offset_windows = max(1, math.ceil(config.min_silence_s / WINDOW_S - 1e-9))
        self.in_speech = False
        self.speech_start_s = 0.0  # start of the current (or last) speech segment
        self.speech_end_s = 0.0  # end of the last finished speech segment
        self.last_voiced_end_s = -math.inf  # end of the last window that sounded like speech
        self._run_start_s = 0.0
        self._run_length = 0
        self._noise_floor = NoiseFloor(config.noise_floor_s)

    def feed(self, window: WindowActivity) -> SpeechEdge | None:
        """Take the channel's next window; the edge it confirms (backdated to the first window of
        its run), or None. Only windows at or above ``min_speech_dbfs`` can be speech; only
        those ``min_onset_snr_db`` above the channel's noise floor (its quietest non-speech
        window, ``assist.vad.noise_floor``) can start it, and it goes on only in windows
        less than ``CONTINUATION_SNR_SLACK_DB`` closer to the floor than that. A lost
        window (NaN level: audio that never arrived) ends speech at once, at its start (or
        where the trailing unvoiced run began), and drops a pending onset: nothing said is
        known to span lost audio."""
        start_s = window.index * WINDOW_S
        if math.isnan(window.dbfs):
            return self._lost(start_s)
        floor_dbfs = self._noise_floor.dbfs  # +inf: not known yet
        # the floor is what the channel sounds like when nobody speaks on it
        noise = (
            math.isfinite(window.dbfs) and window.speech_probability < self._cfg.offset_probability
        )
        self._noise_floor.feed(window.index, window.dbfs if noise else None)
        # above the channel's noise floor, dB (+inf while the floor is not known)
        snr_db = window.dbfs - floor_dbfs if math.isfinite(floor_dbfs) else math.inf
        loud_enough = window.dbfs >= self._cfg.min_speech_dbfs
        voiced = (
            loud_enough
            and window.speech_probability >= self._cfg.offset_probability
            and snr_db >= self._cfg.min_onset_snr_db - CONTINUATION_SNR_SLACK_DB
        )
        if voiced:
            self.last_voiced_end_s = window.end_s
        if not self.in_speech:
            onset = (
                loud_enough
                and snr_db >= self._cfg.min_onset_snr_db
                and window.speech_probability >= self._cfg.onset_probability
            )
            if not onset:
                self._run_length = 0
                return None
            if self._run_length == 0:
                self._run_start_s = start_s
            self._run_length += 1
            if self._run_length < self._onset_windows:
                return None
            self.in_speech = True
            self.speech_start_s = self._run_start_s
            self._run_length = 0
            return SpeechEdge(True, self.speech_start_s)
        if voiced:
            self._run_length = 0
            return None
        if self._run_length == 0:
            self._run_start_s = start_s
        self._run_length += 1
        if self._run_length < self._offset_windows:
            return None
        self.in_speech = False
        self.speech_end_s = self._run_start_s
        self._run_length = 0
        return SpeechEdge(False, self.speech_end_s)

    def _lost(self, start_s: float) -> SpeechEdge | None:
        """A lost window starting at ``start_s``: close open speech there (or at the start of
        the unvoiced run already under way), forget an onset run."""
        end_s = self._run_start_s if self.in_speech and self._run_length else start_s
        self._run_length = 0
        if not self.in_speech:
            return None
        self.in_speech = False
        self.speech_end_s = end_s
        return SpeechEdge(False, end_s)
