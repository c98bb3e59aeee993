"""HoldTracker: CTI hold events, holds inferred from the agent channel's windows, silent
agent lines the customer talks into (muted agents), and speech heard during a hold
(announcements or the agent back); the ConversationTracker and detectors around them."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pytest

from assist.asr.segmenter import ChannelAudio, UtteranceSegmenter
from assist.config import HoldInferenceConfig, Settings, UtteranceConfig
from assist.conversation import ConversationTracker, GateView
from assist.detectors import build_detectors
from assist.hold import HoldEdge, HoldSource, HoldTracker, Interlude
from assist.vad.gate import SpeechEdge
from assist.vad.noise_floor import NoiseFloor
from assist.vocabulary import ASR_RATE, WINDOW_S, Finding, WindowActivity

# Agent line: char -> (speech probability, dBFS, agent gate in speech)
LEVELS: dict[str, tuple[float, float, bool]] = {
    "m": (0.01, -30.0, False),  # hold music: loud, not speech
    "M": (0.01, -30.0, True),  # music-like window while the agent's gate is still in speech
    ".": (0.05, -60.0, False),  # quiet room: neither music (< -50) nor line silence (> -72)
    "_": (0.0, -90.0, False),  # digital line silence
    "x": (0.0, math.nan, False),  # lost window
    "S": (0.9, -20.0, True),  # speech on the agent line (the agent, or an announcement)
    "v": (0.5, -30.0, False),  # loud but too speech-like for music
    "h": (0.02, -45.0, False),  # the steady hiss of a noisy line: loud, not speech, not music
    "H": (0.02, -38.0, False),  # a very noisy line
}
# Customer line: "#" speaking, "." not.

# Defaults: music span 3 s = 94 windows, 60 % -> 57 music windows; music end 2 s = 62
# windows; line silence 3 s = 94 windows; 1 s of customer talk = 32 windows (1.024 s);
# an announcement needs 1 s = 31 windows of music within 3 s (94 windows) of its end.
MUSIC_NEEDED = 57
MUSIC_END = 62
SILENCE_NEEDED = 94
TALK_NEEDED = 32
RESUME_NEEDED = 31
WAIT = 94


@dataclass
class PatternGate:
    """A voice gate with no hysteresis: in speech exactly on the pattern's speech windows."""

    in_speech: bool = False
    speech_start_s: float = 0.0
    speech_end_s: float = 0.0
    last_voiced_end_s: float = -math.inf

    def step(self, index: int, speaking: bool) -> None:
        if speaking and not self.in_speech:
            self.speech_start_s = index * WINDOW_S
        if not speaking and self.in_speech:
            self.speech_end_s = index * WINDOW_S
        if speaking:
            self.last_voiced_end_s = (index + 1) * WINDOW_S
        self.in_speech = speaking


class Line:
    """A HoldTracker fed pattern windows on both lines, window indexes running on across
    ``feed`` calls; collects the interlude verdicts with the index that gave them."""

    def __init__(
        self, config: HoldInferenceConfig | None = None, first_reminder_s: float = 45.0
    ) -> None:
        self.tracker = HoldTracker(config or HoldInferenceConfig(), first_reminder_s)
        self.agent = PatternGate()
        self.customer = PatternGate()
        self.next = 0
        self.verdicts: list[tuple[int, Interlude]] = []

    def feed(self, agent: str, customer: str = "") -> list[tuple[int, HoldEdge]]:
        edges = []
        for a, c in zip(agent, customer.ljust(len(agent), "."), strict=True):
            i = self.next
            self.next += 1
            prob, dbfs, in_speech = LEVELS[a]
            self.agent.step(i, in_speech)
            self.customer.step(i, c == "#")
            window = WindowActivity(i, prob, dbfs)
            edge = self.tracker.feed_agent_window(window, self.agent, self.customer)
            if edge is not None:
                edges.append((i, edge))
            verdict = self.tracker.take_interlude()
            if verdict is not None:
                self.verdicts.append((i, verdict))
        return edges


def feed(tracker: HoldTracker, pattern: str) -> list[tuple[int, HoldEdge]]:
    """Agent windows only (no customer line), from index 0."""
    line = Line()
    line.tracker = tracker
    return line.feed(pattern)


def at(index: int) -> float:
    return index * WINDOW_S


