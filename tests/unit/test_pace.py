"""The pace detector over final agent utterances."""

from __future__ import annotations

import pytest

from assist.config import PaceConfig
from assist.detectors.pace import PaceDetector


@pytest.mark.parametrize(
    ("utterances", "fires"),
    [
        ([(20, 4.0)] * 2, True),  # 40 words in 8 s = 300 wpm
        ([(10, 4.0)] * 3, False),  # 150 wpm
        ([(16, 5.0)] * 2, True),  # 192 wpm, just over
        ([(15, 5.0)] * 2, False),  # 180 wpm
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
        assert f.kind == "pace" and f.unit == "wpm" and f.measured > 190


def test_pace_fires_again_only_after_slowing_down_and_forgets_old_speech():
    detector = PaceDetector(PaceConfig(window_s=30.0))
    fast = [detector.feed_utterance(20, 4.0, t) for t in (5.0, 10.0, 15.0)]
    assert [bool(f) for f in fast] == [False, True, False]
    detector.feed_utterance(10, 5.0, 20.0)  # 50 words / 17 s still fast
    slow = [detector.feed_utterance(10, 5.0, t) for t in (100.0, 106.0, 112.0)]
    assert not any(slow)  # the fast stretch left the window
    again = [detector.feed_utterance(25, 4.0, t) for t in (118.0, 124.0)]
    assert any(again)
