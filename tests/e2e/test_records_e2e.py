"""Call records in SQLite through the real server: kept across a restart, kept for a
dropped call, exported as JSON lines; transcripts redacted before anyone sees them."""

from __future__ import annotations

import asyncio
import json
import os
import re
import sqlite3
import subprocess
import sys

import numpy as np
import pytest
from websockets.asyncio.client import connect

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


SECRETS = ("4111111111111111", "5558675309", "77349120")


def _leaks(text: str) -> list[str]:
    """Six digits in a row of a secret, however they were separated."""
    digits = re.sub(r"[\s,.-]", "", text)
    return [s for s in SECRETS for i in range(len(s) - 5) if s[i : i + 6] in digits]


@pytest.mark.speech
@pytest.mark.asr
async def test_spoken_numbers_never_reach_the_database_or_the_floor_unredacted(tmp_path):
    """Real speech, real Whisper: digits read out one by one are redacted everywhere."""
    settings = make_settings(
        store={"backend": "sqlite", "path": str(tmp_path / "calls.sqlite3")},
        asr={"enabled": True, "stale_after_s": 600, "max_queue": 512},
    )
    running = await start_server(settings)
    floor_events: list[str] = []
    try:
        async with connect(f"{running.ws}/v1/floor/events") as floor:

            async def watch_floor() -> None:
                async for text in floor:
                    floor_events.append(str(text))

            watcher = asyncio.create_task(watch_floor())
            result = await stream_rendered(running.ws, synthesized_call("pii"), "pii-2")
            watcher.cancel()
    finally:
        await running.server.close()

    agent_texts = [e["text"] for e in result.events if e["type"] == "transcript" and e["final"]]
    said = " ".join(agent_texts)
    # the numbers were heard (and so had to be redacted), not just missed by the recognizer
    assert "[card]" in said or said.count("[number]") >= 2, said
    assert "[phone]" in said or "[number]" in said, said
    assert floor_events and not any(_leaks(e) for e in floor_events)
    assert not any(_leaks(json.dumps(e)) for e in result.events)
    with sqlite3.connect(tmp_path / "calls.sqlite3") as db:
        dump = "\n".join(db.iterdump())
    assert "[card]" in dump or "[number]" in dump
    assert _leaks(dump) == []
