"""IngestQueue: ordered, bounded by queued audio samples, drops oldest audio into gaps."""

from __future__ import annotations

import pytest

from assist.ingest import Audio, Gap, Hold, IngestQueue, Item


def audio(samples: int, tag: int = 0) -> Audio:
    return Audio(payload=bytes([tag]) * 2, samples=samples, arrived=float(tag))


def drain(q: IngestQueue) -> list[Item]:
    out = []
    while (item := q.pop()) is not None:
        out.append(item)
    return out


def test_empty_queue() -> None:
    q = IngestQueue(100)
    assert len(q) == 0
    assert q.pop() is None
    assert (q.queued_samples, q.dropped_samples) == (0, 0)


def test_keeps_order_under_the_limit() -> None:
    q = IngestQueue(1000)
    items: list[Item] = [audio(100, 1), Hold(True), audio(100, 2), Hold(False), audio(50, 3)]
    for item in items:
        q.push(item)
    assert len(q) == 5
    assert q.queued_samples == 250
    assert drain(q) == items
    assert q.queued_samples == 0
    assert q.dropped_samples == 0


def test_queued_samples_bookkeeping_on_pop() -> None:
    q = IngestQueue(1000)
    q.push(audio(100, 1))
    q.push(Hold(True))
    q.push(audio(30, 2))
    assert q.queued_samples == 130
    assert q.pop() == audio(100, 1)
    assert q.queued_samples == 30
    assert q.pop() == Hold(True)
    assert q.queued_samples == 30  # control items carry no samples
    assert q.pop() == audio(30, 2)
    assert q.queued_samples == 0


# Each case: max_samples, pushes (int = audio of that many samples, "on"/"off" = Hold),
# expected items after the pushes (int = audio, ("gap", n) = Gap, "on"/"off" = Hold),
# expected dropped samples.
@pytest.mark.parametrize(
    ("max_samples", "pushes", "expected", "dropped"),
    [
        (100, [50, 50], [50, 50], 0),  # exactly at the limit: nothing dropped
        (100, [50, 50, 10], [("gap", 50), 50, 10], 50),
        # adjacent drops merge into one gap
        (100, [40, 40, 40, 40], [("gap", 80), 40, 40], 80),
        (100, [30, 30, 30, 30, 30, 30], [("gap", 90), 30, 30, 30], 90),
        # one push may shed several frames at once
        (100, [20, 20, 20, 90], [("gap", 60), 90], 60),
        # a frame larger than the whole queue is dropped itself
        (100, [150], [("gap", 150)], 150),
        # hold events are never dropped and keep their place; gaps on either side of
        # them stay separate
        (100, [40, "on", 40, 40], [("gap", 40), "on", 40, 40], 40),
        (100, [40, "on", 40, 40, 40], [("gap", 40), "on", ("gap", 40), 40, 40], 80),
        (
            100,
            [40, "on", 40, 40, 40, 40],
            [("gap", 40), "on", ("gap", 80), 40, 40],
            120,
        ),
        (50, ["on", "off", 60, "on"], ["on", "off", ("gap", 60), "on"], 60),
    ],
)
def test_shedding(
    max_samples: int,
    pushes: list[int | str],
    expected: list[int | str | tuple[str, int]],
    dropped: int,
) -> None:
    q = IngestQueue(max_samples)
    for k, p in enumerate(pushes):
        q.push(audio(p, k) if isinstance(p, int) else Hold(p == "on"))
    assert q.queued_samples <= max_samples
    assert q.dropped_samples == dropped
    assert q.queued_samples == sum(e for e in expected if isinstance(e, int))
    assert len(q) == len(expected)
    got = drain(q)
    shape: list[int | str | tuple[str, int]] = []
    for item in got:
        if isinstance(item, Audio):
            shape.append(item.samples)
        elif isinstance(item, Gap):
            shape.append(("gap", item.samples))
        else:
            shape.append("on" if item.on else "off")
    assert shape == expected
    # samples pushed = samples that come out as audio + samples that come out as gaps
    pushed = sum(p for p in pushes if isinstance(p, int))
    assert sum(i.samples for i in got if isinstance(i, Audio | Gap)) == pushed
    assert q.queued_samples == 0


def test_newest_audio_survives_shedding() -> None:
    q = IngestQueue(100)
    for tag in range(5):
        q.push(audio(40, tag))
    items = drain(q)
    assert items[0] == Gap(120)
    assert items[1:] == [audio(40, 3), audio(40, 4)]


def test_dropped_samples_accumulate_across_pops() -> None:
    q = IngestQueue(100)
    q.push(audio(80, 1))
    q.push(audio(80, 2))
    assert q.dropped_samples == 80
    assert q.pop() == Gap(80)
    assert q.pop() == audio(80, 2)
    q.push(audio(80, 3))
    q.push(audio(80, 4))
    assert q.dropped_samples == 160
    assert drain(q) == [Gap(80), audio(80, 4)]
