"""``assist assess`` end to end on a folder of synthesized calls in the formats recorders
write: the real models (Silero, Whisper tiny.en, the text heads), worker processes, the
SQLite store, the ledger and the report."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from assist.assess.agents import parse_date
from assist.assess.batch import AssessOptions, AssessSummary, assess
from assist.config import Settings
from assist.store.sqlite import SqliteStore
from assist.synth.truth import expected_cues
from tests.assess.recordings import write_broken, write_call, write_mono_wav
from tests.conftest import synthesized_call
from tests.e2e.helpers import TOLERANCE_S

pytestmark = [pytest.mark.e2e, pytest.mark.speech, pytest.mark.asr]

AGENT_RULE = r"^(?P<agent>a\d+)_(?P<date>\d{4}-\d{2}-\d{2})"
AUDIO_KINDS = {"interruption", "long_hold", "dead_air", "monologue"}
SAID_KINDS = {"interruption", "monologue", "customer_frustration", "negative_phrasing"}
# (file stem, call script, format): every format a recorder may leave, three agents
FOLDER = [
    ("a1_2026-01-05_interruptions", "interruptions", "wav"),
    ("a1_2026-01-06_canary", "fuzz_canary", "mulaw"),
    ("a2_2026-01-05_smooth", "smooth", "alaw"),
    ("a2_2026-01-06_canary", "fuzz_canary", "pair"),
    ("a3_2026-01-05_canary", "fuzz_canary", "flac"),
    ("a3_2026-01-06_smooth", "smooth", "mp3"),
    ("a3_2026-01-07_canary", "fuzz_canary", "opus"),
]


class Batch:
    def __init__(self, root: Path, summary: AssessSummary, records: dict[str, dict[str, Any]]):
        self.root, self.summary, self.records = root, summary, records

    def record_of(self, stem: str) -> dict[str, Any]:
        (record,) = [r for r in self.records.values() if r["call_id"].startswith(stem)]
        return record


@pytest.fixture(scope="module")
def batch(tmp_path_factory: pytest.TempPathFactory) -> Batch:
    root = tmp_path_factory.mktemp("assess")
    calls = root / "recordings"
    for i, (stem, script, kind) in enumerate(FOLDER):
        # sub-folders: the search is recursive
        write_call(calls / f"day{i % 2}", stem, synthesized_call(script), kind)
    write_broken(calls / "a4_2026-01-05_broken.wav")
    write_mono_wav(calls / "a4_2026-01-06_mono.wav", synthesized_call("smooth").audio[:, 1], 8000)
    settings = Settings(store={"path": str(root / "calls.sqlite3")})
    options = AssessOptions(
        [calls], agent_rule=AGENT_RULE, workers=2, out_dir=root / "reports", progress=False
    )
    summary = assess(options, settings)
    store = SqliteStore(root / "calls.sqlite3")
    try:
        records = {r["call_id"]: r for r in store.export()}
    finally:
        store.close()
    return Batch(root, summary, records)


def test_every_format_is_assessed_with_the_cues_of_its_call(batch: Batch) -> None:
    assert batch.summary.found == len(FOLDER) + 2
    assert len(batch.summary.assessed) == len(FOLDER) == len(batch.records)
    for stem, script, kind in FOLDER:
        record = batch.record_of(stem)
        call = synthesized_call(script)
        assert record["agent_id"] == stem.split("_")[0]
        assert record["started_at"] == parse_date(stem.split("_")[1])
        assert record["protocol"] == "assess" and record["status"] == "ended"
        card = record["scorecard"]
        # lossy codecs may pad a few ms; the call's length is kept
        assert abs(card["metrics"]["duration_s"] - call.script.duration_s) < 0.2, kind
        found = [
            (m["kind"], m["media_time_s"]) for m in card["moments"] if m["kind"] in AUDIO_KINDS
        ]
        want = [(c.kind, c.at_s) for c in expected_cues(call, Settings().cues)]
        assert [k for k, _ in sorted(found, key=lambda f: f[1])] == [k for k, _ in want], (
            kind,
            found,
        )
        for (_, at), (_, want_at) in zip(sorted(found, key=lambda f: f[1]), want, strict=True):
            assert abs(at - want_at) <= TOLERANCE_S, (kind, found, want)
        # transcribed by Whisper, judged by the text models: the text skills are scored
        assert {t["channel"] for t in record["transcripts"]} == {"customer", "agent"}, kind
        assert card["skills"]["empathy"]["score"] is not None


def test_broken_and_mono_files_are_reported_and_the_batch_goes_on(batch: Batch) -> None:
    problems = "\n".join(batch.summary.problems)
    assert "a4_2026-01-05_broken.wav: not a readable recording" in problems
    assert "a4_2026-01-06_mono.wav: mono recording refused" in problems
    assert len(batch.summary.problems) == 2


def test_the_baseline_report(batch: Batch) -> None:
    report = json.loads((batch.root / "reports" / "baseline.json").read_text())
    assert report == batch.summary.report
    assert report["calls"] == len(FOLDER) and report["agents"] == 3
    patience = report["skills"]["patience"]
    assert patience["calls"] == len(FOLDER)
    assert sum(patience["distribution"]["histogram"]) == len(FOLDER)
    # agents ranked by their median, best first; the interrupting agent a1 is last or tied
    medians = [a["median"] for a in patience["agents"]]
    assert medians == sorted(medians, reverse=True)
    assert {a["agent_id"] for a in patience["agents"]} == {"a1", "a2", "a3"}
    assert patience["gap"] == round(patience["best_quarter"] - patience["team_mean"], 1)
    # every call with an interruption counts as affected for patience
    interrupted = sum(
        any(m["kind"] == "interruption" for m in r["scorecard"]["moments"])
        for r in batch.records.values()
    )
    assert patience["calls_affected"] == interrupted
    # the two skills to train first: the largest gaps, with why and moments said
    priorities = report["priorities"]
    assert len(priorities) == 2
    gaps = sorted((s["gap"] for s in report["skills"].values()), reverse=True)
    assert [p["gap"] for p in priorities] == gaps[:2]
    for priority in priorities:
        assert f"a gap of {priority['gap']:g} points" in priority["why"]
        assert f"of {priority['calls']} calls" in priority["why"]
        assert priority["examples"], priority
        for example in priority["examples"]:
            if example["kind"] in SAID_KINDS:  # someone talks during these (not dead air)
                assert example["said"], example
    assert any(e.get("said") for p in priorities for e in p["examples"])
    page = (batch.root / "reports" / "baseline.html").read_text()
    assert "Train first" in page and "Agents ranked" in page
    for agent in ("a1", "a2", "a3"):
        assert f"<td>{agent}</td>" in page
    assert report["change"] is None


def test_a_second_run_skips_what_was_assessed(batch: Batch) -> None:
    settings = Settings(store={"path": str(batch.root / "calls.sqlite3")})
    options = AssessOptions(
        [batch.root / "recordings"],
        agent_rule=AGENT_RULE,
        workers=1,
        out_dir=batch.root / "again",
        progress=False,
    )
    summary = assess(options, settings)
    assert summary.assessed == []
    assert sorted(summary.already) == sorted(batch.records)
    assert summary.report is not None and summary.report["calls"] == len(FOLDER)
