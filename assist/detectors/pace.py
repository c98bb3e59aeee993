"""``pace``: the agent speaks faster than ``max_words_per_minute``.

The rate is the *speaking rate* as speech-rate studies and call analytics define it: words
per minute of the speaker's turn time, pauses inside the turn included. (The *articulation
rate*, over voiced time only, runs 20-30 % higher and is not what people mean by "150 words
a minute": measured over voiced time, a natural neural voice at its normal rate reads
219-239 wpm.) Turn time here is each agent final's voiced time as the voice gate measured
it (its breaths under ``utterances.min_pause_s`` included) plus the pauses between two
consecutive agent finals of one turn: at most ``max_pause_s`` long, with no customer speech
in them (a pause the customer fills is the customer's turn, not the agent's).

The rate is over the finals that ended in the last ``window_s``, each at least
``min_utterance_s`` long ("Thank you." is said quickly by everyone); it needs ``min_words``
words and ``min_turn_s`` of turn time so one or two quick sentences don't fire (over a few
seconds with no pause in them the speaking rate is the articulation rate: Piper's natural
voice at its normal rate read 273 wpm over two sentences 6.6 s long), and fires again only
after the rate has come back under the threshold. The default, 270 wpm, is calibrated in
``bench/pace.py`` on recorded speech and on Piper's neural voice at normal and fast rates
(README, "Pace").
"""

from __future__ import annotations

import itertools
from collections import deque
from dataclasses import dataclass

from assist.config import PaceConfig
from assist.conversation import Tick
from assist.detectors import CueDetector
from assist.events import Transcript
from assist.vocabulary import CueKind, Finding


@dataclass(frozen=True, slots=True)
class _Final:
    words: int
    speech_s: float
    start_s: float  # the utterance's span (pre- and post-roll included), media s
    end_s: float


# In-turn pauses are kept this much longer than ``window_s`` for the finals still on their way
# (cut up to ``max_utterance_s`` after they started, then queued for the recognizer); older
# ones go even if no final comes (ASR off or shedding), so a long call keeps O(1) of them.
PAUSE_KEEP_S = 120.0


def speaking_rate(words: int, turn_s: float, config: PaceConfig) -> float | None:
    """Words per minute over ``turn_s`` seconds of turn time, or None while there is too
    little to judge: fewer than ``min_words`` words or under ``min_turn_s`` seconds (over a
    few seconds with no pause the speaking rate is the articulation rate). The one rule
    the detector and the benchmark's truth (``bench/loadgen.pace_truth``) both apply."""
    if words < config.min_words or turn_s < config.min_turn_s:
        return None
    return 60.0 * words / turn_s


class PaceDetector(CueDetector):
    """The agent speaking faster than ``max_words_per_minute`` over the last ``window_s`` of
    turn time -> an ``info`` finding (``unit`` wpm), again only once the rate has dropped back.

    ``on_tick`` records the agent's pauses that stay inside a turn (``max_pause_s``, nobody
    else speaking, no hold); ``on_final`` adds the agent's finals. ``max_rate`` is the highest
    rate measured so far (0 before ``min_words``), for calibration."""

    kind = CueKind.PACE

    def __init__(self, config: PaceConfig) -> None:
        self._cfg = config
        self._finals: deque[_Final] = deque()
        self._pauses: deque[tuple[float, float]] = deque()  # agent pauses inside a turn
        self._agent_end_s: float | None = None  # the agent's last speech end, pause open
        self._pause_broken = False  # the customer spoke (or a hold ran) since then
        self._fast = False
        self.max_rate = 0.0

    def on_tick(self, tick: Tick) -> list[Finding]:
        """Follow the agent's pauses: one that ends within ``max_pause_s`` with no customer
        speech and no hold in it is turn time."""
        customer = tick.gates.get("customer")
        if (customer is not None and customer.in_speech) or tick.hold.on:
            self._pause_broken = True
        for role, edge in tick.speech_edges:
            if role != "agent":
                continue
            if not edge.start:
                self._agent_end_s, self._pause_broken = edge.at_s, False
            elif self._agent_end_s is not None:
                pause = (self._agent_end_s, edge.at_s)
                if not self._pause_broken and pause[1] - pause[0] <= self._cfg.max_pause_s:
                    self._pauses.append(pause)
                self._agent_end_s = None
        while self._pauses and self._pauses[0][1] < tick.t_s - self._cfg.window_s - PAUSE_KEEP_S:
            self._pauses.popleft()
        return []

    def on_final(self, transcript: Transcript, speech_s: float) -> list[Finding]:
        """Feed an agent final to ``feed_utterance``: its word count, ``speech_s`` (voiced
        seconds) and its span. Other channels are ignored."""
        if transcript.channel != "agent":
            return []
        return self.feed_utterance(
            len(transcript.words), speech_s, transcript.end_s, transcript.start_s
        )

    def feed_utterance(
        self, words: int, speech_s: float, end_s: float, start_s: float | None = None
    ) -> list[Finding]:
        """An agent utterance of ``words`` words, ``speech_s`` voiced, spanning ``start_s`` (by
        default ``end_s - speech_s``) to ``end_s``."""
        if words == 0 or speech_s < max(self._cfg.min_utterance_s, 1e-3):
            return []  # "Thank you." is said quickly by everyone: not a pace
        start = end_s - speech_s if start_s is None else start_s
        self._finals.append(_Final(words, speech_s, start, end_s))
        while self._finals[0].end_s < end_s - self._cfg.window_s:
            self._finals.popleft()
        while self._pauses and self._pauses[0][1] < self._finals[0].start_s:
            self._pauses.popleft()
        total_words = sum(f.words for f in self._finals)
        turn_s = sum(f.speech_s for f in self._finals) + self._pauses_between()
        rate = speaking_rate(total_words, turn_s, self._cfg)
        if rate is None:
            return []
        self.max_rate = max(self.max_rate, rate)
        if rate <= self._cfg.max_words_per_minute:
            self._fast = False
            return []
        if self._fast:
            return []
        self._fast = True
        first = self._finals[0]
        return [
            Finding(
                kind=self.kind,
                at_s=end_s,
                span_start_s=first.start_s,
                span_end_s=end_s,
                rule="cues.pace.max_words_per_minute",
                threshold=self._cfg.max_words_per_minute,
                measured=rate,
                unit="wpm",
                severity="info",
                details={"words": total_words, "turn_s": round(turn_s, 2)},
            )
        ]

    def _pauses_between(self) -> float:
        """Seconds of the recorded in-turn pauses that lead from one final in the window to
        the next (a pause inside one final is already in its voiced time)."""
        total = 0.0
        for before, after in itertools.pairwise(self._finals):
            for start, end in self._pauses:
                leaves = before.start_s <= start <= before.end_s < end
                if leaves and after.start_s <= end <= after.end_s:
                    total += end - start
        return total
