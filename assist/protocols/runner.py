"""What every adapter shares: running one call's session next to its socket reader.

The adapter parses its protocol's opening into a ``CallSpec`` and then feeds the session
from its reader coroutine. ``run_call`` owns the call's TaskGroup (processing + reader),
ends the input on every path (stop, drop, bad input), and keeps the scorecard. It
returns the scorecard and the protocol error that ended the call, if any; answering the
client is the adapter's business (each protocol has its own way).
"""

from __future__ import annotations

import asyncio
import contextlib
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


async def open_call(
    service: AssistService, spec: CallSpec, protocol: str, agent_known: bool = True
) -> CallSession:
    """``service.open_call``, its refusal turned into this protocol layer's error."""
    try:
        return await service.open_call(spec, protocol, agent_known)
    except CallRefused as refused:
        raise refusal(refused) from None


async def run_call(
    service: AssistService, session: CallSession, reader: Reader
) -> tuple[dict[str, Any], ProtocolError | None]:
    """Run one call: the session's processing and ``reader(session)`` in one TaskGroup.

    However the reader stops (returns, ``ProtocolError``, dropped connection), the input is
    ended, the queue drained and the call closed on the service with its scorecard. When the
    service shuts down (``AssistService.stopping``), the reader is stopped as if the client
    had ended the call (``session.ended_by_server`` is then True: the adapter says goodbye
    its protocol's way). Returns ``(scorecard, the ProtocolError that stopped the reader or
    None)``; any other exception is logged and re-raised, the call still closed.
    """
    call_id = session.spec.call_id
    error: ProtocolError | None = None
    scorecard: dict[str, Any] | None = None
    try:
        async with asyncio.TaskGroup() as group:
            processing = group.create_task(session.run(), name=f"call-{call_id}")
            try:
                await _read_until_stopping(service, session, reader)
            except ProtocolError as exc:
                error = exc
                log.info("call %s: ended by bad input: %s (%s)", call_id, exc.code, exc.message)
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
            scorecard = session.scorecard()
        await service.close_call(session, scorecard)
    return scorecard, error


async def _read_until_stopping(
    service: AssistService, session: CallSession, reader: Reader
) -> None:
    """``reader(session)``, unless the service starts shutting down first: then the reader
    is cancelled and the call ends normally (``session.ended_by_server``)."""
    reading = asyncio.ensure_future(reader(session))
    stopping = asyncio.ensure_future(service.stopping.wait())
    try:
        await asyncio.wait({reading, stopping}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopping.cancel()
        if not reading.done():  # shutting down (or this task itself was cancelled)
            reading.cancel()
            # what the reader was doing when stopped no longer matters
            with contextlib.suppress(asyncio.CancelledError, ConnectionClosed, ProtocolError):
                await reading
    if reading.cancelled():
        session.ended_by_server = True
        log.info("call %s: ended by the server's shutdown", session.spec.call_id)
        return
    reading.result()  # the reader's own end: ProtocolError, ConnectionClosed, or None


async def close_draining(
    ws: ServerConnection,
    code: int = CloseCode.NORMAL_CLOSURE,
    reason: str = "",
    farewell: str | None = None,
) -> None:
    """Send ``farewell`` (a last text message: ``error``, ``stopped``) if given, then close
    ``ws`` with ``code``, all the while reading and dropping whatever the client still sends.
    A connection the client already closed is fine (nothing is sent, nothing raised).

    Without the reads, a client that kept sending (audio after ``stop``, messages after the
    one that was refused) fills the connection's receive queue, reading from the socket
    pauses, and neither the client's close frame nor its end of the TCP connection is seen
    until the close timeout (10 s): the handler and its socket would be held that long. Call
    it only once nothing else reads ``ws``.
    """

    async def drain() -> None:
        with contextlib.suppress(ConnectionClosed):
            async for _ in ws:
                pass

    drainer = asyncio.create_task(drain())
    try:
        with contextlib.suppress(ConnectionClosed):
            if farewell is not None:
                await ws.send(farewell)
            await ws.close(code, reason)
    finally:
        drainer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await drainer


async def close_quietly(
    ws: ServerConnection, service: AssistService, error: ProtocolError | None
) -> None:
    """End a one-way stream (Twilio, L16): no reply message, just the close code."""
    if error is None:
        await close_draining(ws)
        return
    service.metrics.protocol_errors.inc(code=error.code)
    log.info("closing %s: %s (%s)", ws.remote_address, error.code, error.message)
    await close_draining(ws, error.close_code, error.code)
