"""Client-side helpers for the end-to-end tests: raw protocol calls and truth matching."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import random
import urllib.error
import urllib.request
from collections.abc import Awaitable, Callable
from typing import Any

import numpy as np
import soxr
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from assist.audio.codecs import mulaw_encode
from assist.config import Settings
from assist.replay import FRAME_S, ReplayResult, encode_frames, stream_call
from assist.synth.render import RenderedCall
from assist.synth.truth import ExpectedCue, expected_cues

TOLERANCE_S = 0.3


async def http_get(url: str) -> tuple[int, str, str]:
    """(status, content type, body) of a GET, run off the event loop the server uses."""

    def fetch() -> tuple[int, str, str]:
        try:
            with urllib.request.urlopen(url, timeout=10) as response:
                return response.status, response.headers["Content-Type"], response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.headers["Content-Type"], error.read().decode()

    return await asyncio.to_thread(fetch)


async def http_get_json(url: str) -> tuple[int, Any]:
    status, _, body = await http_get(url)
    return status, json.loads(body)


def start_message(call_id: str, agent_id: str = "agent-1", **fields: Any) -> dict[str, Any]:
    return {
        "type": "start",
        "call_id": call_id,
        "agent_id": agent_id,
        "sample_rate": 8000,
        "encoding": "pcm16",
        "channels": ["customer", "agent"],
        **fields,
    }


async def stream_rendered(
    base: str,
    call: RenderedCall,
    call_id: str,
    agent_id: str = "agent-1",
    encoding: str = "pcm16",
    sample_rate: int | None = None,
    speed: float = 0.0,
    on_event: Callable[[dict[str, Any], float], object] | None = None,
) -> ReplayResult:
    """Stream a synthesized call, with CTI hold events for holds the script marks ``cti``."""
    audio, rate = call.audio, call.sample_rate
    if sample_rate and sample_rate != rate:
        audio = np.stack(
            [soxr.resample(audio[:, i], rate, sample_rate) for i in range(2)], axis=1
        ).astype(np.float32)
        rate = sample_rate
    controls: dict[int, list[dict[str, Any]]] = {}
    for hold in call.script.hold:
        if hold.cti:
            controls.setdefault(round(hold.at / FRAME_S), []).append({"type": "hold", "on": True})
            end = round((hold.at + hold.duration) / FRAME_S)
            controls.setdefault(end, []).append({"type": "hold", "on": False})
    start = start_message(call_id, agent_id, sample_rate=rate, encoding=encoding)
    frames = encode_frames(audio, rate, encoding)
    return await stream_call(base, start, frames, speed, controls, on_event)


def truth(call: RenderedCall, settings: Settings | None = None) -> list[ExpectedCue]:
    return expected_cues(call, (settings or Settings()).cues)


def assert_nudges_match(
    result: ReplayResult, expected: list[ExpectedCue], tolerance_s: float = TOLERANCE_S
) -> None:
    """Exactly one nudge per expected cue, of its kind, within ``tolerance_s`` of its moment."""
    got = [(n["kind"], n["media_time_s"]) for n in result.nudges]
    want = [(c.kind, round(c.at_s, 2)) for c in expected]
    assert len(got) == len(want), f"nudges {got} != expected {want}"
    for (kind, at), (want_kind, want_at) in zip(got, want, strict=True):
        assert kind == want_kind, f"nudges {got} != expected {want}"
        assert abs(at - want_at) <= tolerance_s, f"{kind} at {at}s, expected {want_at}s: {got}"


async def raw_call(base: str, *messages: str | bytes) -> list[dict[str, Any]]:
    """Send messages on /v1/calls and return every reply plus the close code/reason."""
    replies: list[dict[str, Any]] = []
    async with connect(f"{base}/v1/calls") as ws:
        for message in messages:
            await ws.send(message)
        with contextlib.suppress(ConnectionClosed):
            async for text in ws:
                replies.append(json.loads(text))
        await ws.wait_closed()
        assert ws.close_code is not None
        replies.append({"close_code": ws.close_code, "close_reason": ws.close_reason})
    return replies


async def collect_agent_events(
    base: str, agent_id: str, send: Callable[[], Awaitable[object]]
) -> ReplayResult:
    """Subscribe to an agent's stream, run ``send`` (one call through any adapter), and
    collect that agent's events until its call ends."""
    result = ReplayResult(call_id="", scorecard=None)
    loop = asyncio.get_running_loop()
    async with connect(f"{base}/v1/agents/{agent_id}/events") as events:
        assert json.loads(await events.recv())["type"] == "subscribed"
        t0 = loop.time()
        sender = asyncio.create_task(send())
        async for text in events:
            event = json.loads(text)
            result.events.append(event)
            result.arrivals.append(loop.time() - t0)
            if event["type"] == "call_ended":
                result.call_id = event["call_id"]
                break
        await sender
    return result


def mono_tracks(call: RenderedCall) -> tuple[bytes, bytes]:
    """Customer and agent as separate 8 kHz mu-law byte strings (Twilio's tracks)."""
    return mulaw_encode(call.audio[:, 0]), mulaw_encode(call.audio[:, 1])


async def send_twilio(
    base: str,
    call: RenderedCall,
    call_sid: str,
    agent_id: str,
    loss: float = 0.0,
    seed: int = 0,
    headers: dict[str, str] | None = None,
) -> None:
    """Play Twilio for a both_tracks fork, as fast as possible; ``loss`` drops that share
    of the customer's 20 ms packets (the timestamp jumps, as on a real lossy line)."""
    inbound, outbound = mono_tracks(call)
    rng = random.Random(seed)
    stream = f"MZ{call_sid}"

    def media(track: str, i: int, chunk: bytes) -> str:
        return json.dumps(
            {
                "event": "media",
                "sequenceNumber": str(i),
                "streamSid": stream,
                "media": {
                    "track": track,
                    "chunk": str(i),
                    "timestamp": str(i * 20),
                    "payload": base64.b64encode(chunk).decode(),
                },
            }
        )

    async with connect(f"{base}/v1/twilio", additional_headers=headers) as ws:
        await ws.send(json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"}))
        start = {
            "accountSid": "AC0",
            "streamSid": stream,
            "callSid": call_sid,
            "tracks": ["inbound", "outbound"],
            "customParameters": {"agent_id": agent_id},
            "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
        }
        await ws.send(json.dumps({"event": "start", "sequenceNumber": "1", "start": start}))
        for i in range(0, len(inbound) // 160):
            chunk = slice(i * 160, (i + 1) * 160)
            if rng.random() >= loss:
                await ws.send(media("inbound", i, inbound[chunk]))
            await ws.send(media("outbound", i, outbound[chunk]))
        await ws.send(json.dumps({"event": "stop", "streamSid": stream, "stop": {}}))
        await ws.wait_closed()


async def send_l16(base: str, call: RenderedCall, call_id: str, agent_id: str) -> None:
    """Play jambonz ``listen`` in stereo: a JSON preamble, then 16-bit PCM frames."""
    async with connect(f"{base}/v1/l16") as ws:
        preamble = {
            "callSid": call_id,
            "sampleRate": call.sample_rate,
            "mixType": "stereo",
            "metadata": {"agent_id": agent_id},
        }
        await ws.send(json.dumps(preamble))
        for frame in encode_frames(call.audio, call.sample_rate, "pcm16"):
            await ws.send(frame)
        await ws.close()
