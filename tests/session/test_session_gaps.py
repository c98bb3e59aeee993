"""CallSession and gaps: a claim past ``limits.max_gap_s`` is refused before anything is
queued; a long gap costs one checkpoint, not one per ``checkpoint_every_s`` it spans."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from assist.hub import Hub
from assist.ingest import GapTooLong
from assist.metrics import ServiceMetrics
from assist.session import CallSession
from assist.store import MemoryStore
from assist.store.threaded import ThreadedStore
from assist.vocabulary import CallSpec
from tests.conftest import make_settings
from tests.unit.test_gaps import CountingScorer

RATE = 8000


class CountingStore(MemoryStore):
    def __init__(self) -> None:
        super().__init__(10)
        self.checkpoints: list[float] = []

    def checkpoint(
        self, call_id: str, scorecard: dict[str, Any], state: dict[str, Any] | None = None
    ) -> None:
        self.checkpoints.append(scorecard["metrics"]["duration_s"])
        super().checkpoint(call_id, scorecard, state)


def session(manual_clock, store=None, **limits) -> CallSession:
    spec = CallSpec("sg-1", "agent-1", RATE, "pcm16", ("customer", "agent"))
    settings = make_settings(limits=limits)
    return CallSession(
        spec, settings, CountingScorer(), Hub(), ServiceMetrics(), manual_clock, store=store
    )


def second_of_quiet() -> bytes:
    return np.zeros(2 * RATE, dtype="<i2").tobytes()


async def test_a_gap_past_max_gap_s_is_refused_and_nothing_is_queued(manual_clock) -> None:
    call = session(manual_clock, max_gap_s=60.0)
    call.push_gap(60 * RATE)  # at the bound: fine
    with pytest.raises(GapTooLong, match="max_gap_s 60"):
        call.push_gap(60 * RATE + 1)
    call.end_input()
    scorecard = await call.run()
    assert scorecard["metrics"]["duration_s"] == pytest.approx(60.0, abs=0.05)


async def test_a_long_gap_costs_one_checkpoint(manual_clock) -> None:
    store = CountingStore()
    store.call_started("sg-1", "agent-1", "native", 0.0)
    call = session(manual_clock, store=ThreadedStore(store))
    call.push_audio(second_of_quiet())
    call.push_gap(2 * 3600 * RATE)  # spans 240 checkpoint intervals of 30 s
    for _ in range(50):
        call.push_audio(second_of_quiet()[: 2 * RATE // 50 * 2])  # 1 s in 20 ms frames
    call.end_input()
    await call.run()
    await call._store.flush()
    assert len(store.checkpoints) == 1
    assert store.checkpoints[0] == pytest.approx(7201.0, abs=0.05)
    assert store.call_state("sg-1")["media_s"] == pytest.approx(7201.0, abs=0.05)
