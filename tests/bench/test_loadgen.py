"""The load generator's schedule and accounting (pure: no server): slot starts with and
without a ramp, the measured window, and what a corrected re-send does to the numbers."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from assist.config import PaceConfig
from assist.detectors.pace import PaceDetector
from assist.replay import ReplayResult
from assist.synth.render import RenderedUtterance
from bench.loadgen import (
    STAGGER_S,
    StreamedCall,
    Truth,
    cue_stats,
    pace_truth,
    slot_start_s,
    transcript_delays,
    window_truth,
)
from bench.report import cue_error_lines


def test_without_a_ramp_the_slots_start_together_a_stagger_apart():
    assert [slot_start_s(k, 4, 0.0) for k in range(4)] == pytest.approx(
        [0.0, STAGGER_S, 2 * STAGGER_S, 3 * STAGGER_S]
    )


def test_a_ramp_spreads_the_slot_starts_evenly_over_it():
    starts = [slot_start_s(k, 12, 60.0) for k in range(12)]
    assert starts == pytest.approx([5.0 * k for k in range(12)])
    assert max(starts) < 60.0  # every slot runs when the measured window opens


def test_moments_outside_the_window_are_optional_and_inside_stay_firm():
    truth = [Truth("interruption", 3.0), Truth("pace", 20.0), Truth("dead_air", 95.0)]
    windowed = window_truth(truth, from_s=10.0, to_s=90.0)
    assert [(t.kind, t.optional) for t in windowed] == [
        ("interruption", True),  # before the window: in the ramp
        ("pace", False),
        ("dead_air", True),  # after the audio streamed
    ]
    already = [Truth("pace", 20.0, optional=True)]
    assert window_truth(already, 0.0, 90.0) == already  # not made firm


def _call(events: list[tuple[dict, float]], truth: list[Truth], from_s: float = 0.0):
    result = ReplayResult("c", None, [e for e, _ in events], [t for _, t in events])
    return StreamedCall("script", result, truth, streamed_s=60.0, measured_from_s=from_s)


def _final(end_s: float, **extra) -> dict:
    return {"type": "transcript", "final": True, "end_s": end_s, **extra}


def test_transcript_delays_skip_re_sent_finals_and_those_before_the_window():
    events = [
        (_final(4.0), 4.6),  # ended before the window opened
        (_final(12.0), 12.8),
        ({"type": "transcript", "final": False, "end_s": 13.0}, 13.2),  # a partial
        (_final(12.0, corrected=True), 40.0),  # the same final again, 28 s later
    ]
    assert transcript_delays([_call(events, [], from_s=10.0)]) == pytest.approx([0.8])


def test_a_corrected_nudge_is_neither_a_second_hit_nor_false():
    nudge = {"type": "nudge", "kind": "negative_phrasing", "media_time_s": 20.0}
    events = [(nudge, 21.5), ({**nudge, "corrected": True}, 35.0)]
    stats = cue_stats([_call(events, [Truth("negative_phrasing", 20.0)])])
    cue = stats["negative_phrasing"]
    assert cue["n"] == 1 and cue["false"] == 0 and cue["recall"] == 1.0
    assert cue["p95_s"] == pytest.approx(1.5)


def test_a_false_nudge_is_listed_with_its_script_time_and_evidence():
    evidence = {"measured": 0.71, "explanation": "The customer said: 'Thanks a lot.'"}
    hit = {"type": "nudge", "kind": "customer_frustration", "media_time_s": 20.0}
    stray = {**hit, "media_time_s": 50.0, "evidence": evidence}
    stats = cue_stats([_call([(hit, 21.0), (stray, 51.0)], [Truth("customer_frustration", 20.0)])])
    cue = stats["customer_frustration"]
    assert cue["n"] == 1 and cue["false"] == 1 and cue["missed_moments"] == []
    assert cue["false_nudges"] == [
        {"script": "script", "media_time_s": 50.0, **evidence},
    ]
    assert "| customer_frustration | script | 50.00 | The customer said: 'Thanks a lot.' |" in (
        cue_error_lines({"cues": stats})
    )


def test_a_missed_moment_is_listed_with_its_script_and_time():
    nudge = {"type": "nudge", "kind": "negative_phrasing", "media_time_s": 20.0}
    truth = [Truth("negative_phrasing", 20.0), Truth("negative_phrasing", 41.0)]
    cue = cue_stats([_call([(nudge, 21.0)], truth)])["negative_phrasing"]
    assert cue["recall"] == 0.5
    assert cue["missed_moments"] == [{"script": "script", "media_time_s": 41.0}]
    table = cue_error_lines({"cues": {"negative_phrasing": cue}})
    assert "| negative_phrasing | script | 41.00 |" in table


def test_pace_truth_waits_for_min_turn_s_as_the_detector_does():
    # three fast agent lines (24 words in 4 s each: 360 wpm) 0.5 s apart, no customer
    # between: 48 words pass min_words after the second line, but the turn reaches
    # min_turn_s (10 s) only with the third
    lines = [(1.0, 5.0), (5.5, 9.5), (10.0, 14.0)]
    text = " ".join(["word"] * 24)
    utterances = [RenderedUtterance("agent", text, start, end) for start, end in lines]
    call = SimpleNamespace(utterances=utterances)
    config = PaceConfig()
    detector = PaceDetector(config)
    fired = [
        f.at_s for start, end in lines for f in detector.feed_utterance(24, end - start, end, start)
    ]
    assert fired == [14.0]  # pauses not fed: 12 s of speech alone reach min_turn_s
    assert pace_truth(call, config) == [Truth("pace", 14.0)]  # type: ignore[arg-type]
