"""The recognizer's threads run below the event loop's priority (assist.asr.priority)."""

from __future__ import annotations

import sys
import threading

import pytest

from assist.asr.priority import run_lowered, thread_nice

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread nice")


async def test_the_started_thread_and_its_children_run_lowered_and_the_loop_does_not():
    before = thread_nice()
    assert before is not None

    def start_workers() -> tuple[int | None, int | None]:
        seen: list[int | None] = []
        child = threading.Thread(target=lambda: seen.append(thread_nice()))
        child.start()
        child.join()
        return thread_nice(), seen[0]

    own, child = await run_lowered(start_workers, 3)
    assert own == child == min(19, before + 3)
    assert thread_nice() == before  # the event loop's thread keeps its priority


async def test_an_error_reaches_the_caller():
    def fail() -> None:
        raise ValueError("no model")

    with pytest.raises(ValueError, match="no model"):
        await run_lowered(fail, 1)


async def test_zero_steps_change_nothing():
    before = thread_nice()
    assert await run_lowered(thread_nice, 0) == before
