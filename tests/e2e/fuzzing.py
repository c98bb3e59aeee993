"""The seeded mutation fuzzer's parts (tests/e2e/test_fuzz.py): recorded valid sessions per
endpoint, hypothesis strategies that mutate them, clients that play a session over a real
socket, and a harness that runs a real server in its own thread with a canary call.

A session is a list of frames sent in order on one connection, then an ending (``close``:
a close frame; ``abort``: the TCP connection dropped). Frames: a JSON value (dict/list,
``Raw`` nodes spliced in verbatim: numbers Python can't print, deep nesting) or ``str``
sent as text, ``TextBytes`` sent as a text frame that may not be UTF-8, ``bytes`` as binary.
"""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import contextlib
import functools
import json
import logging
import math
import random
import threading
import uuid
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

import numpy as np
from hypothesis import strategies as st
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus
from websockets.frames import CloseCode

from assist.audio.codecs import mulaw_encode
from assist.config import Settings
from assist.server.app import AssistServer
from assist.service import AssistService

T = TypeVar("T")

# ---------------------------------------------------------------- frames and JSON


@dataclass(frozen=True)
class Raw:
    """JSON text spliced in verbatim where a value goes (``9`` x 5000, ``[[[...]]]``)."""

    text: str


@dataclass(frozen=True)
class TextBytes:
    """A text frame's bytes as sent: possibly not UTF-8 (a byte-level mutation)."""

    data: bytes


Frame = Any  # dict | list (JSON, Raw inside) | str | TextBytes | bytes
# close: a close frame after the last frame; abort: the TCP connection dropped; read: read
# what the server answers until it closes or says goodbye, then close (the probes); burst:
# every frame and the close frame in one TCP write, before the server has answered anything
Ending = Literal["close", "abort", "read", "burst"]


def to_json(value: Any) -> str:
    """``value`` as JSON text; ``Raw`` nodes are spliced in as they are; NaN and infinities
    come out as Python's ``NaN`` / ``Infinity`` (what a hostile client may send)."""
    raws: list[str] = []

    def mark(node: Any) -> Any:
        if isinstance(node, Raw):
            raws.append(node.text)
            return f"\x00raw{len(raws) - 1}\x00"
        if isinstance(node, dict):
            return {k: mark(v) for k, v in node.items()}
        if isinstance(node, list):
            return [mark(v) for v in node]
        return node

    text = json.dumps(mark(value))
    for i, raw in enumerate(raws):
        text = text.replace(f'"\\u0000raw{i}\\u0000"', raw, 1)
    return text


def frame_text(frame: Frame) -> str | None:
    """The text a JSON or str frame sends; None for binary and raw-byte frames."""
    if isinstance(frame, dict | list | Raw):
        return to_json(frame)
    return frame if isinstance(frame, str) else None


def describe(frame: Frame, limit: int = 160) -> str:
    """One frame, short enough for a failure message."""
    if isinstance(frame, bytes):
        return f"binary[{len(frame)}]"
    if isinstance(frame, TextBytes):
        text = repr(frame.data[:limit])
        return f"text-bytes[{len(frame.data)}] {text}"
    text = frame_text(frame) or ""
    if len(text) > limit:
        return f"text[{len(text)}] {text[: limit // 2]!r}...{text[-limit // 4 :]!r}"
    return f"text {text!r}"


# ---------------------------------------------------------------- recorded valid sessions


@dataclass
class Recorded:
    """One endpoint's valid session: ``path`` and ``headers`` of the upgrade, the frames, and
    ``vocabulary``: values that mean something on this protocol (mutations draw from it)."""

    endpoint: str
    path: str
    frames: list[Frame]
    headers: dict[str, str] = field(default_factory=dict)
    vocabulary: list[Any] = field(default_factory=list)


ORGANIZATION = "d7934305-0972-4844-938e-9060eef73d05"
NULL_UUID = "00000000-0000-0000-0000-000000000000"
FUZZ_AGENT = "fz-agent"
CANARY_PREFIX = "canary-"
CANARY_CALL = f"{CANARY_PREFIX}0"  # the first canary call's id; run n is canary-<n>
CANARY_AGENT = "canary-agent"


def _tone(n: int, rate: int, seed: int) -> np.ndarray:
    """``n`` samples of a speech-level tone in noise, deterministic, in [-1, 1]."""
    rng = np.random.default_rng(seed)
    t = np.arange(n) / rate
    return (0.3 * np.sin(2 * np.pi * 220 * t) + 0.05 * rng.standard_normal(n)).astype(np.float32)


def _pcm16(samples: np.ndarray) -> bytes:
    return np.round(samples * 32767).clip(-32768, 32767).astype("<i2").tobytes()


def _stereo(n: int, rate: int, seed: int) -> np.ndarray:
    return np.stack([_tone(n, rate, seed), _tone(n, rate, seed + 1)], axis=1).reshape(-1)


def native_session() -> Recorded:
    """start, 20 ms stereo PCM16 frames, a CTI hold on and off, stop."""
    frames: list[Frame] = [
        {
            "type": "start",
            "call_id": "fz-native",
            "agent_id": FUZZ_AGENT,
            "sample_rate": 8000,
            "encoding": "pcm16",
            "channels": ["customer", "agent"],
        }
    ]
    audio = [_pcm16(_stereo(160, 8000, i)) for i in range(8)]
    frames += [*audio[:3], {"type": "hold", "on": True}, *audio[3:5]]
    frames += [{"type": "hold", "on": False}, *audio[5:], {"type": "stop"}]
    vocabulary = ["start", "hold", "stop", "mulaw", "pcm16", 8000, 16000, "customer", "agent"]
    return Recorded("native", "/v1/calls", frames, vocabulary=vocabulary)


