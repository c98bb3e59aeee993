"""L16 preamble streams at ``/v1/l16`` (Vonage and jambonz style).

The first frame is JSON text that says what follows; then binary frames of 16-bit
little-endian PCM. Vonage: ``{"event": "websocket:connected", "content-type":
"audio/l16;rate=16000", ...custom headers}``, mono. jambonz ``listen``: ``{"sampleRate":
8000, "mixType": "mono" | "stereo" | "mixed", "callSid": ..., "metadata": {...}}``;
stereo puts the two legs on two channels (``l16.stereo_channels`` says which is which).
A mono stream is one role (``role`` in the preamble or the query string, else
``l16.mono_role``). The call id comes from ``call_id``/``callSid``/``uuid``, the agent id
from ``agent_id`` (top level, ``metadata`` or query). Later text frames (DTMF, ...) are
ignored; the call ends when the socket closes.
"""

from __future__ import annotations

import asyncio
import logging
import re
import uuid
from typing import Any
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed
from websockets.frames import CloseCode

from assist.config import L16Config
from assist.protocols.errors import ProtocolError, json_object, too_big, unsupported
from assist.protocols.runner import close_quietly, open_call, run_call
from assist.service import AssistService
from assist.session import CallSession
from assist.vocabulary import SUPPORTED_RATES, AudioFormatError, CallSpec

log = logging.getLogger(__name__)
_ID = re.compile(r"[^A-Za-z0-9._:@-]")
_RATE = re.compile(r"rate=(\d+)")


def _field(preamble: dict[str, Any], query: dict[str, str], *names: str) -> str | None:
    metadata = preamble.get("metadata")
    sources: list[dict[str, Any]] = [preamble, metadata if isinstance(metadata, dict) else {}]
    for source in [*sources, query]:
        for name in names:
            value = source.get(name)
            if value not in (None, ""):
                return str(value)
    return None


def spec_from_preamble(
    preamble: dict[str, Any], query: dict[str, str], config: L16Config
) -> CallSpec:
    if "sampleRate" in preamble:
        rate = preamble["sampleRate"]
    else:
        match = _RATE.search(str(preamble.get("content-type", "")))
        rate = int(match.group(1)) if match else None
    if rate not in SUPPORTED_RATES:
        raise unsupported(
            "unsupported_sample_rate", f"sample rate {rate!r}; use one of {SUPPORTED_RATES}"
        )
    mix = preamble.get("mixType", "mono")
    channels: tuple[str, ...]
    if mix == "stereo":
        channels = tuple(config.stereo_channels)
    elif mix in ("mono", "mixed"):
        role = _field(preamble, query, "role") or config.mono_role
        if role not in ("customer", "agent"):
            raise ProtocolError("bad_start", f"role must be customer or agent, not {role!r}")
        channels = (role,)
    else:
        raise unsupported("unsupported_mix", f"mixType {mix!r}; use mono, mixed or stereo")
    call_id = _field(preamble, query, "call_id", "callSid", "uuid", "conversation_uuid")
    agent_id = _field(preamble, query, "agent_id") or config.default_agent_id
    return CallSpec(
        call_id=_ID.sub("_", call_id or f"l16-{uuid.uuid4().hex[:12]}")[:128],
        agent_id=_ID.sub("_", agent_id)[:128],
        sample_rate=int(rate),
        encoding="pcm16",
        channels=channels,
    )


async def _read_audio(ws: ServerConnection, session: CallSession, max_frame: int) -> None:
    async for message in ws:
        if isinstance(message, str):
            continue  # DTMF and other events carry no audio
        if not message:
            continue
        if len(message) > max_frame:
            raise too_big("frame_too_large", f"{len(message)} bytes in one frame")
        try:
            session.push_audio(message)
        except AudioFormatError as exc:
            raise ProtocolError("odd_byte_count", str(exc), CloseCode.INVALID_DATA) from None


async def handle_l16(ws: ServerConnection, service: AssistService) -> None:
    assert ws.request is not None
    query = {k: v[0] for k, v in parse_qs(urlsplit(ws.request.path).query).items()}
    try:
        async with asyncio.timeout(service.settings.limits.start_timeout_s):
            first = await ws.recv()
        if isinstance(first, bytes):
            raise ProtocolError("audio_before_start", "send the JSON preamble before audio")
        preamble = json_object(first, "the preamble")
        spec = spec_from_preamble(preamble, query, service.settings.l16)
        session = open_call(service, spec, protocol="l16")
    except ProtocolError as refused:
        await close_quietly(ws, service, refused)
        return
    except (ConnectionClosed, TimeoutError):
        return
    limits = service.settings.limits
    max_frame = spec.frame_bytes_for(limits.max_frame_ms)
    _, error = await run_call(service, session, lambda s: _read_audio(ws, s, max_frame))
    await close_quietly(ws, service, error)
