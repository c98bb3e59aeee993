"""The fine-tuned top (assist.text.top, assist.text.fine_tune): how it joins its head live
and in ``assist classify``, what ``assist train-text`` accepts from ``assist
fine-tune-text``, and (where torch is installed) that the exported graph computes what
was trained."""

from __future__ import annotations

import copy
import importlib.util
import json
import logging
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest

from assist.text import fine_tune
from assist.text.classify import TextClassifier
from assist.text.encoder import SentenceEncoder, pad_states
from assist.text.heads import move_threshold
from assist.text.second_opinion import JudgingHead
from assist.text.top import (
    OOF_SUFFIX,
    TOP_SUFFIX,
    FineTunedTop,
    TopMismatch,
    averaged,
    copy_with_metadata,
    lines_sha256,
)
from assist.text.train import (
    TASKS,
    Dataset,
    Task,
    TrainedHead,
    build_dataset,
    fit_top_average,
    fold_assignments,
    model_card,
    normalized,
    read_lines,
    read_tsv,
)

ROOT = Path(__file__).resolve().parents[2]
MODELS = ROOT / "assist" / "models"
DATA = ROOT / "models" / "data"
SHARED = ROOT.parent / "shared" / "data"
NEGATIVE = next(task for task in TASKS if task.name == "negative_phrasing")
SENTENCES = [
    "I can't do that, it's our policy.",
    "Take all the time you want, it's not like I have a job.",
    "Let me check that for you right away.",
    "There's no reason you can't keep your plan.",
    "Unfortunately that's not something I can change.",
]


@pytest.fixture(scope="module")
def classifier() -> TextClassifier:
    return TextClassifier()


def test_moving_a_threshold_maps_it_exactly_and_keeps_the_flag_classes_mix() -> None:
    probabilities = np.array([[0.6, 0.3, 0.1], [0.2, 0.2, 0.6], [1.0, 0.0, 0.0]])
    moved = move_threshold(probabilities, source=0.4, target=0.6)
    # a flag score at the source lands on the target; order and the mix are kept
    assert 1 - moved[0, 0] == pytest.approx(0.6)
    assert 1 - moved[1, 0] > 0.6 and moved[2, 0] > 0.999
    assert moved[0, 1] / moved[0, 2] == pytest.approx(3.0)
    assert moved.sum(axis=1) == pytest.approx(1.0, abs=1e-5)  # flag scores clipped at 1e-6


def test_the_packaged_negative_phrasing_top_is_averaged_with_the_cascade(
    classifier: TextClassifier,
) -> None:
    """What the service scores is ``averaged(cascade, top)`` at the top's weight and
    threshold, mapped onto the head's threshold (``assist.text.top``); the top moves the
    scores, and classify's scores are the same whether a sentence comes alone or in a
    batch."""
    head = classifier.negative_phrasing
    assert head.top is not None and head.top.labels == head.labels
    assert head.top.weight == NEGATIVE.top_weight and head.top.threshold is not None
    encoder = classifier.encoder
    features, states = encoder.encode_with_states(SENTENCES)
    judged = classifier.score("agent", SENTENCES)
    without_top = copy.copy(head)
    without_top.top = None
    cascade, asked = without_top.probabilities(SENTENCES, features, encoder.with_e5)
    top = head.top.probabilities(states)
    expected = averaged(cascade, top, head.top.weight, head.top.threshold, head.threshold)
    assert [s.phrasing_score for s in judged] == pytest.approx(1 - expected[:, 0], abs=1e-5)
    assert [s.second_opinion for s in judged] == asked.tolist()
    assert np.abs(expected[:, 0] - cascade[:, 0]).max() > 1e-3
    one_by_one = [classifier.score("agent", [text])[0].phrasing_score for text in SENTENCES]
    assert one_by_one == pytest.approx([s.phrasing_score for s in judged], abs=1e-5)


def test_a_head_with_a_top_needs_the_token_states(classifier: TextClassifier) -> None:
    head = classifier.negative_phrasing
    features = classifier.encoder.encode(SENTENCES[:1])
    with pytest.raises(ValueError, match="token states"):
        head.probabilities(SENTENCES[:1], features, classifier.encoder.with_e5)


def _heads_with_a_top(folder: Path, **props: str | None) -> Path:
    """Negative phrasing's packaged head files in ``folder`` with its top, whose metadata
    ``props`` are changed (None: removed)."""
    for name in ("negative_phrasing.onnx", "negative_phrasing.second.onnx"):
        shutil.copy(MODELS / name, folder / name)
    top = f"negative_phrasing{TOP_SUFFIX}"
    copy_with_metadata(MODELS / top, folder / top, props)
    return folder


