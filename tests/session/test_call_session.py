"""CallSession without sockets: the shell around the pipeline, driven with a manual clock."""

from __future__ import annotations

import asyncio
import json

import numpy as np
import pytest

from assist.asr.pool import AsrResult
from assist.cli import _print_scorecard, demo_call_path
from assist.events import Transcript, TranscriptWord
from assist.hub import Hub
from assist.metrics import ServiceMetrics
from assist.pipeline import CallPipeline, PipelineOutput
from assist.replay import encode_frames, read_stereo_wav
from assist.session import ITEMS_PER_YIELD, RECORDING_IN_FLIGHT, CallSession
from assist.text.classify import LiveTextJudge, TextClassifier
from assist.vad.silero import SileroModel
from assist.vocabulary import AudioFormatError, CallSpec, Recognized, UtteranceAudio, Word
from tests.conftest import make_settings


@pytest.fixture(scope="module")
def vad_model() -> SileroModel:
    return SileroModel()


def _session(vad_model, clock, live=True, **limits):
    spec = CallSpec("s-1", "agent-1", 8000, "pcm16", ("customer", "agent"), live=live)
    hub = Hub()
    metrics = ServiceMetrics()
    session = CallSession(spec, make_settings(limits=limits), vad_model, hub, metrics, clock)
    return session, hub, metrics


def _demo_frames() -> list[bytes]:
    audio, rate = read_stereo_wav(demo_call_path())
    return encode_frames(audio, rate, "pcm16")


async def test_session_publishes_nudges_state_and_scorecard(vad_model, manual_clock):
    session, hub, metrics = _session(vad_model, manual_clock)
    agent = hub.subscribe_agent("agent-1")
    floor = hub.subscribe_floor()
    runner = asyncio.create_task(session.run())
    frames = _demo_frames()
    for frame in frames:
        session.push_audio(frame)
        manual_clock.advance(0.001)  # each frame waits 1 ms of (manual) time in the queue
    session.end_input()
    scorecard = await runner

    agent_events = [json.loads(await agent.get()) for _ in range(agent.pending())]
    kinds = [e["kind"] for e in agent_events if e["type"] == "nudge"]
    assert kinds == ["interruption", "long_hold", "dead_air"]
    assert agent_events[-1] == {"type": "call_ended", "call_id": "s-1", "agent_id": "agent-1"}
    floor_events = [json.loads(await floor.get()) for _ in range(floor.pending())]
    assert [e["type"] for e in floor_events[:2]] == ["subscribed", "floor_snapshot"]
    assert any(e["type"] == "alert" and e["kind"] == "long_hold" for e in floor_events)
    assert scorecard["metrics"]["interruptions"] == 1
    assert metrics.nudges.get(kind="dead_air", severity="info") == 1
    assert metrics.audio_seconds.get() == pytest.approx(0.02 * len(frames))
    # Lag is measured on the injected clock: all frames were queued before processing
    # started, so the first waited len(frames) ms of manual time and the last 1 ms.
    lag = metrics.processing_lag
    assert lag.count() == len(frames)
    assert lag.get() == pytest.approx(sum(0.001 * k for k in range(1, len(frames) + 1)), rel=1e-6)
    assert hub.live_calls == {}


async def test_hold_events_are_applied_in_order(vad_model, manual_clock):
    session, _hub, _ = _session(vad_model, manual_clock)
    runner = asyncio.create_task(session.run())
    silence = bytes(320 * 2)
    for _ in range(50):  # 1 s
        session.push_audio(silence)
    session.push_hold(True)
    for _ in range(50 * 50):  # 50 s on hold
        session.push_audio(silence)
    session.push_hold(False)
    session.end_input()
    scorecard = await runner
    assert scorecard["metrics"]["holds"] == 1
    assert scorecard["metrics"]["longest_hold_s"] == pytest.approx(50.0, abs=0.04)
    assert scorecard["metrics"]["long_hold_reminders"] == 1
    assert scorecard["metrics"]["dead_air_moments"] == 0  # silence before/after is < 8 s


async def test_partial_sample_is_refused(vad_model, manual_clock):
    session, _, _ = _session(vad_model, manual_clock)
    with pytest.raises(AudioFormatError, match="not a whole number"):
        session.push_audio(b"\x00\x01\x02")


