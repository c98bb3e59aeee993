"""The recognizer's pure parts: the encoder window of a step, the repetition guard, and the
layout of a batch (where each utterance goes, and which result is whose). The same code
runs on CPU and GPU; these need no model."""

from __future__ import annotations

import contextlib
import types
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from assist.asr.model import LoadedModel
from assist.asr.whisper import (
    GAP_S,
    LAST_PASS_TAIL_S,
    BatchLayout,
    WhisperRecognizer,
    full_window_reason,
    redo_windows,
    repeats_itself,
    token_budget,
    window_frames,
)
from assist.metrics import ServiceMetrics


@pytest.mark.parametrize(
    ("durations", "floor", "frames"),
    [
        ([2.0], 8.0, 800),  # short utterance: the floor
        ([7.4], 8.0, 800),  # 7.9 s with the margin: still the floor
        ([7.6], 8.0, 900),  # 8.1 s: rounded up to whole seconds
        ([1.0, 9.2, 3.0], 8.0, 1000),  # a batch: the longest decides
        ([3.0], 1.0, 400),  # 3.5 s -> 4 s
        ([3.5], 1.0, 400),  # exactly 4 s stays 4 s
        ([14.9], 8.0, 1600),
        ([29.6], 8.0, None),  # 30.1 s: the full window
        ([2.0], 30.0, None),  # floor 30: always the full window
    ],
)
def test_the_window_fits_the_longest_utterance_of_the_step(durations, floor, frames):
    assert window_frames(durations, floor) == frames


def test_a_window_always_covers_faster_whispers_whole_second_clip():
    # BatchedInferencePipeline aligns words over ceil(duration) seconds of each clip
    for duration in np.arange(0.1, 29.0, 0.37):
        frames = window_frames([float(duration)], 1.0)
        assert frames is None or frames >= np.ceil(duration) * 100


def test_an_empty_step_has_no_window():
    with pytest.raises(ValueError, match="no utterances"):
        window_frames([], 8.0)


@pytest.mark.parametrize(
    "text",
    [
        "All circuits are busy now. All circuits are busy now.",
        "Thank you for your patience. Thank you for your patience. Thank you for",
        "Press 4 to remove the Hergeon Status. Press 4 to remove the urgent status.",
        "the " * 40,  # a loop: compresses far too well
        "No more messages. No more messages. No more messages.",  # 3 words, back to back
        "Goodbye now. Goodbye now.",
        "right. . . . . . . . . .",  # a loop of full stops (the demo, live, once)
        "Let me check. . . ?",
        "No. No. No. No. No. No",  # a one-word backchannel in an 8 s window
        "Great. Great. Great. Great. Great. Great",
        "no no no no",
    ],
)
def test_repeated_text_is_caught(text):
    assert repeats_itself(text)
    assert full_window_reason(text) == "repetition"


@pytest.mark.parametrize(
    "text",
    [
        "",
        "No, no, no.",  # a word said thrice is speech, not a loop
        "No, no, no. I said no.",  # not four in a row
        "I want to go, I want to cancel the order.",  # 3 words again: speech
        "Okay. Okay. Let me check.",  # one word again: speech
        "No more messages. Goodbye. No more messages.",  # not back to back
        "That agent is already logged on. Please enter your agent number followed by "
        "the pound key.",
        "Um... let me see... okay.",  # an ellipsis is written on its word
        "Wait, what? Really?! Okay.",
    ],
)
def test_ordinary_speech_is_not_a_repetition(text):
    assert not repeats_itself(text)
    assert full_window_reason(text) is None


def test_a_batch_starts_each_utterance_on_a_frame_after_a_gap():
    lengths = [16_000, 7_777, 40_001, 1]
    layout = BatchLayout.of(lengths)
    assert layout.starts[0] == 0
    for start, nxt, n in zip(layout.starts, layout.starts[1:], lengths, strict=False):
        assert nxt % 160 == 0  # a whole mel frame: seek * 160 is exactly the start
        assert nxt - (start + n) >= GAP_S * 16_000  # a second of silence at least
    assert layout.length >= layout.starts[-1] + lengths[-1]


