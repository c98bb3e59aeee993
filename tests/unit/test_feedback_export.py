"""`assist export --feedback`: text nudges marked "Not right" become training lines that
`assist train-text --extra` reads back, per head."""

from __future__ import annotations

import io

import pytest

from assist.text.feedback import feedback_lines, read_extra, write_feedback_tsv


def _nudge(n: int, kind: str, details: dict, measured: float = 0.9) -> dict:
    return {"id": f"c1-{n}", "call_id": "c1", "kind": kind,
            "evidence": {"measured": measured, "details": details}}  # fmt: skip


POLICY = {
    "category": "policy",
    "quote": "policy",
    "sentence": "It's our\tpolicy\nto help.",
    "text": "Sure. It's our policy to help.",
}
RECORD = {
    "call_id": "c1",
    "nudges": [
        _nudge(1, "negative_phrasing", POLICY),
        _nudge(2, "customer_frustration", {"quote": "Not bad at all, thanks.", "text": "x"}),
        _nudge(3, "interruption", {}),
        _nudge(4, "negative_phrasing", {"category": "blame", "sentence": "Got it right."}),
        _nudge(5, "customer_frustration", {"quote": "Changed my mind."}),
    ],
    "feedback": [
        {"nudge_id": "c1-1", "action": "not_right"},
        {"nudge_id": "c1-2", "action": "not_right"},
        {"nudge_id": "c1-3", "action": "not_right"},  # an audio cue: no sentence to train on
        {"nudge_id": "c1-4", "action": "got_it"},  # the agent agreed
        {"nudge_id": "c1-5", "action": "not_right"},
        {"nudge_id": "c1-5", "action": "got_it"},  # the last word counts
    ],
}


def test_not_right_text_nudges_become_lines_with_their_sentence_and_clear_label():
    lines = list(feedback_lines([RECORD]))
    assert [(x["nudge_id"], x["head"], x["label"], x["flagged"]) for x in lines] == [
        ("c1-1", "negative_phrasing", "none", "policy"),
        ("c1-2", "customer_frustration", "neutral", "frustrated"),
    ]
    assert lines[0]["text"] == "It's our policy to help."  # the sentence, on one line
    assert lines[1]["text"] == "Not bad at all, thanks." and lines[1]["score"] == "0.900"


def test_the_export_reads_back_per_head_and_plain_training_files_too(tmp_path):
    out = io.StringIO()
    assert write_feedback_tsv(feedback_lines([RECORD]), out) == 2
    path = tmp_path / "feedback.tsv"
    path.write_text(out.getvalue(), encoding="utf-8")
    assert read_extra(path, "negative_phrasing") == [("It's our policy to help.", "none")]
    assert read_extra(path, "customer_frustration") == [("Not bad at all, thanks.", "neutral")]
    assert read_extra(path, "empathy") == []
    plain = tmp_path / "plain.tsv"
    plain.write_text("text\tlabel\nWe can't do that.\tcan_t\n", encoding="utf-8")
    assert read_extra(plain, "negative_phrasing") == [("We can't do that.", "can_t")]
    bad = tmp_path / "bad.tsv"
    bad.write_text("sentence\tlabel\nx\ty\n", encoding="utf-8")
    with pytest.raises(ValueError, match="text and label"):
        read_extra(bad, "negative_phrasing")
