"""Genesys AudioHook v2 (Monitor) at ``/v1/audiohook`` (README, "Genesys AudioHook").

Genesys is the client and always opens and ends the session. Text frames are JSON
messages ``{"version": "2", "id", "type", "seq", "position", "parameters", ...}``, each
side numbering its own ``seq`` from 1 (a gap is fatal); binary frames are raw audio,
interleaved in the order of the media offer the server selected in ``opened``.
``external`` is the customer, ``internal`` the agent (and whatever the customer hears:
hold music). Paused and discarded audio still count in the timeline, so they reach the
call as gaps. A probe session (null conversation id) is answered but is not a call. The
server never drops the TCP connection: it ends with ``disconnect``, or answers ``close``
with ``closed`` and lets the client close.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
from dataclasses import dataclass
from typing import Any

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from assist.protocols.errors import ProtocolError
from assist.protocols.runner import run_call
from assist.service import AssistService
from assist.session import CallSession
from assist.vocabulary import AudioFormatError, CallSpec

log = logging.getLogger(__name__)

NULL_UUID = "00000000-0000-0000-0000-000000000000"
RATE = 8000
MAX_TEXT = 65536
ROLES = {"external": "customer", "internal": "agent"}
FORMATS = {"PCMU": "mulaw", "L16": "pcm16"}
_DURATION = re.compile(r"^PT(?:(\d*\.?\d+)S)?$")
_ID = re.compile(r"[^A-Za-z0-9._:@-]")
CLOSE_WAIT_S = 10.0  # after closed/disconnect, how long the client has to close


class Fatal(ProtocolError):
    """A protocol violation: answer with ``disconnect`` (reason error)."""

    def __init__(self, message: str) -> None:
        super().__init__("audiohook_error", message)


def seconds(duration: Any) -> float:
    """ISO-8601 ``PT1.5S`` -> 1.5."""
    match = _DURATION.match(str(duration))
    if not match:
        raise Fatal(f"bad duration {duration!r}")
    return float(match.group(1) or 0.0)


def select_media(offers: Any) -> dict[str, Any] | None:
    """The first offer we can take, unmodified (AudioHook wants it copied as is)."""
    for offer in offers if isinstance(offers, list) else []:
        if not isinstance(offer, dict):
            continue
        channels = offer.get("channels")
        if (
            offer.get("type") == "audio"
            and offer.get("format") in FORMATS
            and offer.get("rate") == RATE
            and isinstance(channels, list)
            and 1 <= len(channels) <= 2
            and len(set(channels)) == len(channels)
            and all(c in ROLES for c in channels)
        ):
            return offer
    return None


@dataclass
class _Session:
    """One AudioHook session's protocol state."""

    session_id: str
    organization_id: str
    server_seq: int = 0
    client_seq: int = 0
    call: CallSession | None = None
    media: dict[str, Any] | None = None
    probe: bool = False


