"""Hold state of a call: CTI hold events, or inferred from the agent channel's audio.

When an agent puts a call on hold, what the agent channel carries (what the customer
hears) turns into hold music, or the line goes digitally silent. Silero scores music as
non-speech, so music is "loud but not speech" most of the time over a few seconds; loud
means above ``music_min_dbfs`` and ``music_above_noise_db`` above the line's own noise
floor (``assist.vad.noise_floor``), so the steady hiss of a noisy line is never taken for music.
Inferred holds are backdated to the first window of the music or silence run, so hold
time never also counts as dead air. Pure: fed one agent window at a time.

A digitally silent agent line is a hold only while the customer is silent too: a muted
agent listening sends the same silence. Customer speech of ``line_silence_customer_talk_s``
on the silent line makes the rest of that silence "listening" (never a hold, so the pause
after the customer's turn is the agent's: dead air); an inferred line-silence hold the
customer talks into is taken back (``HoldEdge.retracted``: it never was) when it has not
reached its first long_hold reminder yet, else it ends where the customer started.

Speech on the agent line during a music or CTI hold is an *interlude*, judged before it
counts: a recorded announcement of the platform ("thank you for holding") or the agent
back. The hold stays on, its timer running, while it is judged. It was an announcement
when ``announcement_music_s`` of hold music follows it within ``announcement_wait_s`` of
its end (or, with a CTI hold on, when the wait passes); the agent is back when the
customer starts talking during it, when the wait passes with no music, when it lasts
``announcement_max_s``, or when the call ends first. An announcement leaves the hold
untouched; the agent's return ends an inferred music hold where the music stopped. The
verdict comes out of ``take_interlude``.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import Literal, Protocol

from assist.config import HoldInferenceConfig, LongHoldConfig
from assist.vad.noise_floor import NoiseFloor
from assist.vocabulary import WINDOW_S, WindowActivity

HoldSource = Literal["cti", "music", "line_silence"]

# Share of the music span that makes a hold likely enough to hold back dead air until the
# music decision is made (a door slam or a cough is far shorter).
MUSIC_PENDING_FRACTION = 0.25
# A speaker's first syllable is loud before Silero calls it speech: music-like windows
# this close before speech are its onset, not music.
ONSET_S = 0.32
# Media times are sums of 32 ms windows: compare them with this slack.
_EPS_S = 1e-9


class SpeechState(Protocol):
    """One channel's speech as its voice gate reports it (``assist.vad.gate.VoiceGate``):
    whether it is in speech now, the current (or last) segment's start, the last finished
    segment's end and the end of the last voiced window, in media seconds."""

    @property
    def in_speech(self) -> bool:
        """In speech at the end of the last window."""
        ...

    @property
    def speech_start_s(self) -> float:
        """Start of the current (or last) speech segment."""
        ...

    @property
    def speech_end_s(self) -> float:
        """End of the last finished speech segment."""
        ...

    @property
    def last_voiced_end_s(self) -> float:
        """End of the last window that sounded like speech."""
        ...


@dataclass(frozen=True, slots=True)
class HoldEdge:
    """The call went on (``on``) or off hold at ``at_s`` media seconds, on evidence from
    ``source``; an inferred hold's start is backdated to the first window of that evidence.
    A ``retracted`` off edge takes back the hold that started at ``at_s``: it never was."""

    on: bool
    at_s: float
    source: HoldSource
    retracted: bool = False


@dataclass(frozen=True, slots=True)
class Interlude:
    """Speech heard on the agent line during a hold, judged: a recorded ``announcement``
    (not the agent: the hold goes on) or the agent back on the line. ``start_s`` is its
    first speech, ``end_s`` the end of its last speech, or None while it still goes on
    (media seconds)."""

    start_s: float
    end_s: float | None
    announcement: bool


@dataclass(slots=True)
class _Judging:
    """An interlude being judged: its start (media s), where the hold would end if it is
    the agent (the end of the music before it), and music windows since its speech ended."""

    start_s: float
    hold_end_s: float
    music_windows: int = 0


