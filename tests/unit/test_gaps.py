"""Gaps (audio that never arrived: a pause, discarded audio, a timestamp jump, overload) are
one O(1) step through the chain: counted work, not wall time, is asserted here."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from assist.asr.segmenter import ChannelAudio, UtteranceSegmenter
from assist.config import Settings, UtteranceConfig
from assist.conversation import ConversationTracker
from assist.ingest import Gap, IngestQueue
from assist.pipeline import CallPipeline, PipelineOutput
from assist.vad.gate import SpeechEdge
from assist.vad.stream import STATE_SHAPE, VadStream
from assist.vocabulary import ASR_RATE, WINDOW_S, CallSpec

RATE = 8000
HOUR = 3600 * RATE


class CountingScorer:
    """A VadScorer that calls a window speech when it is loud, and counts its calls."""

    def __init__(self) -> None:
        self.calls = 0

    def run(self, window: np.ndarray, state: np.ndarray) -> tuple[float, np.ndarray]:
        self.calls += 1
        loud = float(np.sqrt(np.mean(window[32:] ** 2))) > 0.05
        return (0.95 if loud else 0.02), np.zeros(STATE_SHAPE, dtype=np.float32)


def tone(seconds: float, amplitude: float = 0.3, rate: int = RATE) -> np.ndarray:
    t = np.arange(round(seconds * rate)) / rate
    return (amplitude * np.sin(2 * np.pi * 300 * t)).astype(np.float32)


def quiet(seconds: float, rate: int = RATE) -> np.ndarray:
    """A quiet line (-60 dBFS noise): not speech, not music, not a digitally silent line."""
    noise = np.random.default_rng(round(seconds * 1000)).standard_normal(round(seconds * rate))
    return (0.001 * noise).astype(np.float32)


def pcm16(customer: np.ndarray, agent: np.ndarray) -> bytes:
    both = np.stack([customer, agent], axis=1)
    return (np.clip(both, -1, 1) * 32767).astype("<i2").tobytes()


def feed(pipeline: CallPipeline, customer: np.ndarray, agent: np.ndarray) -> PipelineOutput:
    """Feed in 20 ms frames; everything they produced, together."""
    out = PipelineOutput()
    step = pipeline.spec.sample_rate // 50
    for i in range(0, len(customer), step):
        part = pipeline.feed_audio(pcm16(customer[i : i + step], agent[i : i + step]))
        out.findings += part.findings
        out.nudges += part.nudges
        out.utterances += part.utterances
    return out


def pipeline(scorer: CountingScorer, asr: bool = True, rate: int = RATE) -> CallPipeline:
    spec = CallSpec("gap-1", "agent-1", rate, "pcm16", ("customer", "agent"))
    return CallPipeline(Settings(), scorer, spec, asr=asr)


@pytest.mark.parametrize("rate", [8000, 16000])
@pytest.mark.parametrize("gap_s", [10 * 3600.0, 14400.0, 0.5])
def test_a_gap_of_any_length_is_one_step_of_bounded_work(rate: int, gap_s: float) -> None:
    scorer = CountingScorer()
    call = pipeline(scorer, rate=rate)
    feed(call, quiet(2.0, rate), quiet(2.0, rate))
    ticks: list[float] = []
    original = call.tracker.feed

    def counted(windows):  # type: ignore[no-untyped-def]
        tick = original(windows)
        ticks.append(tick.t_s)
        return tick

    call.tracker.feed = counted  # type: ignore[method-assign]
    before = scorer.calls
    tracemalloc.start()
    call.feed_gap(round(gap_s * rate))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert scorer.calls - before <= 2  # the flushed tail of the last heard audio at most
    assert len(ticks) <= 2 + 2  # the flushed tail, then the first and last lost windows
    assert peak < 1_000_000  # bytes: no array the size of the gap (10 h = 1.1 GB of float32)
    assert call.media_time_s == pytest.approx(2.0 + gap_s)
    assert call.tracker.t_s == pytest.approx(2.0 + gap_s, abs=WINDOW_S)
    assert call.samples_lost == round(gap_s * rate)
    # audio after the gap is windowed and scored from where the gap ended (a 16 kHz line's
    # resampler starts afresh: its filter delay, as at the start of a call)
    feed(call, quiet(1.0, rate), quiet(1.0, rate))
    assert call.tracker.t_s == pytest.approx(3.0 + gap_s, abs=0.1)
    assert call.scorecard()["metrics"]["duration_s"] == pytest.approx(3.0 + gap_s, abs=0.1)


def test_speech_right_before_a_gap_is_a_final_utterance_ending_at_the_gap() -> None:
    call = pipeline(CountingScorer())
    out = feed(call, np.concatenate([quiet(1.0), tone(1.5)]), quiet(2.5))
    assert [u for u in out.utterances if u.final] == []  # still talking when the audio stops
    gap = call.feed_gap(2 * HOUR)
    finals = [u for u in gap.utterances if u.final]
    assert len(finals) == 1
    final = finals[0]
    assert final.channel == "customer" and final.utterance_id == 0
    assert final.start_s == pytest.approx(1.0 - 0.3, abs=WINDOW_S)  # pre-roll
    assert final.end_s == pytest.approx(2.5, abs=WINDOW_S)  # the gap's start
    assert len(final.audio) == pytest.approx((final.end_s - final.start_s) * ASR_RATE, abs=400)
    assert np.abs(final.audio[-800:]).max() > 0.1  # the last words are in it
    assert final.speech_s == pytest.approx(1.5, abs=2 * WINDOW_S)
    # lost time is neither talk nor silence; the call's clock includes it
    totals = call.tracker.totals
    assert totals.talk_s["customer"] == pytest.approx(1.5, abs=2 * WINDOW_S)
    after = feed(call, np.concatenate([tone(1.0), quiet(1.0)]), quiet(2.0))
    next_final = [u for u in after.utterances if u.final]
    assert [u.utterance_id for u in next_final] == [1]
    assert next_final[0].start_s >= 2.5 + 7200 - WINDOW_S  # no pre-roll into the gap


def test_dead_air_counts_afresh_after_lost_audio() -> None:
    settings = Settings()
    call = pipeline(CountingScorer(), asr=False)
    out = feed(call, np.concatenate([tone(1.0), quiet(5.0)]), quiet(6.0))
    out.findings += call.feed_gap(10 * RATE).findings
    out.findings += feed(call, quiet(7.0), quiet(7.0)).findings
    assert [f.kind for f in out.findings] == []  # 5 s + 7 s of silence, split by the gap
    later = feed(call, quiet(1.5), quiet(1.5)).findings
    assert [f.kind for f in later] == ["dead_air"]
    assert later[0].span_start_s == pytest.approx(16.0, abs=WINDOW_S)  # the gap's end
    assert later[0].measured == pytest.approx(settings.cues.dead_air.min_silence_s, abs=0.04)


def test_a_cti_hold_goes_on_through_a_gap_and_its_reminders_come_once() -> None:
    call = pipeline(CountingScorer(), asr=False)
    feed(call, quiet(1.0), tone(1.0))
    call.set_hold(True)  # at 1.0 s; reminders at 46, 91, 136, ... s on the call
    findings = feed(call, quiet(2.0), quiet(2.0)).findings
    findings += call.feed_gap(600 * RATE).findings  # to 603 s: 13 reminders fell due
    reminders = [f for f in findings if f.kind == "long_hold"]
    assert len(reminders) == 1
    reminder = reminders[0]
    assert reminder.at_s == pytest.approx(603.0, abs=WINDOW_S)
    assert reminder.details["reminder"] == 13  # the latest due: at 1 + 45 + 12 * 45 = 586 s
    assert reminder.threshold == pytest.approx(45.0 + 12 * 45.0)
    assert reminder.severity == "critical"
    assert call.tracker.hold.on
    # the next one on schedule, at 586 + 45 = 631 s
    later = [f for f in feed(call, quiet(30.0), quiet(30.0)).findings if f.kind == "long_hold"]
    assert [round(f.at_s) for f in later] == [631]
    assert later[0].details["reminder"] == 14


def test_overlapping_talk_cut_by_a_gap_is_not_an_interruption() -> None:
    call = pipeline(CountingScorer(), asr=False)
    findings = feed(call, tone(2.0), np.concatenate([quiet(1.7), tone(0.3)])).findings
    findings += call.feed_gap(30 * RATE).findings
    findings += feed(call, tone(2.0), tone(2.0)).findings  # both talk on, from the same onset
    assert [f.kind for f in findings] == []


def test_a_gap_shorter_than_a_window_is_silence_in_place() -> None:
    scorer = CountingScorer()
    call = pipeline(scorer, asr=False)
    feed(call, tone(1.0), quiet(1.0))
    call.feed_gap(100)  # 12.5 ms
    assert call.media_time_s == pytest.approx(1.0 + 100 / RATE)
    assert call.tracker.gates["customer"].in_speech  # no discontinuity: speech goes on
    assert call.samples_lost == 100


def test_vad_stream_skips_without_scoring() -> None:
    scorer = CountingScorer()
    stream = VadStream(scorer)
    assert len(stream.feed(tone(0.1))) == 3  # 800 samples: 3 windows and 32 samples
    assert stream.position == 800
    assert stream.skip_to(800 + HOUR) == (3, (800 + HOUR) // 256)
    assert scorer.calls == 3
    windows = stream.feed(tone(0.1))
    assert windows[0].index == (800 + HOUR) // 256
    with pytest.raises(ValueError):
        stream.skip_to(stream.position + 10)  # inside the window in progress


def test_channel_audio_and_segmenter_around_a_gap() -> None:
    audio = ChannelAudio(20.0)
    audio.append(np.ones(ASR_RATE, dtype=np.float32))
    segmenter = UtteranceSegmenter(UtteranceConfig(), "agent", audio)
    assert segmenter.feed(SpeechEdge(True, 0.5), 0.6) == []
    assert segmenter.feed(SpeechEdge(False, 0.8), 0.9) == []  # a pause under way
    (final,) = segmenter.gap(0.96, 3600.0)
    assert (final.start_s, final.end_s, final.final) == (0.2, 0.95, True)  # with post-roll
    assert final.speech_s == pytest.approx(0.3)
    audio.skip_to(3600 * ASR_RATE)
    assert audio.end_sample == 3600 * ASR_RATE and len(audio.slice(0.0, 3600.0)) == 0
    audio.append(np.ones(ASR_RATE, dtype=np.float32))
    assert segmenter.feed(SpeechEdge(True, 3600.1), 3600.2) == []
    (next_final,) = segmenter.close(3601.0)
    assert next_final.start_s == 3600.0  # the pre-roll stops at the gap's end
    assert next_final.utterance_id == 1 and len(next_final.audio) == ASR_RATE
    with pytest.raises(ValueError):
        audio.skip_to(10)


def test_tracker_skip_feeds_two_windows_whatever_the_gap() -> None:
    tracker = ConversationTracker(Settings(), ["customer", "agent"])
    ticks = tracker.skip(0, 10 * HOUR // 256)
    assert [t.audio_lost for t in ticks] == [True, True]
    assert ticks[-1].t_s == tracker.t_s == tracker.totals.duration_s == 10 * HOUR // 256 * WINDOW_S
    assert tracker.totals.talk_s == {"customer": 0.0, "agent": 0.0}
    next_window = round(tracker.t_s / WINDOW_S)
    assert len(tracker.skip(next_window, next_window + 1)) == 1  # a one-window gap: one tick


def test_adjacent_gaps_join_in_the_ingest_queue() -> None:
    queue = IngestQueue(100)
    queue.push(Gap(10))
    queue.push(Gap(HOUR))
    assert len(queue) == 1 and queue.pop() == Gap(10 + HOUR)
