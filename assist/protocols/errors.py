"""Errors a client caused, with the wire code and the WebSocket close code to answer,
and the JSON-frame check every protocol starts with."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from websockets.frames import CloseCode

if TYPE_CHECKING:
    from assist.service import CallRefused


class ProtocolError(Exception):
    def __init__(self, code: str, message: str, close_code: int = CloseCode.POLICY_VIOLATION):
        super().__init__(message)
        self.code = code
        self.message = message
        self.close_code = close_code


def bad_json(message: str) -> ProtocolError:
    return ProtocolError("bad_json", message, CloseCode.INVALID_DATA)


def unsupported(code: str, message: str) -> ProtocolError:
    return ProtocolError(code, message, CloseCode.UNSUPPORTED_DATA)


def too_big(code: str, message: str) -> ProtocolError:
    return ProtocolError(code, message, CloseCode.MESSAGE_TOO_BIG)


def try_later(code: str, message: str) -> ProtocolError:
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
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise bad_json(f"{what} is not valid JSON: {exc}") from None
    if not isinstance(data, dict) or (key is not None and not isinstance(data.get(key), str)):
        needs = f' with a string "{key}"' if key else ""
        raise bad_json(f"{what} must be a JSON object{needs}")
    return data