def twilio_sessions() -> list[Recorded]:
    """A Twilio both-tracks fork, an Exotel single-track PCM stream and a Telnyx stream."""
    sid, call = "MZfz", "CAfz"
    start = {
        "event": "start",
        "sequenceNumber": "1",
        "streamSid": sid,
        "start": {
            "accountSid": "AC0",
            "streamSid": sid,
            "callSid": call,
            "tracks": ["inbound", "outbound"],
            "customParameters": {"agent_id": FUZZ_AGENT, "agent_track": "outbound"},
            "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
        },
    }
    frames: list[Frame] = [{"event": "connected", "protocol": "Call", "version": "1.0.0"}, start]
    for i in range(4):
        for n, track in enumerate(("inbound", "outbound")):
            payload = base64.b64encode(mulaw_encode(_tone(160, 8000, 2 * i + n))).decode()
            media = {"track": track, "chunk": str(i), "timestamp": str(20 * i), "payload": payload}
            frames.append(
                {
                    "event": "media",
                    "sequenceNumber": str(2 + 2 * i + n),
                    "streamSid": sid,
                    "media": media,
                }
            )
    frames.insert(5, {"event": "mark", "streamSid": sid, "mark": {"name": "m1"}})
    frames.insert(
        7, {"event": "dtmf", "streamSid": sid, "dtmf": {"track": "inbound_track", "digit": "1"}}
    )
    frames.append(
        {"event": "stop", "sequenceNumber": "12", "streamSid": sid, "stop": {"callSid": call}}
    )
    twilio = Recorded(
        "twilio",
        "/v1/twilio",
        frames,
        vocabulary=[
            "inbound",
            "outbound",
            "both_tracks",
            "inbound_track",
            "audio/x-mulaw",
            8000,
            "20",
        ],
    )

    exotel: list[Frame] = [
        {"event": "connected"},
        {
            "event": "start",
            "stream_sid": "ex-fz",
            "start": {
                "stream_sid": "ex-fz",
                "call_sid": "ex-call",
                "custom_parameters": {"agent_id": FUZZ_AGENT},
                "media_format": {
                    "encoding": "base64",
                    "sample_rate": "8000",
                    "bit_rate": "128kbps",
                },
            },
        },
    ]
    for i in range(4):
        payload = base64.b64encode(_pcm16(_tone(160, 8000, i))).decode()
        exotel.append(
            {
                "event": "media",
                "stream_sid": "ex-fz",
                "media": {"chunk": i, "timestamp": str(20 * i), "payload": payload},
            }
        )
    exotel.append({"event": "stop", "stream_sid": "ex-fz", "stop": {"call_sid": "ex-call"}})

    telnyx: list[Frame] = [
        {
            "event": "start",
            "sequence_number": "1",
            "stream_id": "tx-fz",
            "start": {
                "call_control_id": "v3:tx-call",
                "custom_parameters": {"agent_id": FUZZ_AGENT},
                "media_format": {"encoding": "PCMU", "sample_rate": 8000, "channels": 1},
            },
        }
    ]
    for i in (1, 0, 2, 3):  # Telnyx frames may arrive out of order
        for track in ("inbound", "outbound"):
            payload = base64.b64encode(mulaw_encode(_tone(160, 8000, i))).decode()
            telnyx.append(
                {
                    "event": "media",
                    "stream_id": "tx-fz",
                    "media": {
                        "track": track,
                        "chunk": str(i),
                        "timestamp": str(20 * i),
                        "payload": payload,
                    },
                }
            )
    telnyx.append({"event": "stop", "stream_id": "tx-fz"})
    return [
        twilio,
        Recorded(
            "twilio", "/v1/twilio", exotel, vocabulary=["audio/x-raw", "base64", 16000, "8000"]
        ),
        Recorded("twilio", "/v1/twilio", telnyx, vocabulary=["PCMU", "both", "inbound", 8000]),
    ]


def l16_sessions() -> list[Recorded]:
    """A jambonz stereo stream (PCM16 8 kHz) and a Vonage mono one (16 kHz)."""
    jambonz: list[Frame] = [
        {
            "callSid": "fz-l16",
            "sampleRate": 8000,
            "mixType": "stereo",
            "metadata": {"agent_id": FUZZ_AGENT, "channels": "customer,agent"},
        }
    ]
    jambonz += [_pcm16(_stereo(160, 8000, i)) for i in range(3)]
    jambonz += [{"event": "dtmf", "digit": "5"}]
    jambonz += [_pcm16(_stereo(160, 8000, i)) for i in range(3, 6)]
    vonage: list[Frame] = [
        {
            "event": "websocket:connected",
            "content-type": "audio/l16;rate=16000",
            "uuid": "fz-vonage",
            "agent_id": FUZZ_AGENT,
            "role": "agent",
        }
    ]
    vonage += [_pcm16(_tone(320, 16000, i)) for i in range(6)]
    vocabulary = ["stereo", "mono", "mixed", "agent,customer", "customer", "agent", 8000, 16000]
    vocabulary += ["audio/l16;rate=8000", "audio/l16;rate=" + "9" * 5000]
    return [
        Recorded("l16", "/v1/l16?agent_id=fz-agent", jambonz, vocabulary=vocabulary),
        Recorded("l16", "/v1/l16", vonage, vocabulary=vocabulary),
    ]


