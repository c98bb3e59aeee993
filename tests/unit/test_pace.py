"""The pace detector over final agent utterances."""

from __future__ import annotations

import pytest

from assist.config import PaceConfig
from assist.detectors.pace import PAUSE_KEEP_S, PaceDetector, speaking_rate


@pytest.mark.parametrize(
    ("utterances", "fires"),
    [
        ([(25, 5.0)] * 2, True),  # 50 words in 10 s = 300 wpm
        ([(20, 4.0)] * 2, False),  # 300 wpm, but over 8 s of turn time (min_turn_s 10)
        ([(10, 4.0)] * 3, False),  # 150 wpm
        ([(23, 5.0)] * 2, True),  # 276 wpm, just over 270
        ([(22, 5.0)] * 2, False),  # 264 wpm
        ([(20, 4.0)], False),  # fast but under min_words
        ([(3, 0.5)] * 20, False),  # "Thank you." many times: too short to count
    ],
)
def test_pace_threshold(utterances, fires):
    detector = PaceDetector(PaceConfig())
    findings = []
    t = 0.0
    for words, speech in utterances:
        t += speech + 1.0
        findings += detector.feed_utterance(words, speech, t)
    assert bool(findings) == fires
    if fires:
        (f,) = findings
        assert f.kind == "pace" and f.unit == "wpm" and f.measured > 270


def test_pace_fires_again_only_after_slowing_down_and_forgets_old_speech():
    detector = PaceDetector(PaceConfig(window_s=30.0))
    fast = [detector.feed_utterance(20, 4.0, t) for t in (5.0, 10.0, 15.0)]
    assert [bool(f) for f in fast] == [False, False, True]  # 10 s of turn time at the third
    assert not detector.feed_utterance(20, 4.0, 20.0)  # still fast: no second finding
    slow = [detector.feed_utterance(10, 5.0, t) for t in (100.0, 106.0, 112.0)]
    assert not any(slow)  # the fast stretch left the window
    again = [detector.feed_utterance(40, 4.0, t) for t in (118.0, 124.0)]
    assert [bool(f) for f in again] == [False, True]  # 110 words in 23 s


class _SilentScorer:
    """A VAD that hears nothing: these tests feed transcripts, not audio."""

    def run(self, window, state):
        return 0.0, state


def _agent_utterance(utterance_id: int, start_s: float, end_s: float):
    import numpy as np

    from assist.vocabulary import UtteranceAudio

    return UtteranceAudio("agent", utterance_id, start_s, end_s, np.zeros(0, np.float32), True,
                          end_s - start_s)  # fmt: skip


def _fast_words(count: int, speech_s: float):
    from assist.vocabulary import Recognized, Word

    step = speech_s / count
    words = [Word(" word", i * step, (i + 1) * step, 0.9) for i in range(count)]
    return Recognized(" ".join(["word"] * count), words)


@pytest.mark.parametrize("arrival", [(1, 2), (2, 1)])
def test_finals_reach_pace_in_cutting_order_whatever_order_the_recognizer_answers(arrival):
    """Two ASR workers may answer out of order; pace must fire where it would in order."""
    from assist.config import Settings
    from assist.pipeline import CallPipeline
    from assist.vocabulary import CallSpec

    spec = CallSpec("c1", "a1", 8000, "pcm16", ("customer", "agent"))
    pipeline = CallPipeline(Settings(), _SilentScorer(), spec, asr=True)
    utterances = {1: _agent_utterance(1, 0.0, 10.0), 2: _agent_utterance(2, 11.0, 21.0)}
    for utterance in utterances.values():
        pipeline.expect_final(utterance)
    fired = []
    for utterance_id in arrival:
        out = pipeline.on_transcript(utterances[utterance_id], _fast_words(60, 10.0))
        fired += [(f.kind, f.at_s) for f in out.findings]
    assert fired == [("pace", 10.0)]  # 60 words in 10 s: fast at the first utterance's end


