"""Event streams: ``/v1/agents/{agent_id}/events`` and ``/v1/floor/events``.

Each connection gets its own bounded subscription (see ``hub``); a sender task writes it
to the socket while the reader notices the client leaving. On an agent's stream the
client may send ``{"type": "feedback", "nudge_id", "call_id", "kind", "action"}``
(``got_it`` | ``snooze`` | ``not_right``), answered with an ``error`` frame when refused;
anything else from a client is ignored.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from pydantic import Field, ValidationError
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from assist.events import ErrorMessage, FeedbackMessage, WireJsonError, load_wire_json
from assist.hub import Subscription
from assist.service import AssistService

log = logging.getLogger(__name__)

# Client messages on an event stream (feedback) are small; longer ones are ignored.
MAX_CLIENT_TEXT = 4096
# Call and nudge ids as the server issues them (nudge ids are ``<call_id>-<n>``).
WireId = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9._:@-]+$")]


class StreamFeedback(FeedbackMessage):
    """``feedback`` as an agent's stream accepts it: ``FeedbackMessage`` with ids in the
    server's own alphabet (so no id from a client reaches the store unchecked: a lone
    surrogate or a 200-character path is refused here, not by the database)."""

    call_id: WireId
    nudge_id: WireId


async def _send_loop(ws: ServerConnection, sub: Subscription) -> None:
    while True:
        await ws.send(await sub.get())


def _closed(task: asyncio.Task[None]) -> bool:
    """Whether ``task`` ended because the connection closed."""
    return not task.cancelled() and isinstance(task.exception(), ConnectionClosed)


async def _read_until_closed(
    ws: ServerConnection,
    on_message: Callable[[dict[str, Any]], Awaitable[object]] | None,
    handling: set[asyncio.Future[object]],
) -> None:
    """Read until the client leaves; JSON objects go to ``on_message`` (awaited, one at a
    time), the rest is ignored. A message being handled is finished even when this reader
    is cancelled (the client left meanwhile): it is in ``handling`` until done."""
    with contextlib.suppress(ConnectionClosed):
        async for text in ws:
            if on_message is None or not isinstance(text, str):
                continue
            if len(text) > MAX_CLIENT_TEXT:
                continue  # nothing a client sends here is that long
            with contextlib.suppress(WireJsonError):
                message = load_wire_json(text)
                if isinstance(message, dict):
                    handled = asyncio.ensure_future(on_message(message))
                    handling.add(handled)
                    handled.add_done_callback(handling.discard)
                    await asyncio.shield(handled)


async def pump(
    ws: ServerConnection,
    service: AssistService,
    sub: Subscription,
    on_message: Callable[[dict[str, Any]], Awaitable[object]] | None = None,
) -> None:
    """Serve one event-stream connection: send ``sub``'s queue to ``ws`` while passing the
    client's JSON objects to ``on_message``, until either side ends.

    Then the subscription is dropped and its lost events counted
    (``subscriber_dropped``); an exception other than ``ConnectionClosed`` from either side
    (``on_message`` included) is re-raised.
    """
    service.refresh_gauges()
    handling: set[asyncio.Future[object]] = set()  # client messages being handled
    sender = asyncio.create_task(_send_loop(ws, sub))
    reader = asyncio.create_task(_read_until_closed(ws, on_message, handling))
    try:
        done, _ = await asyncio.wait({sender, reader}, return_when=asyncio.FIRST_COMPLETED)
        if reader not in done and _closed(sender):
            # The client left: what it sent before leaving (feedback) is still handled; the
            # reader ends once it has read what was received.
            await asyncio.wait({reader})
            done = {sender, reader}
        for task in done:
            if not task.cancelled() and isinstance(task.exception(), Exception):
                exc = task.exception()
                if not isinstance(exc, ConnectionClosed):
                    raise exc  # type: ignore[misc]
    finally:
        for task in (sender, reader):
            task.cancel()
        await asyncio.gather(sender, reader, return_exceptions=True)
        # e.g. feedback read just before the client left: stored before the stream ends
        await asyncio.gather(*handling, return_exceptions=True)
        service.hub.unsubscribe(sub)
        service.metrics.subscriber_dropped.inc(sub.dropped_total)
        service.refresh_gauges()


async def agent_events(ws: ServerConnection, service: AssistService, agent_id: str) -> None:
    """``/v1/agents/{agent_id}/events``: that agent's nudges, transcripts and call states.

    ``feedback`` messages (``StreamFeedback``) on a nudge of one of the agent's calls, live or
    ended, go to ``service.feedback``. Others are answered on the stream, which goes on:
    ``{"type": "error", "code": "bad_feedback"}`` for a malformed one (an unknown kind or
    action, a bad id: no metrics series is ever made from what a client sent) and
    ``"unknown_call"`` for a call that is unknown or another agent's (the same answer, so
    a client learns nothing about other agents' calls)."""
    sub = service.hub.subscribe_agent(agent_id)

    def refuse(code: str, message: str) -> None:
        service.metrics.protocol_errors.inc(code=code)
        sub.put(ErrorMessage(code=code, message=message).model_dump_json())

    async def on_message(message: dict[str, Any]) -> None:
        if message.get("type") != "feedback":
            return
        try:
            feedback = StreamFeedback.model_validate(message)
        except ValidationError as exc:
            log.info("agent %s: malformed feedback (%d errors)", agent_id, exc.error_count())
            fields = sorted({str(e["loc"][0])[:32] for e in exc.errors() if e["loc"]})
            refuse("bad_feedback", f"invalid feedback fields: {', '.join(fields[:5])}")
            return
        if not await service.feedback(agent_id, feedback):
            log.info("agent %s: feedback on call %s refused", agent_id, feedback.call_id)
            refuse("unknown_call", "no such call or nudge of yours")

    await pump(ws, service, sub, on_message)


async def floor_events(ws: ServerConnection, service: AssistService) -> None:
    """``/v1/floor/events``: a snapshot of the live calls, then call updates, alerts and
    endings."""
    await pump(ws, service, service.hub.subscribe_floor())