def test_a_batch_joins_the_audio_and_names_each_clip():
    batch = [np.full(n, i + 1, dtype=np.float32) for i, n in enumerate([3_200, 800, 4_800])]
    layout = BatchLayout.of([len(a) for a in batch])
    joined = layout.join(batch)
    assert joined.dtype == np.float32 and len(joined) == layout.length
    for i, (start, audio) in enumerate(zip(layout.starts, batch, strict=True)):
        assert np.all(joined[start : start + len(audio)] == i + 1)
    assert np.count_nonzero(joined) == sum(len(a) for a in batch)  # silence elsewhere
    clips = layout.clips()
    assert [c["start"] for c in clips] == [s / 16_000 for s in layout.starts]
    assert [c["end"] - c["start"] for c in clips] == pytest.approx([0.2, 0.05, 0.3])


def test_results_map_back_to_their_utterance_by_the_clip_start_frame():
    layout = BatchLayout.of([16_000, 32_000, 8_000])
    for i, start in enumerate(layout.starts):
        assert layout.index_of(start // 160) == i
        # faster-whisper stores int(start_s * 100): a float error may lose one frame
        assert layout.index_of(int((start / 16_000) * 100 - 1e-9)) == i
    with pytest.raises(ValueError, match="no clip starts"):
        layout.index_of(layout.starts[1] // 160 + 50)


def test_full_window_retries_are_a_metric_by_reason():
    metrics = ServiceMetrics()
    metrics.asr_full_window_retries.inc(reason="repetition")
    assert metrics.asr_full_window_retries.get(reason="repetition") == 1
    assert 'assist_asr_full_window_retries_total{reason="repetition"} 1.0' in (
        metrics.render().decode()
    )


@pytest.mark.parametrize(
    ("seconds", "budget"), [(0.3, 19), (1.0, 26), (4.2, 58), (15.0, 166), (30.0, 316)]
)
def test_a_decoder_pass_gets_ten_tokens_a_second_and_a_margin(seconds, budget):
    assert token_budget(seconds) == budget
    assert token_budget(seconds) > 5 * seconds + 2  # recorded speech: at most 5 a second


class _CountingModel:
    """A stand-in for faster-whisper's model that yields segments ending at ``ends`` (s),
    lazily like the real one, and counts how many were asked for."""

    def __init__(self, ends: list[float]) -> None:
        self.ends = ends
        self.pulled = 0
        self.options: dict = {}

    @contextlib.contextmanager
    def window(self, frames, silence_tail=True):
        yield

    def transcribe(self, audio, **options):
        self.options = options

        def segments():
            for end in self.ends:
                self.pulled += 1
                yield types.SimpleNamespace(
                    text=" hello there", words=[], end=end, seek=0, no_speech_prob=0.01
                )

        return segments(), None


def _recognizer_on(model: Any, retries: list[str] | None = None) -> WhisperRecognizer:
    """The service's recognizer (8 s floor) on a stand-in ``model``; its redos' reasons are
    appended to ``retries``."""
    loaded = LoadedModel(model, "stand-in", Path("."), "cpu", "int8", 0.0)
    on_retry = retries.append if retries is not None else None
    return WhisperRecognizer(loaded, window_floor_s=8.0, on_full_window_retry=on_retry)


def test_no_pass_is_decoded_after_text_that_reaches_the_post_roll():
    model = _CountingModel([1.2, 2.6, 2.9])  # 2.6 s is within LAST_PASS_TAIL_S of 3.0 s
    (result,) = _recognizer_on(model).recognize([np.zeros(48_000, dtype=np.float32)])
    assert model.pulled == 2  # the 2.9 s segment (another pass) was never decoded
    assert result.text == "hello there hello there"
    assert 3.0 - LAST_PASS_TAIL_S <= 2.6
    assert model.options["max_new_tokens"] == token_budget(3.0)


def test_text_ending_before_the_tail_lets_the_next_pass_decode():
    model = _CountingModel([1.0, 1.9, 2.7])
    _recognizer_on(model).recognize([np.zeros(48_000, dtype=np.float32)])
    assert model.pulled == 3


@pytest.mark.parametrize(
    ("frames", "redo"), [(400, [1500, None]), (800, [1500, None]), (1500, [None]), (2100, [None])]
)
def test_a_repeat_is_redone_with_15_s_first_then_the_full_window(frames, redo):
    assert redo_windows(frames) == redo


@pytest.mark.parametrize(
    ("text", "seconds", "final", "reason"),
    [
        ("", 0.8, True, "empty"),  # a backchannel heard as nothing
        (" . ", 1.9, True, "empty"),  # marks are no words
        ("", 2.5, True, None),  # longer audio with no word: music or noise, not redone
        ("", 0.8, False, None),  # a partial only previews
        ("Right.", 0.8, True, None),
        ("No more messages. No more messages.", 1.5, False, "repetition"),
    ],
)
def test_the_guard_redoes_a_short_final_heard_as_nothing(text, seconds, final, reason):
    assert full_window_reason(text, seconds, final=final) == reason


@pytest.mark.parametrize(
    ("no_speech_prob", "final", "seconds", "reason"),
    [
        (0.91, True, 1.5, "no_speech"),  # "Thank you." on hold music, 8 s window
        (0.91, True, 12.0, "no_speech"),  # whatever the length
        (0.91, False, 1.5, None),  # a partial only previews
        (0.6, True, 1.5, None),  # Whisper's threshold itself is speech
        (0.05, True, 1.5, None),
    ],
)
def test_the_guard_redoes_words_whisper_judges_not_speech(no_speech_prob, final, seconds, reason):
    got = full_window_reason("Thank you.", seconds, final=final, no_speech_prob=no_speech_prob)
    assert got == reason


def test_words_judged_not_speech_are_redone_until_a_window_hears_nothing():
    model = _HearsInWindows({800}, " Thank you.", no_speech_prob=0.9)  # only the 8 s window
    retries: list[str] = []
    recognizer = _recognizer_on(model, retries)
    (result,) = recognizer.recognize([np.zeros(24_000, dtype=np.float32)])  # 1.5 s
    # heard as nothing at 15 s, a short final is tried with the full window too
    assert model.windows == [800, 1500, None] and result.text == ""
    assert retries == ["no_speech"]  # counted once, by the first reason


class _HearsInWindows:
    """A stand-in for faster-whisper's model that hears ``text`` (with ``no_speech_prob``)
    only in the windows ``hears_in`` (mel frames, None = 30 s) and records every window it
    is asked for."""

    def __init__(
        self, hears_in: set[int | None], text: str = " Right.", no_speech_prob: float = 0.1
    ) -> None:
        self.hears_in = hears_in
        self.text = text
        self.no_speech_prob = no_speech_prob
        self.windows: list[int | None] = []
        self.beams: list[int] = []  # the decoder beam of each transcribe

    @contextlib.contextmanager
    def window(self, frames, silence_tail=True):
        self.windows.append(frames)
        yield

    def transcribe(self, audio, **options):
        self.beams.append(options["beam_size"])
        heard = self.windows[-1] in self.hears_in

        def segments():
            if heard:
                yield types.SimpleNamespace(
                    text=self.text, words=[], end=0.4, seek=0, no_speech_prob=self.no_speech_prob
                )

        return segments(), None


@pytest.mark.parametrize(
    ("hears_in", "windows", "text"),
    [
        ({1500, None}, [800, 1500], "Right."),  # the 15 s redo hears it
        ({None}, [800, 1500, None], "Right."),  # only the full window does
        (set(), [800, 1500, None], ""),  # nothing hears anything: stays empty
        ({800, 1500, None}, [800], "Right."),  # heard at once: no redo
    ],
)
def test_an_empty_short_final_is_redone_with_longer_windows(hears_in, windows, text):
    model = _HearsInWindows(hears_in)
    retries: list[str] = []
    recognizer = _recognizer_on(model, retries)
    (result,) = recognizer.recognize([np.zeros(16_000, dtype=np.float32)])  # 1 s
    assert model.windows == windows and result.text == text
    assert retries == (["empty"] if len(windows) > 1 else [])  # counted once
    assert recognizer.full_window_retries == len(retries)


@pytest.mark.parametrize(("seconds", "words"), [(1.0, False), (2.5, True)])
def test_partials_and_long_audio_heard_as_nothing_are_not_redone(seconds, words):
    model = _HearsInWindows({None})
    recognizer = _recognizer_on(model)
    audio = np.zeros(round(seconds * 16_000), dtype=np.float32)
    (result,) = recognizer.recognize([audio], words=words)
    assert model.windows == [800] and result.text == ""
    assert recognizer.full_window_retries == 0


def test_finals_are_decoded_with_the_beam_and_partials_greedy():
    model = _HearsInWindows({800})
    loaded = LoadedModel(model, "stand-in", Path("."), "cpu", "int8", 0.0)
    recognizer = WhisperRecognizer(loaded, beam_size=3, window_floor_s=8.0)
    audio = np.zeros(32_000, dtype=np.float32)
    recognizer.recognize([audio], words=True)
    recognizer.recognize([audio], words=False)
    assert model.beams == [3, 1]
