"""Client side of the Twilio-style streams, written from each platform's message examples
(Twilio, Exotel, Telnyx): start messages, media frames per track, and the ways a network
disturbs them (frames shuffled within a few frames, one frame held back); and the POST of
the agent-binding API."""

from __future__ import annotations

import asyncio
import base64
import json
import random
import urllib.error
import urllib.request
from typing import Any

import numpy as np
from websockets.asyncio.client import connect

from assist.audio.codecs import mulaw_encode
from assist.synth.render import RenderedCall

Media = dict[str, Any]


def _pcm16(samples: np.ndarray) -> bytes:
    return np.round(samples * 32768).clip(-32768, 32767).astype("<i2").tobytes()


def start_message(
    dialect: str,
    call_id: str,
    parameters: dict[str, str],
    tracks: list[str] | None = None,
    sample_rate: int = 8000,
) -> dict[str, Any]:
    """The ``start`` message as each platform writes it."""
    if dialect == "twilio":
        start = {
            "accountSid": "AC0",
            "streamSid": f"MZ{call_id}",
            "callSid": call_id,
            "tracks": tracks or ["inbound", "outbound"],
            "customParameters": parameters,
            "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
        }
        return {
            "event": "start",
            "sequenceNumber": "1",
            "streamSid": f"MZ{call_id}",
            "start": start,
        }
    if dialect == "exotel":
        start = {
            "stream_sid": f"MZ{call_id}",
            "call_sid": call_id,
            "account_sid": "AC0",
            "from": "+919876543210",
            "to": "+918047491899",
            "custom_parameters": parameters,
            "media_format": {"encoding": "audio/x-raw", "sample_rate": str(sample_rate)},
        }
        return {
            "event": "start",
            "sequence_number": "1",
            "stream_sid": f"MZ{call_id}",
            "start": start,
        }
    start = {
        "user_id": "3e6f995f-85f7-4705-9741-53b116d28237",
        "call_control_id": call_id,
        "call_session_id": "ff55a038-6f5d-11ef-9692-02420aeffb1f",
        "from": "+13122010094",
        "to": "+13122123456",
        "client_state": "aGF2ZSBhIG5pY2UgZGF5ID1d",
        "custom_parameters": parameters,
        "media_format": {"encoding": "PCMU", "sample_rate": 8000, "channels": 1},
    }
    return {"event": "start", "sequence_number": "1", "stream_id": f"st-{call_id}", "start": start}


def media_messages(
    dialect: str,
    call: RenderedCall,
    agent_track: str = "outbound",
    frame_s: float = 0.02,
    mono_role: str | None = None,
) -> list[Media]:
    """Every ``media`` message of the call, tracks interleaved per frame. Twilio and Telnyx:
    mu-law, the agent's audio on ``agent_track``, the customer's on the other. Exotel: one
    track of 16-bit PCM carrying ``mono_role``'s channel, no ``track`` field."""
    rate = call.sample_rate
    step = int(rate * frame_s)
    columns = {"customer": call.audio[:, 0], "agent": call.audio[:, 1]}
    if dialect == "exotel":
        tracks = {"inbound": columns[mono_role or "customer"]}
    else:
        other = "inbound" if agent_track == "outbound" else "outbound"
        tracks = {other: columns["customer"], agent_track: columns["agent"]}
        tracks = {t: tracks[t] for t in ("inbound", "outbound")}
    messages: list[Media] = []
    sequence = 2
    for i in range(len(call.audio) // step):
        for track, samples in tracks.items():
            chunk = samples[i * step : (i + 1) * step]
            payload = _pcm16(chunk) if dialect == "exotel" else mulaw_encode(chunk)
            media: dict[str, Any] = {
                "chunk": str(i + 1),
                "timestamp": str(round(i * frame_s * 1000)),
                "payload": base64.b64encode(payload).decode(),
            }
            if dialect != "exotel":
                media["track"] = track
            stream = {"twilio": "streamSid", "exotel": "stream_sid", "telnyx": "stream_id"}
            number = "sequenceNumber" if dialect == "twilio" else "sequence_number"
            messages.append(
                {"event": "media", number: str(sequence), stream[dialect]: "s", "media": media}
            )
            sequence += 1
    return messages


def shuffled_within(messages: list[Media], block: int, seed: int = 1) -> list[Media]:
    """Each run of ``block`` consecutive messages in a random order (a frame moves at most
    ``block - 1`` messages)."""
    rng = random.Random(seed)
    out: list[Media] = []
    for i in range(0, len(messages), block):
        run = messages[i : i + block]
        rng.shuffle(run)
        out += run
    return out


def held_back(messages: list[Media], index: int, by: int) -> list[Media]:
    """The message at ``index`` sent ``by`` messages later."""
    out = [m for i, m in enumerate(messages) if i != index]
    out.insert(index + by, messages[index])
    return out


async def send_stream(
    base: str, path: str, start: dict[str, Any], media: list[Media], query: str = ""
) -> None:
    """Play the platform: ``connected``, ``start``, the media as fast as possible, ``stop``;
    then wait for the server to close."""
    url = f"{base}{path}" + (f"?{query}" if query else "")
    async with connect(url) as ws:
        await ws.send(json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"}))
        await ws.send(json.dumps(start))
        for message in media:
            await ws.send(json.dumps(message))
        await ws.send(json.dumps({"event": "stop", "stop": {}}))
        await ws.wait_closed()


async def http_post(url: str) -> tuple[int, dict[str, Any]]:
    """(status, JSON body) of a POST without a body (``Content-Length: 0``), off the loop."""

    def post() -> tuple[int, dict[str, Any]]:
        request = urllib.request.Request(url, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read())

    return await asyncio.to_thread(post)
