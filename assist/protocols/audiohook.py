"""Genesys AudioHook v2 (Monitor) at ``/v1/audiohook`` (README, "Genesys AudioHook").

Genesys is the client and always opens and ends the session. Text frames are JSON
messages ``{"version": "2", "id", "type", "seq", "position", "parameters", ...}``, each
side numbering its own ``seq`` from 1 (a gap is fatal); binary frames are raw audio,
interleaved in the order of the media offer the server selected in ``opened``.
``external`` is the customer, ``internal`` the agent (and whatever the customer hears:
hold music), unless ``customConfig.agentChannel`` or ``audiohook.agent_channel`` names
``external`` as the agent's. The agent id is the first of ``audiohook.agent_id_paths``
found in the ``open`` parameters (``customConfig.agentsByDnis.{participant.dnis}``: a
key read from the participant); none found, the call starts as ``default_agent_id`` and
waits for ``POST /v1/calls/{call_id}/agent``. Paused and discarded audio still count in
the timeline, so they reach the call as gaps. A probe session (null conversation id) is
answered but is not a call. The server never drops the TCP connection: it ends with
``disconnect``, or answers ``close`` with ``closed`` and lets the client close.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed
from websockets.protocol import State

from assist.events import WireJsonError, load_wire_json
from assist.ingest import GapTooLong
from assist.protocols.errors import ProtocolError
from assist.protocols.runner import run_call
from assist.service import AssistService
from assist.session import CallSession
from assist.vocabulary import AudioFormatError, CallSpec

log = logging.getLogger(__name__)

NULL_UUID = "00000000-0000-0000-0000-000000000000"
RATE = 8000
MAX_TEXT = 65536
ROLES = {"external": "customer", "internal": "agent"}  # the channels, by default role
FORMATS = {"PCMU": "mulaw", "L16": "pcm16"}
CHANNELS = ("internal", "external")
AGENT_CHANNEL_FIELD = "agentChannel"  # in customConfig: the channel that carries the agent
_DURATION = re.compile(r"^PT(?:(\d*\.?\d+)S)?$")
_PATH_TOKEN = re.compile(r"\{([^{}]+)\}|([^.{}]+)")
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


class Participant(BaseModel):
    """``open.parameters.participant``: the external party (ids, ANI, DNIS)."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    id: str | None = None
    ani: str | None = None
    ani_name: str | None = Field(None, alias="aniName")
    dnis: str | None = None


class OpenParameters(BaseModel):
    """``open.parameters``, as far as a Monitor reads them; other fields are allowed.
    ``media`` offers are checked one by one (``select_media``)."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    organization_id: str = Field(alias="organizationId")
    conversation_id: str = Field(alias="conversationId")
    participant: Participant | None = None
    media: list[Any] = []
    language: str | None = None
    custom_config: dict[str, Any] | None = Field(None, alias="customConfig")


def lookup(data: Any, path: str) -> Any:
    """The value at the dotted ``path`` in nested dicts, or None. A ``{path}`` segment is
    the key found at that path (from the top): in ``customConfig.agentsByDnis.{participant.dnis}``
    the participant's DNIS picks the entry."""
    current = data
    for braced, plain in _PATH_TOKEN.findall(path):
        key = plain
        if braced:
            inner = lookup(data, braced)
            if inner is None or isinstance(inner, dict | list):
                return None
            key = str(inner)
        if not isinstance(current, dict) or key not in current:
            return None
        current = current[key]
    return current


def agent_from_open(parameters: dict[str, Any], paths: list[str]) -> str | None:
    """The first non-empty string (or number) found at one of ``paths`` in the ``open``
    parameters (their wire names: ``customConfig``, ``participant``), or None."""
    for path in paths:
        value = lookup(parameters, path)
        if isinstance(value, str | int) and not isinstance(value, bool) and str(value):
            return str(value)
    return None


class MediaOffer(BaseModel):
    """One ``open.parameters.media`` offer we can take: audio, PCMU or L16, 8 kHz, one or two
    distinct channels of ``external`` / ``internal`` (other fields are allowed, and kept)."""

    model_config = ConfigDict(extra="allow", strict=True)

    type: Literal["audio"]
    format: Literal["PCMU", "L16"]
    rate: Literal[8000]
    channels: list[Literal["external", "internal"]] = Field(min_length=1, max_length=2)


