"""The agent's echo on the customer line, through the real server over real sockets (real
Silero VAD; real Whisper and text models where marked): synthesized calls whose script
mixes the agent's line onto the customer's (``[echo]``), and field case F10.

The echo must not be customer speech (no overlap, no customer turn hiding a monologue,
no customer transcript of the agent's words, no text cue on them), while the customer's
real speech over the agent still is (the interruption fires).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from assist.asr.wer import word_error_rate
from assist.replay import ReplayResult, replay_wav
from assist.synth.render import RenderedCall, render
from tests.conftest import make_settings, synthesized_call
from tests.e2e.helpers import assert_nudges_match, stream_rendered, truth

pytestmark = [pytest.mark.e2e, pytest.mark.speech]

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
F10 = SHARED / "field" / "F10-echo-agent-on-customer-line"
# Before the echo path is known (about a second of the agent's first words) the echo is
# still heard as the customer: what that may add to the customer's talk time and overlap.
ACQUISITION_S = 1.5


def customer_lines(call: RenderedCall) -> list[tuple[float, float]]:
    return [(u.start_s, u.end_s) for u in call.utterances if u.who == "customer"]


def finals_of(result: ReplayResult, channel: str = "customer") -> list[dict[str, Any]]:
    return [
        e
        for e in result.events
        if e["type"] == "transcript" and e["channel"] == channel and e["final"]
    ]


TEXT_CUES = {"negative_phrasing": "agent", "customer_frustration": "customer"}  # -> channel


def final_ending_at(result: ReplayResult, channel: str, at_s: float) -> dict[str, Any] | None:
    """The final transcript a text cue's nudge at ``at_s`` judged (it fires at its end)."""
    return min(finals_of(result, channel), key=lambda e: abs(e["end_s"] - at_s), default=None)


def comparable_nudges(result: ReplayResult, other: ReplayResult) -> list[tuple[str, float]]:
    """(kind, media time) of ``result``'s nudges, leaving out the text cues on an utterance
    Whisper heard differently in ``other``: the two calls differ in their audio (the echo
    and what is left of it), and on another CPU Whisper may hear the same espeak-ng line
    two ways ("That is a lot of information." as "Nothing a lot of information." once);
    what the echo must not change is everything else."""
    kept = []
    for n in result.nudges:
        if n["kind"] in TEXT_CUES:
            channel = TEXT_CUES[n["kind"]]
            mine = final_ending_at(result, channel, n["media_time_s"])
            theirs = final_ending_at(other, channel, n["media_time_s"])
            if mine is None or theirs is None or mine["text"] != theirs["text"]:
                continue
        kept.append((n["kind"], n["media_time_s"]))
    return sorted(kept)


def assert_echo_metrics(metrics: dict[str, Any], delay_ms: float, level_db: float, tol_db: float):
    echo = metrics["echo"]
    assert echo["detected"], echo
    assert abs(echo["delay_ms"] - delay_ms) <= 3, echo
    assert abs(echo["return_loss_db"] + level_db) <= tol_db, echo
    assert echo["echo_s"] > 5.0, echo


