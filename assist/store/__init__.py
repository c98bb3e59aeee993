"""Call records: metadata, transcripts, nudges and scorecards, behind one narrow interface.

``SqliteStore`` (``store/sqlite.py``) is the embedded default; ``MemoryStore`` keeps the
last few calls in memory (tests, demos, ``store.backend = "memory"``). A PostgreSQL store
implements the same methods. Everything handed to a store is already redacted.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator
from typing import Any, Protocol

from assist.events import Nudge, Transcript


class CallStore(Protocol):
    def call_started(
        self, call_id: str, agent_id: str, protocol: str, started_at: float
    ) -> None: ...

    def add_transcript(self, call_id: str, transcript: Transcript) -> None: ...

    def add_nudge(self, call_id: str, nudge: Nudge) -> None: ...

    def add_feedback(
        self, call_id: str, nudge_id: str, kind: str, action: str, at: float
    ) -> None: ...

    def checkpoint(self, call_id: str, scorecard: dict[str, Any]) -> None: ...

    def call_ended(self, call_id: str, scorecard: dict[str, Any], ended_at: float) -> None: ...

    def scorecard(self, call_id: str) -> dict[str, Any] | None: ...

    def record(self, call_id: str) -> dict[str, Any] | None: ...

    def export(self, since: float | None = None) -> Iterator[dict[str, Any]]:
        """Every call record (started at ``since`` or later), oldest first."""
        ...

    def prune(self, older_than: float) -> int: ...

    def close(self) -> None: ...


class MemoryStore:
    """The most recent ``capacity`` calls, in memory."""

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._calls: OrderedDict[str, dict[str, Any]] = OrderedDict()

    def call_started(self, call_id: str, agent_id: str, protocol: str, started_at: float) -> None:
        self._calls[call_id] = {
            "call_id": call_id,
            "agent_id": agent_id,
            "protocol": protocol,
            "started_at": started_at,
            "ended_at": None,
            "status": "live",
            "scorecard": None,
            "transcripts": [],
            "nudges": [],
            "feedback": [],
        }
        self._calls.move_to_end(call_id)
        while len(self._calls) > self._capacity:
            self._calls.popitem(last=False)

    def add_transcript(self, call_id: str, transcript: Transcript) -> None:
        if call_id in self._calls:
            self._calls[call_id]["transcripts"].append(transcript.model_dump())

    def add_nudge(self, call_id: str, nudge: Nudge) -> None:
        if call_id in self._calls:
            self._calls[call_id]["nudges"].append(nudge.model_dump())

    def add_feedback(self, call_id: str, nudge_id: str, kind: str, action: str, at: float) -> None:
        if call_id in self._calls:
            entry = {"nudge_id": nudge_id, "kind": kind, "action": action, "at": at}
            self._calls[call_id]["feedback"].append(entry)

    def checkpoint(self, call_id: str, scorecard: dict[str, Any]) -> None:
        if call_id in self._calls:
            self._calls[call_id]["scorecard"] = scorecard

    def call_ended(self, call_id: str, scorecard: dict[str, Any], ended_at: float) -> None:
        if call_id in self._calls:
            self._calls[call_id].update(scorecard=scorecard, ended_at=ended_at, status="ended")

    def scorecard(self, call_id: str) -> dict[str, Any] | None:
        call = self._calls.get(call_id)
        return call["scorecard"] if call else None

    def record(self, call_id: str) -> dict[str, Any] | None:
        return self._calls.get(call_id)

    def export(self, since: float | None = None) -> Iterator[dict[str, Any]]:
        records = sorted(self._calls.values(), key=lambda r: r["started_at"])
        yield from (r for r in records if since is None or r["started_at"] >= since)

    def prune(self, older_than: float) -> int:
        old = [k for k, v in self._calls.items() if v["started_at"] < older_than]
        for key in old:
            del self._calls[key]
        return len(old)

    def close(self) -> None:
        pass
