"""Who may see what, and who may send call audio: bearer tokens and the bind address.

An agent token sees its own agent id only (its stream, page, call records, report and
feedback); a supervisor token sees the floor and every agent. An ingest token may stream
call audio (``/v1/calls``, ``/v1/l16``, ``/v1/exotel``, ``/v1/telnyx``, and ``/v1/twilio``
when no Twilio auth token is set); Twilio and AudioHook keep their own signatures.

A token comes in ``Authorization: Bearer T``, ``X-Assist-Token: T`` or ``?token=T`` (in that
order), and may be any bytes: it is compared as bytes, in constant time, with every
configured token, so an odd one is refused, never an error. With no tokens configured, a
server bound to loopback is open (development); bound to any other address, the pages and
streams refuse, ingest refuses connections without credentials, and ``check_bind`` refuses
to start without credentials for every enabled ingest unless ``[access] insecure`` is on.
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

from websockets.datastructures import Headers

from assist.config import AccessConfig, ConfigError, Settings

# Ingest name -> its path. "native" is the service's own protocol.
INGEST_PATHS = {
    "native": "/v1/calls",
    "l16": "/v1/l16",
    "twilio": "/v1/twilio",
    "exotel": "/v1/exotel",
    "telnyx": "/v1/telnyx",
    "audiohook": "/v1/audiohook",
}
INGEST_OF_PATH = {path: name for name, path in INGEST_PATHS.items()}


@dataclass(frozen=True)
class Grant:
    """What a token may see: everything (``supervisor``), or one agent's stream, page, calls
    and report."""

    supervisor: bool
    agent_id: str | None  # for an agent token: the one agent it may see

    def may_see_agent(self, agent_id: str | None) -> bool:
        """Whether this grant covers ``agent_id``'s stream, page, call records, report and
        feedback (None, an unknown owner: supervisors only)."""
        return self.supervisor or (agent_id is not None and self.agent_id == agent_id)


def is_loopback(host: str) -> bool:
    """Whether ``host`` is ``localhost`` or a loopback IP address (127.0.0.0/8, ::1); any other
    host name counts as not loopback."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def request_token(request_path: str, headers: Headers) -> bytes | None:
    """The token a request carries, as the bytes the client sent: ``Authorization: Bearer T``,
    else ``X-Assist-Token: T``, else ``?token=T`` (percent-decoded); None when it carries none.
    Header values are the raw bytes (websockets decodes them as ISO-8859-1)."""
    authorization = headers.get("Authorization", "")
    scheme, _, value = authorization.strip().partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip().encode("latin-1", "replace")
    if value := headers.get("X-Assist-Token", "").strip():
        return value.encode("latin-1", "replace")
    # latin-1: each percent-escaped byte is one character, so any bytes come back intact
    query = parse_qs(urlsplit(request_path).query, encoding="latin-1")
    if tokens := query.get("token"):
        return tokens[0].encode("latin-1", "replace")
    return None


def _matches(token: bytes, known: Iterable[str]) -> str | None:
    """The configured token equal to ``token`` (constant-time per comparison), or None."""
    found = None
    for candidate in known:
        if hmac.compare_digest(candidate.encode(), token):
            found = candidate
    return found


class Access:
    """Turns a request's token into a ``Grant`` (pages, streams, API) or an ingest decision,
    under ``[access]`` and the bind address ``host``. ``dev_mode`` (no agent or supervisor
    tokens, bound to loopback) grants everyone supervisor rights; ``ingest_open`` (no ingest
    tokens, bound to loopback or ``insecure``) lets anyone stream audio."""

    def __init__(self, config: AccessConfig, host: str) -> None:
        self._cfg = config
        self.dev_mode = not (config.agent_tokens or config.supervisor_tokens) and is_loopback(host)
        self.ingest_open = not config.ingest_tokens and (is_loopback(host) or config.insecure)

    def grant(self, token: bytes | str | None) -> Grant | None:
        """The grant ``token`` carries, or None when it carries none; in dev mode a
        supervisor grant, whatever the token."""
        if self.dev_mode:
            return Grant(supervisor=True, agent_id=None)
        if not token:
            return None
        raw = token.encode("utf-8", "surrogateescape") if isinstance(token, str) else token
        if _matches(raw, self._cfg.supervisor_tokens) is not None:
            return Grant(supervisor=True, agent_id=None)
        known = _matches(raw, self._cfg.agent_tokens)
        return Grant(supervisor=False, agent_id=self._cfg.agent_tokens[known]) if known else None

    def may_ingest(self, token: bytes | None) -> bool:
        """Whether a connection with ``token`` may stream call audio (ingest open, or one of
        ``[access] ingest_tokens``)."""
        if self.ingest_open:
            return True
        return bool(token) and _matches(token or b"", self._cfg.ingest_tokens) is not None


def missing_ingest_credentials(settings: Settings, host: str) -> list[str]:
    """The enabled ingest endpoints that would take audio from anyone if the server were
    bound to ``host``, each with the setting that secures it; empty on loopback or with
    ``[access] insecure``."""
    access = settings.access
    if is_loopback(host) or access.insecure:
        return []
    twilio_signed = bool(settings.twilio.auth_token and settings.twilio.validate_signature)
    needs = {
        "twilio": None
        if twilio_signed or access.ingest_tokens
        else "[twilio] auth_token or [access] ingest_tokens",
        "audiohook": None if settings.audiohook.api_key else "[audiohook] api_key",
    }
    missing = []
    for name in dict.fromkeys(access.ingest):
        need = needs.get(name, None if access.ingest_tokens else "[access] ingest_tokens")
        if need is not None:
            missing.append(f"{name} ({INGEST_PATHS[name]}: {need})")
    return missing


def check_bind(settings: Settings, host: str) -> None:
    """Refuse to serve ``host`` when any enabled ingest would be open there: raises
    ``ConfigError`` naming each and the setting that secures it."""
    missing = missing_ingest_credentials(settings, host)
    if missing:
        raise ConfigError(
            f"bound to {host}, not loopback, with no credentials for: {'; '.join(missing)}. "
            "Set them, leave those ingests out of [access] ingest, or set [access] insecure "
            "= true to accept audio from anyone (development only)"
        )