def check_single_edge(edges: list[tuple[int, HoldEdge]], index: int, expected: HoldEdge) -> None:
    assert len(edges) == 1, edges
    got_index, edge = edges[0]
    assert got_index == index
    assert (edge.on, edge.source, edge.retracted) == (
        expected.on,
        expected.source,
        expected.retracted,
    )
    assert edge.at_s == pytest.approx(expected.at_s)


# ------------------------------------------------------------------------ CTI


@pytest.mark.parametrize(
    ("events", "expected"),
    [
        ([(True, 1.0)], [HoldEdge(True, 1.0, "cti")]),
        ([(False, 1.0)], [None]),
        ([(True, 1.0), (True, 2.0)], [HoldEdge(True, 1.0, "cti"), None]),
        (
            [(True, 1.0), (False, 5.0)],
            [HoldEdge(True, 1.0, "cti"), HoldEdge(False, 5.0, "cti")],
        ),
        (
            [(True, 1.0), (False, 5.0), (True, 7.0), (False, 9.5)],
            [
                HoldEdge(True, 1.0, "cti"),
                HoldEdge(False, 5.0, "cti"),
                HoldEdge(True, 7.0, "cti"),
                HoldEdge(False, 9.5, "cti"),
            ],
        ),
        # an end reported before the start is clamped to the start
        ([(True, 3.0), (False, 2.0)], [HoldEdge(True, 3.0, "cti"), HoldEdge(False, 3.0, "cti")]),
    ],
)
def test_cti_edges(events: list[tuple[bool, float]], expected: list[HoldEdge | None]) -> None:
    tracker = HoldTracker(HoldInferenceConfig())
    assert [tracker.set_cti(on, t) for on, t in events] == expected
    assert tracker.on == events[-1][0]


def test_cti_state_fields() -> None:
    tracker = HoldTracker(HoldInferenceConfig())
    assert not tracker.on
    assert tracker.source is None
    tracker.set_cti(True, 4.0)
    assert (tracker.on, tracker.source, tracker.start_s) == (True, "cti", 4.0)
    tracker.set_cti(False, 6.0)
    assert (tracker.on, tracker.source) == (False, None)


# ------------------------------------------------------------------------ music


@pytest.mark.parametrize(
    ("pattern", "on_index", "start_index"),
    [
        ("m" * 94, MUSIC_NEEDED - 1, 0),
        ("." * 10 + "m" * 94, 10 + MUSIC_NEEDED - 1, 10),
        ("m" * MUSIC_NEEDED, MUSIC_NEEDED - 1, 0),
        ("m" * (MUSIC_NEEDED - 1), None, None),
        ("m" * (MUSIC_NEEDED - 1) + "." * 60, None, None),
        # music with some non-music windows: 2/3 music passes the 60 % fraction
        ("mm." * 40, 84, 0),  # the 57th music window is index 84
        ("m." * 100, None, None),  # 50 % is not enough
        ("mv" * 100, None, None),  # speech-like windows are not music
        ("S" * 20 + "m" * 94, 20 + MUSIC_NEEDED - 1, 20),
        ("M" * 94, None, None),  # never while the agent is in speech
        ("x" * 300, None, None),  # lost windows are not music
        ("mx" * 150, None, None),
    ],
)
def test_music_turns_hold_on_backdated(
    pattern: str, on_index: int | None, start_index: int | None
) -> None:
    check_inferred_hold(pattern, on_index, start_index, "music")


def check_inferred_hold(
    pattern: str,
    on_index: int | None,
    start_index: int | None,
    source: HoldSource,
    customer: str = "",
) -> None:
    """``pattern`` turns the hold on at ``on_index``, backdated to ``start_index``, or never."""
    line = Line()
    edges = line.feed(pattern, customer)
    tracker = line.tracker
    if on_index is None or start_index is None:
        assert edges == []
        assert not tracker.on
        return
    check_single_edge(edges, on_index, HoldEdge(True, at(start_index), source))
    assert tracker.on
    assert tracker.source == source
    assert tracker.start_s == pytest.approx(at(start_index))


