"""Through the real server: pauses and timestamp jumps cost nothing (media time moves on,
the words before a pause are kept, other calls are untouched, too long a claim ends the
call), and a call id streamed again is the next leg of the same call record."""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

import numpy as np
import pytest
from websockets.asyncio.client import connect as ws_connect

from assist.asr.wer import word_error_rate
from assist.audio.codecs import mulaw_encode
from assist.synth.recorded import prompt_call
from tests.conftest import RunningServer, make_settings, synthesized_call
from tests.e2e.audiohook_client import API_KEY, SECRET, AudioHookClient, offer, signed_headers
from tests.e2e.helpers import (
    assert_nudges_match,
    collect_agent_events,
    http_get_json,
    send_twilio,
    stream_rendered,
    truth,
)

pytestmark = pytest.mark.e2e

RATE = 8000
HOUR_MS = 3_600_000


def settings(tmp_path=None, asr: bool = False, **limits: Any):
    store = {"backend": "sqlite", "path": str(tmp_path / "calls.sqlite3")} if tmp_path else {}
    return make_settings(
        audiohook={"api_key": API_KEY, "client_secret": SECRET, "failure_delay_s": 0.0},
        # streamed faster than real time: let the ASR queue wait instead of shedding
        asr={"enabled": asr, "stale_after_s": 600, "max_queue": 512},
        text={"enabled": False},
        limits=limits,
        store=store,
    )


async def audiohook(running: RunningServer, conversation: str, agent_id: str) -> AudioHookClient:
    host = f"127.0.0.1:{running.server.port}"
    client = await AudioHookClient.connect(running.ws, signed_headers(host, "/v1/audiohook"))
    opened = await client.open(
        [offer(["external", "internal"])], conversation=conversation, custom={"agentId": agent_id}
    )
    assert opened["type"] == "opened"
    return client


async def send_stereo(client: AudioHookClient, audio: np.ndarray) -> None:
    for i in range(0, len(audio), 1600):  # 200 ms frames, as Genesys sends them
        await client.audio(mulaw_encode(audio[i : i + 1600].reshape(-1)))


def quiet_line(seconds: float) -> np.ndarray:
    noise = np.random.default_rng(7).standard_normal((round(seconds * RATE), 2))
    return (0.001 * noise).astype(np.float32)


@pytest.mark.asr
@pytest.mark.speech
async def test_a_two_hour_audiohook_pause_keeps_the_words_before_it_and_other_calls(
    server_factory,
):
    running = await server_factory(settings(asr=True))
    spoken = prompt_call(["vm-reachoper"], [], pause_s=0.5)  # real recorded speech
    (prompt,) = spoken.utterances
    cut_s = prompt.end_s + 0.1  # the pause comes while the voice gate is still open
    before = spoken.audio[: round(cut_s * RATE)]
    other = synthesized_call("interruptions")

    async def paused_call() -> None:
        client = await audiohook(running, "conv-paused", "ah-paused")
        await send_stereo(client, before)
        await client.send("paused")
        client.position_s += 7200.0
        await client.send("resumed", {"start": f"PT{cut_s:.2f}S", "discarded": "PT7200S"})
        await send_stereo(client, quiet_line(1.0))
        await client.close_session()

    paused, streamed = await asyncio.gather(
        collect_agent_events(running.ws, "ah-paused", paused_call),
        stream_rendered(running.ws, other, "streaming-meanwhile", agent_id="other-agent"),
    )
    assert_nudges_match(streamed, truth(other))  # the other call's nudges, as ever
    finals = [e for e in paused.events if e["type"] == "transcript" and e["final"]]
    assert [t["channel"] for t in finals] == ["customer"]
    (final,) = finals
    errors, words = word_error_rate(prompt.text, final["text"])
    # "Press 0 to reach an operator.": Whisper's full window itself hears "to each
    # operator" (2 of 6 words), so the words before the pause are what it would hear
    assert errors / words <= 2 / 6 and "operator" in final["text"], final["text"]
    assert final["end_s"] == pytest.approx(cut_s, abs=0.1)  # closed at the pause
    scorecard = await running.service.store.scorecard("conv-paused")
    assert scorecard["metrics"]["duration_s"] == pytest.approx(cut_s + 7200.0 + 1.0, abs=0.1)
    assert scorecard["metrics"]["dead_air_moments"] == 0  # the pause is not silence


async def test_a_twilio_timestamp_jump_of_an_hour_is_a_gap(server):
    call_sid = "CAjump"
    stream = "MZjump"

    def media(track: str, ms: int) -> str:
        payload = base64.b64encode(bytes([0xFF]) * 160).decode()
        body = {"track": track, "timestamp": str(ms), "payload": payload}
        return json.dumps({"event": "media", "streamSid": stream, "media": body})

    async def send() -> None:
        async with ws_connect(f"{server.ws}/v1/twilio") as ws:
            start = {
                "streamSid": stream,
                "callSid": call_sid,
                "tracks": ["inbound", "outbound"],
                "customParameters": {"agent_id": "tw-jump"},
                "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000},
            }
            await ws.send(json.dumps({"event": "start", "streamSid": stream, "start": start}))
            for base in (0, HOUR_MS + 2000):  # 2 s, an hour lost, 2 s more
                for ms in range(base, base + 2000, 20):
                    await ws.send(media("inbound", ms))
                    await ws.send(media("outbound", ms))
            await ws.send(json.dumps({"event": "stop", "streamSid": stream}))
            await ws.wait_closed()
            assert ws.close_code == 1000

    await collect_agent_events(server.ws, "tw-jump", send)
    scorecard = await server.service.store.scorecard(call_sid)
    assert scorecard["metrics"]["duration_s"] == pytest.approx(3604.0, abs=0.05)
    assert scorecard["metrics"]["dead_air_moments"] == 0  # 2 s + 2 s of silence, not 3604
    # the hour became a gap: no silence was made for it, no audio was processed for it
    assert server.service.metrics.media_lost_seconds.get(protocol="twilio") == 0
    assert server.service.metrics.audio_seconds.get() == pytest.approx(4.0, abs=0.05)


