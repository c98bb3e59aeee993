"""A later leg of a call continues the call so far: one media timeline, unique ids, and a
scorecard over every leg (``assist.legs``), through the JSON the store keeps."""

from __future__ import annotations

import json

import numpy as np
import pytest

from assist.config import Settings
from assist.legs import CallSoFar
from assist.pipeline import CallPipeline, PipelineOutput
from assist.vocabulary import CallSpec
from tests.unit.test_gaps import CountingScorer, feed, quiet, tone


def leg(so_far: CallSoFar | None = None, channels=("customer", "agent")) -> CallPipeline:
    spec = CallSpec("legs-1", "agent-1", 8000, "pcm16", channels)
    return CallPipeline(Settings(), CountingScorer(), spec, asr=True, so_far=so_far)


def dead_air_leg(call: CallPipeline) -> PipelineOutput:
    """Customer speech, then 9 s of silence (one dead air), with its nudge."""
    out = feed(call, np.concatenate([tone(1.5), quiet(9.5)]), quiet(11.0))
    finished = call.finish()
    out.nudges += finished.nudges
    out.utterances += finished.utterances
    return out


def test_the_next_leg_continues_time_ids_and_the_scorecard() -> None:
    first = leg()
    out = dead_air_leg(first)
    assert [n.id for n in out.nudges] == ["legs-1-1"]
    assert [u.utterance_id for u in out.utterances if u.final] == [0]
    one_leg = first.scorecard()
    state = json.loads(json.dumps(first.call_so_far().to_json()))  # as the store keeps it

    second = leg(CallSoFar.from_json(state))
    assert second.leg_start_s == second.media_time_s == pytest.approx(11.0)
    assert second.samples_lost == 0  # the earlier legs' time is not lost audio
    out = dead_air_leg(second)
    assert [n.id for n in out.nudges] == ["legs-1-2"]  # ids go on, never reused
    assert out.nudges[0].media_time_s == pytest.approx(11.0 + 1.5 + 8.0, abs=0.1)
    finals = [u for u in out.utterances if u.final]
    assert [u.utterance_id for u in finals] == [1]
    assert finals[0].start_s == pytest.approx(11.0, abs=0.05)  # on the call's timeline

    both = second.scorecard()
    metrics, single = both["metrics"], one_leg["metrics"]
    assert metrics["duration_s"] == pytest.approx(22.0, abs=0.05)
    assert metrics["dead_air_moments"] == 2 == 2 * single["dead_air_moments"]
    assert metrics["nudges_sent"] == 2
    assert metrics["talk_s"]["customer"] == pytest.approx(
        2 * single["talk_s"]["customer"], abs=0.05
    )
    assert [m["kind"] for m in both["moments"]] == ["dead_air", "dead_air"]
    assert both["skills"]["efficiency"]["score"] < one_leg["skills"]["efficiency"]["score"]


def test_a_leg_with_other_channels_keeps_the_earlier_talk() -> None:
    first = leg()
    dead_air_leg(first)
    second = leg(first.call_so_far(), channels=("agent",))
    feed_mono = np.concatenate([tone(1.0), quiet(1.0)])
    for i in range(0, len(feed_mono), 160):
        chunk = (feed_mono[i : i + 160] * 32767).astype("<i2").tobytes()
        second.feed_audio(chunk)
    second.finish()
    talk = second.scorecard()["metrics"]["talk_s"]
    assert talk["customer"] == pytest.approx(first.tracker.totals.talk_s["customer"], abs=0.01)
    assert talk["agent"] == pytest.approx(1.0, abs=0.3)  # the gate's hangover counts


def test_an_open_hold_is_closed_where_the_leg_ended() -> None:
    first = leg()
    feed(first, quiet(1.0), quiet(1.0))
    first.set_hold(True)
    feed(first, quiet(2.0), quiet(2.0))
    so_far = first.call_so_far()
    assert so_far.holds == [(pytest.approx(1.0, abs=0.05), pytest.approx(3.0))]
    assert CallSoFar.from_json(so_far.to_json()).holds == so_far.holds


def test_lost_audio_counts_over_every_leg() -> None:
    """The scorecard's ``audio_lost_s`` is the media time no leg heard (gaps, shed audio),
    kept through the stored JSON; a state written before it was kept reads as none lost."""
    first = leg()
    feed(first, quiet(1.0), quiet(1.0))
    first.feed_gap(2 * 8000)
    assert first.scorecard()["metrics"]["audio_lost_s"] == pytest.approx(2.0)
    state = json.loads(json.dumps(first.call_so_far().to_json()))
    second = leg(CallSoFar.from_json(state))
    second.feed_gap(8000 // 2)
    assert second.scorecard()["metrics"]["audio_lost_s"] == pytest.approx(2.5)
    del state["audio_lost_s"]
    assert CallSoFar.from_json(state).audio_lost_s == 0.0


def test_an_unknown_state_version_is_refused() -> None:
    with pytest.raises(ValueError, match="version"):
        CallSoFar.from_json({"version": 99, "media_s": 1.0})


def test_a_record_without_state_still_continues_time_and_ids() -> None:
    record = {
        "call_id": "legs-1",
        "scorecard": {"metrics": {"duration_s": 30.0}},
        "nudges": [{"id": "legs-1-1"}, {"id": "legs-1-2"}],
        "transcripts": [
            {"channel": "agent", "utterance_id": 3, "start_s": 1.0, "end_s": 2.0,
             "text": "hello", "words": []},
        ],
    }  # fmt: skip
    so_far = CallSoFar.from_record(record)
    assert (so_far.media_s, so_far.nudges_sent) == (30.0, 2)
    assert so_far.next_utterance_ids == {"agent": 4}
    assert so_far.transcripts[0].text == "hello" and so_far.findings == []
