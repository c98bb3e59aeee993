"""Event streams: ``/v1/agents/{agent_id}/events`` and ``/v1/floor/events``.

Each connection gets its own bounded subscription (see ``hub``); a sender task writes it
to the socket while the reader notices the client leaving. On an agent's stream the
client may send ``{"type": "feedback", "nudge_id", "call_id", "kind", "action"}``
(``got_it`` | ``snooze`` | ``not_right``); anything else from a client is ignored.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable
from typing import Any

from pydantic import ValidationError
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from assist.events import FeedbackMessage
from assist.hub import Subscription
from assist.service import AssistService

log = logging.getLogger(__name__)


async def _send_loop(ws: ServerConnection, sub: Subscription) -> None:
    while True:
        await ws.send(await sub.get())


async def _read_until_closed(
    ws: ServerConnection, on_message: Callable[[dict[str, Any]], object] | None
) -> None:
    """Read until the client leaves; JSON objects go to ``on_message``, the rest is ignored."""
    with contextlib.suppress(ConnectionClosed):
        async for text in ws:
            if on_message is None or not isinstance(text, str):
                continue
            with contextlib.suppress(json.JSONDecodeError):
                message = json.loads(text)
                if isinstance(message, dict):
                    on_message(message)


async def pump(
    ws: ServerConnection,
    service: AssistService,
    sub: Subscription,
    on_message: Callable[[dict[str, Any]], object] | None = None,
) -> None:
    service.refresh_gauges()
    sender = asyncio.create_task(_send_loop(ws, sub))
    reader = asyncio.create_task(_read_until_closed(ws, on_message))
    try:
        done, _ = await asyncio.wait({sender, reader}, return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            if not task.cancelled() and isinstance(task.exception(), Exception):
                exc = task.exception()
                if not isinstance(exc, ConnectionClosed):
                    raise exc  # type: ignore[misc]
    finally:
        for task in (sender, reader):
            task.cancel()
        await asyncio.gather(sender, reader, return_exceptions=True)
        service.hub.unsubscribe(sub)
        service.metrics.subscriber_dropped.inc(sub.dropped_total)
        service.refresh_gauges()


async def agent_events(ws: ServerConnection, service: AssistService, agent_id: str) -> None:
    def on_message(message: dict[str, Any]) -> None:
        if message.get("type") != "feedback":
            return
        try:
            feedback = FeedbackMessage.model_validate(message)
        except ValidationError:
            log.info("agent %s: malformed feedback ignored", agent_id)
            return
        service.feedback(agent_id, feedback)

    await pump(ws, service, service.hub.subscribe_agent(agent_id), on_message)


async def floor_events(ws: ServerConnection, service: AssistService) -> None:
    await pump(ws, service, service.hub.subscribe_floor())