@pytest.mark.parametrize(
    ("tail", "off_index", "off_at_index"),
    [
        # music_end_s of no music ends the hold, backdated to the end of the last music
        ("." * MUSIC_END, 100 + MUSIC_END - 1, 100),
        ("." * (MUSIC_END - 1), None, None),
        ("x" * MUSIC_END, 100 + MUSIC_END - 1, 100),  # lost windows are not music
        ("_" * MUSIC_END, 100 + MUSIC_END - 1, 100),
        ("." * 40 + "m" + "." * MUSIC_END, 100 + 40 + MUSIC_END, 141),  # gap bridged
    ],
)
def test_music_hold_ends(tail: str, off_index: int | None, off_at_index: int | None) -> None:
    line = Line()
    assert [e.on for _, e in line.feed("m" * 100)] == [True]
    edges = line.feed(tail)
    tracker = line.tracker
    if off_index is None or off_at_index is None:
        assert edges == []
        assert tracker.on
        return
    check_single_edge(edges, off_index, HoldEdge(False, at(off_at_index), "music"))
    assert not tracker.on
    assert tracker.source is None


def test_music_hold_restart_is_not_backdated_before_previous_end() -> None:
    line = Line()
    # the agent comes back (no music after their words), then a second music hold
    edges = line.feed("m" * 150 + "S" * 20 + "." * WAIT + "m" * 100)
    assert [e.on for _, e in edges] == [True, False, True]
    previous_end = edges[1][1].at_s
    assert edges[2][1].at_s >= previous_end - 1e-9


# ------------------------------------------------------------------------ noisy lines


@pytest.mark.parametrize(
    "pattern",
    [
        "h" * 400,  # hiss from the call's start
        "S" * 40 + "h" * 400,  # after the agent speaks
        "H" * 400,  # louder hiss, over noise_floor_max_dbfs: still not music
        ("S" * 30 + "h" * 50) * 6,  # an agent talking on a hissing line
    ],
)
def test_a_hissing_line_is_no_hold(pattern: str) -> None:
    assert Line().feed(pattern) == []


def test_a_hissing_line_after_a_mute_is_no_hold() -> None:
    # the agent listens on mute (digital silence, not line noise: it doesn't count in the
    # floor) while the customer talks, then unmutes: the hiss is back, and it is no music
    assert Line().feed("h" * 100 + "_" * 200 + "h" * 400, "." * 100 + "#" * 200) == []


@pytest.mark.parametrize("hiss", ["h", "H"])
def test_music_over_a_hissing_line_is_a_hold_and_the_hiss_after_it_ends_it(hiss: str) -> None:
    line = Line()
    line.feed(hiss * 200)
    edges = line.feed("m" * 300)
    assert [(e.on, e.source, e.at_s) for _, e in edges] == [(True, "music", at(200))]
    # the hold's music never raises the floor: the hiss after it is not music either
    edges = line.feed(hiss * 300)
    check_single_edge(edges, 500 + MUSIC_END - 1, HoldEdge(False, at(500), "music"))


def test_a_noise_floor_is_the_second_quietest_seconds_minimum_within_the_horizon() -> None:
    floor = NoiseFloor(horizon_s=3.0)  # 3 s: 4 blocks of 31 windows, this one included
    assert floor.dbfs == math.inf
    for i, dbfs in enumerate([-40.0, -50.0, None, -45.0]):
        floor.feed(i, dbfs)
    assert floor.dbfs == -50.0  # one block: its quietest window
    floor.feed(31, -44.0)
    assert floor.dbfs == -44.0  # the second lowest of -50 and -44
    floor.feed(62, -70.0)  # one odd second (a fade-in, a dropout) doesn't pull it down
    assert floor.dbfs == -50.0
    floor.feed(93, -46.0)
    assert floor.dbfs == -50.0  # block 0 is still within the horizon
    floor.feed(124, None)  # time passes: block 0 ages out
    assert floor.dbfs == -46.0
    floor.feed(500, None)  # nothing counted within the horizon: the last floor stands
    assert floor.dbfs == -46.0
    floor.feed(501, -52.0)
    assert floor.dbfs == -52.0


# ------------------------------------------------------------------------ line silence


