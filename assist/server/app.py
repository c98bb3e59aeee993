"""Routing for the one websockets server: WebSocket routes and plain HTTP routes.

HTTP requests (``/healthz``, ``/metrics``, ``/v1/calls/{id}/scorecard``) are answered in
``process_request`` before any upgrade; WebSocket paths continue to the handler, which
dispatches on the path. Unknown paths get 404.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from http import HTTPStatus
from importlib import resources
from typing import Any
from urllib.parse import parse_qs, urlsplit

from pydantic import ValidationError
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.frames import CloseCode
from websockets.http11 import Request, Response

from assist.coaching import agent_report
from assist.events import AgentBinding
from assist.metrics import CONTENT_TYPE
from assist.protocols.audiohook import handle_audiohook
from assist.protocols.audiohook_auth import AuthFailure, HandshakeAuth
from assist.protocols.l16 import handle_l16
from assist.protocols.native import handle_call
from assist.protocols.twilio import handle_twilio, signature_ok
from assist.server.access import (
    INGEST_OF_PATH,
    Access,
    Grant,
    check_bind,
    is_loopback,
    request_token,
)
from assist.server.streams import agent_events, floor_events
from assist.service import AssistService

log = logging.getLogger(__name__)
# websockets' own log of the connections (it would log request lines, headers and, at DEBUG,
# every frame): INFO at most unless [logging] debug_text, and never a token (TokenScrubber)
WS_LOG = logging.getLogger("assist.server.websockets")
TOKEN_IN_TEXT = re.compile(
    r"(?i)(token=)[^\s&'\"]+"
    r"|((?:authorization|x-assist-token|x-api-key|signature|x-twilio-signature): )[^\r\n]*"
)


class TokenScrubber(logging.Filter):
    """Blanks tokens and signatures (``token=...``, ``Authorization: ...`` and the like)
    out of every record it sees, message and arguments formatted first."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite ``record`` without tokens; never drops it."""
        message = record.getMessage()
        scrubbed = TOKEN_IN_TEXT.sub(lambda m: f"{m[1] or m[2]}[redacted]", message)
        if scrubbed != message:
            record.msg, record.args = scrubbed, None
        return True


WS_LOG.addFilter(TokenScrubber())

ID = r"([A-Za-z0-9._:@-]{1,128})"
AGENT_EVENTS = re.compile(rf"^/v1/agents/{ID}/events$")
SCORECARD = re.compile(rf"^/v1/calls/{ID}/scorecard$")
RECORD = re.compile(rf"^/v1/calls/{ID}$")
BIND_AGENT = re.compile(r"^/v1/calls/([^/]*)/agent$")
REPORT = re.compile(rf"^/v1/agents/{ID}/report$")
STATIC = re.compile(r"^/static/([a-z]+\.(css|js))$")
PAGES = {"/agent": "agent.html", "/floor": "floor.html"}
CONTENT_TYPES = {"html": "text/html; charset=utf-8", "css": "text/css", "js": "text/javascript"}
WEB = resources.files("assist") / "web"
TWILIO_STYLE = ("/v1/twilio", "/v1/exotel", "/v1/telnyx")  # one handler, dialect by message
WS_PATHS = re.compile(
    r"^(/v1/calls|/v1/twilio|/v1/exotel|/v1/telnyx|/v1/l16|/v1/audiohook|/v1/floor/events"
    rf"|/v1/agents/{ID}/events)$"
)


def _lower(headers: Headers) -> dict[str, str]:
    return {name.lower(): value for name, value in headers.raw_items()}


def http_response(status: HTTPStatus, body: str, content_type: str) -> Response:
    """A plain HTTP response with ``body`` encoded as UTF-8, never cached (``no-store``)."""
    data = body.encode()
    headers = Headers(
        [
            ("Content-Type", content_type),
            ("Content-Length", str(len(data))),
            ("Cache-Control", "no-store"),
        ]
    )
    return Response(status.value, status.phrase, headers, data)


# Shutting down: how long live calls get to end (their last audio processed, records
# written, clients told) before their connections are closed anyway.
SHUTDOWN_TIMEOUT_S = 60.0