class AudioHookConnection:
    def __init__(self, ws: ServerConnection, service: AssistService) -> None:
        assert ws.request is not None
        headers = ws.request.headers
        self.ws = ws
        self.service = service
        self.state = _Session(
            session_id=headers.get("Audiohook-Session-Id", ""),
            organization_id=headers.get("Audiohook-Organization-Id", ""),
        )

    async def send(
        self, kind: str, parameters: dict[str, Any], clientseq: int | None = None
    ) -> None:
        self.state.server_seq += 1
        message = {
            "version": "2",
            "type": kind,
            "seq": self.state.server_seq,
            "clientseq": self.state.client_seq if clientseq is None else clientseq,
            "id": self.state.session_id,
            "parameters": parameters,
        }
        await self.ws.send(json.dumps(message))

    async def run(self) -> None:
        try:
            await self._until_open()
            call = self.state.call
            if call is None:  # probe, or no acceptable media: no call to run
                await self._read(None)
            else:
                _, error = await run_call(self.service, call, self._read)
                if error is not None:
                    raise Fatal(error.message)
        except Fatal as exc:
            log.info("audiohook %s: %s", self.state.session_id, exc)
            self.service.metrics.protocol_errors.inc(code="audiohook_error")
            await self._disconnect("error", str(exc))
        except (ConnectionClosed, TimeoutError):
            pass
        await self._wait_for_client_close()

    # -- messages ---------------------------------------------------------------------

    def _parse(self, text: str) -> dict[str, Any]:
        if len(text.encode()) > MAX_TEXT:
            raise Fatal("text message over 64 KB")
        try:
            message = json.loads(text)
        except json.JSONDecodeError as exc:
            raise Fatal(f"not JSON: {exc}") from None
        if not isinstance(message, dict) or message.get("version") != "2":
            raise Fatal('a message is a JSON object with version "2"')
        seq = message.get("seq")
        if seq != self.state.client_seq + 1:
            raise Fatal(f"seq {seq} after {self.state.client_seq}")
        self.state.client_seq = seq
        if not isinstance(message.get("type"), str):
            raise Fatal("message without a type")
        return message

    async def _until_open(self) -> None:
        async with asyncio.timeout(self.service.settings.limits.start_timeout_s):
            while True:
                frame = await self.ws.recv()
                if isinstance(frame, bytes):
                    if not frame:
                        continue
                    raise Fatal("audio before open")
                message = self._parse(frame)
                if message["type"] == "open":
                    await self._open(message)
                    return
                raise Fatal(f"{message['type']} before open")

    async def _open(self, message: dict[str, Any]) -> None:
        params = message.get("parameters") or {}
        if params.get("organizationId") != self.state.organization_id:
            raise Fatal("organizationId differs from the Audiohook-Organization-Id header")
        conversation = str(params.get("conversationId", ""))
        media = select_media(params.get("media"))
        self.state.media = media
        self.state.probe = conversation == NULL_UUID
        await self.send("opened", {"startPaused": False, "media": [media] if media else []})
        if self.state.probe or media is None:
            return
        custom = params.get("customConfig") or {}
        agent_id = (
            custom.get(self.service.settings.audiohook.agent_id_field)
            if isinstance(custom, dict)
            else None
        )
        call_id = _ID.sub("_", conversation)[:128] or self.state.session_id
        if call_id in self.service.live:
            call_id = f"{call_id}:{self.state.session_id[:8]}"
        spec = CallSpec(
            call_id=call_id,
            agent_id=_ID.sub(
                "_", str(agent_id or self.service.settings.audiohook.default_agent_id)
            )[:128],
            sample_rate=RATE,
            encoding=FORMATS[media["format"]],  # type: ignore[arg-type]
            channels=tuple(ROLES[c] for c in media["channels"]),
        )
        try:
            self.state.call = self.service.open_call(spec, protocol="audiohook")
        except Exception as exc:  # capacity, not ready: Genesys will retry
            raise Fatal(str(exc)) from None

    async def _read(self, call: CallSession | None) -> None:
        """Everything after ``opened``, until ``close``."""
        async for frame in self.ws:
            if isinstance(frame, bytes):
                if not frame:
                    continue  # probes send zero-length frames
                if call is None:
                    continue  # no media was selected: nothing to analyse
                try:
                    call.push_audio(frame)
                except AudioFormatError as exc:
                    raise Fatal(str(exc)) from None
                continue
            message = self._parse(frame)
            kind = message["type"]
            params = message.get("parameters") or {}
            if kind == "ping":
                await self.send("pong", {}, clientseq=message["seq"])
            elif kind == "update":
                await self.send("updated", {})
            elif kind == "paused":
                pass  # the gap shows up in the resumed message's "discarded"
            elif kind in ("resumed", "discarded"):
                lost = seconds(params.get("discarded", "PT0S"))
                if call is not None:
                    call.push_gap(round(lost * RATE))
            elif kind == "error":
                log.info("audiohook %s: client error %s", self.state.session_id, params)
            elif kind == "close":
                if call is not None:
                    call.end_input()
                await self.send("closed", {})
                return
            else:
                raise Fatal(f"unexpected message {kind!r}")

    async def _disconnect(self, reason: str, info: str) -> None:
        with contextlib.suppress(ConnectionClosed):
            await self.send("disconnect", {"reason": reason, "info": info[:200]})

    async def _wait_for_client_close(self) -> None:
        """The client closes the socket; only if it doesn't, the server does."""
        try:
            async with asyncio.timeout(CLOSE_WAIT_S):
                async for _ in self.ws:
                    pass
        except (TimeoutError, ConnectionClosed):
            pass
        await self.ws.close()


async def handle_audiohook(ws: ServerConnection, service: AssistService) -> None:
    await AudioHookConnection(ws, service).run()
