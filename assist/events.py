"""The closed vocabulary: findings on the hot path, pydantic messages on the wire.

Findings are plain dataclasses made by the pure detectors. Everything that crosses a
socket is a pydantic model with a ``type`` literal; ``wire_schemas()`` publishes their
JSON Schemas (``assist schemas``). Clients must ignore types they don't know.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

Severity = Literal["info", "warning", "critical"]


@dataclass(frozen=True, slots=True)
class Finding:
    """A detector's statement that a cue became true at ``at_s`` (media seconds)."""

    kind: str
    at_s: float  # the moment the threshold was crossed
    span_start_s: float
    span_end_s: float
    rule: str  # the config key of the threshold, e.g. "cues.dead_air.min_silence_s"
    threshold: float
    measured: float
    unit: str = "s"
    severity: Severity = "warning"
    details: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Times are sums of 32 ms windows; keep them to the microsecond so float noise
        # (7.999999999999998) never shows up as a measurement below its threshold.
        for name in ("at_s", "span_start_s", "span_end_s", "measured", "threshold"):
            object.__setattr__(self, name, round(getattr(self, name), 6))


# ---------------------------------------------------------------- client -> server


class _Message(BaseModel):
    model_config = ConfigDict(extra="forbid")


class StartMessage(_Message):
    type: Literal["start"]
    call_id: Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._:@-]+$")]
    agent_id: Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._:@-]+$")]
    sample_rate: int
    encoding: str
    channels: Annotated[list[Literal["customer", "agent"]], Field(min_length=1, max_length=2)]


class HoldMessage(_Message):
    type: Literal["hold"]
    on: bool


class StopMessage(_Message):
    type: Literal["stop"]


ClientMessage = Annotated[StartMessage | HoldMessage | StopMessage, Field(discriminator="type")]
CLIENT_MESSAGE = TypeAdapter(ClientMessage)


# ---------------------------------------------------------------- server -> client


class Evidence(_Message):
    rule: str
    threshold: float
    measured: float
    unit: str
    span_start_s: float
    span_end_s: float
    explanation: str
    details: dict[str, Any] = {}


class Nudge(_Message):
    type: Literal["nudge"] = "nudge"
    id: str
    call_id: str
    agent_id: str
    kind: str
    severity: Severity
    message: str
    suggestion: str | None
    media_time_s: float
    evidence: Evidence


class TranscriptWord(_Message):
    word: str
    start_s: float  # media time of the call
    end_s: float
    probability: float


class Transcript(_Message):
    """Text of one utterance; ``final=False`` previews an utterance still going on."""

    type: Literal["transcript"] = "transcript"
    call_id: str
    channel: str
    utterance_id: int
    text: str
    start_s: float
    end_s: float
    final: bool
    words: list[TranscriptWord]


class Started(_Message):
    type: Literal["started"] = "started"
    call_id: str


class Stopped(_Message):
    type: Literal["stopped"] = "stopped"
    call_id: str
    scorecard: dict[str, Any]


class ErrorMessage(_Message):
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
    type: Literal["floor_snapshot"] = "floor_snapshot"
    calls: list[CallState]


class CallUpdate(_Message):
    type: Literal["call_update"] = "call_update"
    call: CallState


class CallEnded(_Message):
    type: Literal["call_ended"] = "call_ended"
    call_id: str
    agent_id: str


class Alert(_Message):
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


class Lagged(_Message):
    """Sent to a subscriber whose queue overflowed: ``dropped`` older events were lost."""

    type: Literal["lagged"] = "lagged"
    dropped: int


WIRE_MODELS: tuple[type[BaseModel], ...] = (
    StartMessage,
    HoldMessage,
    StopMessage,
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
)


def wire_schemas() -> dict[str, dict[str, Any]]:
    """JSON Schema of every wire message, keyed by its ``type``."""
    out = {}
    for model in WIRE_MODELS:
        type_name = model.model_fields["type"].annotation.__args__[0]  # type: ignore[union-attr]
        out[type_name] = model.model_json_schema()
    return out
