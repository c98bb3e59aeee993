"""The agent of a call: read from an AudioHook open message by path, or bound after the
call started: the stores, the session's kept events (bounded), the streams of the old and
the new agent, and the scorecard."""

from __future__ import annotations

import asyncio
import json

import pytest

from assist.cli import demo_call_path
from assist.events import Evidence, Nudge
from assist.hub import Hub
from assist.metrics import ServiceMetrics
from assist.protocols.audiohook import agent_from_open
from assist.replay import encode_frames, read_stereo_wav
from assist.session import CallSession
from assist.store import MemoryStore
from assist.store.sqlite import SqliteStore
from assist.vad.silero import SileroModel
from assist.vocabulary import CallSpec
from tests.conftest import make_settings


def nudge(at: float, agent_id: str) -> Nudge:
    evidence = Evidence(
        rule="r", threshold=1.0, measured=2.0, unit="s", span_start_s=at - 1, span_end_s=at,
        explanation="x",
    )  # fmt: skip
    return Nudge(
        id=f"c-1-{at}", call_id="c-1", agent_id=agent_id, kind="dead_air", severity="info",
        message="m", suggestion=None, media_time_s=at, evidence=evidence,
    )  # fmt: skip


@pytest.fixture(params=["memory", "sqlite"])
def store(request, tmp_path):
    made = MemoryStore(10) if request.param == "memory" else SqliteStore(tmp_path / "c.sqlite3")
    yield made
    made.close()


def test_the_record_its_scorecard_and_its_nudges_get_the_agent(store):
    store.call_started("c-1", "unassigned", "audiohook", 1000.0)
    store.add_nudge("c-1", nudge(3.0, "unassigned"))
    store.checkpoint("c-1", {"agent_id": "unassigned", "metrics": {}})
    assert store.set_agent("c-1", "a-7", nudges_of="unassigned")
    record = store.record("c-1")
    assert record["agent_id"] == "a-7" and record["scorecard"]["agent_id"] == "a-7"
    assert [n["agent_id"] for n in record["nudges"]] == ["a-7"]
    assert not store.set_agent("no-such-call", "a-7")


def test_a_transfer_keeps_the_nudges_of_the_agent_before(store):
    store.call_started("c-1", "a-1", "twilio", 1000.0)
    store.add_nudge("c-1", nudge(3.0, "a-1"))
    store.set_agent("c-1", "a-2")  # a transfer: the call is a-2's from here on
    store.add_nudge("c-1", nudge(9.0, "a-2"))
    store.set_agent("c-1", "a-3", nudges_of="a-2")  # a correction: a-2 was really a-3
    assert [n["agent_id"] for n in store.record("c-1")["nudges"]] == ["a-1", "a-3"]
    assert store.record("c-1")["agent_id"] == "a-3"


@pytest.fixture(scope="module")
def vad_model() -> SileroModel:
    return SileroModel()


def drain(sub) -> list[dict]:
    return [json.loads(sub._items.popitem(last=False)[1]) for _ in range(sub.pending())]


async def test_events_kept_while_unassigned_reach_the_agent_bound_later(vad_model, manual_clock):
    """The demo call raises three nudges; a session keeping at most two (the subscriber
    queue's size) hands the last two to the agent bound after the call, in order."""
    spec = CallSpec("s-1", "unassigned", 8000, "pcm16", ("customer", "agent"))
    hub = Hub()
    settings = make_settings(limits={"subscriber_queue": 2})
    session = CallSession(
        spec, settings, vad_model, hub, ServiceMetrics(), manual_clock, agent_known=False
    )
    runner = asyncio.create_task(session.run())
    audio, rate = read_stereo_wav(demo_call_path())
    for frame in encode_frames(audio, rate, "pcm16"):
        session.push_audio(frame)
    for _ in range(10_000):  # yield until processed up to here; the call is still live
        if not session._queue:
            break
        await asyncio.sleep(0)
    unassigned = hub.subscribe_agent("unassigned")
    floor = hub.subscribe_floor()
    agent = hub.subscribe_agent("a-9")
    drain(unassigned), drain(floor), drain(agent)

    assert session.bind_agent("a-9") == "unassigned"
    events = drain(agent)
    assert events[0]["type"] == "call_update" and events[0]["call"]["agent_id"] == "a-9"
    nudges = [e for e in events[1:] if e["type"] == "nudge"]
    assert [n["kind"] for n in nudges] == ["long_hold", "dead_air"]  # the interruption: out
    assert {n["agent_id"] for n in nudges} == {"a-9"} and session.unbound_dropped == 1
    assert drain(unassigned) == [{"type": "call_ended", "call_id": "s-1", "agent_id": "unassigned"}]
    assert [e["call"]["agent_id"] for e in drain(floor) if e["type"] == "call_update"] == ["a-9"]
    assert hub.live_calls["s-1"].agent_id == "a-9"

    session.end_input()
    scorecard = await runner
    assert scorecard["agent_id"] == "a-9"
    assert drain(agent)[-1] == {"type": "call_ended", "call_id": "s-1", "agent_id": "a-9"}
    assert session.bind_agent("a-9") == "a-9"  # the same agent again: nothing happens


OPEN = {
    "conversationId": "c-1",
    "participant": {"id": "p-1", "ani": "+15551234567", "dnis": "+15557654321"},
    "customConfig": {
        "agentId": "static",
        "agentsByDnis": {"+15557654321": "by-dnis"},
        "nested": {"list": ["x"], "number": 42},
    },
}


@pytest.mark.parametrize(
    ("paths", "expected"),
    [
        (["customConfig.agentsByDnis.{participant.dnis}", "customConfig.agentId"], "by-dnis"),
        (["customConfig.agentsByAni.{participant.ani}", "customConfig.agentId"], "static"),
        (["customConfig.nested.number"], "42"),
        (["customConfig.nested.list", "customConfig.nested"], None),  # not an id
        (["customConfig.agentsByDnis.{customConfig.nested}"], None),  # a key must be a value
        (["participant.nobody", "nowhere"], None),
    ],
)
def test_agent_id_paths_into_the_open_message(paths, expected):
    assert agent_from_open(OPEN, paths) == expected
