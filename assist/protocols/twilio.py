"""Twilio Media Streams at ``/v1/twilio`` (a ``<Start><Stream track="both_tracks">`` fork).

JSON text frames: ``connected``, ``start`` (call and stream ids, tracks, media format,
``customParameters``), ``media`` (base64 mu-law 8 kHz, 20 ms, per track, with a
millisecond ``timestamp``), ``dtmf``, ``mark``, ``stop``. ``inbound`` is the customer,
``outbound`` the agent. The two tracks arrive as separate messages and are aligned by
their timestamps (``TrackAligner``): lost packets become silence at the right place,
duplicates are dropped, and a track that stops sending is padded once it lags the other
by ``max_track_skew_s``. The agent id comes from a custom parameter. A fork is one-way:
nothing is sent back; the call ends at ``stop`` or when the socket closes.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import logging
import re
from typing import Any

import numpy as np
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from assist.config import TwilioConfig
from assist.protocols.errors import ProtocolError, json_object, unsupported
from assist.protocols.runner import close_quietly, open_call, run_call
from assist.service import AssistService
from assist.session import CallSession
from assist.vocabulary import CallSpec

log = logging.getLogger(__name__)

RATE = 8000
MULAW_SILENCE = 0xFF
TRACK_ROLES = {"inbound": "customer", "outbound": "agent"}
_ID = re.compile(r"[^A-Za-z0-9._:@-]")


def expected_signature(auth_token: str, url: str) -> str:
    """Twilio's X-Twilio-Signature for a request without POST parameters."""
    digest = hmac.new(auth_token.encode(), url.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def signature_ok(auth_token: str, url: str, signature: str | None) -> bool:
    if not signature:
        return False
    return hmac.compare_digest(expected_signature(auth_token, url), signature)


class TrackAligner:
    """Interleaves per-track mu-law payloads by media timestamp. Pure."""

    def __init__(self, tracks: list[str], max_skew_samples: int) -> None:
        self.tracks = tracks
        self._max_skew = max_skew_samples
        self._buffers = {t: bytearray() for t in tracks}
        self._end = dict.fromkeys(tracks, 0)  # absolute sample index after each buffer
        self._emitted = 0  # absolute sample index of the buffers' first byte
        self.filled_samples = 0  # lost audio replaced with silence
        self.dropped_samples = 0  # duplicate audio ignored

    def add(self, track: str, timestamp_ms: int, payload: bytes) -> bytes:
        """Take one media payload; return the interleaved samples now complete."""
        position = timestamp_ms * RATE // 1000
        end = self._end[track]
        if position > end:  # packets lost before this one
            self._pad(track, position)
        elif position < end:  # overlaps audio already taken
            overlap = end - position
            self.dropped_samples += min(overlap, len(payload))
            payload = payload[overlap:]
        self._buffers[track] += payload
        self._end[track] += len(payload)
        leader = max(self._end.values())
        for other in self.tracks:
            if leader - self._end[other] > self._max_skew:
                self._pad(other, leader - self._max_skew)
        return self._ready(min(self._end.values()))

    def flush(self) -> bytes:
        """End of the stream: pad the lagging tracks and return everything left."""
        leader = max(self._end.values())
        for track in self.tracks:
            self._pad(track, leader)
        return self._ready(leader)

    def _pad(self, track: str, to_position: int) -> None:
        missing = to_position - self._end[track]
        if missing > 0:
            self._buffers[track] += bytes([MULAW_SILENCE]) * missing
            self._end[track] = to_position
            self.filled_samples += missing

    def _ready(self, up_to: int) -> bytes:
        n = up_to - self._emitted
        if n <= 0:
            return b""
        columns = [np.frombuffer(bytes(self._buffers[t][:n]), dtype=np.uint8) for t in self.tracks]
        for track in self.tracks:
            del self._buffers[track][:n]
        self._emitted = up_to
        if len(columns) == 1:
            return columns[0].tobytes()
        return np.stack(columns, axis=1).tobytes()


def _parse(text: str | bytes) -> dict[str, Any]:
    if isinstance(text, bytes):
        raise ProtocolError("unexpected_binary", "Twilio Media Streams send JSON text frames")
    return json_object(text, "a Twilio message", "event")


def spec_from_start(message: dict[str, Any], config: TwilioConfig) -> CallSpec:
    start = message.get("start")
    if not isinstance(start, dict):
        raise ProtocolError("bad_start", "start event without a start object")
    media_format = start.get("mediaFormat") or {}
    encoding = media_format.get("encoding", "audio/x-mulaw")
    rate = int(media_format.get("sampleRate", RATE))
    if encoding != "audio/x-mulaw" or rate != RATE:
        raise unsupported(
            "unsupported_media", f"need audio/x-mulaw at 8000 Hz, got {encoding} at {rate}"
        )
    tracks = [t for t in start.get("tracks", ["inbound"]) if t in TRACK_ROLES]
    if not tracks:
        raise ProtocolError("bad_start", f"no usable track in {start.get('tracks')}")
    raw_id = start.get("callSid") or start.get("streamSid") or message.get("streamSid")
    if not raw_id:
        raise ProtocolError("bad_start", "start has neither callSid nor streamSid")
    parameters = start.get("customParameters") or {}
    agent_id = str(parameters.get(config.agent_id_parameter) or config.default_agent_id)
    return CallSpec(
        call_id=_ID.sub("_", str(raw_id))[:128],
        agent_id=_ID.sub("_", agent_id)[:128],
        sample_rate=RATE,
        encoding="mulaw",
        channels=tuple(TRACK_ROLES[t] for t in tracks),
    )


async def _read_start(ws: ServerConnection, service: AssistService) -> dict[str, Any]:
    async with asyncio.timeout(service.settings.limits.start_timeout_s):
        while True:
            message = _parse(await ws.recv())
            if message["event"] == "start":
                return message
            if message["event"] != "connected":
                raise ProtocolError("expected_start", f"{message['event']} before start")


async def _read_media(ws: ServerConnection, session: CallSession, aligner: TrackAligner) -> None:
    async for text in ws:
        message = _parse(text)
        event = message["event"]
        if event == "media":
            media = message.get("media") or {}
            track = media.get("track", "inbound")
            if track not in aligner.tracks:
                continue  # a track this stream did not announce
            try:
                payload = base64.b64decode(media["payload"], validate=True)
                timestamp = int(media["timestamp"])
            except (KeyError, ValueError, TypeError, binascii.Error):
                raise ProtocolError(
                    "bad_media", "media needs a base64 payload and a timestamp"
                ) from None
            frames = aligner.add(track, timestamp, payload)
            if frames:
                session.push_audio(frames)
        elif event == "stop":
            break
        # connected, dtmf, mark and events added later carry no audio
    tail = aligner.flush()
    if tail:
        session.push_audio(tail)


async def handle_twilio(ws: ServerConnection, service: AssistService) -> None:
    config = service.settings.twilio
    try:
        start = await _read_start(ws, service)
        spec = spec_from_start(start, config)
        session = open_call(service, spec, protocol="twilio")
    except ProtocolError as refused:
        await close_quietly(ws, service, refused)
        return
    except (ConnectionClosed, TimeoutError):
        return
    tracks = [t for t in start["start"].get("tracks", ["inbound"]) if t in TRACK_ROLES]
    aligner = TrackAligner(tracks, int(config.max_track_skew_s * RATE))
    _, error = await run_call(service, session, lambda s: _read_media(ws, s, aligner))
    if aligner.filled_samples:
        log.info(
            "call %s: %.2fs of lost Twilio audio filled with silence",
            spec.call_id,
            aligner.filled_samples / RATE,
        )
    await close_quietly(ws, service, error)
