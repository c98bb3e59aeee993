"""The native ingest protocol over real sockets: bad input is refused with its error code
and close code, without touching other calls; every ending keeps the scorecard."""

from __future__ import annotations

import asyncio
import json

import numpy as np
import pytest
from prometheus_client import CONTENT_TYPE_LATEST
from prometheus_client.parser import text_string_to_metric_families
from websockets.asyncio.client import connect

from assist.replay import encode_frames, stream_call
from tests.conftest import make_settings, synthesized_call
from tests.e2e.helpers import (
    assert_nudges_match,
    http_get,
    http_get_json,
    raw_call,
    start_message,
    stream_rendered,
    truth,
)

pytestmark = pytest.mark.e2e

START = json.dumps(start_message("c-1"))
SILENCE_20MS = bytes(320 * 2)  # 160 samples x 2 channels x 2 bytes


@pytest.mark.parametrize(
    ("messages", "code", "close_code"),
    [
        (["{not json"], "bad_json", 1007),
        (['["a list"]'], "bad_json", 1007),
        (["[" * 20000 + "]" * 20000], "bad_json", 1007),  # nested past the parser's depth
        (['{"type": "start", "sample_rate": ' + "9" * 5000 + "}"], "bad_json", 1007),
        ([START, '{"type": "hold", "on": ' + "[" * 20000], "bad_json", 1007),
        (['{"type": "dance"}'], "unknown_type", 1008),
        ([json.dumps(start_message("c-1", sample_rate=44100))], "unsupported_sample_rate", 1003),
        ([json.dumps(start_message("c-1", encoding="opus"))], "unsupported_encoding", 1003),
        ([json.dumps(start_message("c-1", channels=["agent", "agent"]))], "bad_start", 1008),
        ([json.dumps(start_message("c-1", channels=["boss"]))], "bad_start", 1008),
        ([json.dumps({"type": "start", "call_id": "c-1"})], "bad_start", 1008),
        ([json.dumps(start_message("bad id with spaces"))], "bad_start", 1008),
        ([json.dumps(start_message("c-1", live="sometimes"))], "bad_start", 1008),
        ([SILENCE_20MS], "audio_before_start", 1008),
        (['{"type": "hold", "on": true}'], "expected_start", 1008),
        ([START, SILENCE_20MS[:-1]], "odd_byte_count", 1007),
        ([START, bytes(8000 * 4 + 4)], "frame_too_large", 1009),
        ([START, START], "duplicate_start", 1008),
        ([START, '{"type": "hold", "on": "maybe"}'], "bad_hold", 1008),
        ([START, '{"type": "nope"}'], "unknown_type", 1008),
        ([START, "x" * 70000], "message_too_large", 1009),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
async def test_bad_input_is_refused_with_code(server, messages, code, close_code):
    replies = await raw_call(server.ws, *messages)
    errors = [r for r in replies if r.get("type") == "error"]
    assert len(errors) == 1, replies
    assert errors[0]["code"] == code
    assert errors[0]["message"]
    assert replies[-1]["close_code"] == close_code
    assert server.service.metrics.protocol_errors.get(code=code) == 1
    assert not server.service.live


async def test_bad_calls_do_not_disturb_a_live_call(server):
    call = synthesized_call("interruptions")
    first_nudge = asyncio.Event()
    good = asyncio.create_task(
        stream_rendered(
            server.ws,
            call,
            "good-call",
            speed=8.0,
            on_event=lambda event, _: event["type"] == "nudge" and first_nudge.set(),
        )
    )
    await first_nudge.wait()  # the good call is live and producing nudges
    results = await asyncio.gather(
        raw_call(server.ws, "{oops"),
        raw_call(server.ws, json.dumps(start_message("bad-1")), SILENCE_20MS[:3]),
        raw_call(server.ws, json.dumps(start_message("good-call"))),  # id in use
        raw_call(server.ws, SILENCE_20MS),
    )
    codes = [next(r["code"] for r in replies if r.get("type") == "error") for replies in results]
    assert codes == ["bad_json", "odd_byte_count", "call_id_in_use", "audio_before_start"]
    assert not good.done()
    result = await good
    assert result.error is None
    assert_nudges_match(result, truth(call))


async def test_stop_returns_scorecard_then_closes(server):
    replies = await raw_call(
        server.ws, START, SILENCE_20MS, b"", SILENCE_20MS, json.dumps({"type": "stop"})
    )
    assert replies[0] == {"type": "started", "call_id": "c-1"}
    stopped = replies[1]
    assert stopped["type"] == "stopped" and stopped["call_id"] == "c-1"
    assert stopped["scorecard"]["metrics"]["duration_s"] == pytest.approx(0.04, abs=0.033)
    assert set(stopped["scorecard"]["skills"]) == {
        "patience",
        "empathy",
        "trust",
        "efficiency",
        "positive_attitude",
    }
    assert replies[2]["close_code"] == 1000


async def test_single_channel_call(server):
    start = json.dumps(start_message("mono-1", channels=["agent"]))
    replies = await raw_call(server.ws, start, bytes(320), json.dumps({"type": "stop"}))
    assert replies[1]["type"] == "stopped"
    assert replies[1]["scorecard"]["metrics"]["talk_s"] == {"agent": 0.0}


async def test_a_client_gone_before_reading_started_releases_the_call(server):
    async with connect(f"{server.ws}/v1/floor/events") as floor:
        assert json.loads(await floor.recv())["type"] == "subscribed"
        ws = await connect(f"{server.ws}/v1/calls")
        await ws.send(json.dumps(start_message("gone-1")))
        ws.transport.abort()  # never reads "started"
        while (event := json.loads(await floor.recv()))["type"] != "call_ended":
            pass
    assert event["call_id"] == "gone-1"
    assert server.service.live == {}
    async with connect(f"{server.ws}/v1/calls") as again:  # the id is free again
        await again.send(json.dumps(start_message("gone-1")))
        assert json.loads(await again.recv())["type"] == "started"


async def test_dropped_connection_ends_call_and_keeps_scorecard(server):
    call = synthesized_call("dead_air")
    pcm = np.round(call.audio * 32768).clip(-32768, 32767).astype("<i2")
    async with connect(f"{server.ws}/v1/agents/agent-1/events") as events:
        assert json.loads(await events.recv())["type"] == "subscribed"
        ws = await connect(f"{server.ws}/v1/calls")
        await ws.send(json.dumps(start_message("drop-1")))
        assert json.loads(await ws.recv())["type"] == "started"
        half = pcm[: len(pcm) // 2]
        for i in range(0, len(half), 160):
            await ws.send(half[i : i + 160].tobytes())
        ws.transport.abort()  # the line drops: no close frame, no stop
        kinds = []
        while True:
            event = json.loads(await events.recv())
            kinds.append(event["type"])
            if event["type"] == "call_ended":
                break
    assert "nudge" in kinds  # the first dead air happened before the drop
    status, scorecard = await http_get_json(f"{server.http}/v1/calls/drop-1/scorecard")
    assert status == 200
    assert scorecard["metrics"]["duration_s"] == pytest.approx(25.0, abs=0.1)
    assert scorecard["metrics"]["dead_air_moments"] == 1
    assert not server.service.live


async def test_agent_streams_only_see_their_own_calls(server):
    call = synthesized_call("dead_air")
    async with connect(f"{server.ws}/v1/agents/bystander/events") as other:
        assert json.loads(await other.recv())["type"] == "subscribed"
        result = await stream_rendered(server.ws, call, "own-1", agent_id="owner")
        assert len(result.nudges) == 2
        assert all(n["agent_id"] == "owner" for n in result.nudges)
        await other.send("ping from a client is ignored")
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.3):
                await other.recv()


async def test_health_metrics_and_unknown_routes(server):
    status, health = await http_get_json(f"{server.http}/healthz")
    assert status == 200 and health["status"] == "ok" and health["models"]["vad"]
    replies = await raw_call(server.ws, START, SILENCE_20MS, json.dumps({"type": "stop"}))
    assert replies[1]["type"] == "stopped"
    status, content_type, text = await http_get(f"{server.http}/metrics")
    assert status == 200 and content_type == CONTENT_TYPE_LATEST
    families = {f.name: f for f in text_string_to_metric_families(text)}
    samples = [s for family in families.values() for s in family.samples]
    values = {(s.name, tuple(s.labels.items())): s.value for s in samples}
    assert values["assist_calls_total", (("protocol", "native"),)] == 1
    assert values["assist_calls_active", ()] == 0
    assert values["assist_audio_seconds_total", ()] == pytest.approx(0.02)
    assert families["assist_processing_lag_seconds"].type == "histogram"
    status, _ = await http_get_json(f"{server.http}/nope")
    assert status == 404
    status, _ = await http_get_json(f"{server.http}/v1/calls/unknown/scorecard")
    assert status == 404
    status, body = await http_get_json(f"{server.http}/static/missing.js")
    assert (status, body) == (404, {"error": "no route for /static/missing.js"})


async def test_healthz_is_503_until_models_load():
    from assist.server.app import AssistServer
    from assist.service import AssistService

    service = AssistService(make_settings())
    server = AssistServer(service)
    await server.start("127.0.0.1", 0)
    try:
        base = f"127.0.0.1:{server.port}"
        status, health = await http_get_json(f"http://{base}/healthz")
        assert status == 503 and health["status"] == "loading"
        replies = await raw_call(f"ws://{base}", START)
        assert replies[0]["code"] == "not_ready" and replies[-1]["close_code"] == 1013
        await service.load_models()
        status, _ = await http_get_json(f"http://{base}/healthz")
        assert status == 200
    finally:
        await server.close()


async def test_capacity_limit(server_factory):
    running = await server_factory(make_settings(limits={"max_calls": 1}))
    async with connect(f"{running.ws}/v1/calls") as first:
        await first.send(json.dumps(start_message("cap-1")))
        assert json.loads(await first.recv())["type"] == "started"
        replies = await raw_call(running.ws, json.dumps(start_message("cap-2")))
        assert replies[0]["code"] == "at_capacity" and replies[-1]["close_code"] == 1013


async def test_overload_drops_oldest_audio_and_counts_it(server_factory):
    running = await server_factory(make_settings(limits={"ingest_queue_s": 0.1}))
    call = synthesized_call("dead_air")
    result = await stream_rendered(running.ws, call, "flood-1", speed=0.0)
    assert result.scorecard is not None
    assert result.scorecard["metrics"]["duration_s"] == pytest.approx(50.0, abs=0.1)
    dropped = running.service.metrics.audio_dropped_seconds.get()
    processed = running.service.metrics.audio_seconds.get()
    assert dropped > 0
    assert processed + dropped == pytest.approx(50.0, abs=0.05)
    assert result.scorecard["metrics"]["audio_lost_s"] == pytest.approx(dropped, abs=0.01)


async def test_a_recording_sent_unpaced_loses_nothing(server_factory):
    """``"live": false``: the same flood with the same 0.1 s backlog, but the server reads
    the socket no faster than it keeps up (TCP slows the sender), so every second is heard."""
    running = await server_factory(make_settings(limits={"ingest_queue_s": 0.1}))
    call = synthesized_call("dead_air")
    start = start_message("recording-1", sample_rate=call.sample_rate, live=False)
    frames = encode_frames(call.audio, call.sample_rate, "pcm16")
    result = await stream_call(running.ws, start, frames, speed=0.0)
    assert result.error is None and result.scorecard is not None
    assert result.scorecard["metrics"]["audio_lost_s"] == 0
    assert running.service.metrics.audio_dropped_seconds.get() == 0
    assert running.service.metrics.audio_seconds.get() == pytest.approx(50.0, abs=0.05)
    assert_nudges_match(result, truth(call))


@pytest.mark.parametrize("live", [True, False])
async def test_a_recordings_keepalive_pings_are_not_timed_out(server, live: bool):
    """A recording's reads pause while the call catches up, so its pong can wait behind
    buffered audio: the server stops timing out its pings (a live line keeps websockets'
    default)."""
    async with connect(f"{server.ws}/v1/calls") as ws:
        await ws.send(json.dumps(start_message(f"keepalive-{live}", live=live)))
        assert json.loads(await ws.recv())["type"] == "started"
        (connection,) = server.server._server.connections  # type: ignore[union-attr]
        assert (connection.ping_timeout is None) is (not live)
        assert connection.ping_interval is not None  # pings still keep the socket open
