"""Utterance segmentation from gate edges, and the per-channel 16 kHz audio buffer."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from assist.asr.segmenter import ChannelAudio, UtteranceSegmenter
from assist.config import UtteranceConfig
from assist.vad.gate import SpeechEdge
from assist.vocabulary import ASR_RATE

TICK = 0.032


def ramp(seconds: float) -> np.ndarray:
    """Audio whose sample value is its own time in seconds: slices show where they came from."""
    return (np.arange(round(seconds * ASR_RATE)) / ASR_RATE).astype(np.float32)


def run(edges: dict[float, bool], seconds: float, **cfg: float):
    """Tick every 32 ms; ``edges`` maps media time -> speech start (True) / end (False),
    delivered on the first tick at or after that time (as the gate does, with delay)."""
    audio = ChannelAudio(keep_s=30.0)
    audio.append(ramp(seconds))
    segmenter = UtteranceSegmenter(UtteranceConfig(**cfg), "agent", audio)
    pending = sorted(edges.items())
    out = []
    t = TICK
    while t <= seconds + 1e-9:
        edge = None
        if pending and pending[0][0] <= t - TICK + 1e-9:
            at, start = pending.pop(0)
            edge = SpeechEdge(start, at)
        out += segmenter.feed(edge, round(t, 6))
        t += TICK
    out += segmenter.close(round(t - TICK, 6))
    return out


def test_utterance_has_pre_and_post_roll_and_its_audio():
    (u,) = run({1.0: True, 3.0: False}, 5.0, partial_every_s=0)
    assert u.final and u.utterance_id == 0
    assert u.start_s == pytest.approx(0.7)
    assert u.end_s == pytest.approx(3.15)
    assert u.speech_s == pytest.approx(2.0)
    assert len(u.audio) == round((3.15 - 0.7) * ASR_RATE)
    assert u.audio[0] == pytest.approx(0.7, abs=1e-4)  # the ramp tells where it was cut


@pytest.mark.parametrize(
    ("pause_s", "finals"),
    [(0.3, 1), (0.45, 1), (0.6, 2), (1.5, 2)],
)
def test_short_pauses_stay_inside_one_utterance(pause_s, finals):
    edges = {1.0: True, 2.0: False, 2.0 + pause_s: True, 4.0: False}
    out = [u for u in run(edges, 6.0, partial_every_s=0) if u.final]
    assert len(out) == finals
    if finals == 1:
        assert out[0].speech_s == pytest.approx(3.0)


def test_long_speech_is_split_into_consecutive_finals():
    out = run({0.5: True, 20.0: False}, 22.0, partial_every_s=0, max_utterance_s=6.0)
    assert [u.final for u in out] == [True] * 4
    assert [u.utterance_id for u in out] == [0, 1, 2, 3]
    for a, b in itertools.pairwise(out):
        assert b.start_s == pytest.approx(a.end_s)  # no gap, no overlap
    assert out[0].end_s - out[0].start_s == pytest.approx(6.0, abs=TICK)


def test_partials_preview_the_open_utterance():
    out = run({1.0: True, 7.0: False}, 8.0, partial_every_s=2.0)
    partials = [u for u in out if not u.final]
    finals = [u for u in out if u.final]
    assert len(finals) == 1 and len(partials) == 3
    assert all(p.utterance_id == finals[0].utterance_id for p in partials)
    assert all(p.start_s == finals[0].start_s for p in partials)
    ends = [p.end_s for p in partials]
    assert ends == sorted(ends)
    assert ends[0] == pytest.approx(0.7 + 2.0, abs=TICK)


def test_too_short_is_dropped_and_open_speech_is_closed_at_the_end():
    out = run({1.0: True, 1.05: False, 3.0: True}, 5.0, partial_every_s=0, pre_roll_s=0.0)
    assert len(out) == 1
    assert out[0].start_s == pytest.approx(3.0)
    assert out[0].end_s == pytest.approx(5.0, abs=TICK)


def test_channel_audio_keeps_only_the_last_seconds():
    audio = ChannelAudio(keep_s=2.0)
    for _ in range(10):
        audio.append(np.ones(ASR_RATE // 2, dtype=np.float32))
    assert audio.end_sample == 5 * ASR_RATE
    assert len(audio.slice(0.0, 5.0)) >= 2 * ASR_RATE
    assert len(audio.slice(0.0, 2.0)) == 0  # long gone
    big = ChannelAudio(keep_s=1.0)
    big.append(ramp(3.0))
    tail = big.slice(0.0, 3.0)
    assert len(tail) == ASR_RATE and tail[0] == pytest.approx(2.0, abs=1e-4)
