"""Holds on real lines, through the real server over real sockets: a muted agent line
while the customer talks is no hold; a digital-silence hold with a waiting customer still
is; recorded announcements inside hold music keep one hold and one timer and are never
the agent's words; the field cases F03 and F05 as extra checks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from assist.replay import ReplayResult, replay_wav
from tests.conftest import make_settings, synthesized_call
from tests.e2e.helpers import assert_nudges_match, stream_rendered, truth

pytestmark = pytest.mark.e2e

FIELD = Path(__file__).resolve().parents[2].parent / "shared" / "field"
F03 = FIELD / "F03-hold-announcements" / "input.wav"
F05 = FIELD / "F05-muted-agent-customer-talks" / "input.wav"
# Words of the recorded announcements (ours and F03's): never in an agent transcript.
ANNOUNCEMENT_WORDS = {"holding", "important", "specialists", "busy", "shortly", "line"}


def asr_settings() -> Any:
    # Streamed faster than real time: let the recognizer's queue wait instead of shedding.
    return make_settings(asr={"enabled": True, "stale_after_s": 600, "max_queue": 512})


def metrics(result: ReplayResult) -> dict[str, Any]:
    assert result.error is None
    assert result.scorecard is not None
    return result.scorecard["metrics"]


def agent_finals(result: ReplayResult) -> list[dict[str, Any]]:
    return [
        e
        for e in result.events
        if e["type"] == "transcript" and e["final"] and e["channel"] == "agent"
    ]


def said(transcript: dict[str, Any]) -> set[str]:
    return {w.strip(" .,?!").lower() for w in transcript["text"].split()}


def long_holds(result: ReplayResult) -> list[dict[str, Any]]:
    return [n for n in result.nudges if n["kind"] == "long_hold"]


# ------------------------------------------------------------------------ muted agent line


@pytest.mark.speech
async def test_muted_agent_while_the_customer_talks_is_no_hold(server):
    # a digitally silent agent line under 50 s of the customer explaining
    call = synthesized_call("muted_agent")
    result = await stream_rendered(server.ws, call, "muted-1")
    assert_nudges_match(result, truth(call))  # nothing: no long_hold, no dead air
    m = metrics(result)
    assert (m["holds"], m["hold_total_s"], m["long_hold_reminders"]) == (0, 0, 0)
    assert m["talk_s"]["customer"] > 40.0


@pytest.mark.speech
async def test_silent_line_hold_with_a_waiting_customer_is_still_a_hold(server):
    call = synthesized_call("silence_hold")
    result = await stream_rendered(server.ws, call, "silence-hold-1")
    assert_nudges_match(result, truth(call))  # long_hold 45 s after the line went silent
    (nudge,) = long_holds(result)
    assert nudge["evidence"]["details"]["source"] == "line_silence"
    m = metrics(result)
    assert m["holds"] == 1
    assert m["hold_total_s"] == pytest.approx(50.0, abs=0.5)


# ------------------------------------------------------------------------ announcements


@pytest.mark.speech
@pytest.mark.asr
async def test_announcements_inside_hold_music_are_one_hold_and_not_the_agent(server_factory):
    running = await server_factory(asr_settings())
    call = synthesized_call("hold_announcements")
    result = await stream_rendered(running.ws, call, "announce-1", agent_id="agent-announce")
    # one hold, one timer: the reminder 45 s after the music started, on time although the
    # second announcement is playing then; nothing else (no dead air, no interruption)
    assert_nudges_match(result, truth(call))
    (nudge,) = long_holds(result)
    assert nudge["evidence"]["span_start_s"] == pytest.approx(4.5, abs=0.3)
    m = metrics(result)
    assert m["holds"] == 1
    assert m["hold_total_s"] == pytest.approx(70.0, abs=1.5)  # the track fades out at 73.4 s
    assert m["overlap_s"] == 0.0
    # the agent's talk is their two lines (3.6 s + 3.3 s), not the announcements' 10.6 s
    agent_lines = sum(u.end_s - u.start_s for u in call.utterances if u.who == "agent")
    assert m["talk_s"]["agent"] == pytest.approx(agent_lines, abs=1.0)
    # no agent transcript of an announcement; the agent's return is transcribed
    finals = agent_finals(result)
    for announcement in call.announcements:
        assert not [
            t
            for t in finals
            if t["start_s"] < announcement.end_s and t["end_s"] > announcement.start_s
        ]
    assert not any(said(t) & ANNOUNCEMENT_WORDS for t in finals)
    (back,) = [t for t in finals if t["start_s"] > 70.0]
    assert back["start_s"] == pytest.approx(75.3, abs=0.5)
    assert said(back) & {"thanks", "waiting", "refund", "morning"}


# ------------------------------------------------------------------------ field cases


def field_case(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"field recordings not found: {path} (clone the shared folder beside the repo)")
    return path


async def test_field_f05_muted_agent_is_no_hold(server):
    result = await replay_wav(field_case(F05), server.ws, "a1", "field-F05", speed=0.0)
    assert long_holds(result) == []
    m = metrics(result)
    assert (m["holds"], m["hold_total_s"], m["long_hold_reminders"]) == (0, 0, 0)


@pytest.mark.asr
async def test_field_f03_hold_announcements(server_factory):
    running = await server_factory(asr_settings())
    result = await replay_wav(field_case(F03), running.ws, "a1", "field-F03", speed=0.0)
    (nudge,) = long_holds(result)
    assert nudge["severity"] == "warning"
    assert nudge["media_time_s"] == pytest.approx(49.0, abs=0.6)
    m = metrics(result)
    assert m["holds"] == 1
    assert m["hold_total_s"] == pytest.approx(56.0, abs=0.6)  # ~4 s to 60 s
    assert m["talk_s"]["agent"] < 7.0  # 3.6 s before the hold, 2.4 s after it
    finals = agent_finals(result)
    assert not [t for t in finals if 10.0 < t["start_s"] < 50.0]  # the announcements
    assert [t["start_s"] for t in finals if t["start_s"] > 55.0] == [pytest.approx(60.6, abs=0.5)]
