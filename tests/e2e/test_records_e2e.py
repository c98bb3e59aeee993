"""Call records in SQLite through the real server: kept across a restart, kept for a
dropped call, exported as JSON lines; transcripts redacted before anyone sees them."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from assist.asr.pool import Recognized, Word
from assist.asr.segmenter import UtteranceAudio
from assist.config import Settings
from assist.pipeline import CallPipeline, CallSpec
from assist.vad.silero import SileroModel
from tests.conftest import make_settings, start_server, synthesized_call
from tests.e2e.helpers import http_get_json, stream_rendered

pytestmark = pytest.mark.e2e


def sqlite_settings(tmp_path):
    return make_settings(store={"backend": "sqlite", "path": str(tmp_path / "calls.sqlite3")})


@pytest.mark.speech
async def test_records_survive_a_restart_and_export(tmp_path):
    call = synthesized_call("dead_air")
    first = await start_server(sqlite_settings(tmp_path))
    try:
        await stream_rendered(first.ws, call, "before-restart", agent_id="a-1")
    finally:
        await first.server.close()
    second = await start_server(sqlite_settings(tmp_path))
    try:
        await stream_rendered(second.ws, call, "after-restart", agent_id="a-2")
        for call_id in ("before-restart", "after-restart"):
            status, record = await http_get_json(f"{second.http}/v1/calls/{call_id}")
            assert status == 200 and record["status"] == "ended"
            assert [n["kind"] for n in record["nudges"]] == ["dead_air", "dead_air"]
            assert record["scorecard"]["metrics"]["dead_air_moments"] == 2
    finally:
        await second.server.close()
    env = {**os.environ, "ASSIST_STORE__PATH": str(tmp_path / "calls.sqlite3")}
    exported = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "assist.cli", "export"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    lines = [json.loads(line) for line in exported.stdout.splitlines()]
    assert [r["call_id"] for r in lines] == ["before-restart", "after-restart"]
    assert "exported 2 call(s)" in exported.stderr


def test_transcripts_are_redacted_before_publishing_or_storing():
    spec = CallSpec("pii-1", "a-1", 8000, "pcm16", ("customer", "agent"))
    pipeline = CallPipeline(Settings(), SileroModel(), spec, asr=True)
    said = "Sure, my card is 4111 1111 1111 1111 and my email is jo@example.com"
    words = [Word(w, i * 0.3, i * 0.3 + 0.25, 0.9) for i, w in enumerate(said.split())]
    utterance = UtteranceAudio("customer", 0, 1.0, 6.0, np.zeros(10, dtype=np.float32), True, 5.0)
    out = pipeline.on_transcript(utterance, Recognized(said, words))
    (transcript,) = out.transcripts
    assert transcript.text == "Sure, my card is [card] and my email is [email]"
    assert not any(ch.isdigit() or "@" in w.word for w in transcript.words for ch in w.word)
    assert pipeline.transcripts == [transcript]