def audiohook_session(session_id: str | None = None) -> Recorded:
    """open (PCMU stereo offer), audio, ping, paused/resumed with discarded audio, discarded,
    update, a client error, more audio, close; every message numbered."""
    session = session_id or "6e54d72a-7a5b-4a9f-8b0a-0f0c9f0e5a11"
    seq = 0

    def message(kind: str, parameters: dict[str, Any], position: str) -> dict[str, Any]:
        nonlocal seq
        seq += 1
        return {
            "version": "2",
            "id": session,
            "type": kind,
            "seq": seq,
            "serverseq": 0,
            "position": position,
            "parameters": parameters,
        }

    offer = {"type": "audio", "format": "PCMU", "channels": ["external", "internal"], "rate": 8000}
    audio = [mulaw_encode(_stereo(160, 8000, i)) for i in range(6)]
    frames: list[Frame] = [
        message(
            "open",
            {
                "organizationId": ORGANIZATION,
                "conversationId": "0f8e8a5c-3a1b-4c2d-9e7f-fz0000000001",
                "participant": {"id": "p-1", "ani": "+15551234567", "aniName": "", "dnis": "+1555"},
                "media": [offer],
                "language": "en-US",
                "customConfig": {"agentId": FUZZ_AGENT},
            },
            "PT0S",
        ),
        *audio[:2],
        message("ping", {}, "PT0.04S"),
        message("paused", {}, "PT0.04S"),
        message("resumed", {"start": "PT0.04S", "discarded": "PT0.1S"}, "PT0.14S"),
        *audio[2:4],
        message("discarded", {"start": "PT0.18S", "discarded": "PT0.2S"}, "PT0.38S"),
        message("update", {"language": "en-GB"}, "PT0.38S"),
        message("error", {"code": 500, "message": "client hiccup"}, "PT0.38S"),
        *audio[4:],
        message("close", {"reason": "end"}, "PT0.42S"),
    ]
    headers = {
        "Audiohook-Organization-Id": ORGANIZATION,
        "Audiohook-Session-Id": session,
        "Audiohook-Correlation-Id": "c0ffee00-0000-4000-8000-000000000000",
        "X-API-KEY": "any",
    }
    vocabulary = ["PCMU", "L16", "external", "internal", 8000, 16000, "PT0S", "PT1.5S", 1, 2]
    vocabulary += [offer, NULL_UUID, "open", "close", "ping", "paused", "resumed", "discarded"]
    return Recorded("audiohook", "/v1/audiohook", frames, headers, vocabulary)


def agent_events_session() -> Recorded:
    """Feedback on the agent's stream: for another agent's live call (the canary's: must be
    ignored), for an unknown call, a valid one, and a message the stream doesn't know."""
    feedback = {"type": "feedback", "kind": "interruption", "action": "got_it"}
    frames: list[Frame] = [
        {**feedback, "nudge_id": f"{CANARY_CALL}-1", "call_id": CANARY_CALL, "action": "snooze"},
        {**feedback, "nudge_id": "fz-unknown-1", "call_id": "fz-unknown"},
        {**feedback, "nudge_id": "fz-native-1", "call_id": "fz-native", "action": "not_right"},
        {"type": "hello"},
    ]
    vocabulary = [
        "feedback",
        "got_it",
        "snooze",
        "not_right",
        "interruption",
        "dead_air",
        CANARY_CALL,
    ]
    return Recorded(
        "agent_events", f"/v1/agents/{FUZZ_AGENT}/events", frames, vocabulary=vocabulary
    )


def floor_events_session() -> Recorded:
    """A floor client that talks (the floor stream reads nothing from clients)."""
    frames: list[Frame] = [{"type": "subscribe", "agents": [CANARY_AGENT]}, "ping", b"\x00"]
    return Recorded("floor_events", "/v1/floor/events", frames, vocabulary=["feedback"])


RECORDED: dict[str, Callable[[], list[Recorded]]] = {
    "native": lambda: [native_session()],
    "twilio": twilio_sessions,
    "l16": l16_sessions,
    "audiohook": lambda: [audiohook_session()],
    "agent_events": lambda: [agent_events_session()],
    "floor_events": lambda: [floor_events_session()],
}

# ---------------------------------------------------------------- hostile values

DEEP_LIST = Raw("[" * 3000 + "]" * 3000)  # past Python's JSON recursion limit
DEEP_OBJECT = Raw('{"a":' * 3000 + "1" + "}" * 3000)
VERY_DEEP_LIST = Raw("[" * 30000 + "]" * 30000)  # 60 KB, under max_text_bytes
LONG_INT = Raw("9" * 5000)  # past Python's int digit limit (4300)
LONG_FRACTION = Raw("0." + "0" * 5000 + "1")

HOSTILE_SCALARS: list[Any] = [
    None,
    True,
    False,
    0,
    -1,
    1,
    7999,
    2**31,
    2**63,
    2**64,
    -(2**64),
    0.5,
    -0.0,
    1e300,
    -1e300,
    1e-300,
    math.inf,
    -math.inf,
    math.nan,
    LONG_INT,
    Raw("-" + "9" * 5000),
    Raw("1" + "0" * 4000),
    Raw("1e99999"),
    LONG_FRACTION,
    "",
    " ",
    "0",
    "-1",
    "8000",
    "16000.0",
    "1e300",
    "Infinity",
    "NaN",
    "9" * 5000,
    "x" * 5000,
    "\u202e\U0001f600 é",
    "\ud800",  # a lone surrogate: valid JSON, not encodable as UTF-8
    "\x00",
    "../../etc/passwd",
    "PT",
    "PT-1S",
    "PT1e9S",
    "P1D",
    "PT0.000001S",
    "PT0." + "0" * 5000 + "1S",
    "a,b,c",
    "agent,agent",
]
HOSTILE_COMPOUNDS: list[Any] = [
    [],
    [None],
    [1, 2, 3],
    ["inbound", "outbound", "inbound"],
    [[[]]],
    {},
    {"a": None},
    {"": {"": []}},
    {"type": "audio", "format": "PCMU", "channels": "external", "rate": "8000"},
    DEEP_LIST,
    DEEP_OBJECT,
    VERY_DEEP_LIST,
]


