"""Recorded and synthesized calls through the real server over real sockets: every cue
moment raises exactly its nudge, at the right media time, on the agent's stream."""

from __future__ import annotations

import json

import pytest

from assist.cli import demo_call_path
from assist.replay import replay_wav
from tests.conftest import synthesized_call
from tests.e2e.helpers import assert_nudges_match, http_get_json, stream_rendered, truth

pytestmark = pytest.mark.e2e


async def test_bundled_demo_call_raises_its_nudges(server):
    truth_file = demo_call_path().with_suffix(".truth.json")
    expected = json.loads(truth_file.read_text())["expected_cues"]
    result = await replay_wav(demo_call_path(), server.ws, "demo-agent", "demo-1", 0.0, "mulaw")
    got = [(n["kind"], n["media_time_s"]) for n in result.nudges]
    assert [k for k, _ in got] == [c["kind"] for c in expected]
    for (_, at), cue in zip(got, expected, strict=True):
        assert abs(at - cue["at_s"]) <= 0.3
    for nudge in result.nudges:
        evidence = nudge["evidence"]
        assert evidence["measured"] >= evidence["threshold"]
        assert evidence["span_start_s"] <= evidence["span_end_s"] <= nudge["media_time_s"] + 1e-6
        assert nudge["message"] and nudge["suggestion"]
    assert result.scorecard is not None
    assert result.scorecard["metrics"]["interruptions"] == 1
    assert result.scorecard["metrics"]["holds"] == 1
    assert result.events[-1]["type"] == "call_ended"
    status, stored = await http_get_json(f"{server.http}/v1/calls/demo-1/scorecard")
    assert status == 200
    assert stored == result.scorecard


@pytest.mark.speech
@pytest.mark.parametrize("name", ["interruptions", "holds", "dead_air", "monologue", "smooth"])
async def test_synthesized_call_raises_exactly_its_nudges(server, name):
    call = synthesized_call(name)
    result = await stream_rendered(server.ws, call, f"synth-{name}")
    assert result.error is None
    assert_nudges_match(result, truth(call))


@pytest.mark.speech
@pytest.mark.parametrize("name", ["interruptions", "holds", "dead_air", "hold_announcements"])
async def test_a_hissing_line_raises_the_same_nudges(server, name):
    # Line noise at -45 dBFS on both channels (25 dB below the speech, a poor but common
    # line): steady hiss on the agent line is neither hold music nor speech, so dead air is
    # dead air, the agent is heard, and hold music replacing the hiss is still a hold. Its
    # first second may be lost: the music fades in from under the hiss (measured 0.8 s).
    call = synthesized_call(name, noise_dbfs=-45.0)
    result = await stream_rendered(server.ws, call, f"hiss-{name}")
    assert result.error is None
    assert_nudges_match(result, truth(call), tolerance_s=1.0)


@pytest.mark.speech
@pytest.mark.parametrize(
    ("encoding", "rate"), [("mulaw", 8000), ("pcm16", 16000), ("mulaw", 16000)]
)
async def test_encodings_and_rates_give_the_same_nudges(server, encoding, rate):
    call = synthesized_call("interruptions")
    result = await stream_rendered(
        server.ws, call, f"enc-{encoding}-{rate}", encoding=encoding, sample_rate=rate
    )
    assert_nudges_match(result, truth(call))


@pytest.mark.speech
async def test_floor_sees_state_alerts_and_end(server):
    from websockets.asyncio.client import connect

    call = synthesized_call("holds")
    async with connect(f"{server.ws}/v1/floor/events") as floor:
        assert json.loads(await floor.recv())["type"] == "subscribed"
        assert json.loads(await floor.recv()) == {"type": "floor_snapshot", "calls": []}
        result = await stream_rendered(server.ws, call, "floor-1", agent_id="agent-7")
        seen = []
        while True:
            event = json.loads(await floor.recv())
            seen.append(event)
            if event["type"] == "call_ended":
                break
    states = [e["call"] for e in seen if e["type"] == "call_update"]
    assert states and all(s["agent_id"] == "agent-7" for s in states)
    assert any(s["state"] == "on_hold" and s["hold_s"] is not None for s in states)
    alerts = [e for e in seen if e["type"] == "alert"]
    assert [a["kind"] for a in alerts] == ["long_hold"] * len(result.nudges)
    assert any(a["severity"] == "critical" for a in alerts)
    assert seen[-1] == {"type": "call_ended", "call_id": "floor-1", "agent_id": "agent-7"}