@pytest.mark.asr
async def test_agent_monologue_with_echo_is_a_monologue_and_no_customer_speech(server_factory):
    """An agent monologue echoed on the customer line (-22 dB, 180 ms, dispersive path),
    mu-law on the wire, transcribed and judged by the text models: exactly the nudges of the
    same call without the echo (the monologue at its moment; text cues wherever Whisper
    heard the same words in both); customer talk time and overlap as without the echo
    (within the acquisition); every customer transcript is a line the customer really
    said; the echo path in the scorecard."""
    # Every final transcribed: whether a backchannel ("okay") is skipped depends on what
    # waits in the recognizer's queue at that moment, and the two calls are compared.
    settings = make_settings(
        asr={"enabled": True, "stale_after_s": 600, "max_queue": 512, "backchannel_max_s": 0}
    )
    running = await server_factory(settings)
    call = synthesized_call("echo_monologue")
    assert call.script.echo is not None
    clean = render(call.script.model_copy(update={"echo": None}))
    result = await stream_rendered(running.ws, call, "echo-mono-1", encoding="mulaw", speed=0)
    plain = await stream_rendered(running.ws, clean, "echo-mono-0", encoding="mulaw", speed=0)
    assert result.error is None and plain.error is None, (result.error, plain.error)
    assert "monologue" in [n["kind"] for n in plain.nudges]
    got = comparable_nudges(result, plain)
    want = comparable_nudges(plain, result)
    assert [k for k, _ in got] == [k for k, _ in want], (got, want)
    assert all(abs(a - b) <= 0.3 for (_, a), (_, b) in zip(got, want, strict=True)), (got, want)
    assert_nudges_match(
        ReplayResult("", None, [n for n in result.nudges if n["kind"] == "monologue"]),
        truth(call),
    )
    assert result.scorecard is not None and plain.scorecard is not None
    metrics, before = result.scorecard["metrics"], plain.scorecard["metrics"]
    assert metrics["talk_s"]["customer"] <= before["talk_s"]["customer"] + ACQUISITION_S
    assert metrics["overlap_s"] <= before["overlap_s"] + ACQUISITION_S
    assert metrics["interruptions"] == 0 and metrics["monologues"] == 1
    # A dispersive path colours the echo: its speech-weighted loss is not the mix level.
    assert_echo_metrics(metrics, 180, -22, tol_db=5.0)
    finals = finals_of(result)
    assert len(finals) == len(finals_of(plain))  # the customer's own lines, no more
    for final in finals:
        assert any(
            final["start_s"] < end + 0.5 and start - 0.5 < final["end_s"]
            for start, end in customer_lines(call)
        ), f"customer transcript of the agent's echo: {final['text']!r}"


async def test_customer_talking_over_the_agent_during_echo_is_still_an_interruption(server):
    """The echo is on the line all call long (-18 dB, 90 ms); the agent talks over the
    customer: the interruption fires at its moment, and only it; the customer barging in on
    the agent later is speech too (an overlap, not an interruption)."""
    call = synthesized_call("echo_interruption")
    result = await stream_rendered(server.ws, call, "echo-int-1")
    assert result.error is None, result.error
    assert_nudges_match(result, truth(call))
    assert [n["kind"] for n in result.nudges] == ["interruption"]
    assert result.scorecard is not None
    metrics = result.scorecard["metrics"]
    spoken = sum(end - start for start, end in customer_lines(call))
    assert spoken - 1.0 <= metrics["talk_s"]["customer"] <= spoken + ACQUISITION_S
    assert metrics["overlap_s"] >= 2.0  # the interruption and the barge-in are real overlaps
    assert_echo_metrics(metrics, 90, -18, tol_db=1.5)


@pytest.mark.parametrize("name", ["echo_monologue", "echo_interruption"])
async def test_a_faint_echo_under_a_hissing_line_is_no_customer_speech(server, name):
    """The echo 30 dB below the agent, under line noise at -45 dBFS: too faint for the echo
    path to be found, yet Silero hears speech in it. It never stands out of the noise, so it
    is nobody's speech: the call's nudges are its truth (the monologue is no interruption
    and no customer turn; the customer's real interruption still fires), and the customer's
    talk time is what the customer said."""
    call = synthesized_call(name, noise_dbfs=-45.0, echo={"delay_ms": 120.0, "level_db": -30.0})
    result = await stream_rendered(server.ws, call, f"faint-echo-{name}")
    assert result.error is None, result.error
    assert_nudges_match(result, truth(call))
    assert result.scorecard is not None
    spoken = sum(end - start for start, end in customer_lines(call))
    assert spoken - 1.5 <= result.scorecard["metrics"]["talk_s"]["customer"] <= spoken + 1.0


