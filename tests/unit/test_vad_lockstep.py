"""A call's channels scored together: one Silero run per window step, the same scores."""

from __future__ import annotations

import numpy as np
import pytest

from assist.synth.recorded import SOUNDS
from assist.synth.render import read_wav_mono
from assist.vad.silero import SileroModel
from assist.vad.stream import VadStream, feed_lockstep
from assist.vocabulary import WINDOW_SAMPLES


class OneAtATime:
    """The real Silero session without ``run_batch``: every window scored alone."""

    def __init__(self, model: SileroModel) -> None:
        self._model = model
        self.runs = 0

    def run(self, window: np.ndarray, state: np.ndarray) -> tuple[float, np.ndarray]:
        self.runs += 1
        return self._model.run(window, state)


class CountingBatches(OneAtATime):
    """The real session, counting its runs, batched or not."""

    def run_batch(self, windows: np.ndarray, states: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        self.runs += 1
        return self._model.run_batch(windows, states)


@pytest.fixture(scope="module")
def silero() -> SileroModel:
    return SileroModel()


PROMPTS = ["agent-alreadyon", "conf-placeintoconf", "vm-mailboxfull"]  # recorded speech


def speech(seconds: float, seed: int) -> np.ndarray:
    """``seconds`` of faint line noise with a recorded 8 kHz phone prompt (different per
    seed) from 0.5 s on, cut where the time runs out."""
    audio, rate = read_wav_mono(SOUNDS / f"{PROMPTS[seed % len(PROMPTS)]}.wav")
    assert rate == 8000
    line = 0.001 * np.random.default_rng(seed).standard_normal(int(seconds * 8000))
    speech_part = audio[: max(0, len(line) - 4000)]
    line[4000 : 4000 + len(speech_part)] += speech_part
    return line.astype(np.float32)


@pytest.mark.parametrize("chunk", [160, 320, 1000, 37])  # 20/40 ms frames, 125 ms, ragged
def test_lockstep_scores_equal_scoring_each_channel_alone(silero, chunk):
    channels = [speech(3.0, seed) for seed in (1, 2, 3)]
    alone_model, batched_model = OneAtATime(silero), CountingBatches(silero)
    alone = [VadStream(alone_model) for _ in channels]
    together = [VadStream(batched_model) for _ in channels]
    expected: list[list] = [[] for _ in channels]
    got: list[list] = [[] for _ in channels]
    for start in range(0, len(channels[0]), chunk):
        parts = [c[start : start + chunk] for c in channels]
        for i, (stream, part) in enumerate(zip(alone, parts, strict=True)):
            expected[i] += stream.feed(part)
        for i, windows in enumerate(feed_lockstep(together, parts)):
            got[i] += windows
    assert got == expected
    steps = len(channels[0]) // WINDOW_SAMPLES
    assert len(got[0]) == steps and any(w.speech_probability > 0.5 for w in got[0])
    assert alone_model.runs == 3 * steps and batched_model.runs == steps


def test_lockstep_with_channels_out_of_step_scores_each_in_order(silero):
    model = CountingBatches(silero)
    streams = [VadStream(model), VadStream(model)]
    first = feed_lockstep(streams, [speech(0.1, 1), speech(0.05, 2)])
    assert [len(w) for w in first] == [3, 1]  # 800 and 400 samples: 3 and 1 windows
    assert [w.index for w in first[0]] == [0, 1, 2]
    later = feed_lockstep(streams, [np.zeros(0, np.float32), speech(0.1, 2)])
    assert [len(w) for w in later] == [0, 3]  # the second: 144 + 800 samples, 3 windows
    assert [w.index for w in later[1]] == [1, 2, 3]


def test_lost_windows_are_not_scored(silero):
    model = CountingBatches(silero)
    streams = [VadStream(model), VadStream(model)]
    lost = feed_lockstep(streams, [np.zeros(512, np.float32)] * 2, scored=False)
    assert model.runs == 0
    assert all(np.isnan(w.dbfs) and w.speech_probability == 0.0 for ws in lost for w in ws)