@pytest.mark.parametrize(
    ("pattern", "customer", "on_index", "start_index"),
    [
        ("_" * SILENCE_NEEDED, "", SILENCE_NEEDED - 1, 0),
        ("." * 5 + "_" * SILENCE_NEEDED, "", 5 + SILENCE_NEEDED - 1, 5),
        ("_" * (SILENCE_NEEDED - 1), "", None, None),
        ("_" * 50 + "." + "_" * 50, "", None, None),  # any sound restarts the run
        ("_" * 50 + "x" + "_" * 50, "", None, None),  # a lost window is not silence
        ("." * 300, "", None, None),  # quiet but not digitally silent
        # the customer silent too: a (digital silence) hold
        ("_" * 300, "." * 300, SILENCE_NEEDED - 1, 0),
        # a customer "mm-hm" (under 1 s) in the silence is not talk: still a hold
        ("_" * 300, "." * 20 + "#" * (TALK_NEEDED - 2), SILENCE_NEEDED - 1, 0),
        # ... decided once the customer is quiet again, backdated all the same
        ("_" * 300, "." * 80 + "#" * 20, 100, 0),
        # the customer talks into the silent line: an agent listening on mute, never a hold
        ("_" * 600, "." * 10 + "#" * 590, None, None),
        ("_" * 600, "." * 10 + ("#" * 150 + "." * 20) * 3, None, None),
        # the customer talked, then both silent (the agent is thinking, muted): no hold
        ("_" * 600, "." * 10 + "#" * TALK_NEEDED, None, None),
        # the customer already talking when the agent mutes
        ("S" * 50 + "_" * 400, "#" * 120, None, None),
    ],
)
def test_line_silence_turns_hold_on_backdated(
    pattern: str, customer: str, on_index: int | None, start_index: int | None
) -> None:
    check_inferred_hold(pattern, on_index, start_index, "line_silence", customer)


@pytest.mark.parametrize("sound", [".", "S", "m", "v"])
def test_line_silence_hold_ends_on_any_sound(sound: str) -> None:
    line = Line()
    line.feed("_" * 120)
    assert line.tracker.on
    edges = line.feed("_" * 10 + sound)
    check_single_edge(edges, 130, HoldEdge(False, at(130), "line_silence"))
    assert not line.tracker.on


@pytest.mark.parametrize(
    ("first_reminder_s", "expected"),
    [
        # before its first reminder, the hold is taken back: it never was
        (45.0, HoldEdge(False, 0.0, "line_silence", retracted=True)),
        # after it, it was a hold the customer spoke into: it ends where they began
        (2.0, HoldEdge(False, at(150), "line_silence")),
    ],
)
def test_customer_talking_into_a_silence_hold(first_reminder_s: float, expected: HoldEdge) -> None:
    line = Line(first_reminder_s=first_reminder_s)
    edges = line.feed("_" * 150, "." * 150)
    check_single_edge(edges, SILENCE_NEEDED - 1, HoldEdge(True, 0.0, "line_silence"))
    edges = line.feed("_" * 100, "#" * 100)
    check_single_edge(edges, 150 + TALK_NEEDED - 1, expected)
    assert not line.tracker.on
    # the rest of this silence is listening: no hold when the customer stops
    assert line.feed("_" * 300, "." * 300) == []
    # sound on the agent line starts a new silence, which can be a hold again
    edges = line.feed("S" * 10 + "_" * SILENCE_NEEDED)
    check_single_edge(edges, 560 + SILENCE_NEEDED - 1, HoldEdge(True, at(560), "line_silence"))


def test_customer_talking_into_silence_under_cti_keeps_the_cti_hold() -> None:
    line = Line()
    assert line.tracker.set_cti(True, 0.0) == HoldEdge(True, 0.0, "cti")
    assert line.feed("_" * 150 + "_" * 100, "." * 150 + "#" * 100) == []
    assert line.tracker.on


# ------------------------------------------------------------------------ announcements