def hostile(vocabulary: list[Any]) -> st.SearchStrategy[Any]:
    """A value of the wrong kind, an extreme one, or one that means something elsewhere in
    the protocol (``vocabulary``)."""
    options = [st.sampled_from(HOSTILE_SCALARS), st.sampled_from(HOSTILE_COMPOUNDS)]
    if vocabulary:
        options.append(st.sampled_from(vocabulary))
    return st.one_of(*options)


# ---------------------------------------------------------------- mutations

Path = tuple[Any, ...]


def json_paths(value: Any, prefix: Path = ()) -> list[Path]:
    """Every node's path in a JSON value (the root is ``()``), ``Raw`` nodes as leaves."""
    paths = [prefix]
    if isinstance(value, dict):
        for key, child in value.items():
            paths += json_paths(child, (*prefix, key))
    elif isinstance(value, list):
        for i, child in enumerate(value):
            paths += json_paths(child, (*prefix, i))
    return paths


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


def replaced(value: Any, path: Path, new: Any) -> Any:
    """A copy of ``value`` with the node at ``path`` replaced by ``new``."""
    if not path:
        return new
    out = _copy(value)
    node = out
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = new
    return out


def removed(value: Any, path: Path) -> Any:
    """A copy of ``value`` without the node at ``path`` (not the root)."""
    out = _copy(value)
    node = out
    for key in path[:-1]:
        node = node[key]
    del node[path[-1]]
    return out


Family = Literal["structure", "bytes", "types"]
BINARY_SIZES = [0, 1, 2, 3, 159, 161, 319, 321, 641, 4095, 16001, 16384, 64001, 200_000]


def _json_frames(frames: list[Frame]) -> list[int]:
    return [i for i, f in enumerate(frames) if isinstance(f, dict | list)]


def _text_frames(frames: list[Frame]) -> list[int]:
    return [i for i, f in enumerate(frames) if isinstance(f, dict | list | str | TextBytes)]


def _as_bytes(frame: Frame) -> bytes:
    if isinstance(frame, TextBytes):
        return frame.data
    if isinstance(frame, bytes):
        return frame
    return (frame_text(frame) or "").encode("utf-8", "surrogatepass")


def _structure(draw: st.DrawFn, frames: list[Frame]) -> list[Frame]:
    """Drop, duplicate, swap or move messages."""
    if not frames:
        return frames
    op = draw(st.sampled_from(["drop", "duplicate", "swap", "move", "repeat_all"]))
    i = draw(st.integers(0, len(frames) - 1))
    j = draw(st.integers(0, len(frames) - 1))
    out = list(frames)
    if op == "drop":
        del out[i]
    elif op == "duplicate":
        out.insert(j, out[i])
    elif op == "swap":
        out[i], out[j] = out[j], out[i]
    elif op == "move":
        out.insert(j, out.pop(i))
    else:
        out = out + out
    return out


def _bytes(draw: st.DrawFn, frames: list[Frame]) -> list[Frame]:
    """Flip, insert or delete bytes of a text frame; binary frames of odd or excessive
    sizes; text where binary is expected and binary where text is."""
    op = draw(st.sampled_from(["edit", "edit", "binary", "to_binary", "to_text", "huge_text"]))
    out = list(frames)
    texts = _text_frames(out)
    if op == "edit" and texts:
        i = draw(st.sampled_from(texts))
        data = bytearray(_as_bytes(out[i]))
        for _ in range(draw(st.integers(1, 4))):
            kind = draw(st.sampled_from(["flip", "insert", "delete"]))
            at = draw(st.integers(0, max(len(data) - 1, 0)))
            byte = draw(
                st.sampled_from([0x00, 0x22, 0x5C, 0x7B, 0x7D, 0x5B, 0x30, 0x80, 0xC3, 0xFF])
            )
            if kind == "flip" and data:
                data[at] ^= draw(st.sampled_from([0x01, 0x20, 0x80, 0xFF]))
            elif kind == "insert":
                data.insert(at, byte)
            elif data:
                del data[at]
        valid = draw(st.booleans())  # half of them repaired to UTF-8, to reach the parsers
        out[i] = bytes(data).decode("utf-8", "replace") if valid else TextBytes(bytes(data))
    elif op == "binary" or (op == "edit" and not texts):
        size = draw(st.sampled_from(BINARY_SIZES))
        seed = draw(st.integers(0, 2**16))
        at = draw(st.integers(0, len(out)))
        out.insert(at, random.Random(seed).randbytes(size))
    elif op == "to_binary" and texts:
        i = draw(st.sampled_from(texts))
        out[i] = _as_bytes(out[i])
    elif op == "to_text":
        binaries = [i for i, f in enumerate(out) if isinstance(f, bytes)]
        if binaries:
            i = draw(st.sampled_from(binaries))
            out[i] = TextBytes(out[i]) if draw(st.booleans()) else out[i].decode("latin-1")
    elif op == "huge_text":
        size = draw(st.sampled_from([65_537, 300_000, 1_100_000]))
        at = draw(st.integers(0, len(out)))
        out.insert(at, '{"pad": "' + "x" * size + '"}')
    return out


