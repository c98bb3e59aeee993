"""Errors a client caused, with the wire code and the WebSocket close code to answer,
and the JSON-frame check every protocol starts with."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from websockets.frames import CloseCode

from assist.events import WireJsonError, load_wire_json

if TYPE_CHECKING:
    from assist.service import CallRefused


class ProtocolError(Exception):
    """Bad input from a client: ``code`` goes in the ``error`` message, ``close_code`` is the
    WebSocket close code to answer with (default 1008, policy violation)."""

    def __init__(self, code: str, message: str, close_code: int = CloseCode.POLICY_VIOLATION):
        super().__init__(message)
        self.code = code
        self.message = message
        self.close_code = close_code


def bad_json(message: str) -> ProtocolError:
    """Not JSON, or not the JSON object expected: ``bad_json``, close 1007 (invalid data)."""
    return ProtocolError("bad_json", message, CloseCode.INVALID_DATA)


def unsupported(code: str, message: str) -> ProtocolError:
    """Well-formed, but asks for something not supported: close 1003 (unsupported data)."""
    return ProtocolError(code, message, CloseCode.UNSUPPORTED_DATA)


def too_big(code: str, message: str) -> ProtocolError:
    """A frame or message over its limit: close 1009 (message too big)."""
    return ProtocolError(code, message, CloseCode.MESSAGE_TOO_BIG)


def try_later(code: str, message: str) -> ProtocolError:
    """A refusal the client may retry: close 1013 (try again later)."""
    return ProtocolError(code, message, CloseCode.TRY_AGAIN_LATER)


def refusal(refused: CallRefused) -> ProtocolError:
    """The wire error for a call the service refused: try again later for ``not_ready`` and
    ``at_capacity`` (1013), a policy violation for ``call_id_in_use`` (1008)."""
    if refused.reason == "call_id_in_use":
        return ProtocolError(refused.reason, refused.message)
    return try_later(refused.reason, refused.message)


def json_object(text: str, what: str, key: str | None = None) -> dict[str, Any]:
    """A text frame that must be a JSON object (with a string ``key`` when given)."""
    try:
        data = load_wire_json(text)
    except WireJsonError as exc:
        raise bad_json(f"{what}: {exc}") from None
    if not isinstance(data, dict) or (key is not None and not isinstance(data.get(key), str)):
        needs = f' with a string "{key}"' if key else ""
        raise bad_json(f"{what} must be a JSON object{needs}")
    return data