# After "m" * 100 (a music hold from 0), the tail on both lines: the verdict on the speech
# at index 100 (index, announcement, its speech's end index or None) and the hold's end
# index (None: still on hold).
@pytest.mark.parametrize(
    ("agent", "customer", "verdict", "hold_end"),
    [
        pytest.param(
            "S" * 200 + "." * 5 + "m" * 40,
            "",
            (300 + 5 + RESUME_NEEDED - 1, True, 300),
            None,
            id="replaces-music-then-music-again",
        ),
        pytest.param(
            "S" * 200 + "m" * 40, "", (300 + RESUME_NEEDED - 1, True, 300), None, id="over-music"
        ),
        pytest.param(
            ("S" * 40 + "." * 10) * 3 + "m" * 40,
            "",
            (250 + RESUME_NEEDED - 1, True, 240),
            None,
            id="pauses-between-sentences",
        ),
        pytest.param(
            "S" * 100 + "." * 200, "", (200 + WAIT - 1, False, 200), 100, id="no-music-agent-back"
        ),
        pytest.param(
            "S" * 50 + "m" * (RESUME_NEEDED - 1) + "." * 200,
            "",
            (150 + WAIT - 1, False, 150),
            100,
            id="too-little-music-agent-back",
        ),
        pytest.param(
            "S" * 60 + "." * 100,
            "." * 70 + "#" * 20,
            (170, False, 160),
            100,
            id="customer-answers",
        ),
        pytest.param(
            "S" * 60 + "m" * 40,
            "." * 30 + "#" * 10,
            (130, False, None),
            100,
            id="customer-speaks-over-it",
        ),
        pytest.param("S" * 500, "", (568, False, None), 100, id="too-long-agent-back"),
    ],
)
def test_speech_during_music_hold(
    agent: str,
    customer: str,
    verdict: tuple[int, bool, int | None],
    hold_end: int | None,
) -> None:
    line = Line()
    line.feed("m" * 100)
    assert line.tracker.on
    edges = line.feed(agent, customer)
    index, announcement, end = verdict
    expected = Interlude(at(100), None if end is None else at(end), announcement)
    assert line.verdicts == [(index, expected)]
    if hold_end is None:
        assert edges == []
        assert line.tracker.on
        assert line.tracker.start_s == 0.0  # one hold, one timer
        return
    # the agent is back: the hold ended where the music stopped, when that was decided
    check_single_edge(edges[:1], index, HoldEdge(False, at(hold_end), "music"))
    assert not line.tracker.interlude_pending


def test_customer_already_talking_is_no_answer_to_an_announcement() -> None:
    # the customer talks to someone in their room through the hold and the announcement
    line = Line()
    line.feed("m" * 100, "." * 50 + "#" * 50)
    assert line.feed("S" * 50 + "m" * 40, "#" * 90) == []
    assert line.verdicts == [(150 + RESUME_NEEDED - 1, Interlude(at(100), at(150), True))]
    assert line.tracker.on


def test_interlude_is_pending_until_decided() -> None:
    line = Line()
    line.feed("m" * 100 + "S" * 30)
    assert line.tracker.interlude_pending
    assert line.tracker.on
    assert line.tracker.take_interlude() is None
    line.feed("m" * RESUME_NEEDED)
    assert not line.tracker.interlude_pending
    assert [v.announcement for _, v in line.verdicts] == [True]


def test_music_hold_with_announcements_keeps_one_hold_and_its_start() -> None:
    line = Line()
    segment = "m" * 300 + "S" * 200 + "." * 6
    edges = line.feed(segment * 3 + "m" * 300)
    assert [(i, e.on) for i, e in edges] == [(MUSIC_NEEDED - 1, True)]
    assert [v.announcement for _, v in line.verdicts] == [True, True, True]
    assert line.tracker.start_s == 0.0


def test_cti_hold_speech_is_an_announcement_while_cti_stays_on() -> None:
    line = Line()
    line.tracker.set_cti(True, 0.0)
    assert line.feed("." * 50 + "S" * 50 + "." * 100) == []
    assert line.verdicts == [(100 + WAIT - 1, Interlude(at(50), at(100), True))]
    assert line.tracker.on


def test_cti_hold_ending_during_speech_releases_it_as_the_agent() -> None:
    line = Line()
    line.tracker.set_cti(True, 0.0)
    line.feed("." * 50 + "S" * 50)
    assert line.tracker.set_cti(False, at(100)) == HoldEdge(False, at(100), "cti")
    assert line.feed("S") == []
    assert line.verdicts == [(100, Interlude(at(50), None, False))]


@pytest.mark.parametrize(
    ("cti", "announcement", "edge"),
    [
        (False, False, HoldEdge(False, at(100), "music")),  # the music never came back
        (True, True, None),  # the CTI hold is still on
    ],
)
def test_call_ending_during_speech_on_hold(
    cti: bool, announcement: bool, edge: HoldEdge | None
) -> None:
    line = Line()
    if cti:
        line.tracker.set_cti(True, 0.0)
    line.feed("m" * 100 + "S" * 50)
    assert line.tracker.finish(line.agent) == edge
    assert line.tracker.take_interlude() == Interlude(at(100), None, announcement)
    assert line.tracker.finish(line.agent) is None  # decided once