async def test_a_gap_past_max_gap_s_ends_the_call_with_the_protocols_error(server_factory):
    running = await server_factory(settings(max_gap_s=600.0))
    client = await audiohook(running, "conv-too-long", "ah-long")
    await send_stereo(client, quiet_line(0.4))
    await client.send("resumed", {"start": "PT0.4S", "discarded": "PT601S"})
    message = await client.receive()
    assert message["type"] == "disconnect" and message["parameters"]["reason"] == "error"
    assert "max_gap_s" in message["parameters"]["info"]
    await client.ws.close()

    async with ws_connect(f"{running.ws}/v1/twilio") as ws:
        start = {"callSid": "CAlong", "tracks": ["inbound"], "customParameters": {}}
        await ws.send(json.dumps({"event": "start", "start": start}))
        for ms in (0, 601_000):
            body = {"timestamp": str(ms), "payload": base64.b64encode(b"\xff" * 160).decode()}
            await ws.send(json.dumps({"event": "media", "media": body}))
        await ws.wait_closed()
        assert (ws.close_code, ws.close_reason) == (1008, "gap_too_long")
    for call_id in ("conv-too-long", "CAlong"):
        assert (await running.service.store.record(call_id))["status"] == "ended"  # scorecard kept
    assert not running.service.live


async def send_feedback(running: RunningServer, agent_id: str, nudge: dict[str, Any]) -> None:
    """The agent's "got it" on a nudge, over its event stream; returns once it is stored."""
    async with ws_connect(f"{running.ws}/v1/agents/{agent_id}/events") as events:
        assert json.loads(await events.recv())["type"] == "subscribed"
        message = {"type": "feedback", "action": "got_it"}
        message |= {k: nudge[k] for k in ("call_id", "kind")} | {"nudge_id": nudge["id"]}
        await events.send(json.dumps(message))
        for _ in range(500):  # the server takes it in on its own time: wait for it, bounded
            if running.service.metrics.feedback.get(kind=nudge["kind"], action="got_it"):
                return
            await asyncio.sleep(0.01)
    raise AssertionError("feedback never arrived")


@pytest.mark.asr
@pytest.mark.parametrize("second", ["native", "twilio"])
async def test_a_call_streamed_in_two_legs_is_one_record(server_factory, tmp_path, second):
    running = await server_factory(settings(tmp_path, asr=True))
    # real recorded speech with 9 s pauses: transcripts, and dead air in every pause
    call = prompt_call(["conf-invalid"], ["vm-reachoper"], pause_s=9.0)
    first = await stream_rendered(running.ws, call, "two-legs", agent_id="a-legs")
    assert first.error is None and first.nudges
    leg_one_ids = [n["id"] for n in first.nudges]
    await send_feedback(running, "a-legs", first.nudges[0])
    leg_one_texts = {e["text"] for e in first.events if e["type"] == "transcript" and e["final"]}
    assert len(leg_one_texts) == 2

    if second == "native":
        again = await stream_rendered(running.ws, call, "two-legs", agent_id="a-legs")
        assert again.error is None
        scorecard = again.scorecard
    else:
        await collect_agent_events(
            running.ws, "a-legs", lambda: send_twilio(running.ws, call, "two-legs", "a-legs")
        )
        scorecard = await running.service.store.scorecard("two-legs")
    assert scorecard is not None

    status, record = await http_get_json(f"{running.http}/v1/calls/two-legs")
    assert status == 200 and record["status"] == "ended"
    one, two = record["legs"]
    duration = call.script.duration_s
    assert (one["leg"], one["protocol"], one["status"]) == (1, "native", "ended")
    assert (two["leg"], two["protocol"], two["status"]) == (2, second, "ended")
    assert one["media_start_s"] == 0.0
    assert one["media_end_s"] == two["media_start_s"] == pytest.approx(duration, abs=0.05)
    assert two["media_end_s"] == pytest.approx(2 * duration, abs=0.1)
    # the first leg's transcripts, nudges and feedback are all still there
    texts = [t["text"] for t in record["transcripts"]]
    assert leg_one_texts <= set(texts) and len(texts) == 4
    assert all(t["start_s"] >= duration - 0.5 for t in record["transcripts"][2:])
    ids = [n["id"] for n in record["nudges"]]
    assert ids[: len(leg_one_ids)] == leg_one_ids and len(set(ids)) == len(ids)
    assert [f["nudge_id"] for f in record["feedback"]] == [leg_one_ids[0]]
    # one scorecard over both legs
    metrics = scorecard["metrics"]
    leg_one = first.scorecard["metrics"]
    assert metrics["duration_s"] == pytest.approx(2 * duration, abs=0.1)
    assert metrics["dead_air_moments"] == 2 * leg_one["dead_air_moments"] > 0
    assert metrics["nudges_sent"] == len(ids) == 2 * len(leg_one_ids)
    assert len(scorecard["moments"]) == 2 * len(first.scorecard["moments"])
    assert record["scorecard"] == scorecard