@pytest.mark.asr
async def test_customer_echo_on_the_agent_line_is_not_the_agent(server_factory):
    """The customer's voice leaks into the agent's microphone all call long (-16 dB, 60 ms),
    transcribed (text cues off: this is about who speaks): the agent's interruption fires
    at its moment, and only it (the echo is no agent talking over the customer); every
    agent transcript is an agent line (none of the customer's words); the path in the
    scorecard's ``echo_on_agent``. Without that suppressor (``customer_on_agent = false``)
    the echo is the agent: other nudges."""
    settings = make_settings(
        asr={"enabled": True, "stale_after_s": 600, "max_queue": 512}, text={"enabled": False}
    )
    running = await server_factory(settings)
    call = synthesized_call("customer_echo_interruption")
    assert call.script.echo is not None and call.script.echo.on == "agent"
    result = await stream_rendered(running.ws, call, "echo-cust-1", speed=0)
    assert result.error is None, result.error
    assert_nudges_match(result, truth(call))
    assert [n["kind"] for n in result.nudges] == ["interruption"]
    agent_lines = [u.text for u in call.utterances if u.who == "agent"]
    customer_lines_said = [u.text for u in call.utterances if u.who == "customer"]
    finals = [
        e
        for e in result.events
        if e["type"] == "transcript" and e["channel"] == "agent" and e["final"]
    ]
    assert finals
    for final in finals:  # each is nearer an agent line than any customer line
        agent_wer = min(_wer(line, final["text"]) for line in agent_lines)
        customer_wer = min(_wer(line, final["text"]) for line in customer_lines_said)
        assert agent_wer < customer_wer, final["text"]
    assert result.scorecard is not None
    metrics = result.scorecard["metrics"]
    spoken = sum(u.end_s - u.start_s for u in call.utterances if u.who == "agent")
    assert spoken - 1.0 <= metrics["talk_s"]["agent"] <= spoken + ACQUISITION_S
    on_agent = metrics["echo_on_agent"]
    assert on_agent["detected"] and abs(on_agent["delay_ms"] - 60) <= 3, on_agent
    assert abs(on_agent["return_loss_db"] - 16) <= 1.5, on_agent

    off = await server_factory(make_settings(echo={"customer_on_agent": False}))
    plain = await stream_rendered(off.ws, call, "echo-cust-0", speed=0)
    assert plain.scorecard is not None and "echo_on_agent" not in plain.scorecard["metrics"]
    assert plain.scorecard["metrics"]["talk_s"]["agent"] > spoken + 5
    assert [n["kind"] for n in plain.nudges] != ["interruption"] or abs(
        plain.nudges[0]["media_time_s"] - result.nudges[0]["media_time_s"]
    ) > 0.5, plain.nudges


def _wer(reference: str, hypothesis: str) -> float:
    errors, words = word_error_rate(reference, hypothesis)
    return errors / max(words, 1)


async def test_echo_can_be_switched_off(server_factory):
    """``[echo] enabled = false``: the echo counts as the customer again (what every call
    did before): a second speaker all along, and no echo metrics."""
    running = await server_factory(make_settings(echo={"enabled": False}))
    call = synthesized_call("echo_interruption")
    result = await stream_rendered(running.ws, call, "echo-off-1")
    assert result.scorecard is not None
    metrics = result.scorecard["metrics"]
    assert "echo" not in metrics
    spoken = sum(end - start for start, end in customer_lines(call))
    assert metrics["talk_s"]["customer"] > spoken + 10


@pytest.mark.asr
async def test_field_f10_echo_of_the_agent_on_the_customer_line(server_factory):
    """Field case F10 (a ~62 s agent monologue with its echo on the customer line at -24 dB,
    +120 ms), transcribed and judged by the text models: the monologue nudge at ~60.5 s and
    nothing else; no customer transcript; the echo path measured."""
    if not (F10 / "input.wav").exists():
        pytest.skip(f"field recordings not found: {F10} (clone the shared folder beside the repo)")
    settings = make_settings(asr={"enabled": True, "stale_after_s": 600, "max_queue": 512})
    running = await server_factory(settings)
    result = await replay_wav(F10 / "input.wav", running.ws, "a1", "field-F10", speed=0)
    assert result.error is None, result.error
    assert [n["kind"] for n in result.nudges] == ["monologue"]
    assert abs(result.nudges[0]["media_time_s"] - 60.5) <= 0.3
    assert finals_of(result) == []
    assert result.scorecard is not None
    metrics = result.scorecard["metrics"]
    assert metrics["talk_s"]["customer"] <= ACQUISITION_S
    assert metrics["overlap_s"] <= ACQUISITION_S
    assert metrics["customer_frustration_moments"] == 0
    assert_echo_metrics(metrics, 120, -24, tol_db=1.0)