def test_line_silence_hold_speech_is_not_judged() -> None:
    # a digitally silent hold has no announcements: sound ends it at once (the agent)
    line = Line()
    line.feed("_" * 120)
    edges = line.feed("S" * 10)
    check_single_edge(edges, 120, HoldEdge(False, at(120), "line_silence"))
    assert not line.tracker.interlude_pending


# ------------------------------------------------------------------------ config


@pytest.mark.parametrize(
    ("config", "pattern", "expected_source"),
    [
        (HoldInferenceConfig(music_enabled=False), "m" * 200, None),
        (HoldInferenceConfig(line_silence_enabled=False), "_" * 200, None),
        (HoldInferenceConfig(music_enabled=False), "_" * 200, "line_silence"),
        (HoldInferenceConfig(line_silence_enabled=False), "m" * 200, "music"),
        (HoldInferenceConfig(music_enabled=False, line_silence_enabled=False), "m" * 200, None),
        (HoldInferenceConfig(music_min_dbfs=-20.0), "m" * 200, None),  # -30 is too quiet
        (HoldInferenceConfig(line_silence_max_dbfs=-95.0), "_" * 200, None),
        (HoldInferenceConfig(line_silence_min_s=1.0), "_" * 40, "line_silence"),
        (HoldInferenceConfig(music_window_s=1.0), "m" * 20, "music"),
    ],
)
def test_inference_config(
    config: HoldInferenceConfig, pattern: str, expected_source: str | None
) -> None:
    tracker = HoldTracker(config)
    edges = feed(tracker, pattern)
    if expected_source is None:
        assert edges == []
        assert not tracker.on
    else:
        assert [(e.on, e.source) for _, e in edges] == [(True, expected_source)]


@pytest.mark.parametrize(
    ("config", "customer", "on"),
    [
        (HoldInferenceConfig(), "#" * TALK_NEEDED, False),
        (HoldInferenceConfig(line_silence_customer_talk_s=2.0), "#" * TALK_NEEDED, True),
    ],
)
def test_customer_talk_config(config: HoldInferenceConfig, customer: str, on: bool) -> None:
    line = Line(config)
    line.feed("_" * 300, customer)
    assert line.tracker.on == on


@pytest.mark.parametrize(
    ("config", "tail", "announcement"),
    [
        (HoldInferenceConfig(announcement_music_s=2.0), "S" * 50 + "m" * 40 + "." * 100, False),
        (HoldInferenceConfig(announcement_wait_s=6.0), "S" * 50 + "." * 100 + "m" * 40, True),
        (HoldInferenceConfig(announcement_max_s=1.0), "S" * 50 + "m" * 40, False),
    ],
)
def test_announcement_config(config: HoldInferenceConfig, tail: str, announcement: bool) -> None:
    line = Line(config)
    line.feed("m" * 100 + tail)
    assert [v.announcement for _, v in line.verdicts] == [announcement]


def test_announcement_music_must_fit_the_wait() -> None:
    with pytest.raises(ValueError, match="announcement_wait_s"):
        HoldInferenceConfig(announcement_music_s=3.0, announcement_wait_s=3.0)


# ------------------------------------------------------------------------ CTI + inference


def test_cti_over_inferred_hold_keeps_start_and_no_extra_edges() -> None:
    tracker = HoldTracker(HoldInferenceConfig())
    feed(tracker, "." * 10 + "m" * 100)
    assert tracker.on
    assert tracker.set_cti(True, 5.0) is None
    assert tracker.source == "cti"
    assert tracker.start_s == pytest.approx(at(10))
    # CTI off while the music is still playing: still on hold, no edge
    assert tracker.set_cti(False, 6.0) is None
    assert tracker.on


def test_inferred_music_during_cti_hold_outlasts_cti() -> None:
    line = Line()
    assert line.tracker.set_cti(True, 0.0) == HoldEdge(True, 0.0, "cti")
    assert line.feed("m" * 100) == []
    assert line.tracker.set_cti(False, 100 * WINDOW_S) is None
    assert line.tracker.on
    edges = line.feed("." * MUSIC_END)
    assert [(i, e.on) for i, e in edges] == [(100 + MUSIC_END - 1, False)]


# ------------------------------------------------------------------------ the conversation

# Real voice gates (default hysteresis): char -> (speech probability, dBFS) per window.
CONVERSATION_LEVELS: dict[str, tuple[float, float]] = {
    "#": (0.9, -20.0),  # speech
    ".": (0.02, -60.0),  # quiet room
    "m": (0.01, -30.0),  # hold music
    "_": (0.0, -100.0),  # digital silence
}