@pytest.mark.parametrize(
    ("props", "message"),
    [
        ({"weight": None, "threshold": None}, "weight and a threshold"),  # as fine-tuned
        ({"labels": json.dumps(["none", "negative"])}, "same labels"),
        ({"input": "minilm-l6-int8 layer3 token states"}, "reads"),
    ],
)
def test_a_top_that_does_not_fit_its_head_is_refused_at_start(
    tmp_path: Path, props: dict[str, str | None], message: str
) -> None:
    folder = _heads_with_a_top(tmp_path, **props)
    with pytest.raises(TopMismatch, match=message):
        JudgingHead(folder, "negative_phrasing")


def _small_head(rows: list[tuple[str, str]]) -> TrainedHead:
    """A trained head's record for the lines ``rows`` (text, label) with made-up
    out-of-fold predictions: the flag score follows the label, with overlap (so a
    threshold matters)."""
    dataset = Dataset(set())
    dataset.add(rows, NEGATIVE, "test")
    labels = np.array(dataset.labels)
    rng = np.random.default_rng(0)
    flag = np.where(labels > 0, 0.65, 0.35) + rng.normal(0, 0.15, len(labels))
    flag = np.clip(flag, 0.01, 0.99)
    oof = np.zeros((len(labels), len(NEGATIVE.labels)))
    oof[:, 0] = 1 - flag
    oof[np.arange(len(labels)), np.maximum(labels, 1)] += flag
    return TrainedHead(None, 0.5, {}, dataset, [oof])  # type: ignore[arg-type]


def _fine_tuned_for(folder: Path, head: TrainedHead, digest: str, top_flag: np.ndarray) -> None:
    """A fine-tuned top's two files as ``assist fine-tune-text`` writes them, for lines
    of hash ``digest``."""
    top = f"negative_phrasing{TOP_SUFFIX}"
    changes = {"weight": None, "threshold": None, "lines_sha256": digest}
    copy_with_metadata(MODELS / top, folder / top, changes)
    oof = np.zeros_like(head.oofs[0])
    oof[:, 0] = 1 - top_flag
    oof[:, 1] = top_flag
    np.savez_compressed(
        folder / f"negative_phrasing{OOF_SUFFIX}", probabilities=oof, lines_sha256=np.array(digest)
    )


def test_train_text_takes_a_top_only_for_the_lines_it_was_fine_tuned_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    rows = read_tsv(DATA / "negative_phrasing.train.tsv")[:200]
    head = _small_head(rows)
    truth = np.array(head.dataset.labels) > 0
    assert 0 < truth.sum() < len(truth)
    # a top that separates the lines better than the head does
    _fine_tuned_for(tmp_path, head, lines_sha256(head.dataset), np.where(truth, 0.9, 0.1))
    accepted = fit_top_average(NEGATIVE, head, tmp_path)
    assert accepted is not None and accepted.weight == NEGATIVE.top_weight
    assert accepted.cv["f1"] > accepted.head_cv["f1"]
    assert 0.2 <= accepted.threshold <= 0.95
    # another line, or another label, and the top is left out with a warning
    text, label = rows[-1]
    other = NEGATIVE.labels[1] if label in ("__none__", NEGATIVE.labels[0]) else "__none__"
    with caplog.at_level(logging.WARNING, logger="assist.text.train"):
        changed = _small_head([*rows[:-1], ("One more line, a new one.", "__none__")])
        assert fit_top_average(NEGATIVE, changed, tmp_path) is None
        relabelled = _small_head([*rows[:-1], (text, other)])
        assert fit_top_average(NEGATIVE, relabelled, tmp_path) is None
    assert caplog.text.count("trained on other lines") == 2
    # no files at all: the head decides alone
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="assist.text.train"):
        assert fit_top_average(NEGATIVE, head, tmp_path / "none") is None
    assert "no fine-tuned top" in caplog.text


@pytest.mark.parametrize("task", [t for t in TASKS if t.top_weight], ids=lambda t: t.name)
def test_the_shipped_top_is_the_fine_tuned_one_for_todays_lines(task: Task) -> None:
    """``assist/models``' top is ``models/tops``' graph with its weight and threshold
    added, and both were made for the lines the head trains on now, with the recognizer
    copies the task names (none for a task without ``top_heard``)."""
    shipped = FineTunedTop(MODELS / f"{task.name}{TOP_SUFFIX}")
    source = FineTunedTop(ROOT / "models" / "tops" / f"{task.name}{TOP_SUFFIX}")
    assert source.weight is None and shipped.lines_sha256 == source.lines_sha256
    assert set(shipped.recognizer_copies) == set(source.recognizer_copies) == set(task.top_heard)
    assert shipped.weight == task.top_weight and shipped.labels == list(task.labels)
    a, b = onnx.load(str(shipped.path)), onnx.load(str(source.path))
    assert a.graph == b.graph
    with np.load(ROOT / "models" / "tops" / f"{task.name}{OOF_SUFFIX}") as saved:
        assert str(saved["lines_sha256"]) == source.lines_sha256
    dataset = build_dataset(task, DATA, SHARED, None, task.own_extra)
    assert lines_sha256(dataset) == source.lines_sha256
    card = json.loads((MODELS / f"{task.name}.metrics.json").read_text())
    assert card["top"]["lines_sha256"] == shipped.lines_sha256
    assert card["top"]["weight"] == shipped.weight and card["top"]["threshold"] == shipped.threshold


