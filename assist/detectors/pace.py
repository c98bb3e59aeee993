"""``pace``: the agent speaks faster than ``max_words_per_minute``.

Fed the agent's final transcripts, each as its word count and its voiced time as the
voice gate measured it (pauses inside an utterance count as speaking time, as they do
when people measure speech rate; silences between utterances don't; Whisper's own word
timestamps are too tight for this). The rate is over the utterances that ended in the
last ``window_s``, each at least ``min_utterance_s`` long; it needs
``min_words`` words so one quick sentence doesn't fire, and fires again only after the
rate has come back under the threshold.
"""

from __future__ import annotations

from collections import deque

from assist.config import PaceConfig
from assist.detectors import CueDetector
from assist.events import Transcript
from assist.vocabulary import CueKind, Finding


class PaceDetector(CueDetector):
    """The agent speaking faster than ``max_words_per_minute`` over the last ``window_s`` ->
    an ``info`` finding (``unit`` wpm), again only once the rate has dropped back."""

    kind = CueKind.PACE

    def __init__(self, config: PaceConfig) -> None:
        self._cfg = config
        self._utterances: deque[tuple[int, float, float]] = deque()  # words, speech_s, end_s
        self._fast = False

    def on_final(self, transcript: Transcript, speech_s: float) -> list[Finding]:
        """Feed an agent final to ``feed_utterance``: its word count, ``speech_s`` (voiced
        seconds) and its ``end_s``. Other channels are ignored."""
        if transcript.channel != "agent":
            return []
        return self.feed_utterance(len(transcript.words), speech_s, transcript.end_s)

    def feed_utterance(self, words: int, speech_s: float, end_s: float) -> list[Finding]:
        """An agent utterance of ``words`` words, ``speech_s`` voiced, ending at ``end_s``."""
        if words == 0 or speech_s < max(self._cfg.min_utterance_s, 1e-3):
            return []  # "Thank you." is said quickly by everyone: not a pace
        self._utterances.append((words, speech_s, end_s))
        while self._utterances[0][2] < end_s - self._cfg.window_s:
            self._utterances.popleft()
        total_words = sum(u[0] for u in self._utterances)
        if total_words < self._cfg.min_words:
            return []
        speaking_s = sum(u[1] for u in self._utterances)
        rate = 60.0 * total_words / speaking_s
        if rate <= self._cfg.max_words_per_minute:
            self._fast = False
            return []
        if self._fast:
            return []
        self._fast = True
        return [
            Finding(
                kind=self.kind,
                at_s=end_s,
                span_start_s=self._utterances[0][2] - self._utterances[0][1],
                span_end_s=end_s,
                rule="cues.pace.max_words_per_minute",
                threshold=self._cfg.max_words_per_minute,
                measured=rate,
                unit="wpm",
                severity="info",
                details={"words": total_words, "speaking_s": round(speaking_s, 2)},
            )
        ]
