"""The committed text models, run for real (onnxruntime, the int8 MiniLM encoder)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from assist.cli import verdict_json
from assist.config import CuesConfig
from assist.text.classify import HEAD_FILES, ModelsMissing, TextClassifier
from assist.text.encoder import FEATURE_DIM, SentenceEncoder
from assist.text.heads import Head, HeadFit, HeadMismatch, export_onnx
from assist.text.train import binary_metrics, read_tsv

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
