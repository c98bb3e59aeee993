"""L16 preamble streams at ``/v1/l16`` (Vonage and jambonz style).

The first frame is JSON text that says what follows; then binary frames of 16-bit
little-endian PCM. Vonage: ``{"event": "websocket:connected", "content-type":
"audio/l16;rate=16000", ...custom headers}``, mono. jambonz ``listen``: ``{"sampleRate":
8000, "mixType": "mono" | "stereo" | "mixed", "callSid": ..., "metadata": {...}}``;
stereo puts the two legs on two channels. Roles per stream: a stereo stream's
``channels`` (``"agent,customer"`` or a list: left, right), else ``l16.stereo_channels``;
a mono stream's ``role``, else ``l16.mono_role``. The call id comes from
``call_id``/``callSid``/``uuid``/``conversation_uuid``, the agent id from ``agent_id``.
Each field is read from the preamble's top level, then its ``metadata``, then the URL's
query string. Without an agent id the call starts as ``l16.default_agent_id`` and waits for
``POST /v1/calls/{call_id}/agent``. Later text frames (DTMF, ...) are ignored; the call
ends when the socket closes.
"""

from __future__ import annotations

import asyncio
import logging
import re
import uuid
from typing import Any, Literal
from urllib.parse import parse_qs, urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed
from websockets.frames import CloseCode

from assist.config import L16Config
from assist.protocols.errors import ProtocolError, json_object, too_big, unsupported
from assist.protocols.runner import close_quietly, open_call, run_call
from assist.service import AssistService
from assist.session import CallSession
from assist.vocabulary import SUPPORTED_RATES, AudioFormatError, CallSpec, Role

log = logging.getLogger(__name__)
_ID = re.compile(r"[^A-Za-z0-9._:@-]")
_RATE = re.compile(r"rate=(\d{1,6})(?!\d)")  # longer numbers are no rate we take


class Preamble(BaseModel):
    """The first text frame: what follows. Other fields (Vonage custom headers, jambonz call
    attributes) are allowed and ignored; ``metadata`` holds the stream's own fields."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    content_type: str | None = Field(None, alias="content-type")
    sample_rate: int | None = Field(None, alias="sampleRate")
    mix_type: str = Field("mono", alias="mixType")
    metadata: dict[str, Any] | None = None


class StreamFields(BaseModel):
    """The stream's own fields, each from the preamble, else its ``metadata``, else the query
    string. ``channels``: a list or ``"agent,customer"`` (left, right)."""

    model_config = ConfigDict(extra="ignore", coerce_numbers_to_str=True)

    role: Role | None = None
    channels: list[Role] | None = Field(None, min_length=2, max_length=2)
    call_id: str | None = None
    agent_id: str | None = None

    @field_validator("channels", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        return value.replace(" ", "").split(",") if isinstance(value, str) else value


# each field and the names it goes by, in order of preference
FIELD_NAMES = {
    "role": ("role",),
    "channels": ("channels",),
    "call_id": ("call_id", "callSid", "uuid", "conversation_uuid"),
    "agent_id": ("agent_id",),
}


def _fields(preamble: dict[str, Any], query: dict[str, str]) -> StreamFields:
    metadata = preamble.get("metadata")
    sources = (preamble, metadata if isinstance(metadata, dict) else {}, query)
    found: dict[str, Any] = {}
    for field, names in FIELD_NAMES.items():
        values = (s[n] for s in sources for n in names if s.get(n) not in (None, ""))
        value = next(values, None)
        if value is not None:
            found[field] = value
    try:
        return StreamFields.model_validate(found)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(p) for p in error["loc"])
        raise ProtocolError("bad_start", f"{where}: {error['msg']}") from None


def spec_from_preamble(
    preamble: dict[str, Any], query: dict[str, str], config: L16Config
) -> tuple[CallSpec, bool]:
    """The ``CallSpec`` of an L16 stream from its JSON preamble and the URL's query parameters
    (field rules in the module docstring), always pcm16, and whether the agent id came from
    the stream (False: ``l16.default_agent_id``, a placeholder).

    Raises ``ProtocolError``: ``unsupported_sample_rate`` (not 8000 or 16000 Hz),
    ``unsupported_mix`` (a ``mixType`` other than mono, mixed, stereo) or ``bad_start`` (a
    role other than customer or agent, stereo ``channels`` that aren't the two roles, a
    malformed field). Ids are cut to 128 characters, other characters than
    ``A-Z a-z 0-9 . _ : @ -`` become ``_``; no call id gives ``l16-<random hex>``.
    """
    try:
        head = Preamble.model_validate(preamble)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(p) for p in error["loc"])
        raise ProtocolError("bad_start", f"{where}: {error['msg']}") from None
    fields = _fields(preamble, query)
    if head.sample_rate is not None:
        rate: int | None = head.sample_rate
    else:
        match = _RATE.search(head.content_type or "")
        rate = int(match.group(1)) if match else None
    if rate not in SUPPORTED_RATES:
        raise unsupported(
            "unsupported_sample_rate", f"sample rate {rate!r}; use one of {SUPPORTED_RATES}"
        )
    channels: tuple[Literal["customer", "agent"], ...]
    if head.mix_type == "stereo":
        channels = tuple(fields.channels or config.stereo_channels)
        if len(set(channels)) != 2:
            raise ProtocolError("bad_start", f"stereo channels must be both roles: {channels}")
    elif head.mix_type in ("mono", "mixed"):
        channels = (fields.role or config.mono_role,)
    else:
        raise unsupported(
            "unsupported_mix", f"mixType {head.mix_type!r}; use mono, mixed or stereo"
        )
    spec = CallSpec(
        call_id=_ID.sub("_", fields.call_id or f"l16-{uuid.uuid4().hex[:12]}")[:128],
        agent_id=_ID.sub("_", fields.agent_id or config.default_agent_id)[:128],
        sample_rate=int(rate),
        encoding="pcm16",
        channels=channels,
    )
    return spec, fields.agent_id is not None


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
    """The ``/v1/l16`` route: read the preamble (``limits.start_timeout_s``), open the call,
    feed it the binary frames until the socket closes, then close; bad input or a refusal
    only shows in the close code and reason, nothing else is sent back."""
    assert ws.request is not None
    query = {k: v[0] for k, v in parse_qs(urlsplit(ws.request.path).query).items()}
    try:
        async with asyncio.timeout(service.settings.limits.start_timeout_s):
            first = await ws.recv()
        if isinstance(first, bytes):
            raise ProtocolError("audio_before_start", "send the JSON preamble before audio")
        preamble = json_object(first, "the preamble")
        spec, agent_known = spec_from_preamble(preamble, query, service.settings.l16)
        session = await open_call(service, spec, "l16", agent_known)
    except ProtocolError as refused:
        await close_quietly(ws, service, refused)
        return
    except (ConnectionClosed, TimeoutError):
        return
    limits = service.settings.limits
    max_frame = spec.frame_bytes_for(limits.max_frame_ms)
    _, error = await run_call(service, session, lambda s: _read_audio(ws, s, max_frame))
    await close_quietly(ws, service, error)