def select_media(offers: Any) -> dict[str, Any] | None:
    """The first offer we can take (``MediaOffer``), unmodified (AudioHook wants it copied
    as is); None when there is none."""
    for offer in offers if isinstance(offers, list) else []:
        try:
            media = MediaOffer.model_validate(offer)
        except ValidationError:
            continue
        if len(set(media.channels)) == len(media.channels):
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
    """One AudioHook session on an accepted WebSocket (the handshake was authenticated in
    ``process_request``): opens the call on ``open``, feeds it until ``close``, and answers
    as the protocol requires. Session ids come from the ``Audiohook-*`` headers."""

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
        """Send one server message of type ``kind`` with the next server ``seq``; ``clientseq``
        is the last client seq seen unless given (``pong`` echoes its ``ping``'s).

        Nothing is sent once the client's close frame is in (the connection is no longer
        open): the client is leaving and our close went back already, and a send then would
        wait for the connection to end, which it can't while frames the client sent before
        its close are still unread here (websockets' close timeout, 10 s, with the call
        live all along). Those frames are still read and handled."""
        if self.ws.state is not State.OPEN:
            log.debug("audiohook %s: %s not sent, client closing", self.state.session_id, kind)
            return
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
        """The whole session: wait for ``open`` (``limits.start_timeout_s``), run the call (or
        only answer a probe / a session without usable media), then let the client close.

        A protocol violation is logged, counted and answered with ``disconnect`` (reason
        error); the server shutting down with ``disconnect`` (reason completed) once the
        call is stored; a dropped connection or a timeout ends it quietly. An error inside
        the call's processing is re-raised by ``run_call``.
        """
        try:
            await self._until_open()
            call = self.state.call
            if call is None:  # probe, or no acceptable media: no call to run
                await self._read(None)
            else:
                _, error = await run_call(self.service, call, self._read)
                if error is not None:
                    raise Fatal(error.message)
                if call.ended_by_server:  # shutting down: the call is over and stored
                    await self._disconnect("completed", "the server is shutting down")
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
            message = load_wire_json(text)
        except WireJsonError as exc:
            raise Fatal(str(exc)) from None
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
        try:
            params = OpenParameters.model_validate(message.get("parameters") or {})
        except ValidationError as exc:
            error = exc.errors()[0]
            where = ".".join(str(p) for p in error["loc"])
            raise Fatal(f"bad open parameters: {where}: {error['msg']}") from None
        if params.organization_id != self.state.organization_id:
            raise Fatal("organizationId differs from the Audiohook-Organization-Id header")
        conversation = params.conversation_id
        media = select_media(params.media)
        self.state.media = media
        self.state.probe = conversation == NULL_UUID
        await self.send("opened", {"startPaused": False, "media": [media] if media else []})
        if self.state.probe or media is None:
            return
        config = self.service.settings.audiohook
        agent_id = agent_from_open(params.model_dump(by_alias=True), config.agent_id_paths)
        agent_channel = (params.custom_config or {}).get(AGENT_CHANNEL_FIELD, config.agent_channel)
        if agent_channel not in CHANNELS:
            raise Fatal(f"customConfig.{AGENT_CHANNEL_FIELD} must be internal or external")
        call_id = _ID.sub("_", conversation)[:128] or self.state.session_id
        if self.service.in_use(call_id):
            call_id = f"{call_id}:{self.state.session_id[:8]}"
        spec = CallSpec(
            call_id=call_id,
            agent_id=_ID.sub("_", agent_id or config.default_agent_id)[:128],
            sample_rate=RATE,
            encoding=FORMATS[media["format"]],  # type: ignore[arg-type]
            channels=tuple(
                "agent" if c == agent_channel else "customer" for c in media["channels"]
            ),
        )
        try:
            self.state.call = await self.service.open_call(spec, "audiohook", agent_id is not None)
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
                max_bytes = call.spec.frame_bytes_for(self.service.settings.limits.max_frame_ms)
                if len(frame) > max_bytes:
                    raise Fatal(f"audio frame of {len(frame)} bytes, over {max_bytes}")
                try:
                    call.push_audio(frame)
                except AudioFormatError as exc:
                    raise Fatal(str(exc)) from None
                continue
            message = self._parse(frame)
            kind = message["type"]
            params = message.get("parameters", {})
            if not isinstance(params, dict):
                raise Fatal(f"{kind} parameters must be an object")
            if kind == "ping":
                await self.send("pong", {}, clientseq=message["seq"])
            elif kind == "update":
                await self.send("updated", {})
            elif kind == "paused":
                pass  # the gap shows up in the resumed message's "discarded"
            elif kind in ("resumed", "discarded"):
                lost = seconds(params.get("discarded", "PT0S"))
                if call is not None:
                    try:
                        call.push_gap(round(lost * RATE))
                    except (GapTooLong, OverflowError) as exc:  # past limits.max_gap_s
                        raise Fatal(f"discarded {params.get('discarded')}: {exc}") from None
            elif kind == "error":
                log.info("audiohook %s: client error %s", self.state.session_id, params)
            elif kind == "close":
                if call is not None:
                    call.end_input()
                await self._send_draining("closed", {})
                return
            else:
                raise Fatal(f"unexpected message {kind!r}")

    async def _disconnect(self, reason: str, info: str) -> None:
        with contextlib.suppress(ConnectionClosed):
            await self._send_draining("disconnect", {"reason": reason, "info": info[:200]})

    async def _send_draining(self, kind: str, parameters: dict[str, Any]) -> None:
        """Send a session's last message while reading and dropping what the client still
        sends: a client whose unread frames filled the receive queue would otherwise keep
        its close from being seen until the close timeout (10 s), the call held that long."""

        async def drain() -> None:
            with contextlib.suppress(ConnectionClosed):
                async for _ in self.ws:
                    pass

        drainer = asyncio.create_task(drain())
        try:
            await self.send(kind, parameters)
        finally:
            drainer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await drainer

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
    """The ``/v1/audiohook`` route: one AudioHook session on ``ws``."""
    await AudioHookConnection(ws, service).run()
