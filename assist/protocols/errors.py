"""Errors a client caused, with the wire code and the WebSocket close code to answer."""

from __future__ import annotations

from websockets.frames import CloseCode


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
