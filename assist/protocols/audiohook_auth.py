"""AudioHook handshake authentication: the API key and HTTP Message Signatures.

Genesys signs the upgrade request (RFC 9421 style, HMAC-SHA256) over, in this order,
``@request-target``, ``@authority``, ``audiohook-organization-id``,
``audiohook-session-id``, ``audiohook-correlation-id`` and ``x-api-key``, with parameters
``keyid`` (= the API key), ``nonce``, ``alg``, ``created`` and ``expires``; the key is
the base64-decoded client secret. A request is accepted when every component is there,
the key matches, the nonce is long and unseen, the times are within the age and clock-skew
limits, and the HMAC matches (constant-time). Pure except for the injected wall clock.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from collections import OrderedDict
from collections.abc import Callable, Mapping

from assist.config import AudioHookConfig

COMPONENTS = (
    "@request-target",
    "@authority",
    "audiohook-organization-id",
    "audiohook-session-id",
    "audiohook-correlation-id",
    "x-api-key",
)
MIN_NONCE = 22
_INPUT = re.compile(r"^\s*sig1=\(([^)]*)\)(.*)$")
_PARAM = re.compile(r';\s*([a-z]+)=("([^"]*)"|(\d+))')
_SIGNATURE = re.compile(r"^\s*sig1=:([A-Za-z0-9+/=]+):\s*$")


class AuthFailure(Exception):
    """Why a handshake is refused (logged; the client only sees 401)."""


def authority(host: str) -> str:
    """The Host header without a default port (Genesys signs ``host``, not ``host:443``;
    behind a TLS proxy the port we see may be either)."""
    for default in (":443", ":80"):
        if host.endswith(default):
            return host[: -len(default)]
    return host


def signature_base(components: Mapping[str, str], params: str) -> str:
    """The RFC 9421 signature base: a ``"name": value`` line per component, in ``COMPONENTS``
    order, then ``"@signature-params"`` with ``params`` exactly as the client sent them.
    Raises ``KeyError`` for a component missing from ``components``."""
    lines = [f'"{name}": {components[name]}' for name in COMPONENTS]
    names = " ".join(f'"{name}"' for name in COMPONENTS)
    lines.append(f'"@signature-params": ({names}){params}')
    return "\n".join(lines)


def sign(secret_b64: str, base: str) -> str:
    """Base64 HMAC-SHA256 of ``base`` keyed with the base64-decoded client secret; raises
    ``binascii.Error`` for a secret that is not valid base64 (bad padding)."""
    key = base64.b64decode(secret_b64)
    return base64.b64encode(hmac.new(key, base.encode(), hashlib.sha256).digest()).decode()


class HandshakeAuth:
    """Checks AudioHook upgrade requests against ``[audiohook]`` (rules in the module
    docstring). ``wall_clock`` is epoch seconds; nonces are remembered until their
    signatures could no longer be accepted, so a replay is refused."""

    def __init__(self, config: AudioHookConfig, wall_clock: Callable[[], float]) -> None:
        self._cfg = config
        self._now = wall_clock
        self._nonces: OrderedDict[str, float] = OrderedDict()  # nonce -> expiry (wall s)

    def check(self, request_target: str, headers: Mapping[str, str]) -> None:
        """Raise ``AuthFailure`` unless the request may open an AudioHook session."""
        cfg = self._cfg
        api_key = headers.get("x-api-key", "")
        if not re.fullmatch(r"[A-Za-z0-9+/_-]+={0,2}", api_key):
            raise AuthFailure("missing or malformed X-API-KEY")
        if cfg.api_key and not hmac.compare_digest(api_key, cfg.api_key):
            raise AuthFailure("unknown API key")
        if not cfg.client_secret:
            return  # unsigned requests are fine for a key without a secret
        signature_input = headers.get("signature-input", "")
        signature = _SIGNATURE.match(headers.get("signature", ""))
        match = _INPUT.match(signature_input)
        if not match or not signature:
            raise AuthFailure("missing or malformed Signature / Signature-Input")
        listed = tuple(part.strip('"') for part in match.group(1).split())
        if listed != COMPONENTS:
            raise AuthFailure(f"signature covers {listed}, not the required components")
        params_text = match.group(2)
        params = {m.group(1): m.group(3) if m.group(3) is not None else m.group(4)
                  for m in _PARAM.finditer(params_text)}  # fmt: skip
        if params.get("keyid") != api_key:
            raise AuthFailure("keyid is not the X-API-KEY")
        if params.get("alg", "hmac-sha256") != "hmac-sha256":
            raise AuthFailure(f"algorithm {params.get('alg')} not supported")
        nonce = params.get("nonce") or ""
        if len(nonce) < MIN_NONCE:
            raise AuthFailure("nonce missing or too short")
        try:
            created = int(params["created"])
            expires = int(params.get("expires", created + 30))
        except (KeyError, ValueError):
            raise AuthFailure("created/expires missing or not integers") from None
        now = self._now()
        if created > now + cfg.max_clock_skew_s:
            raise AuthFailure("signature created in the future")
        if now - created > cfg.max_signature_age_s + cfg.max_clock_skew_s:
            raise AuthFailure("signature too old")
        if expires < now - cfg.max_clock_skew_s:
            raise AuthFailure("signature expired")
        components = {
            "@request-target": request_target,
            "@authority": authority(headers.get("host", "")),
            "audiohook-organization-id": headers.get("audiohook-organization-id", ""),
            "audiohook-session-id": headers.get("audiohook-session-id", ""),
            "audiohook-correlation-id": headers.get("audiohook-correlation-id", ""),
            "x-api-key": api_key,
        }
        try:
            expected = sign(cfg.client_secret, signature_base(components, params_text))
        except (binascii.Error, ValueError):
            raise AuthFailure("client secret is not valid base64") from None
        if not hmac.compare_digest(expected, signature.group(1)):
            raise AuthFailure("signature does not match")
        self._remember(nonce, now)

    def _remember(self, nonce: str, now: float) -> None:
        while self._nonces and next(iter(self._nonces.values())) < now:
            self._nonces.popitem(last=False)
        if nonce in self._nonces:
            raise AuthFailure("nonce already used (replay)")
        window = self._cfg.max_signature_age_s + 2 * self._cfg.max_clock_skew_s
        self._nonces[nonce] = now + window
