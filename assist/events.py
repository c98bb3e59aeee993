"""The wire vocabulary: every message that crosses a socket, as pydantic models.

Hot-path value types (findings, utterances, scores) are plain dataclasses in
``assist.vocabulary``. Everything that crosses a
socket is a pydantic model with a ``type`` literal; ``wire_schemas()`` publishes their
JSON Schemas (``assist schemas``). Clients must ignore types they don't know.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from assist.vocabulary import CueKind, Severity


class WireJsonError(ValueError):
    """A text frame that is not usable JSON: malformed, nested deeper than the parser
    allows, or with a number too long to convert (Python's int digit limit)."""


def load_wire_json(text: str) -> Any:
    """``json.loads`` for text from the network: every way it can fail on hostile input
    (``JSONDecodeError``, ``RecursionError`` on deep nesting, ``ValueError`` on a
    thousands-digit number) becomes one ``WireJsonError``. Callers bound the size first."""
    try:
        return json.loads(text)
    except RecursionError:
        raise WireJsonError("JSON nested too deeply") from None
    except ValueError as exc:  # JSONDecodeError is a ValueError, so are int digit limits
        raise WireJsonError(f"not valid JSON: {exc}") from None


# ---------------------------------------------------------------- client -> server


class _Message(BaseModel):
    model_config = ConfigDict(extra="forbid")


class StartMessage(_Message):
    """Client -> server, the first message on ``/v1/calls``: ids and the audio format.

    ``sample_rate`` (Hz) and ``encoding`` are checked against the supported ones by the
    protocol (``assist.protocols.native.parse_text``), ``channels`` are roles in interleaving
    order; ``live`` False: a recording sent unpaced, read no faster than it is processed
    (``CallSpec.live``). See README, "Native ingest protocol".
    """

    type: Literal["start"]
    call_id: Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._:@-]+$")]
    agent_id: Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._:@-]+$")]
    sample_rate: int
    encoding: str
    channels: Annotated[list[Literal["customer", "agent"]], Field(min_length=1, max_length=2)]
    live: bool = True


class HoldMessage(_Message):
    """Client -> server: a CTI hold event, effective at the media time of the audio so far."""

    type: Literal["hold"]
    on: bool


class StopMessage(_Message):
    """Client -> server: the call is over; answered with ``stopped`` and the scorecard."""

    type: Literal["stop"]


class FeedbackMessage(_Message):
    """An agent's answer to a nudge, sent on their event stream."""

    type: Literal["feedback"]
    call_id: Annotated[str, Field(min_length=1, max_length=128)]
    nudge_id: Annotated[str, Field(min_length=1, max_length=200)]
    kind: CueKind
    action: Literal["got_it", "snooze", "not_right"]


class AgentBinding(_Message):
    """``POST /v1/calls/{call_id}/agent?agent_id=...``: the agent a call belongs to, learnt
    after the call started (CTI events). Taken from the path and the query string."""

    call_id: Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._:@-]+$")]
    agent_id: Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._:@-]+$")]


ClientMessage = Annotated[StartMessage | HoldMessage | StopMessage, Field(discriminator="type")]
CLIENT_MESSAGE = TypeAdapter(ClientMessage)


# ---------------------------------------------------------------- server -> client


class Evidence(_Message):
    """Why a nudge fired: the rule's config key, its threshold and the measured value in
    ``unit`` (s, wpm, score), the media-time span (s), and a sentence explaining it."""

    rule: str
    threshold: float
    measured: float
    unit: str
    span_start_s: float
    span_end_s: float
    explanation: str
    details: dict[str, Any] = {}


class Nudge(_Message):
    """Server -> agent stream: one coaching nudge. ``media_time_s`` is when its cue became
    true (media seconds); ``id`` is ``<call_id>-<n>``, the key for feedback.

    ``corrected=True``: a text cue's nudge sent again because the sentence it quotes was
    corrected (see ``Transcript.corrected``): it replaces the nudge with the same ``id``."""

    type: Literal["nudge"] = "nudge"
    id: str
    call_id: str
    agent_id: str
    kind: CueKind
    severity: Severity
    message: str
    suggestion: str | None
    media_time_s: float
    evidence: Evidence
    corrected: bool = False


class TranscriptWord(_Message):
    """One recognized word: its media time (s) and the recognizer's confidence (0-1)."""

    word: str
    start_s: float  # media time of the call
    end_s: float
    probability: float


