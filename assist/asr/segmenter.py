"""Utterances for the recognizer, cut from each channel's 16 kHz audio by its voice gate.

An utterance starts ``pre_roll_s`` before the gate's (backdated) speech start and ends
``post_roll_s`` after its speech end, once the speaker has paused for ``min_pause_s``
(longer than the gate's own hangover: a breath between sentences keeps the utterance
whole, which gives the recognizer context). Speech longer than ``max_utterance_s`` is split
into consecutive finals, and while an utterance lasts longer than ``partial_every_s`` a
partial (``final=False``) of the audio so far is emitted every ``partial_every_s``, so the
agent sees text while the customer is still talking. Pure: no model, no I/O.
"""

from __future__ import annotations

import numpy as np

from assist.config import UtteranceConfig
from assist.vad.gate import SpeechEdge
from assist.vocabulary import ASR_RATE, UtteranceAudio


class ChannelAudio:
    """The last ``keep_s`` seconds of one channel at 16 kHz, addressed by media time."""

    def __init__(self, keep_s: float) -> None:
        self._keep = int(keep_s * ASR_RATE)
        self._data = np.zeros(2 * self._keep, dtype=np.float32)
        self._first = 0  # absolute sample index of _data[0]
        self._length = 0

    @property
    def end_sample(self) -> int:
        """Absolute sample index (16 kHz, from the call's start) just past the newest sample."""
        return self._first + self._length

    def append(self, samples: np.ndarray) -> None:
        """Add the channel's next samples (float32 at 16 kHz, shape (samples,)); audio older than
        ``keep_s`` may be forgotten (at least ``keep_s`` is always kept)."""
        n = len(samples)
        if n >= self._keep:
            samples = samples[-self._keep :]
            self._first += self._length + n - len(samples)
            self._length = 0
            n = len(samples)
        if self._length + n > len(self._data):
            drop = self._length + n - self._keep
            self._data[: self._length - drop] = self._data[drop : self._length]
            self._first += drop
            self._length -= drop
        self._data[self._length : self._length + n] = samples
        self._length += n

    def skip_to(self, end_sample: int) -> None:
        """Audio lost up to absolute sample ``end_sample`` (16 kHz): what is kept is forgotten
        and the next ``append`` lands there. O(1). Raises ``ValueError`` for a sample already
        passed."""
        if end_sample < self.end_sample:
            raise ValueError(f"sample {end_sample} is before {self.end_sample}")
        self._first = end_sample
        self._length = 0

    def slice(self, start_s: float, end_s: float) -> np.ndarray:
        """A copy of the audio in [start_s, end_s), clipped to what is kept."""
        lo = max(round(start_s * ASR_RATE), self._first)
        hi = min(round(end_s * ASR_RATE), self.end_sample)
        if hi <= lo:
            return np.zeros(0, dtype=np.float32)
        return self._data[lo - self._first : hi - self._first].copy()


