"""Twilio Media Streams and the Twilio-style dialects of Exotel and Telnyx.

Routes: ``/v1/twilio`` (``X-Twilio-Signature`` checked when ``twilio.auth_token`` is set),
``/v1/exotel`` and ``/v1/telnyx`` (no signature). Each route takes every dialect; the
dialect is read from the ``start`` message's field names:

* Twilio: ``streamSid``, ``start.callSid``, ``start.tracks``, ``start.customParameters``,
  ``start.mediaFormat`` ``{encoding: audio/x-mulaw, sampleRate: 8000}``;
* Exotel: ``stream_sid``, ``start.call_sid``, ``start.custom_parameters``,
  ``start.media_format`` ``{encoding, sample_rate, bit_rate}``: raw 16-bit little-endian PCM
  (``audio/x-raw``, ``base64``) or mu-law, 8 or 16 kHz, one track, no ``media.track``;
* Telnyx: ``stream_id``, ``start.call_control_id``, ``start.custom_parameters``,
  ``start.media_format`` ``{encoding: PCMU, sample_rate: 8000}``; the start lists no tracks
  (both are assumed unless a ``tracks`` parameter says otherwise); frames are not
  guaranteed to arrive in order.

``media`` messages carry a base64 ``payload``, a millisecond ``timestamp`` (media time of
the frame's first sample) and, with two tracks, a ``track`` (``inbound`` | ``outbound``).
``TrackAligner`` places each track's frames by timestamp and interleaves the tracks: a
frame that arrives behind later ones is put back in order when it comes within
``twilio.reorder_window_s`` of media of them; past that its place is filled with silence
(lost) and the frame, when it comes, is dropped as late. Duplicates are dropped, and a
track that stops sending is padded once it lags the other by ``max_track_skew_s``. When the
timestamps of the whole stream jump further than that (a paused or restarted stream), the
audio in between was lost: a gap (media time moves on in O(1), no silence is made; more
than ``limits.max_gap_s`` ends the call with ``gap_too_long``).

Roles: the track named by ``agent_track`` is the agent, the other one the customer. A
stream sets it with a parameter (Twilio ``<Parameter name="agent_track" value="inbound"/>``,
Exotel/Telnyx custom parameters, or the URL's query string), else ``twilio.agent_track``
(``outbound``: a stream on the customer's leg). The agent id comes from the
``twilio.agent_id_parameter`` parameter (same sources); without one the call starts as
``default_agent_id`` and waits for ``POST /v1/calls/{call_id}/agent``. A fork is one-way:
nothing is sent back; the call ends at ``stop`` or when the socket closes.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import heapq
import hmac
import itertools
import logging
import re
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import parse_qs, urlsplit

import numpy as np
from pydantic import AliasChoices, BaseModel, ConfigDict, Field, ValidationError
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed
from websockets.frames import CloseCode

from assist.config import TwilioConfig
from assist.ingest import GapTooLong
from assist.protocols.errors import ProtocolError, json_object, unsupported
from assist.protocols.runner import close_quietly, open_call, run_call
from assist.service import AssistService
from assist.session import CallSession
from assist.vocabulary import BYTES_PER_SAMPLE, SUPPORTED_RATES, CallSpec, Encoding

log = logging.getLogger(__name__)

RATE = 8000
MULAW_SILENCE = 0xFF
SILENCE: dict[Encoding, bytes] = {"mulaw": bytes([MULAW_SILENCE]), "pcm16": b"\x00\x00"}
TRACKS = ("inbound", "outbound")
AGENT_TRACK_PARAMETER = "agent_track"
TRACKS_PARAMETER = "tracks"
_ID = re.compile(r"[^A-Za-z0-9._:@-]")

Dialect = Literal["twilio", "exotel", "telnyx"]
# encoding names (lower case) each dialect sends -> ours; the first one is its default
ENCODINGS: dict[Dialect, dict[str, Encoding]] = {
    "twilio": {"audio/x-mulaw": "mulaw"},
    "exotel": {"audio/x-raw": "pcm16", "base64": "pcm16", "raw": "pcm16", "audio/x-mulaw": "mulaw"},
    "telnyx": {"pcmu": "mulaw", "audio/x-mulaw": "mulaw"},
}


def expected_signature(auth_token: str, url: str) -> str:
    """Twilio's X-Twilio-Signature for a request without POST parameters."""
    digest = hmac.new(auth_token.encode(), url.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def signature_ok(auth_token: str, url: str, signature: str | None) -> bool:
    """Whether ``signature`` (the X-Twilio-Signature header) is Twilio's for ``url`` under
    ``auth_token``; False when missing. Constant-time comparison."""
    if not signature:
        return False
    return hmac.compare_digest(expected_signature(auth_token, url), signature)


# ---------------------------------------------------------------- wire messages (incoming)


class _Incoming(BaseModel):
    """A platform's JSON: fields we don't use are ignored; ids under each dialect's name."""

    model_config = ConfigDict(extra="ignore")


class MediaFormat(_Incoming):
    """``start.mediaFormat`` / ``start.media_format``; numbers may come as strings."""

    encoding: str | None = None
    sample_rate: int | None = Field(
        None, validation_alias=AliasChoices("sampleRate", "sample_rate")
    )


class StreamStart(_Incoming):
    """The ``start`` object of a ``start`` message, in any of the three dialects."""

    stream_id: str | None = Field(
        None, validation_alias=AliasChoices("streamSid", "stream_sid", "stream_id")
    )
    call_id: str | None = Field(
        None, validation_alias=AliasChoices("callSid", "call_sid", "call_control_id")
    )
    tracks: list[str] | None = None
    custom_parameters: dict[str, Any] | None = Field(
        None, validation_alias=AliasChoices("customParameters", "custom_parameters")
    )
    media_format: MediaFormat | None = Field(
        None, validation_alias=AliasChoices("mediaFormat", "media_format")
    )


class StartEvent(_Incoming):
    """``{"event": "start", <stream id>, "start": {...}}``."""

    event: Literal["start"]
    stream_id: str | None = Field(
        None, validation_alias=AliasChoices("streamSid", "stream_sid", "stream_id")
    )
    start: StreamStart


class MediaChunk(_Incoming):
    """``media``: base64 ``payload``, ``timestamp`` (ms of media, the frame's first sample;
    absent: right after the track's latest frame), ``track`` (absent: ``inbound``)."""

    track: str = "inbound"
    # At most 2**53 ms (exact in a float): larger claims are malformed, not gaps.
    timestamp: int | None = Field(None, ge=0, le=2**53)
    payload: str


class MediaEvent(_Incoming):
    """``{"event": "media", "media": {...}}`` (sequence numbers are not needed: each track is
    ordered by its timestamps)."""

    event: Literal["media"]
    media: MediaChunk


def dialect_of(message: dict[str, Any]) -> Dialect:
    """Which platform wrote this ``start`` message, from its id field names: Telnyx
    (``stream_id``, ``call_control_id``), Exotel (``stream_sid``, ``call_sid``), else Twilio."""
    start = message.get("start")
    names = set(message) | (set(start) if isinstance(start, dict) else set())
    if names & {"stream_id", "call_control_id"}:
        return "telnyx"
    if names & {"stream_sid", "call_sid"}:
        return "exotel"
    return "twilio"


def track_name(raw: str) -> str:
    """``inbound_track`` -> ``inbound``; ``both_tracks`` -> ``both``; lower case."""
    return raw.lower().removesuffix("_tracks").removesuffix("_track")


@dataclass(frozen=True)
class StreamPlan:
    """What a ``start`` message opens: the call, its tracks in channel order, the dialect,
    and whether the agent id came from the stream (False: the placeholder)."""

    spec: CallSpec
    tracks: tuple[str, ...]
    dialect: Dialect
    agent_known: bool


def plan_stream(
    message: dict[str, Any], config: TwilioConfig, query: dict[str, str] | None = None
) -> StreamPlan:
    """The call a ``start`` message opens (module docstring for the fields).

    ``query`` is the URL's query string; the stream's custom parameters override it. Tracks
    come from ``start.tracks``, else a ``tracks`` parameter (``inbound``, ``outbound``,
    ``both``, with or without ``_track(s)``), else both for Telnyx and ``inbound`` for the
    others; the channels follow them in that order. The call id is the call's id (``callSid``
    / ``call_sid`` / ``call_control_id``), else the stream's. Raises ``ProtocolError``:
    ``bad_start`` (malformed start, no usable track, no id, an ``agent_track`` other than
    inbound/outbound), ``unsupported_media`` (an encoding or rate we can't decode).
    """
    try:
        event = StartEvent.model_validate(message)
    except ValidationError as exc:
        raise ProtocolError("bad_start", f"malformed start: {_first_error(exc)}") from None
    dialect = dialect_of(message)
    start = event.start
    parameters = {**(query or {})}
    parameters.update({k: str(v) for k, v in (start.custom_parameters or {}).items() if v})
    fmt = start.media_format or MediaFormat()
    names = ENCODINGS[dialect]
    encoding_name = fmt.encoding or next(iter(names))
    encoding = names.get(encoding_name.lower())
    rate = fmt.sample_rate or RATE
    if encoding is None or rate not in SUPPORTED_RATES:
        raise unsupported(
            "unsupported_media",
            f"{dialect}: need one of {sorted(names)} at {SUPPORTED_RATES} Hz, "
            f"got {encoding_name} at {rate}",
        )
    if start.tracks is not None:
        listed = start.tracks
    elif TRACKS_PARAMETER in parameters:
        listed = [parameters[TRACKS_PARAMETER]]
    else:
        listed = list(TRACKS) if dialect == "telnyx" else ["inbound"]
    tracks: list[str] = []
    for raw in listed:
        name = track_name(str(raw))
        for track in TRACKS if name == "both" else (name,):
            if track in TRACKS and track not in tracks:
                tracks.append(track)
    if not tracks:
        raise ProtocolError("bad_start", f"no usable track in {listed}")
    agent_track = track_name(parameters.get(AGENT_TRACK_PARAMETER, config.agent_track))
    if agent_track not in TRACKS:
        raise ProtocolError("bad_start", f"agent_track must be inbound or outbound: {agent_track}")
    raw_id = start.call_id or start.stream_id or event.stream_id
    if not raw_id:
        raise ProtocolError("bad_start", "start carries neither a call id nor a stream id")
    agent_id = parameters.get(config.agent_id_parameter)
    spec = CallSpec(
        call_id=_ID.sub("_", raw_id)[:128],
        agent_id=_ID.sub("_", agent_id or config.default_agent_id)[:128],
        sample_rate=rate,
        encoding=encoding,
        channels=tuple("agent" if t == agent_track else "customer" for t in tracks),
    )
    return StreamPlan(spec, tuple(tracks), dialect, agent_known=bool(agent_id))


def _first_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    return f"{'.'.join(str(p) for p in error['loc']) or 'message'}: {error['msg']}"


# ---------------------------------------------------------------- track alignment (pure)


@dataclass
class _Track:
    """One track's audio placed so far and the frames held back behind a hole."""

    buffer: bytearray = field(default_factory=bytearray)
    end: int = 0  # absolute sample index after the placed audio
    newest: int = 0  # position (samples) of the latest-starting frame seen
    seen_end: int = 0  # end (samples) of the furthest frame seen
    frames: int = 0  # frames received
    # heap of (position, arrival, payload, arrived behind a later frame)
    held: list[tuple[int, int, bytes, bool]] = field(default_factory=list)
    # recent [start, end) sample ranges filled with silence (to tell late from duplicate)
    filled: deque[tuple[int, int]] = field(default_factory=lambda: deque(maxlen=64))


class TrackAligner:
    """Places each track's frames by media timestamp and interleaves the tracks. Pure.

    ``tracks`` in channel order; ``max_skew_samples``: a track lagging the leader by more
    is padded with silence; ``reorder_window_samples``: a hole in a track waits for the
    missing frames until frames this far past its start have arrived, then becomes silence
    (lost). Timestamps within 1 ms of where the track's audio ends continue it (rounding,
    not a loss). ``sample_bytes`` and ``silence`` (one sample's bytes) follow the encoding.

    A frame more than ``gap_after_samples`` (default ``max_skew_samples``) ahead of every
    track's furthest frame means the whole stream jumped (paused, its clock moved): what
    came before is complete and emitted, the time in between is a gap (``take_gap``, in
    O(1): no silence is made for it), and the frame comes out with the next ``add`` or
    ``flush``.
    """

    def __init__(
        self,
        tracks: list[str] | tuple[str, ...],
        max_skew_samples: int,
        *,
        rate: int = RATE,
        sample_bytes: int = 1,
        silence: bytes = SILENCE["mulaw"],
        reorder_window_samples: int = 0,
        gap_after_samples: int | None = None,
    ) -> None:
        self.tracks = list(tracks)
        self._max_skew = max_skew_samples
        self._rate = rate
        self._width = sample_bytes
        self._dtype = np.dtype(f"V{sample_bytes}")
        self._silence = silence
        self._window = reorder_window_samples
        self._snap = rate // 1000
        self._gap_after = max_skew_samples if gap_after_samples is None else gap_after_samples
        self._gap = 0  # samples per track of the gap cut by the last add, for take_gap
        self._state = {t: _Track() for t in self.tracks}
        self._arrivals = itertools.count()
        self._emitted = 0  # absolute sample index of the buffers' first sample
        self.filled_samples = 0  # per track, summed: audio lost, replaced with silence
        self.dropped_samples = 0  # per track, summed: duplicate or late audio ignored
        self.reordered_frames = 0  # arrived behind a later frame, put back in place
        self.late_frames = 0  # arrived after their place was filled with silence
        self.duplicate_frames = 0  # audio already placed

    def frames(self, track: str) -> int:
        """Frames received on ``track``."""
        return self._state[track].frames

    def add(self, track: str, timestamp_ms: int | None, payload: bytes) -> bytes:
        """Take one frame of ``track`` (``timestamp_ms`` None: right after the track's
        furthest frame); return the interleaved samples now complete on every track, which
        come before the gap ``take_gap`` reports when the frame jumped ahead of the stream.
        Raises ``ValueError`` for a partial sample."""
        if len(payload) % self._width:
            raise ValueError(f"{len(payload)} bytes is not a whole number of samples")
        state = self._state[track]
        n = len(payload) // self._width
        if n == 0:
            return b""
        position = state.seen_end if timestamp_ms is None else timestamp_ms * self._rate // 1000
        if position - max(s.seen_end for s in self._state.values()) > self._gap_after:
            before = self._cut_gap(position)
            state.frames += 1
            state.seen_end = position + n
            heapq.heappush(state.held, (position, next(self._arrivals), payload, False))
            return before  # the frame waits: after the gap
        state.frames += 1
        out_of_order = position < state.newest
        state.newest = max(state.newest, position)
        state.seen_end = max(state.seen_end, position + n)
        heapq.heappush(state.held, (position, next(self._arrivals), payload, out_of_order))
        self._release(state)
        leader = max(s.end for s in self._state.values())
        for other in self._state.values():
            if leader - other.end > self._max_skew:
                self._pad(other, leader - self._max_skew)
                self._release(other)
        return self._ready(min(s.end for s in self._state.values()))

    def take_gap(self) -> int:
        """Samples per track the stream jumped over in the last ``add`` (0: none), once: lost
        audio to report after that add's bytes."""
        gap, self._gap = self._gap, 0
        return gap

    def _cut_gap(self, position: int) -> bytes:
        """The stream jumped to ``position``: place and emit everything before it (``flush``),
        then move every track there; the samples in between are the gap."""
        before = self.flush()
        leader = self._emitted
        for state in self._state.values():
            state.filled.append((state.end, position))  # frames for it come late
            state.end = state.newest = state.seen_end = position
        self._emitted = position
        self._gap += position - leader
        return before

    def flush(self) -> bytes:
        """End of the stream: place every held frame (holes become silence), pad the lagging
        tracks and return everything left."""
        for state in self._state.values():
            while state.held:
                position, _, payload, out_of_order = heapq.heappop(state.held)
                self._place(state, position, payload, out_of_order)
        leader = max(s.end for s in self._state.values())
        for state in self._state.values():
            self._pad(state, leader)
        return self._ready(leader)

    def _release(self, state: _Track) -> None:
        """Place the held frames in timestamp order up to a hole that may still be filled."""
        while state.held:
            position = state.held[0][0]
            hole = position > state.end + self._snap
            if hole and state.newest - state.end <= self._window:
                return  # the missing frames may still come
            _, _, payload, out_of_order = heapq.heappop(state.held)
            self._place(state, position, payload, out_of_order)

    def _place(self, state: _Track, position: int, payload: bytes, out_of_order: bool) -> None:
        n = len(payload) // self._width
        if abs(position - state.end) <= self._snap:
            position = state.end
        if position + n <= state.end:  # nothing new: late or a duplicate
            self.dropped_samples += n
            if any(start < position + n and position < end for start, end in state.filled):
                self.late_frames += 1
            else:
                self.duplicate_frames += 1
            return
        if position > state.end:  # frames before this one never came
            self._pad(state, position)
        elif position < state.end:  # overlaps audio already placed
            overlap = state.end - position
            self.dropped_samples += overlap
            payload = payload[overlap * self._width :]
        if out_of_order:
            self.reordered_frames += 1
        state.buffer += payload
        state.end += len(payload) // self._width

    def _pad(self, state: _Track, to_position: int) -> None:
        missing = to_position - state.end
        if missing > 0:
            state.buffer += self._silence * missing
            state.filled.append((state.end, to_position))
            state.end = to_position
            self.filled_samples += missing

    def _ready(self, up_to: int) -> bytes:
        n = up_to - self._emitted
        if n <= 0:
            return b""
        size = n * self._width
        states = list(self._state.values())
        columns = [np.frombuffer(bytes(s.buffer[:size]), dtype=self._dtype) for s in states]
        for state in states:
            del state.buffer[:size]
        self._emitted = up_to
        if len(columns) == 1:
            return columns[0].tobytes()
        return np.stack(columns, axis=1).tobytes()


# ---------------------------------------------------------------- the route


def _parse(text: str | bytes) -> dict[str, Any]:
    if isinstance(text, bytes):
        raise ProtocolError("unexpected_binary", "media streams send JSON text frames")
    return json_object(text, "a media stream message", "event")


async def _read_start(ws: ServerConnection, service: AssistService) -> dict[str, Any]:
    async with asyncio.timeout(service.settings.limits.start_timeout_s):
        while True:
            message = _parse(await ws.recv())
            if message["event"] == "start":
                return message
            if message["event"] != "connected":
                raise ProtocolError("expected_start", f"{message['event']} before start")


async def _read_media(ws: ServerConnection, session: CallSession, aligner: TrackAligner) -> None:
    async for text in ws:
        message = _parse(text)
        event = message["event"]
        if event == "media":
            try:
                media = MediaEvent.model_validate(message).media
                payload = base64.b64decode(media.payload, validate=True)
            except (ValidationError, ValueError):  # binascii.Error is a ValueError too
                raise ProtocolError(
                    "bad_media", "media needs a base64 payload and a whole-ms timestamp"
                ) from None
            track = track_name(media.track)
            if track not in aligner.tracks:
                continue  # a track this stream did not announce
            try:
                frames = aligner.add(track, media.timestamp, payload)
            except ValueError as exc:
                raise ProtocolError("bad_media", str(exc), CloseCode.INVALID_DATA) from None
            if frames:
                session.push_audio(frames)
            if gap := aligner.take_gap():
                try:
                    session.push_gap(gap)
                except GapTooLong as exc:  # past limits.max_gap_s
                    raise ProtocolError("gap_too_long", str(exc)) from None
        elif event == "stop":
            break
        # connected, dtmf, mark, error and events added later carry no audio
    tail = aligner.flush()
    if tail:
        session.push_audio(tail)


def _report(service: AssistService, plan: StreamPlan, aligner: TrackAligner) -> None:
    """Count the stream's reordered, late and duplicate frames and its lost audio."""
    metrics = service.metrics
    rate = plan.spec.sample_rate
    for outcome, count in (
        ("reordered", aligner.reordered_frames),
        ("late", aligner.late_frames),
        ("duplicate", aligner.duplicate_frames),
    ):
        if count:
            metrics.media_frames.inc(count, protocol=plan.dialect, outcome=outcome)
    if aligner.filled_samples:
        metrics.media_lost_seconds.inc(aligner.filled_samples / rate, protocol=plan.dialect)
        log.info(
            "call %s: %.2f track-seconds of lost %s audio filled with silence "
            "(%d frames reordered, %d late, %d duplicate)",
            plan.spec.call_id,
            aligner.filled_samples / rate,
            plan.dialect,
            aligner.reordered_frames,
            aligner.late_frames,
            aligner.duplicate_frames,
        )
    for track in aligner.tracks:
        if not aligner.frames(track):
            log.warning(
                "call %s: the %s track never sent audio (a single-track %s stream? say so "
                "with a tracks parameter)",
                plan.spec.call_id,
                track,
                plan.dialect,
            )


async def handle_twilio(ws: ServerConnection, service: AssistService) -> None:
    """The ``/v1/twilio``, ``/v1/exotel`` and ``/v1/telnyx`` routes (the Twilio signature was
    checked in ``process_request``): wait for ``start`` (``limits.start_timeout_s``), align
    the tracks into the call until ``stop`` or the socket closes, then close; nothing else
    is sent back (a fork is one-way). Bad input only shows in the close code and reason."""
    config = service.settings.twilio
    assert ws.request is not None
    query = {k: v[0] for k, v in parse_qs(urlsplit(ws.request.path).query).items()}
    try:
        start = await _read_start(ws, service)
        plan = plan_stream(start, config, query)
        session = await open_call(service, plan.spec, plan.dialect, plan.agent_known)
    except ProtocolError as refused:
        await close_quietly(ws, service, refused)
        return
    except (ConnectionClosed, TimeoutError):
        return
    rate = plan.spec.sample_rate
    aligner = TrackAligner(
        plan.tracks,
        int(config.max_track_skew_s * rate),
        rate=rate,
        sample_bytes=BYTES_PER_SAMPLE[plan.spec.encoding],
        silence=SILENCE[plan.spec.encoding],
        reorder_window_samples=int(config.reorder_window_s * rate),
    )
    _, error = await run_call(service, session, lambda s: _read_media(ws, s, aligner))
    _report(service, plan, aligner)
    await close_quietly(ws, service, error)