class Transcript(_Message):
    """Text of one utterance; ``final=False`` previews an utterance still going on.

    ``corrected=True``: a final sent again because a later utterance showed it carried part
    of a card or account number (e.g. the first digit group, said before the topic came
    up): it replaces the transcript with the same ``channel`` and ``utterance_id`` wherever
    it was shown or kept, with more of its text and words redacted."""

    type: Literal["transcript"] = "transcript"
    call_id: str
    channel: str
    utterance_id: int
    text: str
    start_s: float
    end_s: float
    final: bool
    words: list[TranscriptWord]
    corrected: bool = False


class Started(_Message):
    """Server -> client: the call was accepted (the answer to ``start``)."""

    type: Literal["started"] = "started"
    call_id: str


class Stopped(_Message):
    """Server -> client: the answer to ``stop``, with the call's scorecard; a normal close
    follows."""

    type: Literal["stopped"] = "stopped"
    call_id: str
    scorecard: dict[str, Any]


class ErrorMessage(_Message):
    """Server -> client: bad input or a refused call (``code``, e.g. ``bad_start``,
    ``at_capacity``); the connection is closed after it."""

    type: Literal["error"] = "error"
    code: str
    message: str


CallStateName = Literal["talking", "overlap", "silent", "on_hold", "ended"]


class CallState(_Message):
    """One live call as the floor sees it."""

    call_id: str
    agent_id: str
    state: CallStateName
    speaking: list[str]
    media_time_s: float
    hold_started_s: float | None
    hold_s: float | None
    cue_counts: dict[str, int]
    last_alert: str | None
    attention: int  # higher needs a supervisor sooner


class FloorSnapshot(_Message):
    """Floor stream, right after ``subscribed``: every live call, most urgent first."""

    type: Literal["floor_snapshot"] = "floor_snapshot"
    calls: list[CallState]


class CallUpdate(_Message):
    """The latest state of one live call (coalesced per call on a slow stream)."""

    type: Literal["call_update"] = "call_update"
    call: CallState


class CallEnded(_Message):
    """A call has ended: floor and agent views drop it."""

    type: Literal["call_ended"] = "call_ended"
    call_id: str
    agent_id: str


class Alert(_Message):
    """Floor stream: a nudge a supervisor should see (one of ``[floor] alert_kinds``, any
    critical one, or a kind repeated ``[floor.repeat_alerts]`` times); ``kind`` is its cue
    kind, ``media_time_s`` the nudge's media time (s)."""

    type: Literal["alert"] = "alert"
    call_id: str
    agent_id: str
    kind: str
    severity: Severity
    message: str
    media_time_s: float


class Subscribed(_Message):
    """First message on an event stream: the subscription is live from here on."""

    type: Literal["subscribed"] = "subscribed"
    stream: Literal["agent", "floor"]
    agent_id: str | None = None


class AgentBound(_Message):
    """The answer to ``POST /v1/calls/{call_id}/agent``. ``status``: ``bound`` (a live call:
    its buffered nudges and transcripts went to the agent), ``recorded`` (an ended call: its
    record changed), ``pending`` (no such call yet: applied when it starts).
    ``previous_agent_id`` is the agent id the call had (None when pending)."""

    type: Literal["agent_bound"] = "agent_bound"
    call_id: str
    agent_id: str
    status: Literal["bound", "recorded", "pending"]
    previous_agent_id: str | None


class Lagged(_Message):
    """Sent to a subscriber whose queue overflowed: ``dropped`` older events were lost."""

    type: Literal["lagged"] = "lagged"
    dropped: int


WIRE_MODELS: tuple[type[BaseModel], ...] = (
    StartMessage,
    HoldMessage,
    StopMessage,
    FeedbackMessage,
    Started,
    Stopped,
    ErrorMessage,
    Nudge,
    Transcript,
    FloorSnapshot,
    CallUpdate,
    CallEnded,
    Alert,
    Subscribed,
    Lagged,
    AgentBound,
)


def wire_schemas() -> dict[str, dict[str, Any]]:
    """JSON Schema of every wire message, keyed by its ``type``."""
    out = {}
    for model in WIRE_MODELS:
        type_name = model.model_fields["type"].annotation.__args__[0]  # type: ignore[union-attr]
        out[type_name] = model.model_json_schema()
    return out