async def test_backlog_beyond_ingest_limit_becomes_counted_gap(vad_model, manual_clock, capsys):
    session, _, metrics = _session(vad_model, manual_clock, ingest_queue_s=1.0)
    for frame in _demo_frames()[:500]:  # 10 s queued before the task runs
        session.push_audio(frame)
    assert metrics.audio_dropped_seconds.get() == pytest.approx(9.0, abs=0.021)
    session.end_input()
    scorecard = await session.run()
    assert scorecard["metrics"]["duration_s"] == pytest.approx(10.0, abs=0.04)
    assert scorecard["metrics"]["audio_lost_s"] == pytest.approx(9.0, abs=0.021)
    assert metrics.audio_seconds.get() == pytest.approx(1.0, abs=0.021)
    _print_scorecard(scorecard)  # what `assist replay` prints: the loss is said
    assert "audio lost: 9.0s never reached the analysis" in capsys.readouterr().out


async def test_a_recording_waits_for_room_instead_of_losing_audio(vad_model, manual_clock):
    """A recording (``live`` False) is never shed: past the backlog its reader waits in
    ``room()`` until the call's task has worked the queue down, and a live call's limit
    of 1 s would have shed 9 of these 10 s."""
    session, _, metrics = _session(vad_model, manual_clock, live=False, ingest_queue_s=1.0)
    frames = _demo_frames()[:500]
    for frame in frames:
        session.push_audio(frame)
    assert metrics.audio_dropped_seconds.get() == 0
    waiting = asyncio.create_task(session.room())
    await asyncio.sleep(0)
    assert not waiting.done()  # 10 s queued, 1 s allowed, nothing has run the queue
    runner = asyncio.create_task(session.run())
    await waiting  # returns once the task has worked the backlog down to 1 s
    assert not runner.done()
    assert session._queue.queued_samples <= 8000
    session.end_input()
    scorecard = await runner
    assert scorecard["metrics"]["duration_s"] == pytest.approx(10.0, abs=0.04)
    assert scorecard["metrics"]["audio_lost_s"] == 0
    assert metrics.audio_seconds.get() == pytest.approx(10.0, abs=0.021)


async def test_a_recording_reader_is_let_go_when_the_call_task_ends(vad_model, manual_clock):
    """A call's task that stops early (cancelled, failed) must not leave its reader waiting
    for room that will never come: ``room()`` returns once ``run()`` is over."""
    session, _, _ = _session(vad_model, manual_clock, live=False, ingest_queue_s=1.0)
    for frame in _demo_frames()[:500]:
        session.push_audio(frame)
    runner = asyncio.create_task(session.run())
    await asyncio.sleep(0)  # the task takes its first items, then yields to the loop
    waiting = asyncio.create_task(session.room())
    await asyncio.sleep(0)
    assert not waiting.done()
    runner.cancel()
    with pytest.raises(asyncio.CancelledError):
        await runner
    await asyncio.wait_for(waiting, 60)  # a guard against a hang, not a measurement
    # it stopped partway: a batch or two processed, the rest never will be
    assert 0 < session._queue.queued_samples <= (500 - ITEMS_PER_YIELD) * 160


async def test_a_recording_waits_while_too_many_results_are_awaited(vad_model, manual_clock):
    """Besides queued audio, a recording's reader waits while more than
    ``RECORDING_IN_FLIGHT`` transcripts and verdicts are awaited, and goes on as one
    comes back: the recognizer sets its pace."""
    session, _, _ = _session(vad_model, manual_clock, live=False)
    loop = asyncio.get_running_loop()
    answers = [loop.create_future() for _ in range(RECORDING_IN_FLIGHT + 1)]
    handled: list[int] = []
    for answer in answers:
        session._follow(answer, handled.append, "a transcript")
    waiting = asyncio.create_task(session.room())
    await asyncio.sleep(0)
    assert not waiting.done()
    answers[0].set_result(7)
    await waiting
    assert handled == [7]
    for answer in answers[1:]:
        answer.set_result(0)


