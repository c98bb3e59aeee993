"""The native ingest protocol at ``/v1/calls`` (README, "Native ingest protocol").

start (JSON) -> started; binary frames of interleaved samples; optional hold events;
stop -> stopped with the scorecard, then close. Any other ending (drop, bad input)
ends the call the same way and keeps its scorecard; bad input is answered with an
``error`` message and a close code, and never touches other calls.
"""

from __future__ import annotations

import asyncio
import logging

from pydantic import ValidationError
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed
from websockets.protocol import State

from assist.events import (
    CLIENT_MESSAGE,
    ErrorMessage,
    HoldMessage,
    Started,
    StartMessage,
    StopMessage,
    Stopped,
)
from assist.protocols.errors import ProtocolError, json_object, too_big, unsupported
from assist.protocols.runner import close_draining, open_call, run_call
from assist.service import AssistService
from assist.session import CallSession
from assist.vocabulary import SUPPORTED_ENCODINGS, SUPPORTED_RATES, AudioFormatError, CallSpec

log = logging.getLogger(__name__)
KNOWN_TYPES = ("start", "hold", "stop")
ECHO_CHARS = 64  # at most this much of a client's value is echoed in errors and logs


def parse_text(text: str, max_bytes: int) -> StartMessage | HoldMessage | StopMessage:
    """One client text frame, validated: ``start``, ``hold`` or ``stop``.

    Raises ``ProtocolError``: ``message_too_large`` over ``max_bytes`` (UTF-8), ``bad_json``,
    ``unknown_type``, ``bad_<type>`` for invalid fields, ``unsupported_sample_rate`` /
    ``unsupported_encoding``, or ``bad_start`` for a channel role given twice.
    """
    if len(text.encode()) > max_bytes:
        raise too_big("message_too_large", f"text messages are limited to {max_bytes} bytes")
    data = json_object(text, "a message", "type")
    if data["type"] not in KNOWN_TYPES:
        raise ProtocolError(
            "unknown_type",
            f"unknown message type {data['type'][:ECHO_CHARS]!r}; expected one of {KNOWN_TYPES}",
        )
    try:
        message = CLIENT_MESSAGE.validate_python(data)
    except ValidationError as exc:
        # the first few errors, each field path cut short: the path can hold a client's key
        detail = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'][1:])[:ECHO_CHARS] or 'message'}: {e['msg']}"
            for e in exc.errors()[:3]
        )
        raise ProtocolError(f"bad_{data['type']}", detail) from None
    if isinstance(message, StartMessage):
        if message.sample_rate not in SUPPORTED_RATES:
            raise unsupported(
                "unsupported_sample_rate",
                f"sample_rate {message.sample_rate} not supported; use one of {SUPPORTED_RATES}",
            )
        if message.encoding not in SUPPORTED_ENCODINGS:
            raise unsupported(
                "unsupported_encoding",
                f"encoding {message.encoding[:ECHO_CHARS]!r} not supported; "
                f"use one of {SUPPORTED_ENCODINGS}",
            )
    if isinstance(message, StartMessage) and len(set(message.channels)) != len(message.channels):
        raise ProtocolError("bad_start", "channels must not repeat a role")
    return message


async def _send_error(ws: ServerConnection, service: AssistService, error: ProtocolError) -> None:
    service.metrics.protocol_errors.inc(code=error.code)
    log.info("rejecting %s: %s (%s)", ws.remote_address, error.code, error.message)
    reply = ErrorMessage(code=error.code, message=error.message).model_dump_json()
    await close_draining(ws, error.close_code, error.code, farewell=reply)


async def _read_start(ws: ServerConnection, service: AssistService) -> StartMessage:
    limits = service.settings.limits
    async with asyncio.timeout(limits.start_timeout_s):
        first = await ws.recv()
    if isinstance(first, bytes):
        raise ProtocolError("audio_before_start", "send a start message before any audio")
    message = parse_text(first, limits.max_text_bytes)
    if not isinstance(message, StartMessage):
        raise ProtocolError(
            "expected_start", f"the first message must be start, not {message.type}"
        )
    return message


async def _read_media(ws: ServerConnection, session: CallSession, service: AssistService) -> None:
    """Feed the session until ``stop``; raises ``ProtocolError`` on bad input."""
    limits = service.settings.limits
    spec = session.spec
    max_frame = spec.frame_bytes_for(limits.max_frame_ms)
    async for message in ws:
        if isinstance(message, bytes):
            if not message:
                continue  # zero-length frames happen (probes, keep-alives)
            if len(message) > max_frame:
                raise too_big(
                    "frame_too_large",
                    f"{len(message)} bytes exceeds {limits.max_frame_ms} ms of audio "
                    f"({max_frame} bytes)",
                )
            try:
                session.push_audio(message)
            except AudioFormatError as exc:
                raise ProtocolError("odd_byte_count", str(exc), 1007) from None
            if not spec.live:
                # a recording: read on only when the backlog has room (TCP slows the sender)
                await session.room()
            continue
        parsed = parse_text(message, limits.max_text_bytes)
        if isinstance(parsed, HoldMessage):
            session.push_hold(parsed.on)
        elif isinstance(parsed, StopMessage):
            return
        else:
            raise ProtocolError("duplicate_start", "the call has already started")


async def handle_call(ws: ServerConnection, service: AssistService) -> None:
    """The ``/v1/calls`` route (README, "Native ingest protocol"): ``start`` -> ``started``;
    audio and holds until ``stop`` -> ``stopped`` with the scorecard and a normal close. Bad
    input or a refused call is answered with an ``error`` message and its close code."""
    try:
        start = await _read_start(ws, service)
        spec = CallSpec(
            call_id=start.call_id,
            agent_id=start.agent_id,
            sample_rate=start.sample_rate,
            encoding=start.encoding,  # type: ignore[arg-type]  # checked in parse_text
            channels=tuple(start.channels),
            live=start.live,
        )
        session = await open_call(service, spec, protocol="native")
        if not spec.live:
            # its reads pause while the call catches up (_read_media), so the client's
            # pong can wait behind minutes of buffered audio: pings are not timed out
            ws.ping_timeout = None
    except ProtocolError as refused:
        await _send_error(ws, service, refused)
        return
    except (ConnectionClosed, TimeoutError):
        return

    async def started_then_media(session: CallSession) -> None:
        # Inside run_call: a client gone before it reads ``started`` still ends the call.
        # A client that already sent its close is not told: with its unread frames queued,
        # reading is paused and a send would wait out the close timeout (10 s), the call live
        # all along. Its frames are still read (they came before the close).
        if ws.state is State.OPEN:
            await ws.send(Started(call_id=spec.call_id).model_dump_json())
        await _read_media(ws, session, service)

    scorecard, error = await run_call(service, session, started_then_media)
    if error is not None:
        await _send_error(ws, service, error)
        return
    await close_draining(
        ws, farewell=Stopped(call_id=spec.call_id, scorecard=scorecard).model_dump_json()
    )
