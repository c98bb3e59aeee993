"""VoiceGate: hysteresis over synthetic VAD windows, backdated media-time edges."""

from __future__ import annotations

import math

import pytest

from assist.config import VadConfig
from assist.vad.gate import SpeechEdge, VoiceGate
from assist.vocabulary import WINDOW_S, WindowActivity

# char -> (speech probability, dBFS)
LEVELS: dict[str, tuple[float, float]] = {
    "#": (0.9, -20.0),  # clear speech
    "~": (0.4, -20.0),  # between offset (0.35) and onset (0.5): keeps speech, can't start it
    ".": (0.05, -60.0),  # quiet, not speech
    "q": (0.9, -70.0),  # speech-like but below min_speech_dbfs (-55)
    "x": (0.9, math.nan),  # lost window
    # a hissing line (noise floor -45 dBFS)
    "h": (0.05, -45.0),  # its hiss
    "e": (0.97, -44.0),  # a faint echo under the hiss: Silero calls it speech
    "s": (0.9, -22.0),  # the customer's own voice
    "w": (0.9, -38.0),  # a weak syllable of it, 7 dB above the floor
}


def windows(pattern: str, start: int = 0) -> list[WindowActivity]:
    return [WindowActivity(start + i, *LEVELS[c]) for i, c in enumerate(pattern)]


def feed(gate: VoiceGate, pattern: str) -> list[tuple[int, SpeechEdge]]:
    """Feed the pattern; return (window index, edge) for every edge."""
    edges = []
    for w in windows(pattern):
        edge = gate.feed(w)
        if edge is not None:
            edges.append((w.index, edge))
    return edges


def at(index: int) -> float:
    return index * WINDOW_S


# Defaults: onset after 2 windows (0.064 s), offset after 8 windows (0.25 s -> 7.8).
@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        # onset on the 2nd speech window, backdated to the first
        ("..##", [(3, True, 2)]),
        ("#####", [(1, True, 0)]),
        # a single-window blip is below min_speech: never speech
        ("..#..#..#.", []),
        # onset broken by a quiet window restarts the run
        ("#.#.##", [(5, True, 4)]),
        # offset after 8 unvoiced windows, backdated to the first of them
        ("####........", [(1, True, 0), (11, False, 4)]),
        # a 7-window pause is bridged
        ("####.......####", [(1, True, 0)]),
        # two segments
        ("##........##........", [(1, True, 0), (9, False, 2), (11, True, 10), (19, False, 12)]),
        # 0.4 probability keeps speech going but cannot start it
        ("~~~~~", []),
        ("##~~~~~~~~~~", [(1, True, 0)]),
        ("##~~~~........", [(1, True, 0), (13, False, 6)]),
        # too quiet (below min_speech_dbfs) never counts, whatever the probability
        ("qqqqqq", []),
        ("##qqqqqqqq", [(1, True, 0), (9, False, 2)]),
        # lost windows are not speech, and end speech at once, where the audio was lost
        ("xxxxxx", []),
        ("##xxxxxxxx", [(1, True, 0), (2, False, 2)]),
        # ... or where the pause already under way began
        ("###....x", [(1, True, 0), (7, False, 3)]),
        # a lost window breaks an onset run
        ("#x#.##", [(5, True, 4)]),
    ],
)
def test_gate_edges_default_config(pattern: str, expected: list[tuple[int, bool, int]]) -> None:
    gate = VoiceGate(VadConfig())
    got = feed(gate, pattern)
    assert [(i, e.start) for i, e in got] == [(i, s) for i, s, _ in expected]
    for (_, edge), (_, _, start_index) in zip(got, expected, strict=True):
        assert edge.at_s == pytest.approx(at(start_index))


@pytest.mark.parametrize(
    ("min_speech_s", "blip", "starts"),
    [
        (0.2, 6, False),  # 0.2 s -> 7 windows (0.192 < 0.2)
        (0.2, 7, True),
        (0.064, 1, False),
        (0.064, 2, True),
        (0.0, 1, True),  # at least one window
        (0.096, 3, True),  # exact multiple of the window
        (0.096, 2, False),
    ],
)
def test_onset_needs_min_speech(min_speech_s: float, blip: int, starts: bool) -> None:
    gate = VoiceGate(VadConfig(min_speech_s=min_speech_s))
    edges = feed(gate, "...." + "#" * blip + "." * 20)
    onsets = [(i, e) for i, e in edges if e.start]
    assert bool(onsets) == starts
    if starts:
        index, edge = onsets[0]
        assert index == 4 + blip - 1
        assert edge.at_s == pytest.approx(at(4))
        assert gate.speech_start_s == pytest.approx(at(4))


