"""``bench/line_conditions.py``: the test calls under other line conditions, matched against
their truth. A quick run over three calls, as the noisy-line fixes must keep it: every cue
hit and no false nudge on a clean line and on one hissing at -45 dBFS."""

from __future__ import annotations

import json
import shutil

import pytest

from bench import line_conditions

pytestmark = pytest.mark.speech


def test_the_calls_keep_their_cues_on_a_hissing_line(tmp_path):
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng not installed")
    calls = ["interruptions", "dead_air", "hold_announcements"]
    conditions = ["as scripted", "hiss -45 dBFS"]
    argv = ["--calls", *calls, "--conditions", *conditions, "--out", str(tmp_path)]
    assert line_conditions.main(argv) == 0
    results = json.loads((tmp_path / "line_conditions.json").read_text())
    assert (tmp_path / "line_conditions.png").stat().st_size > 0
    assert list(results["conditions"]) == conditions
    for totals in results["conditions"].values():
        assert totals["calls"] == 3 and totals["cues"] >= 5
        assert totals["hits"] == totals["cues"] and totals["false"] == 0, results["calls"]
    assert len(results["calls"]) == 6


def test_matching_takes_the_nearest_nudge_of_the_kind_within_the_tolerance():
    got = [("dead_air", 12.0), ("dead_air", 12.4), ("interruption", 3.0), ("long_hold", 90.0)]
    want = [("dead_air", 12.5), ("interruption", 5.0), ("monologue", 64.0)]
    hits, missed, false = line_conditions.match(got, want)
    assert hits == 1
    assert missed == [("interruption", 5.0), ("monologue", 64.0)]
    assert false == [("dead_air", 12.0), ("interruption", 3.0), ("long_hold", 90.0)]
