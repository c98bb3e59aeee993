"""The same call through every ingest protocol gives the same nudges (Twilio fork, L16
preamble stream, native); roles swapped per stream; the Exotel and Telnyx dialects with
frames out of order; Twilio's signature check; a Twilio simulator we did not write."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import sys
import wave
from pathlib import Path

import numpy as np
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from assist.replay import encode_frames
from tests.conftest import make_settings, synthesized_call
from tests.e2e import dialects
from tests.e2e.audiohook_client import send_audiohook
from tests.e2e.helpers import (
    assert_nudges_match,
    collect_agent_events,
    http_get,
    send_l16,
    send_twilio,
    stream_rendered,
    truth,
)

pytestmark = [pytest.mark.e2e, pytest.mark.speech]


@pytest.mark.parametrize("protocol", ["native", "twilio", "l16", "audiohook"])
@pytest.mark.parametrize("name", ["interruptions", "dead_air"])
async def test_every_adapter_gives_the_same_nudges(server, protocol, name):
    call = synthesized_call(name)
    call_id, agent_id = f"{protocol}-{name}", f"agent-{protocol}"
    if protocol == "native":
        result = await stream_rendered(server.ws, call, call_id, agent_id=agent_id)
    elif protocol == "audiohook":  # the server runs without AudioHook credentials (dev mode)
        result = await collect_agent_events(
            server.ws, agent_id, lambda: send_audiohook(server.ws, call, call_id, agent_id)
        )
    elif protocol == "twilio":
        result = await collect_agent_events(
            server.ws, agent_id, lambda: send_twilio(server.ws, call, call_id, agent_id)
        )
    else:
        result = await collect_agent_events(
            server.ws, agent_id, lambda: send_l16(server.ws, call, call_id, agent_id)
        )
    assert result.call_id == call_id
    assert_nudges_match(result, truth(call))
    scorecard = await server.service.store.scorecard(call_id)
    assert scorecard is not None and scorecard["agent_id"] == agent_id


async def test_twilio_packet_loss_keeps_the_cues(server):
    call = synthesized_call("interruptions")
    result = await collect_agent_events(
        server.ws, "lossy", lambda: send_twilio(server.ws, call, "CAloss", "lossy", loss=0.05)
    )
    assert_nudges_match(result, truth(call))
    metrics = server.service.metrics
    assert metrics.audio_seconds.get() == pytest.approx(call.script.duration_s, abs=0.05)


def _signature(token: str, url: str) -> str:
    return base64.b64encode(hmac.new(token.encode(), url.encode(), hashlib.sha1).digest()).decode()


@pytest.mark.parametrize(
    ("signature", "accepted"),
    [("good", True), ("wrong", False), (None, False), ("other-url", False)],
)
async def test_twilio_signature_is_checked_before_upgrade(server_factory, signature, accepted):
    token = "tw-secret"
    running = await server_factory(make_settings(twilio={"auth_token": token}))
    url = f"wss://127.0.0.1:{running.server.port}/v1/twilio"  # what Twilio signs
    value = {
        "good": _signature(token, url),
        "wrong": _signature("not-the-token", url),
        "other-url": _signature(token, "wss://elsewhere.example/v1/twilio"),
        None: None,
    }[signature]
    headers = {"X-Twilio-Signature": value} if value else {}
    if not accepted:
        with pytest.raises(InvalidStatus) as refused:
            async with connect(f"{running.ws}/v1/twilio", additional_headers=headers):
                pass
        assert refused.value.response.status_code == 403
        assert running.service.metrics.protocol_errors.get(code="bad_signature") == 1
        return
    call = synthesized_call("dead_air")
    result = await collect_agent_events(
        running.ws,
        "signed",
        lambda: send_twilio(running.ws, call, "CAsigned", "signed", headers=headers),
    )
    assert_nudges_match(result, truth(call))


@pytest.mark.parametrize(
    ("first", "code"),
    [
        ('{"event": "media"}', "expected_start"),
        ("not json", "bad_json"),
        (
            json.dumps(
                {
                    "event": "start",
                    "start": {
                        "callSid": "CA1",
                        "mediaFormat": {"encoding": "audio/x-l16", "sampleRate": 16000},
                    },
                }
            ),
            "unsupported_media",
        ),
    ],
)
async def test_twilio_malformed_input_is_closed_with_a_code(server, first, code):
    async with connect(f"{server.ws}/v1/twilio") as ws:
        await ws.send(first)
        await ws.wait_closed()
        assert ws.close_reason == code
    assert server.service.metrics.protocol_errors.get(code=code) == 1


@pytest.mark.parametrize(
    ("preamble", "code"),
    [
        (
            {"event": "websocket:connected", "content-type": "audio/l16;rate=44100"},
            "unsupported_sample_rate",
        ),
        ({"sampleRate": 8000, "mixType": "surround"}, "unsupported_mix"),
        ({"sampleRate": 8000, "role": "boss"}, "bad_start"),
        ({"sampleRate": 8000, "mixType": "stereo", "channels": "agent,agent"}, "bad_start"),
        ({"sampleRate": 8000, "mixType": "stereo", "metadata": {"channels": "agent"}}, "bad_start"),
        ({"content-type": "audio/l16;rate=" + "8" * 5000}, "unsupported_sample_rate"),
    ],
)
async def test_l16_bad_preambles(server, preamble, code):
    async with connect(f"{server.ws}/v1/l16") as ws:
        await ws.send(json.dumps(preamble))
        await ws.wait_closed()
        assert ws.close_reason == code


async def test_l16_vonage_mono_stream_with_role_from_query(server):
    call = synthesized_call("dead_air")
    agent_mono = np.round(call.audio[:, 1] * 32768).clip(-32768, 32767).astype("<i2").tobytes()

    async def send() -> None:
        url = f"{server.ws}/v1/l16?role=agent&agent_id=vonage-agent&call_id=vonage-1"
        async with connect(url) as ws:
            await ws.send(
                json.dumps({"event": "websocket:connected", "content-type": "audio/l16;rate=8000"})
            )
            for i in range(0, len(agent_mono), 320):
                await ws.send(agent_mono[i : i + 320])
            await ws.send(json.dumps({"event": "websocket:dtmf", "digit": "1"}))  # ignored

    result = await collect_agent_events(server.ws, "vonage-agent", send)
    assert result.call_id == "vonage-1"
    scorecard = await server.service.store.scorecard("vonage-1")
    assert scorecard["metrics"]["talk_s"].keys() == {"agent"}
    assert scorecard["metrics"]["talk_s"]["agent"] > 3.0


def _write_mono(path: Path, samples: np.ndarray) -> None:
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(8000)
        wav.writeframes(np.round(samples * 32768).clip(-32768, 32767).astype("<i2").tobytes())


@pytest.mark.parametrize("loss", [0.0, 0.05])
async def test_streamdouble_twilio_simulator(server, tmp_path, loss):
    """streamdouble (PyPI, Apache-2.0) plays Twilio: a both-tracks fork in real time."""
    pytest.importorskip("streamdouble")
    call = synthesized_call("interruptions")
    seconds = 12.0  # the first interruption (at 3.8 s) and the agent's reply
    n = int(seconds * call.sample_rate)
    _write_mono(tmp_path / "customer.wav", call.audio[:n, 0])
    _write_mono(tmp_path / "agent.wav", call.audio[:n, 1])
    command = [
        sys.executable, "-m", "streamdouble.cli", "call", f"{server.ws}/v1/twilio",
        "--fork", "--track", "both",
        "--audio", str(tmp_path / "customer.wav"),
        "--agent-audio", str(tmp_path / "agent.wav"),
        "--param", "agent_id=sd-agent",
        "--packet-loss", str(loss), "--chaos-seed", "7", "--json",
    ]  # fmt: skip
    outputs: dict[str, bytes] = {}

    async def run_simulator() -> None:
        process = await asyncio.create_subprocess_exec(*command, stdout=asyncio.subprocess.PIPE)
        outputs["stdout"], _ = await process.communicate()
        outputs["rc"] = bytes([process.returncode or 0])

    result = await collect_agent_events(server.ws, "sd-agent", run_simulator)
    report = json.loads(outputs["stdout"])
    assert outputs["rc"] == b"\x00", report
    assert (
        report["violations"] == []
        and report["frames_sent"] >= 2 * int(seconds / 0.02) * (1 - loss) - 5
    )
    kinds = [n["kind"] for n in result.nudges]
    assert kinds == ["interruption"]
    assert abs(result.nudges[0]["media_time_s"] - 3.8) <= 0.3
    assert result.call_id.startswith("CA")


# ---------------------------------------------------------------- roles per stream


def _moments(result) -> list[tuple[str, float]]:
    return [(n["kind"], n["media_time_s"]) for n in result.nudges]


async def test_twilio_agent_on_the_inbound_track_by_custom_parameter(server):
    """Outbound calls put the agent on the inbound track: the stream says so with
    <Parameter name="agent_track" value="inbound"/> and gets the nudges of the normal mapping."""
    call = synthesized_call("interruptions")

    async def run(call_id: str, agent_track: str, parameters: dict[str, str]):
        start = dialects.start_message("twilio", call_id, {"agent_id": call_id, **parameters})
        media = dialects.media_messages("twilio", call, agent_track=agent_track)
        return await collect_agent_events(
            server.ws, call_id, lambda: dialects.send_stream(server.ws, "/v1/twilio", start, media)
        )

    normal = await run("CAnormal", "outbound", {})
    swapped = await run("CAswapped", "inbound", {"agent_track": "inbound"})
    calls = ("CAnormal", "CAswapped")
    assert_nudges_match(normal, truth(call))
    assert _moments(swapped) == _moments(normal)
    records = {c: await server.service.store.record(c) for c in calls}
    talk = {c: r["scorecard"]["metrics"]["talk_s"] for c, r in records.items()}
    assert talk["CAswapped"] == talk["CAnormal"]
    # without the parameter the same audio is read the wrong way round
    unmarked = await run("CAunmarked", "inbound", {})
    assert _moments(unmarked) != _moments(normal)


async def test_l16_stereo_stream_with_swapped_channels(server):
    call = synthesized_call("interruptions")
    swapped = np.ascontiguousarray(call.audio[:, ::-1])  # left agent, right customer

    async def send() -> None:
        async with connect(f"{server.ws}/v1/l16") as ws:
            preamble = {
                "callSid": "l16-swapped",
                "sampleRate": call.sample_rate,
                "mixType": "stereo",
                "metadata": {"agent_id": "l16-agent", "channels": "agent,customer"},
            }
            await ws.send(json.dumps(preamble))
            for frame in encode_frames(swapped, call.sample_rate, "pcm16"):
                await ws.send(frame)

    result = await collect_agent_events(server.ws, "l16-agent", send)
    assert result.call_id == "l16-swapped"
    assert_nudges_match(result, truth(call))


# ---------------------------------------------------------------- Exotel and Telnyx


async def _dialect_call(running, dialect, call, call_id, media, path=None, query=""):
    start = dialects.start_message(dialect, call_id, {"agent_id": call_id})
    path = path or f"/v1/{dialect}"
    return await collect_agent_events(
        running.ws, call_id, lambda: dialects.send_stream(running.ws, path, start, media, query)
    )


async def test_exotel_pcm_stream_in_and_out_of_order(server):
    """Exotel: snake_case ids, one track of raw 16-bit PCM in 100 ms chunks. Neighbouring
    chunks swapped (100 ms: within the window) give the nudges of the stream in order."""
    call = synthesized_call("dead_air")
    media = dialects.media_messages("exotel", call, frame_s=0.1)
    in_order = await _dialect_call(server, "exotel", call, "CAexo-in-order", media)
    swapped = dialects.shuffled_within(media, block=2, seed=3)
    assert swapped != media
    shuffled = await _dialect_call(server, "exotel", call, "CAexo-shuffled", swapped)
    assert in_order.nudges and _moments(shuffled) == _moments(in_order)
    assert [n["kind"] for n in in_order.nudges] == ["dead_air"] * len(in_order.nudges)
    metrics = server.service.metrics
    assert metrics.media_frames.get(protocol="exotel", outcome="reordered") > 0
    assert metrics.media_frames.get(protocol="exotel", outcome="late") == 0
    assert metrics.media_lost_seconds.get(protocol="exotel") == 0
    record = await server.service.store.record("CAexo-shuffled")
    assert (record["protocol"], record["agent_id"]) == ("exotel", "CAexo-shuffled")
    assert record["scorecard"]["metrics"]["talk_s"].keys() == {"customer"}
    assert record["scorecard"]["metrics"]["duration_s"] == pytest.approx(
        call.script.duration_s, abs=0.1
    )


async def test_exotel_agent_leg_by_query_parameter(server):
    """Exotel passes custom parameters on the URL: agent_track=inbound makes its one track
    the agent's."""
    call = synthesized_call("dead_air")
    media = dialects.media_messages("exotel", call, frame_s=0.1, mono_role="agent")
    await _dialect_call(server, "exotel", call, "CAexo-agent", media, query="agent_track=inbound")
    talk = (await server.service.store.record("CAexo-agent"))["scorecard"]["metrics"]["talk_s"]
    assert talk.keys() == {"agent"} and talk["agent"] > 3.0