def _types(draw: st.DrawFn, frames: list[Frame], vocabulary: list[Any]) -> list[Frame]:
    """Replace a field's value (or a whole message) with a wrongly typed or extreme one,
    drop a field, or add one."""
    out = list(frames)
    jsons = _json_frames(out)
    if not jsons:
        return out
    i = draw(st.sampled_from(jsons))
    paths = json_paths(out[i])
    op = draw(st.sampled_from(["replace", "replace", "replace", "drop", "add"]))
    if op == "replace":
        path = draw(st.sampled_from(paths))
        value = replaced(out[i], path, draw(hostile(vocabulary)))
        out[i] = value if isinstance(value, dict | list) else to_json(value)  # a scalar message
    elif op == "drop" and len(paths) > 1:
        out[i] = removed(out[i], draw(st.sampled_from(paths[1:])))
    else:
        objects = [p for p in paths if isinstance(_at(out[i], p), dict)]
        if objects:
            path = draw(st.sampled_from(objects))
            key = draw(st.sampled_from(["type", "event", "extra", "", "\u00e9", "x" * 300]))
            node = _at(out[i], path)
            out[i] = replaced(out[i], path, {**node, key: draw(hostile(vocabulary))})
    return out


def _at(value: Any, path: Path) -> Any:
    for key in path:
        value = value[key]
    return value


@dataclass
class Session:
    """One connection's worth of frames and how it ends; ``recorded`` is what it came from."""

    recorded: Recorded
    frames: list[Frame]
    ending: Ending
    headers: dict[str, str | None] = field(default_factory=dict)  # over the recorded ones

    def __repr__(self) -> str:
        return self.describe()

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:  # hypothesis' pretty printer
        printer.text(self.describe())

    def describe(self) -> str:
        """The session, one line per frame, for a failure message."""
        lines = [f"{self.recorded.endpoint} {self.recorded.path} ending={self.ending}"]
        lines += [f"  header {k}: {v if v is None else v[:80]!r}" for k, v in self.headers.items()]
        lines += [f"  {i}: {describe(f)}" for i, f in enumerate(self.frames)]
        return "\n".join(lines)


@st.composite
def mutated_sessions(draw: st.DrawFn, endpoint: str, family: Family) -> Session:
    """A recorded session of ``endpoint`` with one to three mutations of ``family``, cut
    short at any step or played to the end, then closed, dropped or sent in one burst."""
    recorded = draw(st.sampled_from(recorded_sessions(endpoint)))
    frames = list(recorded.frames)
    for _ in range(draw(st.integers(1, 3))):
        if family == "structure":
            frames = _structure(draw, frames)
        elif family == "bytes":
            frames = _bytes(draw, frames)
        else:
            frames = _types(draw, frames, recorded.vocabulary)
    headers: dict[str, str | None] = {}
    if family == "types" and recorded.headers and draw(st.booleans()):
        name = draw(st.sampled_from(sorted(recorded.headers)))
        headers[name] = draw(st.sampled_from(HOSTILE_HEADERS))
    if draw(st.booleans()):
        frames = frames[: draw(st.integers(0, len(frames)))]
    return Session(recorded, frames, draw(st.sampled_from(["close", "abort", "burst"])), headers)


HOSTILE_HEADERS: list[str | None] = [None, "", " ", "x" * 6000, NULL_UUID, "a b", "%00", "\t"]


@functools.cache
def recorded_sessions(endpoint: str) -> list[Recorded]:
    """The recorded valid sessions of ``endpoint`` (built once)."""
    return RECORDED[endpoint]()


# ---------------------------------------------------------------- HTTP

HTTP_TARGETS = [
    "/healthz",
    "/metrics",
    "/agent?agent_id=fz-agent",
    "/floor",
    "/static/assist.css",
    "/static/agent.js",
    "/static/missing.css",
    "/static/nothing.js",
    f"/v1/calls/{CANARY_CALL}",
    f"/v1/calls/{CANARY_CALL}/scorecard",
    "/v1/calls/fz-native",
    "/v1/calls/fz-unknown/scorecard",
    "/v1/agents/fz-agent/report?days=30",
    "/v1/floor/today",
    "/v1/calls/fz-native/agent?agent_id=fz-other",
    "/v1/nothing",
    "/",
]
HTTP_QUERY_VALUES = [
    "",
    "-1",
    "0",
    "1e308",
    "1e999",
    "-1e999",
    "inf",
    "-inf",
    "nan",
    "9" * 5000,
    "x" * 9000,
    "%00",
    "%ff%fe",
    "%ud800",
    "..%2f..%2fetc%2fpasswd",
    "a&b=c",
    "%E2%80%AE",
]


@dataclass
class HttpRequest:
    """A raw HTTP request line and headers, sent as bytes."""

    method: bytes
    target: bytes
    version: bytes = b"HTTP/1.1"
    extra_headers: list[bytes] = field(default_factory=list)

    def encode(self, host: str) -> bytes:
        lines = [self.method + b" " + self.target + b" " + self.version]
        lines += [f"Host: {host}".encode(), b"Connection: close", *self.extra_headers]
        return b"\r\n".join(lines) + b"\r\n\r\n"

    def describe(self) -> str:
        return f"{self.method!r} {self.target[:300]!r} {self.version!r} {self.extra_headers!r}"[
            :1000
        ]


