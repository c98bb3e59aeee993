"""The bounded ingest queue between a call's socket and its pipeline.

Telephony can't be slowed down, so when processing falls behind by more than the
configured seconds of audio, the oldest audio is dropped: it becomes a ``Gap`` that
still advances media time, and the loss is counted. Control events (hold on/off) are
never dropped and keep their order. (A recording, which can be slowed down, gets no
bound here: its reader waits for room instead, ``CallSession.room``.) Pure, no asyncio.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Audio:
    """One received frame: interleaved ``payload`` bytes, ``samples`` per channel, and
    ``arrived``, monotonic wall seconds (for the processing-lag metric only)."""

    payload: bytes
    samples: int  # per channel
    arrived: float  # wall clock (monotonic seconds) when received


@dataclass(frozen=True, slots=True)
class Gap:
    """Audio that never reaches the pipeline (shed under overload, or paused / discarded by
    the platform): ``samples`` per channel of media time with nothing to hear."""

    samples: int  # per channel, lost


class GapTooLong(Exception):
    """A client claimed more lost audio at once (a pause, a timestamp jump) than
    ``[limits] max_gap_s``: ``gap_s`` seconds against ``max_gap_s``. The call ends; each
    adapter answers with its protocol's error."""

    def __init__(self, gap_s: float, max_gap_s: float) -> None:
        super().__init__(f"{gap_s:.1f} s of lost audio at once exceeds max_gap_s {max_gap_s:g} s")
        self.gap_s = gap_s
        self.max_gap_s = max_gap_s


@dataclass(frozen=True, slots=True)
class Hold:
    """A CTI hold event (``on`` or off), kept in order with the audio."""

    on: bool


Item = Audio | Gap | Hold


class IngestQueue:
    """One call's FIFO of audio, gaps and hold events, holding at most ``max_samples`` of
    audio per channel; past that the oldest audio becomes gaps. ``queued_samples`` and
    ``dropped_samples`` count samples per channel."""

    def __init__(self, max_samples: int) -> None:
        self._items: deque[Item] = deque()
        self._max_samples = max_samples
        self.queued_samples = 0
        self.dropped_samples = 0

    def __len__(self) -> int:
        return len(self._items)

    def push(self, item: Item) -> None:
        """Append ``item``; audio beyond the bound turns the oldest queued audio into gaps (a gap
        right before it absorbs it), which may be this very frame. A gap right after a gap
        joins it (one O(1) step for the pipeline)."""
        items = self._items
        if isinstance(item, Gap) and items and isinstance(items[-1], Gap):
            items[-1] = Gap(items[-1].samples + item.samples)
            return
        items.append(item)
        if isinstance(item, Audio):
            self.queued_samples += item.samples
            self._shed()

    def pop(self) -> Item | None:
        """The oldest item, or None when the queue is empty."""
        if not self._items:
            return None
        item = self._items.popleft()
        if isinstance(item, Audio):
            self.queued_samples -= item.samples
        return item

    def _shed(self) -> None:
        """Turn the oldest audio into gaps until the backlog fits again."""
        items = self._items
        while self.queued_samples > self._max_samples:
            i = next(k for k, item in enumerate(items) if isinstance(item, Audio))
            lost = items[i]
            assert isinstance(lost, Audio)
            self.queued_samples -= lost.samples
            self.dropped_samples += lost.samples
            before = items[i - 1] if i > 0 else None
            if isinstance(before, Gap):
                items[i - 1] = Gap(before.samples + lost.samples)
                del items[i]
            else:
                items[i] = Gap(lost.samples)