def test_a_shed_final_does_not_hold_back_the_ones_after_it():
    from assist.config import Settings
    from assist.pipeline import CallPipeline
    from assist.vocabulary import CallSpec

    spec = CallSpec("c1", "a1", 8000, "pcm16", ("customer", "agent"))
    pipeline = CallPipeline(Settings(), _SilentScorer(), spec, asr=True)
    first, second = _agent_utterance(1, 0.0, 10.0), _agent_utterance(2, 11.0, 21.0)
    pipeline.expect_final(first)
    pipeline.expect_final(second)
    held = pipeline.on_transcript(second, _fast_words(60, 10.0))
    assert held.findings == [] and [t.utterance_id for t in held.transcripts] == [2]
    released = pipeline.on_transcript_lost(first)
    assert [(f.kind, f.at_s) for f in released.findings] == [("pace", 21.0)]


def _tick(t_s: float, edges=(), customer_speaking: bool = False):
    """A conversation tick with only what the pace detector reads: gates, hold, edges."""
    from types import SimpleNamespace

    from assist.conversation import Tick
    from assist.vad.gate import SpeechEdge

    gates = {"agent": SimpleNamespace(in_speech=False),
             "customer": SimpleNamespace(in_speech=customer_speaking)}  # fmt: skip
    return Tick(t_s, gates, SimpleNamespace(on=False),  # type: ignore[arg-type]
                [("agent", SpeechEdge(start, at)) for start, at in edges])  # fmt: skip


def _two_sentences(pause_s: float, customer_in_pause: bool) -> list:
    """Two agent utterances of 23 words, 5 s voiced each (276 wpm of voiced time), with a
    pause of ``pause_s`` between them, the customer talking in it or not."""
    detector = PaceDetector(PaceConfig())
    second_start = 5.5 + pause_s
    detector.on_tick(_tick(0.5, [(True, 0.5)]))
    detector.on_tick(_tick(5.5, [(False, 5.5)]))
    detector.on_tick(_tick(5.5 + pause_s / 2, customer_speaking=customer_in_pause))
    detector.on_tick(_tick(second_start, [(True, second_start)]))
    detector.on_tick(_tick(second_start + 5.0, [(False, second_start + 5.0)]))
    findings = detector.feed_utterance(23, 5.0, 5.65, start_s=0.2)
    findings += detector.feed_utterance(23, 5.0, second_start + 5.15, start_s=second_start - 0.3)
    return findings


def test_pauses_inside_the_agents_turn_are_speaking_time():
    """46 words in 10 s voiced is 276 wpm; with the agent's 1 s pause between the sentences
    it is 46 words in 11 s of turn time, 251 wpm: the speaking rate, no nudge."""
    assert _two_sentences(1.0, customer_in_pause=False) == []


def test_a_pause_the_customer_speaks_in_or_a_long_one_is_not_the_agents_turn():
    (filled,) = _two_sentences(1.0, customer_in_pause=True)
    assert filled.measured == pytest.approx(276.0) and filled.details["turn_s"] == 10.0
    (long,) = _two_sentences(3.5, customer_in_pause=False)  # over max_pause_s
    assert long.measured == pytest.approx(276.0)


def test_pauses_are_forgotten_without_finals_so_a_long_call_keeps_few():
    """With transcription off no final ever comes: the recorded pauses stay bounded."""
    detector = PaceDetector(PaceConfig())
    for i in range(2000):  # a 4-second sentence, then a 1-second pause, for 10 000 s
        start = 5.0 * i
        detector.on_tick(_tick(start, [(True, start)]))
        detector.on_tick(_tick(start + 4.0, [(False, start + 4.0)]))
    assert 20 < len(detector._pauses) <= (PaceConfig().window_s + PAUSE_KEEP_S) / 5 + 1


def test_speaking_rate_needs_min_words_and_min_turn_s():
    config = PaceConfig(min_words=30, min_turn_s=10.0)
    assert speaking_rate(50, 10.0, config) == pytest.approx(300.0)  # words per minute
    assert speaking_rate(29, 10.0, config) is None  # too few words
    assert speaking_rate(50, 9.9, config) is None  # too short a turn: articulation rate
