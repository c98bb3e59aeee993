"""HoldTracker: CTI hold events and holds inferred from the agent channel's windows."""

from __future__ import annotations

import math

import pytest

from assist.config import HoldInferenceConfig
from assist.hold import HoldEdge, HoldTracker
from assist.vocabulary import WINDOW_S, WindowActivity

# char -> (speech probability, dBFS, agent gate in speech)
LEVELS: dict[str, tuple[float, float, bool]] = {
    "m": (0.01, -30.0, False),  # hold music: loud, not speech
    "M": (0.01, -30.0, True),  # music-like window while the agent's gate is still in speech
    ".": (0.05, -60.0, False),  # quiet room: neither music (< -50) nor line silence (> -72)
    "_": (0.0, -90.0, False),  # digital line silence
    "x": (0.0, math.nan, False),  # lost window
    "S": (0.9, -20.0, True),  # the agent speaking
    "v": (0.5, -30.0, False),  # loud but too speech-like for music
}

# Defaults: music span 3 s = 94 windows, 60 % -> 57 music windows; music end 2 s = 62
# windows; line silence 3 s = 94 windows.
MUSIC_NEEDED = 57
MUSIC_END = 62
SILENCE_NEEDED = 94


def feed(tracker: HoldTracker, pattern: str, start: int = 0) -> list[tuple[int, HoldEdge]]:
    edges = []
    for k, c in enumerate(pattern):
        prob, dbfs, in_speech = LEVELS[c]
        edge = tracker.feed_agent_window(WindowActivity(start + k, prob, dbfs), in_speech)
        if edge is not None:
            edges.append((start + k, edge))
    return edges


def at(index: int) -> float:
    return index * WINDOW_S


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
    pattern: str, on_index: int | None, start_index: int | None, source: str
) -> None:
    """``pattern`` turns the hold on at ``on_index``, backdated to ``start_index``, or never."""
    tracker = HoldTracker(HoldInferenceConfig())
    edges = feed(tracker, pattern)
    if on_index is None or start_index is None:
        assert edges == []
        assert not tracker.on
        return
    check_single_edge(edges, on_index, HoldEdge(True, at(start_index), source))
    assert tracker.on
    assert tracker.source == source
    assert tracker.start_s == pytest.approx(at(start_index))


def check_single_edge(edges: list[tuple[int, HoldEdge]], index: int, expected: HoldEdge) -> None:
    assert len(edges) == 1, edges
    got_index, edge = edges[0]
    assert got_index == index
    assert (edge.on, edge.source) == (expected.on, expected.source)
    assert edge.at_s == pytest.approx(expected.at_s)


@pytest.mark.parametrize(
    ("tail", "off_index", "off_at_index"),
    [
        # music_end_s of no music ends the hold, backdated to the end of the last music
        ("." * MUSIC_END, 100 + MUSIC_END - 1, 100),
        ("." * (MUSIC_END - 1), None, None),
        ("x" * MUSIC_END, 100 + MUSIC_END - 1, 100),  # lost windows are not music
        ("_" * MUSIC_END, 100 + MUSIC_END - 1, 100),
        ("." * 40 + "m" + "." * MUSIC_END, 100 + 40 + MUSIC_END, 141),  # gap bridged
        # the agent speaking ends it at once, at the end of that window
        ("S", 100, 101),
        ("." * 10 + "S", 110, 111),
    ],
)
def test_music_hold_ends(tail: str, off_index: int | None, off_at_index: int | None) -> None:
    tracker = HoldTracker(HoldInferenceConfig())
    edges = feed(tracker, "m" * 100)
    assert [e.on for _, e in edges] == [True]
    edges = feed(tracker, tail, start=100)
    if off_index is None or off_at_index is None:
        assert edges == []
        assert tracker.on
        return
    check_single_edge(edges, off_index, HoldEdge(False, at(off_at_index), "music"))
    assert not tracker.on
    assert tracker.source is None


def test_music_hold_restart_is_not_backdated_before_previous_end() -> None:
    tracker = HoldTracker(HoldInferenceConfig())
    edges = feed(tracker, "m" * 150 + "S" * 3 + "m" * 100)
    assert [e.on for _, e in edges][:2] == [True, False]
    previous_end = edges[1][1].at_s
    for _, edge in edges[2:]:
        assert edge.at_s >= previous_end - 1e-9


# ------------------------------------------------------------------------ line silence


@pytest.mark.parametrize(
    ("pattern", "on_index", "start_index"),
    [
        ("_" * SILENCE_NEEDED, SILENCE_NEEDED - 1, 0),
        ("." * 5 + "_" * SILENCE_NEEDED, 5 + SILENCE_NEEDED - 1, 5),
        ("_" * (SILENCE_NEEDED - 1), None, None),
        ("_" * 50 + "." + "_" * 50, None, None),  # any sound restarts the run
        ("_" * 50 + "x" + "_" * 50, None, None),  # a lost window is not silence
        ("." * 300, None, None),  # quiet but not digitally silent
    ],
)
def test_line_silence_turns_hold_on_backdated(
    pattern: str, on_index: int | None, start_index: int | None
) -> None:
    check_inferred_hold(pattern, on_index, start_index, "line_silence")


@pytest.mark.parametrize("sound", [".", "S", "m", "v"])
def test_line_silence_hold_ends_on_any_sound(sound: str) -> None:
    tracker = HoldTracker(HoldInferenceConfig())
    feed(tracker, "_" * 120)
    assert tracker.on
    edges = feed(tracker, "_" * 10 + sound, start=120)
    check_single_edge(edges, 130, HoldEdge(False, at(130), "line_silence"))
    assert not tracker.on


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
    tracker = HoldTracker(HoldInferenceConfig())
    assert tracker.set_cti(True, 0.0) == HoldEdge(True, 0.0, "cti")
    assert feed(tracker, "m" * 100) == []
    assert tracker.set_cti(False, 100 * WINDOW_S) is None
    assert tracker.on
    edges = feed(tracker, "." * MUSIC_END, start=100)
    assert [(i, e.on) for i, e in edges] == [(100 + MUSIC_END - 1, False)]