def test_a_recording_makes_no_partials_and_the_same_finals(vad_model) -> None:
    """Nobody watches a recording's text grow and no cue reads partials: its utterances are
    the finals a live line cuts, without the partials in between."""
    cut = {}
    for live in (True, False):
        spec = CallSpec("s-1", "agent-1", 8000, "pcm16", ("customer", "agent"), live=live)
        pipeline = CallPipeline(make_settings(), vad_model, spec, asr=True)
        utterances = [u for frame in _demo_frames() for u in pipeline.feed_audio(frame).utterances]
        utterances += pipeline.finish().utterances
        cut[live] = [(u.channel, u.utterance_id, u.start_s, u.end_s, u.final) for u in utterances]
    finals = [u for u in cut[True] if u[-1]]
    assert len(finals) < len(cut[True])  # the demo's long turns are previewed live
    assert cut[False] == finals


class _ScriptedRecognizer:
    """Stands in for the ASR pool where a test decides when each utterance comes back."""

    def __init__(self) -> None:
        self.asked: dict[tuple[str, int], asyncio.Future[AsrResult]] = {}

    def submit(
        self, call_id: str, utterance: UtteranceAudio, live: bool = True
    ) -> asyncio.Future[AsrResult]:
        future = asyncio.get_running_loop().create_future()
        self.asked[(utterance.channel, utterance.utterance_id)] = future
        return future

    def answer(self, channel: str, utterance_id: int, text: str) -> None:
        words = text.split()
        said = [Word(f" {w}", 0.3 * i, 0.3 * (i + 1), 0.9) for i, w in enumerate(words)]
        self.asked[(channel, utterance_id)].set_result(AsrResult("ok", Recognized(text, said)))


async def _answered_out_of_order(
    vad_model, clock, cut: list[tuple[str, int, float, float]], said: dict[int, str]
) -> tuple[CallSession, list[dict]]:
    """A recording's call whose finals ``cut`` (channel, utterance id, start, end in media
    s) are sent to a scripted recognizer in that order and answered in reverse, each
    with ``said[utterance id]`` and all that follows from it (text verdicts) settled
    before the next; returns the session and the events its agent got."""
    spec = CallSpec("s-1", "agent-1", 8000, "pcm16", ("customer", "agent"), live=False)
    recognizer = _ScriptedRecognizer()
    judge = LiveTextJudge(TextClassifier())
    hub = Hub()
    agent = hub.subscribe_agent("agent-1")
    session = CallSession(
        spec,
        make_settings(),
        vad_model,
        hub,
        ServiceMetrics(),
        clock,
        asr_pool=recognizer,  # type: ignore[arg-type]
        text_judge=judge,
    )
    for channel, utterance_id, start_s, end_s in cut:
        utterance = UtteranceAudio(
            channel, utterance_id, start_s, end_s, np.zeros(0, np.float32), True, end_s - start_s
        )
        session._publish(PipelineOutput(utterances=[utterance]))
    try:
        for channel, utterance_id, _, _ in reversed(cut):  # the later ones come back first
            recognizer.answer(channel, utterance_id, said[utterance_id])
            unanswered = {f for f in recognizer.asked.values() if not f.done()}
            while settling := session._outstanding - unanswered:
                await asyncio.gather(*settling)
    finally:
        judge.close()
    return session, [json.loads(await agent.get()) for _ in range(agent.pending())]


async def test_a_channels_finals_are_judged_in_the_order_they_were_cut(
    vad_model, manual_clock
) -> None:
    """Two recognizer workers may answer a channel's finals out of order (an unpaced
    recording always can): the text models still judge them in cutting order, so the
    frustration cue goes to the first complaint and quotes it."""
    said = {
        1: "This is ridiculous, you charged me twice and nobody fixed it.",
        2: "I am so fed up with this company.",
    }
    cut = [("customer", 1, 1.0, 5.0), ("customer", 2, 6.0, 8.0)]
    session, events = await _answered_out_of_order(vad_model, manual_clock, cut, said)
    frustrated = [f for f in session.pipeline.findings if f.kind == "customer_frustration"]
    assert [f.details["utterance_id"] for f in frustrated] == [1, 2]
    assert frustrated[0].details["quote"] in said[1]
    nudges = [e for e in events if e["type"] == "nudge" and e["kind"] == "customer_frustration"]
    assert [n["media_time_s"] for n in nudges] == [5.0]  # the second is within the cooldown


