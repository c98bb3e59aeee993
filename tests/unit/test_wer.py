from __future__ import annotations

import pytest

from assist.asr.wer import normalize, word_error_rate


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("Press 1 to mute.", ["press", "one", "to", "mute"]),
        ("Call-Forward on Busy", ["call", "forward", "on", "busy"]),
        ("[ascending tones] Hello!", ["hello"]),
        ("I'm 42% sure", ["i'm", "forty", "two", "percent", "sure"]),
    ],
)
def test_normalize(text, words):
    assert normalize(text) == words


@pytest.mark.parametrize(
    ("ref", "hyp", "errors", "n"),
    [
        ("the cat sat", "the cat sat", 0, 3),
        ("the cat sat", "the bat sat", 1, 3),
        ("the cat sat", "the sat", 1, 3),
        ("the cat sat", "the cat sat down", 1, 3),
        ("press 2 now", "Press two, now.", 0, 3),
        ("", "words", 1, 0),
    ],
)
def test_word_error_rate(ref, hyp, errors, n):
    assert word_error_rate(ref, hyp) == (errors, n)
