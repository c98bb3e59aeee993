"""The training steps that choose a head's threshold and fit it, on small made-up data:
the fold assignments, the plateau rule of ``best_threshold``, the split-feature fit, the
F1 interval the model cards give and the split of recognizer errors by misheard lines."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from assist.text.heads import _SplitFeatures, fit_softmax_regression, predict
from assist.text.train import (
    CV_REPEATS,
    FOLDS,
    SMOOTH_STEPS,
    TASKS,
    THRESHOLD_GRID,
    Dataset,
    Line,
    Verdicts,
    best_threshold,
    f1_interval,
    fold_assignments,
    main,
    recognition_errors,
    word_errors_by_line,
)


def test_fold_assignments_are_stratified_seeded_and_differ_between_repeats() -> None:
    labels = np.array([0] * 53 + [1] * 21 + [2] * 7)
    assignments = fold_assignments(labels)
    assert len(assignments) == CV_REPEATS
    for folds in assignments:
        assert set(folds.tolist()) == set(range(FOLDS))
        for label, count in zip(*np.unique(labels, return_counts=True), strict=True):
            per_fold = np.bincount(folds[labels == label], minlength=FOLDS)
            # every label spread evenly: fold sizes differ by at most one line
            assert per_fold.max() - per_fold.min() <= 1, (label, per_fold)
            assert per_fold.sum() == count
    # deterministic, and the repeats are different shuffles
    again = fold_assignments(labels)
    assert all(np.array_equal(a, b) for a, b in zip(assignments, again, strict=True))
    assert not np.array_equal(assignments[0], assignments[1])
    # the folds do not follow the lines' order (index mod FOLDS was the old rule)
    assert not np.array_equal(assignments[0], np.arange(len(labels)) % FOLDS)


def test_a_recognizer_copy_sits_in_its_lines_fold_and_never_near_a_heldout_line() -> None:
    frustration = next(task for task in TASKS if task.name == "customer_frustration")
    dataset = Dataset({"this is the third time i've called"})
    written = [(f"Line number {i} about my bill.", "frustrated" if i % 3 else "neutral")
               for i in range(40)]  # fmt: skip
    written.append(("This is the third time I've called!", "frustrated"))
    dataset.add(written, frustration, "written")
    assert dataset.sources["written"] == 40 and dataset.dropped_as_heldout == 1
    heard = [
        ("line number 0 about my bill", "Line number 0 about my bill.", "neutral"),  # same words
        ("Line number one about my bill.", "Line number 1 about my bill.", "frustrated"),
        ("Line number to about my bell.", "Line number 2 about my bill.", "frustrated"),
        ("This is the third time I called.", "This is the third time I've called!", "frustrated"),
        ("...", "Line number 4 about my bill.", "frustrated"),  # nothing heard
        ("Line number 9 about my bill!", "A line not in the set.", "neutral"),  # no written line
    ]
    dataset.add_heard(heard, frustration, "heard")
    assert dataset.sources["heard"] == 2  # only new words, of lines in the set
    assert dataset.texts[-2:] == ["Line number one about my bill.", "Line number to about my bell."]
    assert dataset.copy_of == [-1] * 40 + [1, 2]
    labels, copy_of = np.array(dataset.labels), np.array(dataset.copy_of)
    for folds in fold_assignments(labels, copy_of=copy_of):
        assert folds[40] == folds[1] and folds[41] == folds[2]
    # the written lines get the folds they get without any copies
    alone = fold_assignments(labels[:40])
    grouped = fold_assignments(labels, copy_of=copy_of)
    assert all(np.array_equal(a, g[:40]) for a, g in zip(alone, grouped, strict=True))


def _flagged_at_for_curve(curve: dict[float, float]):
    """A ``flagged_at`` and truth whose F1 at each grid threshold is ``curve[t]`` (made of
    10 positives: ``tp`` of them found, no false flags, so F1 = 2 tp / (tp + 10))."""
    truth = np.array([True] * 10 + [False] * 10)

    def flagged_at(threshold: float) -> np.ndarray:
        f1 = curve.get(round(threshold, 2), 0.0)
        tp = round(10 * f1 / (2 - f1))  # inverse of F1 = 2 tp / (tp + 10)
        return np.array([True] * tp + [False] * (20 - tp))

    return flagged_at, truth


def test_best_threshold_takes_the_middle_of_a_plateau_not_a_lone_spike() -> None:
    # a broad plateau of F1 0.889 (8 of 10) from 0.40 to 0.60, one spike of 0.947 (9 of 10)
    # at 0.80 with poor neighbours: a one-point argmax would take the spike
    curve = {float(t): 0.5 for t in THRESHOLD_GRID}
    curve.update({round(0.40 + 0.01 * k, 2): 8 / 9 for k in range(21)})
    curve[0.80] = 18 / 19
    flagged_at, truth = _flagged_at_for_curve(curve)
    assert best_threshold(flagged_at, truth) == pytest.approx(0.50)


def test_best_threshold_follows_a_clear_peak() -> None:
    # F1 rises to a single peak at 0.70 and falls off symmetrically
    curve = {float(t): max(0.0, 1.0 - 2.0 * abs(float(t) - 0.70)) for t in THRESHOLD_GRID}
    flagged_at, truth = _flagged_at_for_curve(curve)
    assert best_threshold(flagged_at, truth) == pytest.approx(0.70)
    assert SMOOTH_STEPS >= 1  # the rule averages neighbours; 0 would be the bare argmax


def _counts(tp: int, fp: int, fn: int) -> dict[str, int]:
    return {"tp": tp, "fp": fp, "fn": fn}


def test_f1_interval_holds_the_observed_f1_and_narrows_with_more_lines() -> None:
    small = f1_interval(_counts(13, 2, 2))  # frustration's sarcasm lines: F1 0.867
    assert small[0] < 13 / 15 < small[1]
    assert f1_interval(_counts(13, 2, 2)) == small  # seeded: the same every run
    large = f1_interval(_counts(130, 20, 20))  # the same rates on ten times the lines
    assert small[0] < large[0] < 13 / 15 < large[1] < small[1]


def test_f1_interval_does_not_call_a_perfect_small_set_certain() -> None:
    low, high = f1_interval(_counts(10, 0, 0))
    assert 0.7 < low < 0.95 and high <= 1.0
    assert f1_interval(_counts(100, 0, 0))[0] > low


def test_split_features_give_the_dense_products() -> None:
    rng = np.random.default_rng(7)
    dense = rng.normal(size=(40, 6))
    sparse_part = np.where(rng.random((40, 30)) < 0.02, 1.0, 0.0)  # mostly zeros
    x = np.concatenate([dense, sparse_part], axis=1)
    split = _SplitFeatures(x)
    assert split.dense.sum() == 6
    w = rng.normal(size=(36, 3))
    e = rng.normal(size=(40, 3))
    np.testing.assert_allclose(split.times(w), x @ w, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(split.transposed_times(e), x.T @ e, rtol=1e-12, atol=1e-12)


def test_the_fit_separates_separable_classes() -> None:
    rng = np.random.default_rng(3)
    labels = np.arange(90) % 3
    x = rng.normal(scale=0.1, size=(90, 5))
    x[np.arange(90), labels] += 1.0  # class k lights up column k
    fit = fit_softmax_regression(x, labels, 3, l2=1e-4, steps=300)
    assert (predict(fit, x).argmax(axis=1) == labels).all()


def test_training_without_the_train_extra_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.setitem(sys.modules, "scipy", None)  # import scipy now raises ImportError
    with pytest.raises(SystemExit) as exited:
        main(["--out", str(tmp_path / "heads")])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert "missing: scipy" in err and "pip install 'live-call-assist[train]'" in err
    assert not (tmp_path / "heads").exists()  # nothing started


def _verdicts(flagged: list[bool]) -> Verdicts:
    n = len(flagged)
    return Verdicts(np.array(flagged), np.array(flagged, int), np.zeros(n), np.zeros(n, bool))


def test_recognition_errors_split_lines_by_their_own_word_error_rate() -> None:
    task = next(task for task in TASKS if task.name == "negative_phrasing")
    written = [
        Line("I can't do that for you today.", "cant_wont"),  # heard exactly
        Line("There's not much I can change on that bill.", "cant_wont"),  # 1 of 9 lost
        Line("That isn't something we offer.", "cant_wont"),  # 3 of 5 words wrong
        Line("Let me check that for you.", "none"),  # garbled into a negative
    ]
    heard = [
        Line("I can't do that for you today.", "cant_wont"),
        Line("There's much I can change on that bill.", "cant_wont"),
        Line("That's something we can offer.", "cant_wont"),
        Line("Let me not check that.", "none"),
    ]
    said = _verdicts([True, True, True, False])  # every written line decided right
    got = _verdicts([True, False, False, True])  # three turned wrong by what was heard

    word_errors = word_errors_by_line(written, heard)
    gap = recognition_errors(task, written, word_errors, said, got)

    assert gap["misheard_over_wer"] == 0.2
    assert gap["heard_well"] == {"n": 2, "positives": 2, "f1_written": 1.0, "f1": round(2 / 3, 4)}
    assert gap["misheard"] == {"n": 2, "positives": 1, "f1_written": 1.0, "f1": 0.0}
    assert (gap["added"], gap["added_misheard"], gap["removed"]) == (3, 2, 0)
    # Misheard lines decided as written: only the second line's miss is left.
    assert gap["f1_misheard_as_written"] == round(2 * (2 / 2) * (2 / 3) / (1 + 2 / 3), 4)
    # A line the head misjudged as written and the recognizer happened to fix counts too.
    missed_as_written = _verdicts([False, True, True, False])
    again = recognition_errors(task, written, word_errors, missed_as_written, got)
    assert (again["added"], again["removed"]) == (3, 1)