class HoldTracker:
    """A call's hold state: on while a CTI hold is on or a hold is inferred from the agent
    channel (rules in the module docstring).

    ``on``, ``source`` and ``start_s`` (media s) describe the current or last hold. Fed one
    agent window at a time (``feed_agent_window``) and CTI events (``set_cti``); a
    line-silence hold taken back before ``first_reminder_s`` on hold (the long_hold cue's
    ``min_hold_s``) never reached a reminder. Pure.
    """

    def __init__(
        self,
        config: HoldInferenceConfig,
        first_reminder_s: float = LongHoldConfig().min_hold_s,
    ) -> None:
        self._cfg = config
        self._first_reminder_s = first_reminder_s
        self._music_window = max(1, round(config.music_window_s / WINDOW_S))
        self._music_end_windows = max(1, round(config.music_end_s / WINDOW_S))
        self._silence_windows = max(1, round(config.line_silence_min_s / WINDOW_S))
        self._resume_windows = max(1, round(config.announcement_music_s / WINDOW_S))
        self._recent: deque[int] = deque()  # indexes of music-like windows in the span
        self._noise_floor = NoiseFloor(config.noise_floor_s)
        self._floor_dbfs = config.noise_floor_max_dbfs  # the floor music is judged against
        self._last_music_index = -math.inf
        self._music_history: deque[int] = deque(maxlen=self._music_end_windows)
        self._silence_run_start: int | None = None
        self._listening_from_s: float | None = None  # the customer talked into this silence
        self._cti_on = False
        self._inferred: HoldSource | None = None
        self._judging: _Judging | None = None
        self._verdict: Interlude | None = None
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

    @property
    def interlude_pending(self) -> bool:
        """Speech on the agent line during the hold is being judged (announcement or the
        agent back): it is nobody's talk until ``take_interlude`` says."""
        return self._judging is not None

    def take_interlude(self) -> Interlude | None:
        """The interlude judged since the last call, once; None if none was."""
        verdict, self._verdict = self._verdict, None
        return verdict

    def set_cti(self, on: bool, at_s: float) -> HoldEdge | None:
        """A CTI hold event at ``at_s`` media seconds; the edge when the call's hold state flips,
        else None (CTI on during an inferred hold keeps its start, source becomes cti)."""
        self._cti_on = on
        return self._settle(at_s, "cti")

    def feed_agent_window(
        self, window: WindowActivity, agent: SpeechState, customer: SpeechState | None = None
    ) -> HoldEdge | None:
        """Update the hold from one agent-channel window, given both channels' gates after
        that window (``customer`` None on a call without a customer channel)."""
        i = window.index
        cfg = self._cfg
        if not self.on:
            # The floor is the line's own: it stays as it was while a hold is on, and
            # digital silence and lost audio don't count in it.
            self._floor_dbfs = min(self._noise_floor.dbfs, cfg.noise_floor_max_dbfs)
            line_noise = window.dbfs > cfg.line_silence_max_dbfs
            self._noise_floor.feed(i, window.dbfs if line_noise else None)
        music_like = (
            window.dbfs >= max(cfg.music_min_dbfs, self._floor_dbfs + cfg.music_above_noise_db)
            and window.speech_probability <= cfg.music_max_speech_probability
        )
        if agent.in_speech:
            # The agent's own consonants and breaths are loud non-speech windows too:
            # music evidence only counts once the agent has stopped talking.
            music_like = False
            self._recent.clear()
        if music_like:
            self._recent.append(i)
            self._last_music_index = i
            self._music_history.append(i)
        while self._recent and self._recent[0] <= i - self._music_window:
            self._recent.popleft()
        silent = window.dbfs <= self._cfg.line_silence_max_dbfs
        self._track_silence(i, silent, customer)

        if self._judging is not None:
            return self._judge(window, music_like, agent, customer)
        if self.on and agent.in_speech and (self._inferred == "music" or self._cti_on):
            # Speech during the hold: an announcement, or the agent back. Judge it first.
            last_music_end = self._music_end_before(agent.speech_start_s)
            self._judging = _Judging(
                agent.speech_start_s, max(self.start_s, min(agent.speech_start_s, last_music_end))
            )
            return self._judge(window, music_like, agent, customer)
        if self._inferred == "music":
            if i - self._last_music_index >= self._music_end_windows:
                return self._end_inferred((self._last_music_index + 1) * WINDOW_S)
        elif self._inferred == "line_silence":
            if not silent:
                return self._end_inferred(i * WINDOW_S)
            if self._listening_from_s is not None:
                return self._customer_talked_into_silence(window.end_s)
        elif not agent.in_speech:
            enough_music = len(self._recent) >= self._cfg.music_fraction * self._music_window
            if self._cfg.music_enabled and music_like and enough_music:
                self._inferred = "music"
                return self._settle(self._recent[0] * WINDOW_S, "music")
            run = self._silence_run_start
            long_silence = run is not None and i - run + 1 >= self._silence_windows
            customer_quiet = customer is None or not customer.in_speech
            if (
                self._cfg.line_silence_enabled
                and run is not None
                and long_silence
                and self._listening_from_s is None
                and customer_quiet
            ):
                self._inferred = "line_silence"
                return self._settle(run * WINDOW_S, "line_silence")
        return None

    def _music_end_before(self, speech_start_s: float) -> float:
        """Where the music stopped before speech that starts at ``speech_start_s`` (media s):
        the end of the last music-like window before the speech's onset (``ONSET_S``), or
        the speech's start when the music played on into the onset."""
        onset_s = speech_start_s - ONSET_S
        before = [j for j in self._music_history if (j + 1) * WINDOW_S <= onset_s + _EPS_S]
        if not before:
            return (self._last_music_index + 1) * WINDOW_S
        end_s = (before[-1] + 1) * WINDOW_S
        return speech_start_s if end_s + WINDOW_S > onset_s else end_s

    def finish(self, agent: SpeechState) -> HoldEdge | None:
        """End of the call: an interlude still being judged is decided now (the music never
        came back: the agent, unless a CTI hold is still on)."""
        if self._judging is None:
            return None
        return self._decide(self._cti_on, self._judging, agent)

    def _track_silence(self, i: int, silent: bool, customer: SpeechState | None) -> None:
        """The run of digitally silent agent windows, and whether the customer has talked
        into it for ``line_silence_customer_talk_s`` (an agent listening on mute)."""
        if not silent:
            self._silence_run_start = None
            self._listening_from_s = None
            return
        if self._silence_run_start is None:
            self._silence_run_start = i
        if self._listening_from_s is not None or customer is None or not customer.in_speech:
            return
        talk_from = max(customer.speech_start_s, self._silence_run_start * WINDOW_S)
        if (
            customer.last_voiced_end_s - talk_from + _EPS_S
            >= self._cfg.line_silence_customer_talk_s
        ):
            self._listening_from_s = talk_from

    def _customer_talked_into_silence(self, now_s: float) -> HoldEdge | None:
        """The customer talked into an inferred line-silence hold: it was an agent listening
        on mute. Taken back before its first reminder, else ended where the customer began."""
        assert self._listening_from_s is not None
        self._inferred = None
        if now_s - self.start_s + _EPS_S >= self._first_reminder_s:
            return self._settle(self._listening_from_s, "line_silence")
        if self._cti_on:
            return None  # the CTI hold goes on
        self.on = False
        self.source = None
        return HoldEdge(False, self.start_s, "line_silence", retracted=True)

    def _judge(
        self,
        window: WindowActivity,
        music_like: bool,
        agent: SpeechState,
        customer: SpeechState | None,
    ) -> HoldEdge | None:
        """One more window of an interlude: decide it when the evidence is in."""
        judging = self._judging
        assert judging is not None
        cfg = self._cfg
        if not self.on:
            return self._decide(False, judging, agent)  # CTI hold ended under it
        if (
            customer is not None
            and customer.in_speech
            and customer.speech_start_s >= judging.start_s
        ):
            return self._decide(False, judging, agent)  # the customer answers
        if agent.in_speech:
            judging.music_windows = 0  # music only counts after the speech
            if window.end_s - judging.start_s + _EPS_S >= cfg.announcement_max_s:
                return self._decide(False, judging, agent)
            return None
        if music_like:
            judging.music_windows += 1
            if judging.music_windows >= self._resume_windows:
                return self._decide(True, judging, agent)  # the music came back
        if window.end_s - agent.speech_end_s + _EPS_S >= cfg.announcement_wait_s:
            return self._decide(self._cti_on, judging, agent)
        return None

    def _decide(self, announcement: bool, judging: _Judging, agent: SpeechState) -> HoldEdge | None:
        """Close the interlude: the verdict for ``take_interlude``, and for the agent's
        return on an inferred music hold, the hold's end where the music stopped."""
        self._judging = None
        end_s = None if agent.in_speech else max(agent.speech_end_s, judging.start_s)
        self._verdict = Interlude(judging.start_s, end_s, announcement)
        if announcement or self._inferred != "music":
            return None
        return self._end_inferred(judging.hold_end_s)

    def _end_inferred(self, at_s: float) -> HoldEdge | None:
        """The inferred hold is over: its evidence must not start the next one."""
        source = self._inferred
        assert source is not None
        self._inferred = None
        self._recent.clear()
        self._silence_run_start = None
        self._listening_from_s = None
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
