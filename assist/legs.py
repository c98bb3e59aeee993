"""A call is more than one stream: what the earlier legs of a call leave for the next one.

A stream stopped and started again on the same call id (Twilio restarts a ``<Stream>``,
AudioHook reconnects, a transfer) is a new *leg* of the same call. The store appends the
leg to the call's record and never deletes what earlier legs stored (transcripts, nudges,
feedback). Media time goes on across legs: a leg starts where the call's media time so
far ended, so every transcript, nudge and scorecard moment of the call sits on one
timeline, nudge ids and utterance ids stay unique, and a leg's span is
``[media_start_s, media_end_s)`` of that timeline.

The scorecard covers all legs because the new leg's pipeline starts from the call so far
(``CallSoFar``: conversation totals, findings, nudges sent, text moments, utterance ids,
final transcripts) and builds it with the one scorecard builder over everything: metrics
from all legs' findings and totals, skills from those metrics. (Merging finished
scorecards instead would need every metric's combination rule and a second copy of the
skill formulas; rates such as interruptions per 10 minutes and the hold aggregates can't
be summed.) The call so far travels through the store as JSON (``to_json``), saved with
each checkpoint and at the end of each leg, so a leg that starts after a restart or a crash
continues too. Pure data, no I/O.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from assist.detectors.customer_frustration import Moment
from assist.events import Transcript
from assist.vocabulary import Finding

STATE_VERSION = 1  # of the JSON ``to_json`` writes


@dataclass
class CallSoFar:
    """What a call's earlier legs leave for its next one; media seconds on the call's timeline.

    ``media_s`` is where the next leg starts (the call's media time so far); ``talk_s`` per
    role, ``overlap_s`` and ``holds`` (closed ``(start, end)`` spans) are the conversation
    totals; ``findings`` every finding (the scorecard's metrics and moments come from them);
    ``nudges_sent`` the nudges sent (the next nudge id and the per-call budget go on from
    it); ``text_moments`` the text models' moments, None when they never ran on the call;
    ``next_utterance_ids`` per channel the next final's id; ``transcripts`` the finals so far
    (not in the JSON: the store keeps them as rows); ``audio_lost_s`` the media seconds lost
    or shed so far.
    """

    media_s: float
    talk_s: dict[str, float] = field(default_factory=dict)
    overlap_s: float = 0.0
    holds: list[tuple[float, float]] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    nudges_sent: int = 0
    text_moments: list[Moment] | None = None
    next_utterance_ids: dict[str, int] = field(default_factory=dict)
    transcripts: list[Transcript] = field(default_factory=list)
    audio_lost_s: float = 0.0

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict of everything but the transcripts."""
        return {
            "version": STATE_VERSION,
            "media_s": self.media_s,
            "talk_s": dict(self.talk_s),
            "overlap_s": self.overlap_s,
            "holds": [list(span) for span in self.holds],
            "findings": [_finding_json(f) for f in self.findings],
            "nudges_sent": self.nudges_sent,
            "text_moments": None
            if self.text_moments is None
            else [dataclasses.asdict(m) for m in self.text_moments],
            "next_utterance_ids": dict(self.next_utterance_ids),
            "audio_lost_s": self.audio_lost_s,
        }

    @classmethod
    def from_json(
        cls, data: dict[str, Any], transcripts: list[Transcript] | None = None
    ) -> CallSoFar:
        """The call so far from ``to_json``'s dict and the call's stored final transcripts.
        Raises ``ValueError`` for a state version this code doesn't know."""
        if data.get("version") != STATE_VERSION:
            raise ValueError(f"call state version {data.get('version')} is not {STATE_VERSION}")
        moments = data["text_moments"]
        return cls(
            media_s=float(data["media_s"]),
            talk_s={role: float(s) for role, s in data["talk_s"].items()},
            overlap_s=float(data["overlap_s"]),
            holds=[(float(start), float(end)) for start, end in data["holds"]],
            findings=[Finding(**f) for f in data["findings"]],
            nudges_sent=int(data["nudges_sent"]),
            text_moments=None if moments is None else [Moment(**m) for m in moments],
            next_utterance_ids={ch: int(i) for ch, i in data["next_utterance_ids"].items()},
            transcripts=list(transcripts or []),
            audio_lost_s=float(data.get("audio_lost_s", 0.0)),  # absent before 2026-12-05
        )

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> CallSoFar:
        """For a stored call with no saved state (written before calls had legs): media time,
        nudge ids and utterance ids go on from what its record shows; its findings are not
        known, so the scorecard covers the legs from here on."""
        scorecard = record.get("scorecard") or {}
        transcripts = stored_transcripts(record)
        next_ids: dict[str, int] = {}
        for t in transcripts:
            next_ids[t.channel] = max(next_ids.get(t.channel, 0), t.utterance_id + 1)
        return cls(
            media_s=float(scorecard.get("metrics", {}).get("duration_s", 0.0)),
            nudges_sent=len(record.get("nudges", [])),
            next_utterance_ids=next_ids,
            transcripts=transcripts,
        )


def stored_transcripts(record: dict[str, Any]) -> list[Transcript]:
    """The final transcripts of a stored call record (as ``CallStore.record`` gives them)."""
    call_id = record["call_id"]
    return [
        Transcript.model_validate({"call_id": call_id, "final": True, **t})
        for t in record.get("transcripts", [])
    ]


def _finding_json(finding: Finding) -> dict[str, Any]:
    data = {f.name: _plain(getattr(finding, f.name)) for f in dataclasses.fields(finding)}
    data["kind"] = str(finding.kind)
    return data


def _plain(value: Any) -> Any:
    """``value`` with numpy scalars (a model's scores) as Python numbers, for JSON."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, str | bytes):
        return value.item()
    return value
