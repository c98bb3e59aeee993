"""The cascade's arithmetic (assist.text.second_opinion): which sentences are asked, and
how the second head's verdict is put on the first head's threshold."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

from assist.text.second_opinion import UNSURE_BAND, cascade, merge, unsure


def _probabilities(flag: Sequence[float] | np.ndarray) -> np.ndarray:
    """Two-class probabilities with flag score ``flag``."""
    f = np.asarray(flag, dtype=np.float64)
    return np.stack([1 - f, f], axis=1)


def test_unsure_is_the_inclusive_band_of_the_flag_score() -> None:
    low, high = UNSURE_BAND
    flags = [0.0, low - 1e-9, low, 0.5, high, high + 1e-9, 1.0]
    assert unsure(_probabilities(flags)).tolist() == [False, False, True, True, True, False, False]


@pytest.mark.parametrize(("first_threshold", "second_threshold"), [(0.42, 0.61), (0.6, 0.3)])
def test_the_second_threshold_lands_on_the_first(
    first_threshold: float, second_threshold: float
) -> None:
    flags = np.array(
        [0.05, second_threshold - 0.01, second_threshold, second_threshold + 0.01, 0.95]
    )
    rows = np.ones(len(flags), bool)
    merged = merge(
        _probabilities(np.full(5, 0.5)),
        _probabilities(flags),
        rows,
        first_threshold,
        second_threshold,
    )
    moved = 1 - merged[:, 0]
    assert moved[2] == pytest.approx(first_threshold)
    # same side of the (first) threshold as of its own, and the order is kept
    assert ((moved >= first_threshold - 1e-12) == (flags >= second_threshold)).all()
    assert (np.diff(moved) > 0).all()
    assert merged.sum(axis=1) == pytest.approx(np.ones(5))


def test_rows_not_asked_keep_the_first_heads_probabilities_and_classes_keep_their_mix() -> None:
    first = np.array([[0.9, 0.05, 0.05], [0.5, 0.3, 0.2], [0.1, 0.6, 0.3]])
    second = np.array([[0.2, 0.2, 0.6]])
    rows = np.array([False, True, False])
    merged = merge(first, second, rows, 0.5, 0.5)
    assert merged[[0, 2]] == pytest.approx(first[[0, 2]])
    assert merged[1] == pytest.approx([0.2, 0.2, 0.6])  # equal thresholds: nothing moves
    shifted = merge(first, second, rows, 0.4, 0.6)
    assert shifted[1, 2] / shifted[1, 1] == pytest.approx(3.0)  # the flag classes' mix


def test_cascade_asks_the_second_head_about_unsure_sentences_only() -> None:
    texts = ["clear no", "clear yes", "unsure", "unsure too"]
    features = np.arange(8, dtype=np.float32).reshape(4, 2)
    first_flags = {0: 0.05, 2: 0.97, 4: 0.5, 6: 0.35}  # keyed by each row's first feature
    asked: list[list[str]] = []

    def first(x: np.ndarray) -> np.ndarray:
        return _probabilities([first_flags[int(row[0])] for row in x])

    def with_e5(chosen: Sequence[str], base: np.ndarray) -> np.ndarray:
        asked.append(list(chosen))
        return np.concatenate([base, np.ones((len(chosen), 1), np.float32)], axis=1)

    def second(x: np.ndarray) -> np.ndarray:
        assert x.shape == (2, 3)  # the unsure rows, with the extra block
        return _probabilities([0.9, 0.1])

    merged, rows = cascade(texts, features, first, second, with_e5, 0.42, 0.61)
    assert asked == [["unsure", "unsure too"]]
    assert rows.tolist() == [False, False, True, True]
    flags = 1 - merged[:, 0]
    assert flags[[0, 1]] == pytest.approx([0.05, 0.97])
    assert flags[2] > 0.42 > flags[3]


def test_cascade_without_unsure_sentences_never_asks() -> None:
    def refuse(*_: object) -> np.ndarray:
        raise AssertionError("the second head was asked")

    probabilities, rows = cascade(
        ["a"], np.zeros((1, 2)), lambda x: _probabilities([0.01]), refuse, refuse, 0.5, 0.5
    )
    assert probabilities[0, 1] == pytest.approx(0.01)
    assert not rows.any()
