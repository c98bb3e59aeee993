"""The retraining loop end to end: a text nudge the agent marks "Not right" over a real
WebSocket is stored with its sentence, ``assist export --feedback`` writes it as a training
line, and ``assist train-text --extra`` trains on it (a small sample of the data)."""

from __future__ import annotations

import asyncio
import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest
from websockets.asyncio.client import connect as ws_connect

from tests.conftest import make_settings, start_server, synthesized_call
from tests.e2e.helpers import stream_rendered

pytestmark = [pytest.mark.e2e, pytest.mark.asr, pytest.mark.train]

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "models" / "data"


def _assist(*args: str) -> subprocess.CompletedProcess[str]:
    run = subprocess.run(
        [sys.executable, "-m", "assist.cli", *args], capture_output=True, text=True, timeout=600
    )
    assert run.returncode == 0, run.stderr
    return run


def _small_sample(folder: Path, rows: int = 80) -> Path:
    """The first ``rows`` lines of each labelled file (enough to train and score a head)."""
    folder.mkdir()
    for path in DATA.glob("*.tsv"):
        lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
        (folder / path.name).write_text("".join(lines[: rows + 1]), encoding="utf-8")
    return folder


async def test_not_right_feedback_is_exported_and_trained_on(tmp_path):
    db = tmp_path / "calls.sqlite3"
    asr = {"enabled": True, "stale_after_s": 600, "max_queue": 512}
    running = await start_server(
        make_settings(asr=asr, store={"backend": "sqlite", "path": str(db)})
    )
    try:
        call = synthesized_call("frustrated_customer")
        result = await stream_rendered(running.ws, call, "fb-call", agent_id="fb-agent")
        nudge = next(n for n in result.nudges if n["kind"] == "customer_frustration")
        said = nudge["evidence"]["details"]["quote"]
        async with ws_connect(f"{running.ws}/v1/agents/fb-agent/events") as events:
            assert json.loads(await events.recv())["type"] == "subscribed"
            feedback = {"type": "feedback", "action": "not_right", "call_id": "fb-call",
                        "kind": nudge["kind"], "nudge_id": nudge["id"]}  # fmt: skip
            await events.send(json.dumps(feedback))
            metric = running.service.metrics.feedback
            for _ in range(500):  # taken in on the server's own time: wait, bounded
                if metric.get(kind="customer_frustration", action="not_right"):
                    break
                await asyncio.sleep(0.01)
            else:
                raise AssertionError("feedback never arrived")
    finally:
        await running.server.close()  # the store is flushed and closed

    config = tmp_path / "assist.toml"
    config.write_text(f'[store]\nbackend = "sqlite"\npath = "{db}"\n')
    exported = tmp_path / "feedback.tsv"
    run = _assist("export", "--feedback", "--config", str(config), "--out", str(exported))
    assert "exported 1 line(s)" in run.stderr
    with exported.open(encoding="utf-8", newline="") as fh:
        (line,) = list(csv.DictReader(fh, delimiter="\t", quoting=csv.QUOTE_NONE))
    assert line["text"] == said and "real problem" in said
    assert (line["label"], line["head"], line["flagged"]) == (
        "neutral", "customer_frustration", "frustrated")  # fmt: skip
    assert (line["call_id"], line["nudge_id"]) == ("fb-call", nudge["id"])

    out = tmp_path / "models"
    data = _small_sample(tmp_path / "data")
    run = _assist("train-text", "--only", "customer_frustration", "--data", str(data),
                  "--extra", str(exported), "--out", str(out))  # fmt: skip
    report = json.loads((out / "customer_frustration.metrics.json").read_text())
    assert report["training"]["sources"]["extra:feedback.tsv"] == 1
    # the shipped fine-tuned top was trained on other lines: left out, and said so
    assert "trained on other lines" in run.stderr and "top" not in report
    assert not (out / "customer_frustration.top.onnx").exists()
    assert "reviewed agent feedback" in (out / "customer_frustration.md").read_text()