async def test_telnyx_frames_shuffled_within_the_window_give_the_same_nudges(server):
    """Telnyx: stream_id / call_control_id, PCMU, both tracks (not listed in its start),
    frames not in order: each run of 4 frames per track arrives shuffled (60 ms at most
    behind: within the 100 ms window)."""
    call = synthesized_call("interruptions")
    media = dialects.media_messages("telnyx", call)
    in_order = await _dialect_call(server, "telnyx", call, "v3:in-order", media)
    shuffled_media = dialects.shuffled_within(media, block=8, seed=7)
    shuffled = await _dialect_call(server, "telnyx", call, "v3:shuffled", shuffled_media)
    assert_nudges_match(in_order, truth(call))
    assert _moments(shuffled) == _moments(in_order)
    metrics = server.service.metrics
    assert metrics.media_frames.get(protocol="telnyx", outcome="reordered") > 100
    assert metrics.media_frames.get(protocol="telnyx", outcome="late") == 0
    assert metrics.media_lost_seconds.get(protocol="telnyx") == 0
    assert (await server.service.store.record("v3:shuffled"))["protocol"] == "telnyx"


async def test_telnyx_frame_later_than_the_window_is_lost_not_reordered(server):
    call = synthesized_call("interruptions")
    media = dialects.media_messages("telnyx", call)
    index = 2 * 250  # inbound frame 250 (5.0 s), sent after 12 more frames per track
    late = dialects.held_back(media, index, by=24)  # 240 ms of media later
    result = await _dialect_call(server, "telnyx", call, "v3:late", late, path="/v1/twilio")
    assert_nudges_match(result, truth(call))
    metrics = server.service.metrics
    assert metrics.media_frames.get(protocol="telnyx", outcome="late") == 1
    assert metrics.media_frames.get(protocol="telnyx", outcome="reordered") == 0
    assert metrics.media_lost_seconds.get(protocol="telnyx") == pytest.approx(0.02)


async def test_an_agent_bound_before_the_stream_starts(server):
    """A CTI event may come before the media stream: the binding waits for the call."""
    bind = f"{server.http}/v1/calls/CApending/agent"
    assert (await dialects.http_post(f"{bind}?agent_id=early-agent"))[1]["status"] == "pending"
    status, _, _ = await http_get(f"{bind}?agent_id=early-agent")
    assert status == 405
    call = synthesized_call("dead_air")
    start = dialects.start_message("twilio", "CApending", {})  # no agent id on the stream
    media = dialects.media_messages("twilio", call)
    result = await collect_agent_events(
        server.ws,
        "early-agent",
        lambda: dialects.send_stream(server.ws, "/v1/twilio", start, media),
    )
    assert result.call_id == "CApending"
    assert_nudges_match(result, truth(call))
    assert (await server.service.store.record("CApending"))["agent_id"] == "early-agent"