def json_response(status: HTTPStatus, payload: Any) -> Response:
    """``payload`` as a one-line JSON HTTP response."""
    return http_response(status, json.dumps(payload) + "\n", "application/json")


class AssistServer:
    """Binds the service to a host and port."""

    def __init__(self, service: AssistService) -> None:
        self.service = service
        self._server: Server | None = None
        self._audiohook_auth = HandshakeAuth(service.settings.audiohook, service.wall_clock)
        self._access = Access(service.settings.access, "127.0.0.1")

    @property
    def port(self) -> int:
        """The port actually bound (the one picked for port 0); only after ``start``."""
        assert self._server is not None, "server not started"
        return self._server.sockets[0].getsockname()[1]

    async def start(self, host: str, port: int) -> None:
        """Listen on ``host``:``port`` (0 picks a free port) with every route. Access follows the
        bind address: with no tokens configured, loopback is open and any other address refuses
        the pages and streams (logged). Raises ``ConfigError`` (nothing bound) for a non-loopback
        address without credentials for every enabled ingest, unless ``[access] insecure``
        (then warned). Messages over 1 MiB are refused by websockets (1009)."""
        settings = self.service.settings
        check_bind(settings, host)
        if settings.access.insecure and not is_loopback(host):
            log.warning("[access] insecure: ingest without credentials accepted on %s", host)
        WS_LOG.setLevel(logging.NOTSET if settings.logging.debug_text else logging.INFO)
        self._access = Access(self.service.settings.access, host)
        if not self._access.dev_mode and not (
            self.service.settings.access.agent_tokens
            or self.service.settings.access.supervisor_tokens
        ):
            log.warning("pages and event streams refuse everyone: bound to %s with no tokens", host)
        self._server = await serve(
            self._handle,
            host,
            port,
            process_request=self._process_request,
            max_size=1 << 20,  # hard cap; our own limits answer with an error before this
            compression=None,  # audio doesn't compress; saves CPU per frame
            logger=WS_LOG,
        )
        log.info("listening on ws://%s:%d", host, self.port)

    async def close(self) -> None:
        """Shut down gracefully (SIGTERM, SIGINT): stop accepting connections; end every live
        call as if its client had ended it, its record and scorecard written (native:
        ``stopped`` and a normal close; Twilio-style and L16: a normal close; AudioHook:
        ``disconnect`` with reason ``completed``), at most ``SHUTDOWN_TIMEOUT_S``; then close
        what is left open (event streams: 1001 going away), wait for every handler, and
        close the service (store writes finished, ASR pool, text models)."""
        if self._server is not None:
            self._server.server.close()  # no new connections (an opening one gets 503)
            try:
                async with asyncio.timeout(SHUTDOWN_TIMEOUT_S):
                    await self.service.shutdown()
            except TimeoutError:
                log.warning("calls still live after %.0f s: closing them", SHUTDOWN_TIMEOUT_S)
            self._server.close()
            await self._server.wait_closed()
        await self.service.close()

    async def _process_request(
        self, connection: ServerConnection, request: Request
    ) -> Response | None:
        path = urlsplit(request.path).path
        if (ingest := INGEST_OF_PATH.get(path)) is not None:
            refused = await self._ingest_refused(ingest, request)
            if refused is not None:
                return refused
        if WS_PATHS.match(path):
            return None  # continue the WebSocket handshake
        if path == "/healthz":
            health = self.service.health()
            ok = self.service.ready
            return json_response(HTTPStatus.OK if ok else HTTPStatus.SERVICE_UNAVAILABLE, health)
        if path == "/metrics":
            self.service.refresh_gauges()
            text = self.service.metrics.render().decode()
            return http_response(HTTPStatus.OK, text, CONTENT_TYPE)
        if path in PAGES:
            return self._page(path, request)
        if (match := STATIC.match(path)) and (asset := WEB / match.group(1)).is_file():
            return http_response(
                HTTPStatus.OK, asset.read_text("utf-8"), CONTENT_TYPES[match.group(2)]
            )
        if path.startswith("/v1/"):
            return await self._api(path, request)
        return json_response(HTTPStatus.NOT_FOUND, {"error": f"no route for {path}"})

    async def _ingest_refused(self, ingest: str, request: Request) -> Response | None:
        """Refuse an ingest connection before the upgrade, or None to go on. An ingest left
        out of ``[access] ingest``: 404. AudioHook with an API key: its handshake check (401);
        Twilio with an auth token: its signature (403); otherwise an ingest token (401)
        unless ingest is open (loopback or insecure, with no ingest tokens)."""
        settings = self.service.settings
        refused = json_response(HTTPStatus.UNAUTHORIZED, {"error": "unauthorized"})
        if ingest not in settings.access.ingest:
            return json_response(HTTPStatus.NOT_FOUND, {"error": f"{ingest} ingest is off"})
        if ingest == "audiohook" and settings.audiohook.api_key:
            try:
                self._audiohook_auth.check(request.path, _lower(request.headers))
            except AuthFailure as failure:
                log.info("audiohook handshake refused: %s", failure)
                self.service.metrics.protocol_errors.inc(code="unauthorized")
                await asyncio.sleep(settings.audiohook.failure_delay_s)
                return refused
            return None
        if ingest == "twilio" and settings.twilio.auth_token and settings.twilio.validate_signature:
            if not self._twilio_signature_ok(request):
                self.service.metrics.protocol_errors.inc(code="bad_signature")
                return json_response(HTTPStatus.FORBIDDEN, {"error": "bad X-Twilio-Signature"})
            return None
        if not self._access.may_ingest(request_token(request.path, request.headers)):
            log.info("%s ingest refused: no valid ingest token", ingest)
            self.service.metrics.protocol_errors.inc(code="unauthorized")
            return refused
        return None

    async def _api(self, path: str, request: Request) -> Response:
        """The JSON API: call records, scorecards, reports, erasure. Same tokens as the pages
        (header or query string): an agent sees their own calls and report, a supervisor
        everything; only a supervisor erases (``DELETE /v1/calls/{id}``)."""
        grant = self._grant(request)
        query = parse_qs(urlsplit(request.path).query)
        refused = json_response(HTTPStatus.UNAUTHORIZED, {"error": "unauthorized"})
        if grant is None:
            return refused
        if match := BIND_AGENT.match(path):
            if request.method != "POST":
                return json_response(HTTPStatus.METHOD_NOT_ALLOWED, {"error": "use POST"})
            if not grant.supervisor:
                return refused
            return await self._bind_agent(match.group(1), query)
        if path == "/v1/floor/today":
            if not grant.supervisor:
                return refused
            return json_response(HTTPStatus.OK, await self.service.today_totals())
        if match := REPORT.match(path):
            if not grant.may_see_agent(match.group(1)):
                return refused
            try:
                days = float(query.get("days", ["30"])[0])
            except ValueError:
                return json_response(HTTPStatus.BAD_REQUEST, {"error": "days must be a number"})
            calls = await self.service.summaries_since(days)
            return json_response(HTTPStatus.OK, agent_report(match.group(1), calls))
        match = SCORECARD.match(path) or RECORD.match(path)
        if match is None:
            return json_response(HTTPStatus.NOT_FOUND, {"error": f"no route for {path}"})
        unknown = json_response(HTTPStatus.NOT_FOUND, {"error": "unknown call"})
        if request.method == "DELETE" and match.re is RECORD:
            return await self._erase(match.group(1), grant)
        # ownership first: another agent's call is not even read (and looks unknown)
        if not grant.may_see_agent(await self.service.store.agent_of(match.group(1))):
            return unknown
        record = await self.service.store.record(match.group(1))
        if record is None or not grant.may_see_agent(record["agent_id"]):
            return unknown
        if match.re is SCORECARD:
            if record["scorecard"] is None:
                return json_response(HTTPStatus.NOT_FOUND, {"error": "no scorecard yet"})
            return json_response(HTTPStatus.OK, record["scorecard"])
        return json_response(HTTPStatus.OK, record)

    async def _bind_agent(self, call_id: str, query: dict[str, list[str]]) -> Response:
        """``POST /v1/calls/{call_id}/agent?agent_id=A``: the call belongs to agent ``A``
        (``AssistService.bind_agent``). 200 bound or recorded, 202 pending, 400 bad ids.
        The agent id travels in the query string: this HTTP layer takes no request body."""
        try:
            binding = AgentBinding(call_id=call_id, agent_id=query.get("agent_id", [""])[0])
        except ValidationError as exc:
            detail = "; ".join(f"{e['loc'][0]}: {e['msg']}" for e in exc.errors())
            return json_response(HTTPStatus.BAD_REQUEST, {"error": detail})
        bound = await self.service.bind_agent(binding.call_id, binding.agent_id)
        status = HTTPStatus.ACCEPTED if bound.status == "pending" else HTTPStatus.OK
        return json_response(status, bound.model_dump())

    async def _erase(self, call_id: str, grant: Grant) -> Response:
        """``DELETE /v1/calls/{call_id}`` (supervisors): the call's record and everything
        derived from it, gone (``AssistService.erase_call``). 200 erased, 404 unknown, 409
        live (erase it once it has ended), 401 not a supervisor."""
        if not grant.supervisor:
            return json_response(HTTPStatus.UNAUTHORIZED, {"error": "unauthorized"})
        outcome = await self.service.erase_call(call_id)
        if outcome == "live":
            return json_response(
                HTTPStatus.CONFLICT, {"error": "the call is live; erase it once it has ended"}
            )
        if outcome == "unknown":
            return json_response(HTTPStatus.NOT_FOUND, {"error": "unknown call"})
        return json_response(HTTPStatus.OK, {"call_id": call_id, "erased": True})

    def _grant(self, request: Request) -> Grant | None:
        return self._access.grant(request_token(request.path, request.headers))

    def _page(self, path: str, request: Request) -> Response:
        grant = self._grant(request)
        agent_id = parse_qs(urlsplit(request.path).query).get("agent_id", [""])[0]
        allowed = grant is not None and (
            grant.supervisor if path == "/floor" else grant.may_see_agent(agent_id)
        )
        if not allowed:
            self.service.metrics.protocol_errors.inc(code="unauthorized_page")
            body = "<!doctype html><title>Access refused</title><h1>Access refused</h1>"
            return http_response(HTTPStatus.UNAUTHORIZED, body, CONTENT_TYPES["html"])
        return http_response(
            HTTPStatus.OK, (WEB / PAGES[path]).read_text("utf-8"), CONTENT_TYPES["html"]
        )

    def _twilio_signature_ok(self, request: Request) -> bool:
        """On when an auth token is configured (and validation is not switched off)."""
        config = self.service.settings.twilio
        if not (config.auth_token and config.validate_signature):
            return True
        query = urlsplit(request.path).query
        url = config.public_url or f"wss://{request.headers.get('Host', '')}/v1/twilio"
        if query and "?" not in url:
            url = f"{url}?{query}"
        return signature_ok(config.auth_token, url, request.headers.get("X-Twilio-Signature"))

    async def _handle(self, ws: ServerConnection) -> None:
        assert ws.request is not None
        path = urlsplit(ws.request.path).path
        if path == "/v1/calls":
            await handle_call(ws, self.service)
        elif path in TWILIO_STYLE:
            await handle_twilio(ws, self.service)
        elif path == "/v1/l16":
            await handle_l16(ws, self.service)
        elif path == "/v1/audiohook":
            await handle_audiohook(ws, self.service)
        elif path == "/v1/floor/events" or AGENT_EVENTS.match(path):
            grant = self._grant(ws.request)
            match = AGENT_EVENTS.match(path)
            agent_id = match.group(1) if match else None
            allowed = grant is not None and (
                grant.may_see_agent(agent_id) if agent_id else grant.supervisor
            )
            if not allowed:
                self.service.metrics.protocol_errors.inc(code="unauthorized_stream")
                await ws.close(CloseCode.POLICY_VIOLATION, "unauthorized")
            elif agent_id:
                await agent_events(ws, self.service, agent_id)
            else:
                await floor_events(ws, self.service)
        else:  # unreachable: process_request filtered the paths
            await ws.close(CloseCode.POLICY_VIOLATION, "no such route")
