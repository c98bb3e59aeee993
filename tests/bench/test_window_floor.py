"""``bench/window_floor.py``'s statistics: a floor's WER against the full window's, paired
by utterance, with a bootstrap interval over the prompts (no model: hand-made rows)."""

import json

import pytest

from bench.window_floor import (
    against_full_window,
    paired_difference,
    per_seed_wer,
    reference_comparison,
)


def row(name, errors, words=10, seed=0, channel="customer"):
    return {"name": name, "seed": seed, "channel": channel, "errors": errors, "words": words}


def test_the_same_errors_at_both_floors_differ_by_nothing():
    rows = [row(f"p{i}", i % 3) for i in range(20)]
    difference = paired_difference(rows, [dict(r) for r in rows])
    assert difference["points"] == 0.0 and difference["ci95"] == [0.0, 0.0]
    assert difference["prompts"] == 20 and difference["utterances"] == 20


def test_the_difference_is_in_points_of_the_pooled_word_error_rate():
    reference = [row(f"p{i}", 0) for i in range(10)]  # 100 words, no error
    worse = [row(f"p{i}", 1 if i < 2 else 0) for i in range(10)]  # 2 errors
    difference = paired_difference(reference, worse)
    assert difference["points"] == pytest.approx(2.0)
    low, high = difference["ci95"]
    assert low >= 0.0 and low <= 2.0 <= high  # errors one way only: never below 0


def test_errors_both_ways_give_an_interval_across_zero():
    reference = [row(f"p{i}", 1 if i % 2 else 0) for i in range(40)]
    swapped = [row(f"p{i}", 0 if i % 2 else 1) for i in range(40)]
    difference = paired_difference(reference, swapped)
    assert difference["points"] == 0.0
    assert difference["ci95"][0] < 0.0 < difference["ci95"][1]


def test_noise_seeds_pair_with_their_own_seed_and_resample_with_their_prompt():
    reference = [row("a", 0, seed=0), row("a", 2, seed=1), row("b", 0, seed=0), row("b", 0, seed=1)]
    rows = [row("a", 2, seed=0), row("a", 0, seed=1), row("b", 1, seed=0), row("b", 1, seed=1)]
    difference = paired_difference(reference, rows)
    assert difference["points"] == pytest.approx(100 * 2 / 40)
    assert difference["prompts"] == 2 and difference["utterances"] == 4
    # a prompt's seeds go together, so prompt "a" alone (no net change) and "b" alone
    # (+2 in 20 words) bound every resample
    assert difference["ci95"][0] >= -1e-9 and difference["ci95"][1] <= 10.0 + 1e-9


def test_rows_that_do_not_match_are_refused():
    with pytest.raises(ValueError, match="same utterances"):
        paired_difference([row("a", 0)], [row("b", 0)])
    with pytest.raises(ValueError, match="same utterances"):
        paired_difference([row("a", 0)], [row("a", 0), row("a", 1, seed=1)])


def test_each_floor_is_compared_with_the_full_window_of_its_rate_per_group():
    full = [row("a", 1, channel="customer"), row("b", 0, channel="agent")]
    eight = [row("a", 2, channel="customer"), row("b", 0, channel="agent")]
    compared = against_full_window({(8000, 30.0): full, (8000, 8.0): eight})
    assert list(compared) == ["8000"] and list(compared["8000"]) == ["8.0"]
    groups = compared["8000"]["8.0"]
    assert groups["customer"]["points"] == pytest.approx(10.0)
    assert groups["agent"]["points"] == 0.0
    assert groups["all"]["points"] == pytest.approx(5.0)
    assert "short" not in groups
    assert against_full_window({(8000, 8.0): eight}) == {}  # nothing to compare with


def test_word_error_rate_per_noise_seed():
    rows = [row("a", 1, seed=0), row("a", 3, seed=1, channel="agent")]
    assert per_seed_wer(rows) == {
        "0": {"customer": 0.1, "all": 0.1},
        "1": {"agent": 0.3, "all": 0.3},
    }


def test_a_run_is_compared_with_the_full_window_of_a_reference_run(tmp_path):
    greedy_full = [row("a", 1, channel="customer"), row("b", 2, channel="agent")]
    reference = tmp_path / "window_floor.json"
    reference.write_text(
        json.dumps({"beam_size": 1, "silence_tail": True, "rows": {"8000/30.0": greedy_full}})
    )
    beam_eight = [row("a", 0, channel="customer"), row("b", 2, channel="agent")]
    compared = reference_comparison({(8000, 8.0): beam_eight}, reference)
    assert compared["reference"] == {
        "file": str(reference),
        "beam_size": 1,
        "silence_tail": True,
        "noise_seeds": None,
    }
    groups = compared["against_reference"]["8000"]["8.0"]
    assert groups["customer"]["points"] == pytest.approx(-10.0)
    assert groups["agent"]["points"] == 0.0
    assert reference_comparison({(8000, 8.0): beam_eight}, None) == {}
    with pytest.raises(ValueError, match="no 30 s rows at 16000"):
        reference_comparison({(16000, 8.0): beam_eight}, reference)
