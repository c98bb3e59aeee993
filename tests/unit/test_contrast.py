"""Praise/situation contrast features: praise about a bad situation, as written and as
Whisper writes it (lower case, no punctuation)."""

from __future__ import annotations

import numpy as np
import pytest

from assist.text.contrast import CONTRAST_DIM, CONTRAST_SCALE, contrast_features, contrast_of


@pytest.mark.parametrize(
    "text",
    [
        "Oh brilliant, stuck in the queue for the second day.",
        "oh brilliant stuck in the queue for the second day",
        "Wow, thanks, my parcel is delayed yet again.",
        "lovely so now i get to fill in the form all over again",
        "Great job, the modem is broken as usual.",
    ],
)
def test_praise_opening_a_sentence_about_a_bad_situation_is_the_sarcastic_reading(
    text: str,
) -> None:
    assert contrast_of(text) == (True, True, False)


@pytest.mark.parametrize(
    "text",
    [
        "Brilliant, the replacement card came this morning.",
        "oh wonderful that's the one i ordered",
        "Thanks so much, that sorts it.",
    ],
)
def test_praise_opening_a_sentence_without_a_bad_situation_is_the_sincere_reading(
    text: str,
) -> None:
    assert contrast_of(text) == (False, False, True)


def test_praise_later_in_the_sentence_counts_only_with_a_bad_situation() -> None:
    assert contrast_of("The app is broken again, which is just great.") == (True, False, False)
    assert contrast_of("The engineer was really helpful.") == (False, False, False)


def test_a_bad_situation_without_praise_is_no_contrast() -> None:
    assert contrast_of("I've been on hold for two hours.") == (False, False, False)
    assert contrast_of("") == (False, False, False)


@pytest.mark.parametrize(
    "text",
    ["Great, thanks, really helpful. Not.", "Really helpful, not!", "great very helpful not"],
)
def test_a_closing_not_turns_praise_around(text: str) -> None:
    # the sentence splitter keeps a closing "Not." with what it follows
    assert contrast_of(text)[0]


def test_an_opening_not_is_no_bad_situation() -> None:
    assert not contrast_of("Not that I'm complaining, the engineer was great.")[0]


def test_features_are_scaled_float32_rows() -> None:
    features = contrast_features(["Perfect, disconnected again.", "Hello.", ""])
    assert features.dtype == np.float32
    assert features.shape == (3, CONTRAST_DIM)
    np.testing.assert_array_equal(
        features, np.array([[1, 1, 0], [0, 0, 0], [0, 0, 0]], dtype=np.float32) * CONTRAST_SCALE
    )
    assert contrast_features([]).shape == (0, CONTRAST_DIM)
