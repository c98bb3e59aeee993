"""What every adapter shares: running one call's session next to its socket reader.

The adapter parses its protocol's opening into a ``CallSpec`` and then feeds the session
from its reader coroutine. ``run_call`` owns the call's TaskGroup (processing + reader),
ends the input on every path (stop, drop, bad input), and keeps the scorecard. It
returns the scorecard and the protocol error that ended the call, if any; answering the
client is the adapter's business (each protocol has its own way).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed
from websockets.frames import CloseCode

from assist.protocols.errors import ProtocolError, refusal
from assist.service import AssistService, CallRefused
from assist.session import CallSession
from assist.vocabulary import CallSpec

log = logging.getLogger(__name__)

Reader = Callable[[CallSession], Awaitable[None]]


def open_call(service: AssistService, spec: CallSpec, protocol: str) -> CallSession:
    """``service.open_call``, its refusal turned into this protocol layer's error."""
    try:
        return service.open_call(spec, protocol)
    except CallRefused as refused:
        raise refusal(refused) from None


async def run_call(
    service: AssistService, session: CallSession, reader: Reader
) -> tuple[dict[str, Any], ProtocolError | None]:
    call_id = session.spec.call_id
    error: ProtocolError | None = None
    scorecard: dict[str, Any] | None = None
    try:
        async with asyncio.TaskGroup() as group:
            processing = group.create_task(session.run(), name=f"call-{call_id}")
            try:
                await reader(session)
            except ProtocolError as exc:
                error = exc
            except ConnectionClosed:
                log.info("call %s: connection dropped, ending the call", call_id)
            finally:
                session.end_input()
        scorecard = processing.result()
    except Exception:
        log.exception("call %s failed", call_id)
        raise
    finally:
        if scorecard is None:
            scorecard = session.pipeline.scorecard()
        service.close_call(session, scorecard)
    return scorecard, error


async def close_quietly(
    ws: ServerConnection, service: AssistService, error: ProtocolError | None
) -> None:
    """End a one-way stream (Twilio, L16): no reply message, just the close code."""
    if error is None:
        await ws.close(CloseCode.NORMAL_CLOSURE)
        return
    service.metrics.protocol_errors.inc(code=error.code)
    log.info("closing %s: %s (%s)", ws.remote_address, error.code, error.message)
    await ws.close(error.close_code, error.code)