@pytest.mark.parametrize(
    ("min_silence_s", "pause", "ends"),
    [
        (0.25, 7, False),
        (0.25, 8, True),
        (0.5, 15, False),  # 0.5 s -> 16 windows
        (0.5, 16, True),
        (0.032, 1, True),
    ],
)
def test_offset_needs_min_silence(min_silence_s: float, pause: int, ends: bool) -> None:
    gate = VoiceGate(VadConfig(min_silence_s=min_silence_s))
    edges = feed(gate, "#" * 10 + "." * pause + "#" * 3)
    offsets = [(i, e) for i, e in edges if not e.start]
    assert bool(offsets) == ends
    if ends:
        index, edge = offsets[0]
        assert index == 10 + pause - 1
        assert edge.at_s == pytest.approx(at(10))
        assert gate.speech_end_s == pytest.approx(at(10))


def test_state_fields_follow_edges() -> None:
    gate = VoiceGate(VadConfig())
    assert not gate.in_speech
    assert gate.last_voiced_end_s == -math.inf
    feed(gate, "...###")
    assert gate.in_speech
    assert gate.speech_start_s == pytest.approx(at(3))
    feed_more = [gate.feed(w) for w in windows("." * 8, start=6)]
    assert feed_more[-1] == SpeechEdge(False, pytest.approx(at(6)))
    assert not gate.in_speech
    assert gate.speech_end_s == pytest.approx(at(6))
    assert gate.speech_start_s == pytest.approx(at(3))  # the last segment's start stays


@pytest.mark.parametrize(
    ("pattern", "last_voiced_index"),
    [
        ("....", None),
        ("#", 0),  # a blip that never became speech still counts as voiced
        ("##...", 1),
        ("##~~..", 3),  # offset-level probability is voiced
        ("~...", 0),
        ("##qq", 1),  # too quiet is not voiced
        ("##xx", 1),  # lost is not voiced
        ("#....#......", 5),
    ],
)
def test_last_voiced_end(pattern: str, last_voiced_index: int | None) -> None:
    gate = VoiceGate(VadConfig())
    feed(gate, pattern)
    if last_voiced_index is None:
        assert gate.last_voiced_end_s == -math.inf
    else:
        assert gate.last_voiced_end_s == pytest.approx((last_voiced_index + 1) * WINDOW_S)


@pytest.mark.parametrize(
    ("dbfs", "speaks"),
    [(-20.0, True), (-55.0, True), (-55.1, False), (-90.0, False), (math.nan, False)],
)
def test_loud_enough_threshold(dbfs: float, speaks: bool) -> None:
    gate = VoiceGate(VadConfig(min_speech_dbfs=-55.0))
    for i in range(5):
        gate.feed(WindowActivity(i, 0.99, dbfs))
    assert gate.in_speech == speaks
    assert (gate.last_voiced_end_s == pytest.approx(5 * WINDOW_S)) == speaks


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        # faint echo under the hiss never starts speech, however long it goes on
        ("h" * 20 + ("e" * 40 + "h" * 3) * 5, []),
        # the customer's voice does, weak syllables keep it going, and the echo after it
        # (1 dB above the floor) ends it like silence, after 8 windows
        ("h" * 20 + "ss" + "wwww" + "ss" + "e" * 20, [(21, True, 20), (35, False, 28)]),
        # speech before anything is known of the floor starts as on any line
        ("ss" + "h" * 10, [(1, True, 0), (9, False, 2)]),
    ],
)
def test_speech_must_stand_out_of_the_lines_noise(
    pattern: str, expected: list[tuple[int, bool, int]]
) -> None:
    got = feed(VoiceGate(VadConfig()), pattern)
    assert [(i, e.start, e.at_s) for i, e in got] == [(i, s, at(j)) for i, s, j in expected]


def test_the_noise_floor_rule_can_be_turned_off() -> None:
    gate = VoiceGate(VadConfig(min_onset_snr_db=0.0))
    assert feed(gate, "h" * 20 + "e" * 10)[0][1] == SpeechEdge(True, at(20))
