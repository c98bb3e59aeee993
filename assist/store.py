"""Where finished calls' scorecards go. ``MemoryStore`` is the embedded default (bounded);
a persistent store implements the same two methods."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, Protocol


class CallStore(Protocol):
    def save_scorecard(self, call_id: str, scorecard: dict[str, Any]) -> None: ...

    def scorecard(self, call_id: str) -> dict[str, Any] | None: ...


class MemoryStore:
    """The most recent ``capacity`` scorecards, in memory."""

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._scorecards: OrderedDict[str, dict[str, Any]] = OrderedDict()

    def save_scorecard(self, call_id: str, scorecard: dict[str, Any]) -> None:
        self._scorecards[call_id] = scorecard
        self._scorecards.move_to_end(call_id)
        while len(self._scorecards) > self._capacity:
            self._scorecards.popitem(last=False)

    def scorecard(self, call_id: str) -> dict[str, Any] | None:
        return self._scorecards.get(call_id)