@st.composite
def http_requests(draw: st.DrawFn) -> HttpRequest:
    """A GET of a route with a hostile query value, a byte-edited target, an odd method or
    version, or junk headers."""
    target = draw(st.sampled_from(HTTP_TARGETS))
    if "?" not in target and draw(st.booleans()):
        target += "?token=" + draw(st.sampled_from(HTTP_QUERY_VALUES))
    elif "=" in target and draw(st.booleans()):
        name = target[: target.index("=")]
        target = name + "=" + draw(st.sampled_from(HTTP_QUERY_VALUES))
    raw = bytearray(target.encode())
    for _ in range(draw(st.integers(0, 3))):
        at = draw(st.integers(0, len(raw) - 1))
        byte = draw(st.sampled_from([0x00, 0x20, 0x25, 0x2F, 0x3F, 0x23, 0x80, 0xFF, 0x0A]))
        if draw(st.booleans()):
            raw.insert(at, byte)
        else:
            raw[at] = byte
    method = draw(st.sampled_from([b"GET", b"GET", b"GET", b"POST", b"HEAD", b"PUT", b"G\x00T"]))
    version = draw(st.sampled_from([b"HTTP/1.1", b"HTTP/1.1", b"HTTP/1.0", b"HTTP/9.9", b""]))
    headers = draw(
        st.sampled_from(
            [
                [],
                [],
                [b"Content-Length: 5"],
                [b"Upgrade: websocket"],
                [b"X-Junk: " + b"y" * 9000],
                [b"Bad Header"],
                [b"Host: other"],
            ]
        )
    )
    return HttpRequest(method, bytes(raw), version, headers)


# ---------------------------------------------------------------- the server under test


class LoopThread:
    """An asyncio event loop in a daemon thread: the server and the clients run there while
    hypothesis drives examples from the test's thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="fuzz-loop", daemon=True)
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 120.0) -> T:
        """Run ``coro`` on the loop and wait for it (``timeout``: a hang fails the test)."""
        future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise AssertionError(f"no result in {timeout} s: the server or a client hung") from None

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()


SESSION_HEADER = "X-Fuzz-Session"


class HandlerTracker:
    """Wraps the server's connection handler: for each fuzz connection (``X-Fuzz-Session``
    header) a future with what escaped the handler (None: it returned)."""

    def __init__(self) -> None:
        self._done: dict[str, asyncio.Future[BaseException | None]] = {}

    def _future(self, key: str) -> asyncio.Future[BaseException | None]:
        if key not in self._done:
            self._done[key] = asyncio.get_running_loop().create_future()
        return self._done[key]

    def wrap(self, handler: Callable[[Any], Awaitable[None]]) -> Callable[[Any], Awaitable[None]]:
        async def tracked(ws: Any) -> None:
            key = ws.request.headers.get(SESSION_HEADER) if ws.request is not None else None
            if key is None:
                await handler(ws)
                return
            done = self._future(key)
            try:
                await handler(ws)
            except Exception as exc:
                # What websockets does with it, in an order that lets the client see the log
                # line before it moves on: log the traceback, close with 1011.
                ws.logger.error("connection handler failed", exc_info=True)
                done.set_result(exc)
                await ws.close(CloseCode.INTERNAL_ERROR)
                return
            except BaseException as exc:  # cancelled: the server is closing
                done.set_result(exc)
                raise
            done.set_result(None)

        return tracked

    async def finished(self, key: str, within_s: float) -> BaseException | None:
        """What escaped connection ``key``'s handler; raises ``TimeoutError`` if it is still
        running after ``within_s`` (it does not notice the client left)."""
        async with asyncio.timeout(within_s):
            result = await asyncio.shield(self._future(key))
        del self._done[key]
        return result


class LogTrap(logging.Handler):
    """Collects what the server logs: every record of ``assist``, ``websockets`` and
    ``asyncio`` at INFO and above (the levels are lowered while it is installed)."""

    LOGGERS = ("assist", "websockets", "asyncio")

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.records: list[logging.LogRecord] = []
        self._levels: dict[str, int] = {}

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def install(self) -> None:
        for name in self.LOGGERS:
            logger = logging.getLogger(name)
            self._levels[name] = logger.level
            logger.setLevel(logging.INFO)
            logger.addHandler(self)

    def uninstall(self) -> None:
        for name in self.LOGGERS:
            logger = logging.getLogger(name)
            logger.removeHandler(self)
            logger.setLevel(self._levels.get(name, logging.NOTSET))

    def take(self) -> list[logging.LogRecord]:
        """The records since the last call."""
        records, self.records = self.records, []
        return records

    @staticmethod
    def tracebacks(records: list[logging.LogRecord]) -> list[str]:
        """The records that carry a traceback or are errors, formatted."""
        formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
        return [formatter.format(r) for r in records if r.exc_info or r.levelno >= logging.ERROR]


# ---------------------------------------------------------------- the canary


@dataclass
class CanaryRun:
    """One complete canary call: its id, its nudges (as the agent received them) and its
    scorecard (None: no ``stopped``), or the ``error`` the server answered."""

    call_id: str
    nudges: list[dict[str, Any]]
    scorecard: dict[str, Any] | None
    error: dict[str, Any] | None = None


class Canary:
    """A native call streamed alongside the fuzz sessions, a few frames per session; when
    its audio is all sent it stops (keeping the run) and starts the next run as a new call,
    ``<prefix><n>`` (a call id seen before would continue that call as its next leg).
    ``frames``: 20 ms stereo PCM16 frames at 8 kHz."""

    def __init__(self, base: str, frames: list[bytes], prefix: str = CANARY_PREFIX) -> None:
        self.base = base
        self.frames = frames
        self.prefix = prefix
        self.runs: list[CanaryRun] = []
        self._sent = 0
        self._call: ClientConnection | None = None
        self._events: ClientConnection | None = None
        self._collector: asyncio.Task[None] | None = None
        self._nudges: list[dict[str, Any]] = []
        self._ended: asyncio.Event = asyncio.Event()

    @property
    def call_id(self) -> str:
        """The id of the run being streamed (or of the next one)."""
        return f"{self.prefix}{len(self.runs)}"

    async def open(self) -> None:
        """Subscribe to the canary agent's stream."""
        self._events = await connect(f"{self.base}/v1/agents/{CANARY_AGENT}/events")
        hello = json.loads(await self._events.recv())
        assert hello["type"] == "subscribed", hello
        self._collector = asyncio.create_task(self._collect())

    async def _collect(self) -> None:
        assert self._events is not None
        with contextlib.suppress(ConnectionClosed):
            async for text in self._events:
                event = json.loads(text)
                if event.get("call_id") != self.call_id:
                    continue
                if event["type"] == "nudge":
                    self._nudges.append(event)
                elif event["type"] == "call_ended":
                    self._ended.set()

    async def _start(self) -> None:
        self._call = await connect(f"{self.base}/v1/calls", compression=None)
        start = {
            "type": "start",
            "call_id": self.call_id,
            "agent_id": CANARY_AGENT,
            "sample_rate": 8000,
            "encoding": "pcm16",
            "channels": ["customer", "agent"],
        }
        await self._call.send(json.dumps(start))
        reply = json.loads(await self._call.recv())
        assert reply["type"] == "started", f"the canary was refused: {reply}"
        self._sent = 0
        self._nudges = []
        self._ended.clear()

    async def _stop(self) -> None:
        assert self._call is not None
        await self._call.send(json.dumps({"type": "stop"}))
        scorecard = error = None
        with contextlib.suppress(ConnectionClosed):
            async for text in self._call:
                reply = json.loads(text)
                if reply["type"] == "stopped":
                    scorecard = reply["scorecard"]
                elif reply["type"] == "error":
                    error = reply
        await self._ended.wait()  # every nudge of the call came before its call_ended
        self.runs.append(CanaryRun(self.call_id, list(self._nudges), scorecard, error))
        self._call = None

    async def advance(self, n: int) -> None:
        """Send the next ``n`` frames (finishing a run and starting the next as needed)."""
        for _ in range(n):
            if self._call is None:
                await self._start()
            assert self._call is not None
            await self._call.send(self.frames[self._sent])
            self._sent += 1
            if self._sent == len(self.frames):
                await self._stop()

    async def finish(self) -> None:
        """Send the rest of the current run, stop it, unsubscribe."""
        if self._call is not None:
            await self.advance(len(self.frames) - self._sent)
        if self._events is not None:
            await self._events.close()
        if self._collector is not None:
            await self._collector