@pytest.mark.parametrize(
    ("agent_said", "customer_said", "moments"),
    [
        (  # an apology: the complaint after it counts as acknowledged
            "I am so sorry about that, I completely understand how frustrating this is.",
            "This is ridiculous, you charged me twice and nobody fixed it.",
            [("empathy", False), ("customer_frustration", True)],
        ),
        (  # an offer of more help: the closing answer is courtesy (alone it scores 0.59)
            "Is there anything else I can help you with today?",
            "No. That is all.",
            [],
        ),
    ],
)
async def test_finals_are_judged_in_cutting_order_across_the_channels(
    vad_model, manual_clock, agent_said: str, customer_said: str, moments: list
) -> None:
    """The customer's answer comes back before the agent's turn cut just before it: it is
    still judged after it and with it as context, as it would have been live, so no
    frustration nudge. Judged as the recognizer answered, both were nudged."""
    said = {1: agent_said, 2: customer_said}
    cut = [("agent", 1, 1.0, 4.0), ("customer", 2, 5.0, 8.0)]
    session, events = await _answered_out_of_order(vad_model, manual_clock, cut, said)
    assert [t.channel for t in session.pipeline.transcripts] == ["customer", "agent"]
    noted = [(m.kind, m.acknowledged) for m in session.pipeline._frustration.moments]
    assert noted == moments
    assert not [f for f in session.pipeline.findings if f.kind == "customer_frustration"]
    assert not [e for e in events if e["type"] == "nudge"]


async def test_a_final_whose_handling_fails_holds_back_no_later_final(
    vad_model, manual_clock, monkeypatch
) -> None:
    """Handling the agent's final raises (a fault of ours, logged): the customer's final
    cut after it is still judged, and its complaint nudged."""
    on_transcript = CallPipeline.on_transcript

    def fails_for_the_agent(pipeline, utterance, recognized):
        if utterance.channel == "agent":
            raise RuntimeError("a fault while handling a transcript")
        return on_transcript(pipeline, utterance, recognized)

    monkeypatch.setattr(CallPipeline, "on_transcript", fails_for_the_agent)
    said = {1: "Let me check that for you.", 2: "This is ridiculous, I am so fed up."}
    cut = [("agent", 1, 1.0, 4.0), ("customer", 2, 5.0, 8.0)]
    session, events = await _answered_out_of_order(vad_model, manual_clock, cut, said)
    assert [t.channel for t in session.pipeline.transcripts] == ["customer"]
    nudges = [e for e in events if e["type"] == "nudge"]
    assert [n["kind"] for n in nudges] == ["customer_frustration"]


def _final(words: list[tuple[str, float]], final: bool = True) -> Transcript:
    return Transcript(
        call_id="s-1",
        channel="agent",
        utterance_id=3,
        text="".join(w for w, _ in words).strip(),
        start_s=1.0,
        end_s=2.0,
        final=final,
        words=[TranscriptWord(word=w, start_s=1.0, end_s=2.0, probability=p) for w, p in words],
    )


@pytest.mark.parametrize(
    ("words", "final", "text_models", "judged"),
    [
        ([(" Okay,", 0.9), (" have", 0.8), (" you", 0.7)], True, True, True),
        ([(" Oh,", 0.3), (" ding.", 0.2)], True, True, False),  # misheard noise
        ([(" Calm", 0.6), (" down.", 0.4)], True, True, True),  # mean 0.5 is enough
        ([(" Okay,", 0.9)], False, True, False),  # partials are never judged
        ([], True, True, False),
        ([(" Okay,", 0.9)], True, False, False),  # text models off for the call
    ],
)
def test_only_clearly_heard_finals_are_judged(
    vad_model, words, final: bool, text_models: bool, judged: bool
) -> None:
    spec = CallSpec("s-1", "agent-1", 8000, "pcm16", ("customer", "agent"))
    pipeline = CallPipeline(make_settings(), vad_model, spec, asr=True, text=text_models)
    assert pipeline.judgeable(_final(words, final)) is judged
