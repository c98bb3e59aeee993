"""Live transcription through the real server: real recorded phone speech in, final and
partial transcripts with word times out on the agent's stream; the pace cue from them."""

from __future__ import annotations

import threading

import pytest

from assist.asr.priority import thread_nice
from assist.asr.wer import word_error_rate
from assist.config import Settings
from assist.synth.recorded import prompt_call
from tests.conftest import make_settings, synthesized_call
from tests.e2e.helpers import http_get, http_get_json, stream_rendered

pytestmark = [pytest.mark.e2e, pytest.mark.asr]

CUSTOMER = ["conf-invalid", "vm-mailboxfull", "privacy-unident", "conf-onlyperson"]
AGENT = ["agent-alreadyon", "conf-placeintoconf", "basic-pbx-ivr-main", "vm-reachoper"]


def asr_settings():
    # Streamed faster than real time: let the queue wait instead of shedding.
    return make_settings(asr={"enabled": True, "stale_after_s": 600, "max_queue": 512})


async def test_recorded_call_transcripts_reach_the_agent(server_factory):
    running = await server_factory(asr_settings())
    call = prompt_call(CUSTOMER, AGENT)
    result = await stream_rendered(running.ws, call, "asr-1", agent_id="agent-asr", speed=0)
    transcripts = [e for e in result.events if e["type"] == "transcript"]
    # two workers: a short utterance can overtake a long one; order by media time
    finals = sorted((t for t in transcripts if t["final"]), key=lambda t: t["start_s"])
    for channel in ("customer", "agent"):
        reference = " ".join(u.text for u in call.utterances if u.who == channel)
        said = " ".join(t["text"] for t in finals if t["channel"] == channel)
        errors, words = word_error_rate(reference, said)
        assert errors / words <= 0.10, (channel, said)
    for t in finals:
        assert t["call_id"] == "asr-1" and t["words"]
        for w in t["words"]:
            assert t["start_s"] - 0.01 <= w["start_s"] <= w["end_s"] <= t["end_s"] + 0.5
    # the 25 s IVR prompt is split at 15 s into two finals
    long_prompt = next(u for u in call.utterances if "Super Awesome" in u.text)
    inside = [t for t in finals if long_prompt.start_s - 1 < t["start_s"] < long_prompt.end_s]
    assert len(inside) == 2
    _, health = await http_get_json(f"{running.http}/healthz")
    assert health["asr"]["device"] == "cpu" and health["asr"]["model"] == "tiny.en"
    # the recognizer's worker threads run 10 nice steps below the event loop's thread
    loop_nice = thread_nice()
    if loop_nice is not None:
        workers = [t for t in threading.enumerate() if t.name.startswith("asr-")]
        assert workers and {thread_nice(t.native_id) for t in workers} == {min(19, loop_nice + 10)}
    _, _, metrics = await http_get(f"{running.http}/metrics")
    assert 'assist_transcripts_total{channel="agent",final="true"}' in metrics


async def test_fast_talking_agent_gets_a_pace_nudge(server_factory, tmp_path):
    running = await server_factory(asr_settings())
    call = synthesized_call("fast_agent")
    result = await stream_rendered(running.ws, call, "pace-1", speed=0)
    kinds = [n["kind"] for n in result.nudges]
    assert kinds.count("pace") == 1
    pace = next(n for n in result.nudges if n["kind"] == "pace")
    assert pace["evidence"]["measured"] > 270 and pace["evidence"]["unit"] == "wpm"
    assert pace["evidence"]["details"]["words"] >= 25


async def test_a_natural_voice_at_its_normal_rate_gets_no_pace_nudge(server_factory):
    """The same lines in Piper's voice at its normal rate (about 250 words a minute of
    voiced time, 0.8 s between sentences): the speaking rate stays under the threshold."""
    running = await server_factory(asr_settings())
    call = synthesized_call("natural_agent")
    result = await stream_rendered(running.ws, call, "pace-2", speed=0)
    assert "pace" not in [n["kind"] for n in result.nudges]
    finals = [e for e in result.events if e["type"] == "transcript" and e["final"]]
    agent_words = sum(len(e["text"].split()) for e in finals if e["channel"] == "agent")
    assert agent_words >= 60  # the agent's lines were heard: there was a rate to judge


async def test_a_natural_voice_in_short_turns_gets_no_pace_nudge(server_factory):
    """Piper at its normal rate in one- and two-sentence turns (the customer-echo call's
    lines, without the echo): with no pause inside them, the rate over a turn of a few
    seconds is Piper's articulation rate (273 wpm over two sentences 6.6 s long, nudged
    before ``min_turn_s``). Less than 10 s of turn time is not judged."""
    running = await server_factory(asr_settings())
    call = synthesized_call("customer_echo_interruption", tts="piper", echo=None)
    result = await stream_rendered(running.ws, call, "pace-short", speed=0)
    assert "pace" not in [n["kind"] for n in result.nudges]
    finals = [e for e in result.events if e["type"] == "transcript" and e["final"]]
    agent_words = sum(len(e["text"].split()) for e in finals if e["channel"] == "agent")
    assert agent_words >= 40  # the agent's lines were heard


async def test_recorded_human_speech_reads_as_a_speaking_rate_with_its_pauses(server_factory):
    """Real recorded speech (Asterisk prompts, one human voice) as one agent turn, prompts
    0.6 s apart: the rate counts those pauses, so it reads like the ~150 words a minute
    people mean, well under the default threshold. A threshold of 100 makes the cue show
    the rate it measured."""
    settings = asr_settings()
    settings.cues.pace.max_words_per_minute = 100.0
    running = await server_factory(settings)
    prompts = ["conf-placeintoconf", "agent-alreadyon", "vm-mailboxfull", "conf-onlyperson",
               "privacy-unident"]  # each over min_utterance_s  # fmt: skip
    call = prompt_call([], prompts, pause_s=0.6)
    result = await stream_rendered(running.ws, call, "pace-3", speed=0)
    (pace,) = [n for n in result.nudges if n["kind"] == "pace"]
    evidence = pace["evidence"]
    # the turn runs from the first prompt to the last one in the window, the 0.6 s pauses
    # between them included (voiced time alone would cover about 80 % of that span)
    span_s = evidence["span_end_s"] - evidence["span_start_s"]
    assert evidence["details"]["turn_s"] > 0.9 * span_s
    assert 110 < evidence["measured"] < 200 < Settings().cues.pace.max_words_per_minute


async def test_partials_show_text_while_the_customer_is_still_talking(server_factory):
    running = await server_factory(make_settings(asr={"enabled": True}))
    call = prompt_call(["basic-pbx-ivr-main"], [])
    speed = 2.0  # paced: partials must race the speaker, as on a live line
    result = await stream_rendered(running.ws, call, "partials-1", speed=speed)
    (spoken,) = call.utterances
    seen = [
        (event, arrival)
        for event, arrival in zip(result.events, result.arrivals, strict=True)
        if event["type"] == "transcript"
    ]
    early = [e for e, arrival in seen if not e["final"] and arrival < spoken.end_s / speed]
    assert len(early) >= 2, [(e["final"], e["end_s"]) for e, _ in seen]
    assert all(e["channel"] == "customer" and e["text"] for e in early)
    finals = [e for e, _ in seen if e["final"]]
    assert len(finals) == 2  # split at max_utterance_s
    assert finals[0]["utterance_id"] == early[0]["utterance_id"]
