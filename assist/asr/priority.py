"""The recognizer's CPU priority: below the event loop that carries every call's audio.

On a saturated CPU the recognizer's threads (the pool's workers and CTranslate2's own,
started while the model loads) would otherwise get the same share as the loop, and audio
would wait behind transcription. Linux keeps a nice value per thread and a thread starts
with its creator's, so loading the model and starting the pool on a thread whose nice value
was raised puts every recognizer thread below the loop; the recognizer still gets every
cycle the loop leaves. Elsewhere (one nice value per process) nothing is changed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
import threading
from collections.abc import Callable
from typing import TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")


def thread_nice(native_id: int | None = None) -> int | None:
    """The nice value of thread ``native_id`` (default: the calling thread) on Linux, else
    None."""
    if not sys.platform.startswith("linux"):
        return None
    return os.getpriority(os.PRIO_PROCESS, native_id or threading.get_native_id())


def lower_this_thread(steps: int) -> None:
    """Raise the calling thread's nice value by ``steps`` (0-19; capped at 19), on Linux
    only; threads it starts afterwards inherit it. Never raises: a refusal is logged."""
    current = thread_nice()
    if current is None or steps <= 0:
        return
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), min(19, current + steps))
    except OSError as exc:
        log.warning("could not lower the recognizer's priority: %s", exc)


async def run_lowered(fn: Callable[[], T], steps: int, name: str = "asr-start") -> T:
    """``fn()`` on a new thread whose nice value is ``steps`` above the caller's (see
    ``lower_this_thread``), awaited from the event loop; its result or exception."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()

    def settle(result: T | None, error: BaseException | None) -> None:
        if future.done():
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)  # type: ignore[arg-type]

    def run() -> None:
        lower_this_thread(steps)
        outcome: tuple[T | None, BaseException | None]
        try:
            outcome = (fn(), None)
        except BaseException as exc:  # handed to the awaiting coroutine
            outcome = (None, exc)
        with contextlib.suppress(RuntimeError):  # the loop is gone: nobody waits
            loop.call_soon_threadsafe(settle, *outcome)

    threading.Thread(target=run, name=name, daemon=True).start()
    return await future