class UtteranceSegmenter:
    """Cuts one channel's speech into utterances for the recognizer (rules in the module
    docstring), from its voice gate's edges and the 16 kHz audio in ``audio``.

    ``audio`` must keep more than ``max_utterance_s + pre_roll_s`` (``keep_audio_s``) or the
    start of a long utterance is lost. Utterance ids count finals per channel from 0; a
    partial carries the id of the final it previews. Pure.
    """

    def __init__(self, config: UtteranceConfig, channel: str, audio: ChannelAudio) -> None:
        self._cfg = config
        self._channel = channel
        self._audio = audio
        self._start_s: float | None = None
        self._pause_from_s: float | None = None  # speech ended here; waiting for min_pause_s
        self._speech_start_s = 0.0
        self._next_partial_s = 0.0
        self._last_end_s = 0.0
        self._next_id = 0

    def feed(self, edge: SpeechEdge | None, t_s: float) -> list[UtteranceAudio]:
        """One tick of this channel: its gate edge (if any) at media time ``t_s``."""
        cfg = self._cfg
        out: list[UtteranceAudio] = []
        if edge is not None and edge.start:
            if self._start_s is None:
                self._start_s = max(edge.at_s - cfg.pre_roll_s, self._last_end_s)
                self._speech_start_s = edge.at_s
                self._next_partial_s = self._start_s + cfg.partial_every_s
            self._pause_from_s = None  # speech resumed before min_pause_s: same utterance
        elif edge is not None and self._start_s is not None:
            self._pause_from_s = edge.at_s
        if self._start_s is None:
            return out
        if self._pause_from_s is not None and t_s - self._pause_from_s >= cfg.min_pause_s:
            speech_end = self._pause_from_s
            end = min(speech_end + cfg.post_roll_s, t_s)
            if end - self._start_s >= cfg.min_utterance_s:
                out.append(self._emit(self._start_s, end, final=True, speech_end_s=speech_end))
            self._last_end_s = end
            self._start_s = self._pause_from_s = None
        elif t_s - self._start_s >= cfg.max_utterance_s:
            out.append(self._emit(self._start_s, t_s, final=True))
            self._start_s = self._last_end_s = self._speech_start_s = t_s
            self._next_partial_s = t_s + cfg.partial_every_s
        elif cfg.partial_every_s > 0 and t_s >= self._next_partial_s:
            out.append(self._emit(self._start_s, t_s, final=False))
            self._next_partial_s = t_s + cfg.partial_every_s
        return out

    def resume_held(self, start_s: float, end_s: float | None) -> None:
        """Speech whose edges were held back (heard on the agent line during a hold, then
        judged to be the agent back): it started at ``start_s`` and ended at ``end_s``
        (None: still going), media s. Cut as if its edges had come in time; the next
        ``feed`` emits what is due by then (its audio must still be kept)."""
        if self._start_s is None:
            self._start_s = max(start_s - self._cfg.pre_roll_s, self._last_end_s)
            self._speech_start_s = start_s
            self._next_partial_s = self._start_s + self._cfg.partial_every_s
        self._pause_from_s = end_s

    def gap(self, start_s: float, end_s: float) -> list[UtteranceAudio]:
        """Audio lost from ``start_s`` to ``end_s`` (media s): the utterance under way ends at
        the gap's start as a final, through ``close`` (the words said just before a pause are
        transcribed and kept; a pause already under way keeps its post-roll up to the gap),
        and the next one starts no earlier than ``end_s`` (its pre-roll never reaches into the
        gap)."""
        end = start_s
        if self._start_s is not None and self._pause_from_s is not None:
            end = min(self._pause_from_s + self._cfg.post_roll_s, start_s)
        out = self.close(end)
        self._pause_from_s = None
        self._last_end_s = max(self._last_end_s, end_s)
        return out

    @property
    def next_id(self) -> int:
        """The id the next final will carry: finals count from 0, or from where an earlier
        leg of the call left off (set it before the first ``feed``)."""
        return self._next_id

    @next_id.setter
    def next_id(self, value: int) -> None:
        """Continue the ids from ``value`` (a later leg of the call)."""
        self._next_id = value

    def close(self, t_s: float) -> list[UtteranceAudio]:
        """End of the call: an utterance still open becomes final at ``t_s``."""
        start, self._start_s = self._start_s, None
        if start is None or t_s - start < self._cfg.min_utterance_s:
            return []
        return [self._emit(start, t_s, final=True, speech_end_s=self._pause_from_s)]

    def _emit(
        self, start_s: float, end_s: float, final: bool, speech_end_s: float | None = None
    ) -> UtteranceAudio:
        speech_end = end_s if speech_end_s is None else speech_end_s
        utterance = UtteranceAudio(
            self._channel,
            self._next_id,
            round(start_s, 6),
            round(end_s, 6),
            self._audio.slice(start_s, end_s),
            final,
            round(max(0.0, speech_end - self._speech_start_s), 6),
        )
        if final:
            self._next_id += 1
        return utterance