def s(char: str, seconds: float) -> str:
    """``seconds`` of one kind of window."""
    return char * round(seconds / WINDOW_S)


@dataclass
class Conversation:
    """A ConversationTracker and the audio cues' detectors over both lines."""

    tracker: ConversationTracker
    findings: list[Finding]
    agent_edges: list[float]  # start edges the detectors saw on the agent line
    released: list[tuple[int, tuple[float, float | None]]]


def converse(customer: str, agent: str, settings: Settings | None = None) -> Conversation:
    settings = settings or Settings()
    n = max(len(customer), len(agent))
    customer, agent = customer.ljust(n, "."), agent.ljust(n, ".")
    tracker = ConversationTracker(settings, ["customer", "agent"])
    detectors = build_detectors(settings.cues)
    out = Conversation(tracker, [], [], [])
    for i in range(n):
        tick = tracker.feed(
            {
                "customer": WindowActivity(i, *CONVERSATION_LEVELS[customer[i]]),
                "agent": WindowActivity(i, *CONVERSATION_LEVELS[agent[i]]),
            }
        )
        for detector in detectors:
            out.findings += detector.on_tick(tick)
        out.agent_edges += [e.at_s for r, e in tick.speech_edges if r == "agent" and e.start]
        if "agent" in tick.released_speech:
            out.released.append((i, tick.released_speech["agent"]))
    tick = tracker.finish()
    for detector in detectors:
        out.findings += detector.on_tick(tick)
    if "agent" in tick.released_speech:
        out.released.append((n, tick.released_speech["agent"]))
    return out


def kinds(findings: list[Finding]) -> list[tuple[str, float]]:
    return [(f.kind, round(f.at_s, 1)) for f in findings]


def test_announcements_are_not_agent_talk_and_the_return_is() -> None:
    # "please hold" 2 s, music, a 5 s announcement at 22 s, music, the agent back at 55 s
    agent = s("#", 2) + s("m", 20) + s("#", 5) + s("m", 26) + s("#", 3) + s(".", 6)
    conv = converse("", agent)
    totals = conv.tracker.totals
    # one hold from the music's start to its end; its reminder on time (45 s after 2 s)
    assert len(totals.holds) == 1
    start, end = totals.holds[0]
    assert start == pytest.approx(2.0, abs=0.3)
    assert end == pytest.approx(53.0, abs=0.1)
    assert kinds(conv.findings) == [("long_hold", pytest.approx(start + 45.0, abs=0.05))]
    # the agent's talk is the 2 s before and the 3 s after, not the announcement
    assert totals.talk_s["agent"] == pytest.approx(5.0 + 2 * 0.25, abs=0.2)  # + gate hangovers
    # the detectors saw the first words only; the return reached the segmenter, backdated
    assert conv.agent_edges == [0.0]
    ((i, (released_start, released_end)),) = conv.released
    assert released_start == pytest.approx(53.0, abs=0.05)
    assert released_end == pytest.approx(56.0, abs=0.05)
    assert i * WINDOW_S == pytest.approx(56.0 + 3.0, abs=0.1)  # decided: no music after


def test_announcement_over_a_customer_talking_is_no_interruption_or_overlap() -> None:
    # the customer talks to someone in their room during the hold, over an announcement
    agent = s("#", 2) + s("m", 10) + s("#", 5) + s("m", 10)
    customer = s(".", 10) + s("#", 9) + s(".", 8)
    conv = converse(customer, agent)
    assert kinds(conv.findings) == []
    assert conv.tracker.totals.overlap_s == 0.0
    assert conv.tracker.totals.talk_s["agent"] == pytest.approx(2.0, abs=0.3)
    assert len(conv.tracker.totals.holds) == 1


def test_agent_view_is_frozen_while_speech_on_hold_is_judged() -> None:
    settings = Settings()
    tracker = ConversationTracker(settings, ["customer", "agent"])
    agent = s("#", 2) + s("m", 10) + s("#", 1)
    for i, c in enumerate(agent):
        tracker.feed(
            {
                "customer": WindowActivity(i, *CONVERSATION_LEVELS["."]),
                "agent": WindowActivity(i, *CONVERSATION_LEVELS[c]),
            }
        )
    assert tracker.hold.interlude_pending
    view = tracker.gates["agent"]
    assert isinstance(view, GateView)
    assert not view.in_speech
    assert view.speech_start_s == 0.0