def comparable(run: CanaryRun) -> Any:
    """What must not change between runs: the nudges and the scorecard, the run's call id
    written as ``CALL`` (nudge ids are ``<call_id>-<n>``)."""
    text = json.dumps([run.nudges, run.scorecard, run.error])
    return json.loads(text.replace(f'"{run.call_id}', '"CALL'))


# ---------------------------------------------------------------- playing sessions


@dataclass
class Outcome:
    """What one fuzz session did to the server: the close code the client received (None:
    none), what escaped the server's handler, the log records during it, the HTTP status
    of a refused upgrade, whether the handler outlived the client by more than
    ``FuzzServer.LINGER_S``, and (ending ``read``) what the server sent."""

    close_code: int | None
    handler_error: BaseException | None
    records: list[logging.LogRecord]
    refused_status: int | None = None
    lingered: bool = False
    replies: list[str | bytes] = field(default_factory=list)

    def texts(self) -> list[dict[str, Any]]:
        """The JSON objects among the replies."""
        out = []
        for reply in self.replies:
            with contextlib.suppress(ValueError):
                value = json.loads(reply)
                if isinstance(value, dict):
                    out.append(value)
        return out


class FuzzServer:
    """A real ``AssistServer`` on a loopback port in a ``LoopThread``, its handler tracked,
    its logs trapped, and a canary call."""

    # A handler still running this long after its client left lingers (normally it ends in
    # milliseconds; a close that waits out websockets' 10 s close timeout shows up here).
    LINGER_S = 5.0
    HANDLER_TIMEOUT_S = 30.0  # still running after this: it hangs, the test fails

    def __init__(self, settings: Settings, canary_frames: list[bytes]) -> None:
        self.thread = LoopThread()
        self.trap = LogTrap()
        self.tracker = HandlerTracker()
        self.settings = settings
        self.canary_frames = canary_frames
        self.service: AssistService | None = None
        self.server: AssistServer | None = None
        self.canary: Canary | None = None
        self._sessions = 0

    @property
    def base(self) -> str:
        assert self.server is not None
        return f"ws://127.0.0.1:{self.server.port}"

    def start(self) -> None:
        self.trap.install()

        async def start() -> None:
            self.service = AssistService(self.settings)
            self.server = AssistServer(self.service)
            # the tracked handler: instance attribute, looked up by ``start``
            self.server._handle = self.tracker.wrap(self.server._handle)  # type: ignore[method-assign]
            await self.server.start("127.0.0.1", 0)
            await self.service.load_models()

        self.thread.run(start())

    def stop(self) -> None:
        try:
            if self.server is not None:
                self.thread.run(self.server.close())
        finally:
            self.thread.stop()
            self.trap.uninstall()

    def canary_alone(self) -> CanaryRun:
        """Stream the canary once with nothing else on the server."""

        async def alone() -> CanaryRun:
            canary = Canary(self.base, self.canary_frames, prefix="alone-")
            await canary.open()
            await canary.advance(len(self.canary_frames))
            await canary.finish()
            return canary.runs[0]

        return self.thread.run(alone())

    def open_canary(self) -> None:
        self.canary = Canary(self.base, self.canary_frames)
        self.thread.run(self.canary.open())

    def finish_canary(self) -> list[CanaryRun]:
        assert self.canary is not None
        self.thread.run(self.canary.finish())
        return self.canary.runs

    def live_calls(self) -> list[str]:
        """The live calls other than the canary's."""
        assert self.service is not None
        return sorted(c for c in self.service.live if not c.startswith(CANARY_PREFIX))

    def play(self, session: Session, canary_frames: int = 0) -> Outcome:
        """Play ``session`` while the canary (if open) sends ``canary_frames`` frames."""
        self._sessions += 1
        key = str(self._sessions)

        async def both() -> Outcome:
            if self.canary is None:
                return await self._play(session, key)
            outcome, _ = await asyncio.gather(
                self._play(session, key), self.canary.advance(canary_frames)
            )
            return outcome

        return self.thread.run(both())

    async def _play(self, session: Session, key: str) -> Outcome:
        headers: dict[str, str | None] = {**session.recorded.headers, SESSION_HEADER: key}
        if "Audiohook-Session-Id" in headers:  # a session id per connection, as Genesys does
            headers["Audiohook-Session-Id"] = str(uuid.UUID(int=int(key)))
        headers.update(session.headers)
        sent = {k: v for k, v in headers.items() if v is not None}
        try:
            ws = await connect(
                self.base + session.recorded.path,
                additional_headers=sent,
                compression=None,
                max_size=None,
                open_timeout=30,
                close_timeout=30,
            )
        except InvalidStatus as refused:
            return Outcome(None, None, self.trap.take(), refused.response.status_code)
        except InvalidHandshake:
            return Outcome(None, None, self.trap.take(), 0)
        replies: list[str | bytes] = []
        if session.ending == "burst":  # every frame and the close in one TCP write
            for frame in session.frames:
                _queue(ws, frame)
            ws.protocol.send_close()
            assert ws.transport is not None
            ws.transport.write(b"".join(ws.protocol.data_to_send()))
        else:
            with contextlib.suppress(ConnectionClosed):
                for frame in session.frames:
                    await _send(ws, frame)
        if session.ending == "abort":
            assert ws.transport is not None
            ws.transport.abort()
        elif session.ending == "read":  # until the server closes or says goodbye
            with contextlib.suppress(ConnectionClosed, TimeoutError):
                async with asyncio.timeout(self.LINGER_S):
                    async for message in ws:
                        replies.append(message)
                        if _goodbye(message):
                            break
        with contextlib.suppress(ConnectionClosed, OSError):
            await ws.close()
        lingered = False
        try:
            error = await self.tracker.finished(key, self.LINGER_S)
        except TimeoutError:
            lingered = True
            error = await self.tracker.finished(key, self.HANDLER_TIMEOUT_S)
        received = ws.protocol.close_rcvd
        close = received.code if received is not None else None
        return Outcome(close, error, self.trap.take(), None, lingered, replies)

    def request(self, request: HttpRequest) -> tuple[int | None, list[logging.LogRecord]]:
        """Send one raw HTTP request while the canary (if open) sends a few frames; (status or
        None when the server closed without answering, log records)."""

        async def both() -> int | None:
            assert self.server is not None
            if self.canary is None:
                return await _http(self.server.port, request)
            status, _ = await asyncio.gather(
                _http(self.server.port, request), self.canary.advance(5)
            )
            return status

        status = self.thread.run(both())
        return status, self.trap.take()