@pytest.mark.parametrize("task", [t for t in TASKS if t.top_heard], ids=lambda t: t.name)
def test_the_top_also_trains_on_what_whisper_heard_of_the_heads_lines(task: Task) -> None:
    """The top's lines are the head's (first, same hash), then recognizer copies of them:
    each of a line with its label, in its line's fold, none a held-out text; the shipped
    top was trained on the copies the task names."""
    dataset, written, digest = fine_tune.top_training_lines(task, DATA, SHARED)
    head = build_dataset(task, DATA, SHARED, None, task.own_extra)
    assert dataset.texts[:written] == head.texts and digest == lines_sha256(head)
    copy_of, labels = np.array(dataset.copy_of), np.array(dataset.labels)
    assert (copy_of[:written] == -1).all() and (copy_of[written:] >= 0).all()
    assert (copy_of[written:] < written).all()
    assert (labels[written:] == labels[copy_of[written:]]).all()
    assert all(dataset.sources[source] > 0 for source in task.top_heard)
    heldout = read_lines(DATA / f"{task.name}.heldout.tsv") + read_lines(
        DATA / "hard_cases.heldout.tsv"
    )
    assert not {normalized(t) for t in dataset.texts} & {normalized(x.text) for x in heldout}
    folds = fold_assignments(labels, repeats=1, copy_of=copy_of)[0]
    assert (folds[:written] == fold_assignments(labels[:written], repeats=1)[0]).all()
    assert (folds[written:] == folds[copy_of[written:]]).all()
    top = FineTunedTop(ROOT / "models" / "tops" / f"{task.name}{TOP_SUFFIX}")
    assert top.recognizer_copies == {s: dataset.sources[s] for s in task.top_heard}


def test_the_card_names_the_voices_of_the_copies_the_top_trained_on() -> None:
    """The card's sentence on the copies names the voices of its sources, one or both."""
    report = json.loads((MODELS / "negative_phrasing.metrics.json").read_text())
    both = model_card(report, report["probes"])
    assert "heard of them in Piper's and espeak-ng's voices over the phone band" in both
    report["top"]["recognizer_copies"] = {"negative_phrasing.train.piper": 303}
    one = model_card(report, report["probes"])
    assert "trained on 303 of their recognizer copies (negative_phrasing.train.piper 303)" in one
    assert "heard of them in Piper's voice over the phone band" in one
    report["top"]["recognizer_copies"] = {}
    assert "recognizer copies" not in model_card(report, report["probes"])


def test_fine_tuning_without_torch_says_what_to_install() -> None:
    if importlib.util.find_spec("torch") is not None:
        pytest.skip("torch is installed here: the message is for where it is not")
    run = subprocess.run(
        [sys.executable, "-m", "assist.cli", "fine-tune-text", "--out", "/nonexistent/tops"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 2
    assert "pip install 'live-call-assist[finetune]'" in run.stderr
    assert not Path("/nonexistent/tops").exists()


def test_the_exported_top_computes_what_torch_trained(tmp_path: Path) -> None:
    """Where torch is installed (the ``finetune`` extra): the dequantized layers reproduce
    the package graph, and the int8 export scores as the trained module does."""
    torch = pytest.importorskip("torch")
    classifier_encoder = SentenceEncoder(1)
    layers = fine_tune.load_layers()
    assert fine_tune.check_layers(layers, classifier_encoder) < fine_tune.REPRODUCE_TOL
    texts = SENTENCES * 4
    labels = np.array([1, 1, 0, 0, 1] * 4)
    states = classifier_encoder.token_states_many(texts)
    model = fine_tune.fit_top(layers, states, labels, 2, np.arange(len(texts)), epochs=1)
    path = tmp_path / f"negative_phrasing{TOP_SUFFIX}"
    meta = {"labels": json.dumps(["none", "negative"]), "input": fine_tune.TOP_RECIPE}
    fine_tune.export_top(model, path, meta)
    padded = pad_states(states[:5])
    with torch.no_grad():
        logits = model(torch.tensor(padded.states), torch.tensor(padded.mask))
        expected = torch.softmax(logits, -1).numpy()
    assert FineTunedTop(path).probabilities(padded) == pytest.approx(expected, abs=0.03)