def test_customer_answering_the_returning_agent_releases_at_once() -> None:
    agent = s("#", 2) + s("m", 20) + s("#", 2) + s(".", 6)
    customer = s(".", 24.5) + s("#", 1) + s(".", 3)
    conv = converse(customer, agent)
    ((i, (released_start, released_end)),) = conv.released
    assert i * WINDOW_S == pytest.approx(24.5 + 2 * WINDOW_S, abs=0.05)  # the gate's onset
    assert released_start == pytest.approx(22.0, abs=0.05)
    assert released_end == pytest.approx(24.0, abs=0.05)
    ((start, end),) = conv.tracker.totals.holds
    assert (start, end) == (pytest.approx(2.0, abs=0.3), pytest.approx(22.0, abs=0.05))


def test_muted_agent_while_the_customer_talks_is_no_hold() -> None:
    # "go ahead" then a digitally silent agent line under 45 s of customer speech in
    # sentences, a 6 s pause, then the agent
    customer = s(".", 3.5) + (s("#", 8.4) + s(".", 0.6)) * 5 + s(".", 6)
    agent = s("#", 2.8) + s("_", len(customer) * WINDOW_S - 2.8) + s("#", 3)
    conv = converse(customer, agent)
    assert conv.tracker.totals.holds == []
    assert kinds(conv.findings) == []


def test_silent_agent_and_silent_customer_is_a_hold() -> None:
    # "please hold" and a digitally silent line while the customer waits: a hold
    agent = s("#", 2) + s("_", 50) + s("#", 2)
    conv = converse("", agent)
    ((start, end),) = conv.tracker.totals.holds
    assert (start, end) == (pytest.approx(2.0, abs=0.05), pytest.approx(52.0, abs=0.05))
    assert kinds(conv.findings) == [("long_hold", pytest.approx(start + 45.0, abs=0.05))]


def test_muted_agent_and_silent_customer_after_customer_spoke_is_dead_air() -> None:
    # the agent mutes, the customer talks, then nobody: the agent's turn, not a hold
    agent = s("#", 2) + s("_", 25) + s("#", 2)
    customer = s(".", 3) + s("#", 5) + s(".", 21)
    conv = converse(customer, agent)
    assert conv.tracker.totals.holds == []
    assert kinds(conv.findings) == [("dead_air", pytest.approx(16.0, abs=0.1))]


def test_silence_hold_taken_back_when_the_customer_talks_early() -> None:
    # a slow customer: the line-silence hold is inferred, then the customer explains
    agent = s("#", 2) + s("_", 30) + s("#", 2)
    customer = s(".", 8) + s("#", 20) + s(".", 6)
    conv = converse(customer, agent)
    assert conv.tracker.totals.holds == []
    assert kinds(conv.findings) == []


# ------------------------------------------------------------------------ segmenter


def test_segmenter_cuts_released_speech_from_its_backdated_start() -> None:
    audio = ChannelAudio(keep_s=20.0)
    audio.append((np.arange(10 * ASR_RATE) / ASR_RATE).astype(np.float32))
    segmenter = UtteranceSegmenter(UtteranceConfig(partial_every_s=0), "agent", audio)
    segmenter.resume_held(4.0, 6.0)
    (u,) = segmenter.feed(None, 9.0)
    assert u.final
    assert (u.start_s, u.end_s) == (pytest.approx(3.7), pytest.approx(6.15))
    assert u.speech_s == pytest.approx(2.0)
    assert u.audio[0] == pytest.approx(3.7, abs=1e-4)


def test_segmenter_released_speech_still_going_continues_with_live_edges() -> None:
    audio = ChannelAudio(keep_s=20.0)
    audio.append(np.zeros(10 * ASR_RATE, dtype=np.float32))
    segmenter = UtteranceSegmenter(UtteranceConfig(partial_every_s=0), "agent", audio)
    segmenter.resume_held(4.0, None)
    assert segmenter.feed(None, 6.0) == []
    assert segmenter.feed(SpeechEdge(False, 7.0), 7.3) == []
    (u,) = segmenter.feed(None, 7.6)
    assert (u.start_s, u.end_s) == (pytest.approx(3.7), pytest.approx(7.15))