def _goodbye(message: str | bytes) -> bool:
    """An AudioHook server's last word: ``closed`` or ``disconnect`` (it then waits for the
    client to close)."""
    if isinstance(message, bytes):
        return False
    with contextlib.suppress(ValueError):
        value = json.loads(message)
        return isinstance(value, dict) and value.get("type") in ("closed", "disconnect")
    return False


def _queue(ws: ClientConnection, frame: Frame) -> None:
    """Put ``frame`` in the client protocol's outgoing data without writing it."""
    if isinstance(frame, bytes):
        ws.protocol.send_binary(frame)
    elif isinstance(frame, TextBytes):
        ws.protocol.send_text(frame.data)
    else:
        text = frame_text(frame)
        assert text is not None
        ws.protocol.send_text(text.encode("utf-8", "surrogatepass"))


async def _send(ws: ClientConnection, frame: Frame) -> None:
    if isinstance(frame, bytes):
        await ws.send(frame)
    elif isinstance(frame, TextBytes):
        await ws.send(frame.data, text=True)
    else:
        text = frame_text(frame)
        assert text is not None
        await ws.send(text.encode("utf-8", "surrogatepass"), text=True)


async def _http(port: int, request: HttpRequest) -> int | None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request.encode(f"127.0.0.1:{port}"))
        await writer.drain()
        async with asyncio.timeout(30):
            response = await reader.read()
    except (ConnectionError, OSError):
        return None
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError, OSError):
            await writer.wait_closed()
    head = response.split(b"\r\n", 1)[0].split()
    return int(head[1]) if len(head) >= 2 and head[1].isdigit() else None
