"""Call records in SQLite through the real server: kept across a restart, kept for a
dropped call, exported as JSON lines; transcripts redacted before anyone sees them."""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from websockets.asyncio.client import connect

from assist.config import Settings
from assist.pipeline import CallPipeline
from assist.redact import digit_runs
from assist.replay import ReplayResult, replay_wav
from assist.vad.silero import SileroModel
from assist.vocabulary import CallSpec, Recognized, UtteranceAudio, Word
from tests.conftest import RunningServer, make_settings, start_server, synthesized_call
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
SHARED = Path(__file__).resolve().parents[2].parent / "shared"
F06 = SHARED / "field" / "F06-card-number-in-groups"
F06_SECRETS = ("4111111111111111", "1227", "737")  # card, expiry, security code


def _strings(value: Any) -> Iterator[str]:
    """Every string inside a JSON value (JSON text inside a string opened too)."""
    if isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _strings(item)
    elif isinstance(value, str):
        try:
            inner = json.loads(value)
        except ValueError:
            yield value
        else:
            if isinstance(inner, dict | list):
                yield from _strings(inner)
            else:
                yield value


def _leaks(secrets: tuple[str, ...], *texts: str) -> list[str]:
    """Pieces of 3 digits of a secret readable in one text, or in all of them read in a
    row, however the recognizer wrote the digits ("4-1-1-1", "four one", "double one")."""
    runs = ["".join(digit_runs(text)) for text in texts]
    found = []
    for secret in secrets:
        pieces = {secret[i : i + 3] for i in range(len(secret) - 2)}
        found += [
            f"{p} in {t!r}" for t, d in zip(texts, runs, strict=True) for p in pieces if p in d
        ]
        found += [f"{p} across transcripts" for p in pieces if p in "".join(runs)]
    return found


def _stored_strings(path: Path) -> list[str]:
    with sqlite3.connect(path) as db:
        tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        rows = [row for table in tables for row in db.execute(f"SELECT * FROM {table}")]
    return list(_strings([[cell for cell in row if isinstance(cell, str)] for row in rows]))


def _final_texts(events: list[dict[str, Any]], channel: str) -> list[str]:
    finals = [e for e in events if e["type"] == "transcript" and e["final"]]
    return [
        e["text"] for e in sorted(finals, key=lambda e: e["start_s"]) if e["channel"] == channel
    ]


async def _stream_with_floor(
    settings: Settings, send: Callable[[RunningServer], Awaitable[ReplayResult]], call_id: str
) -> tuple[ReplayResult, list[str], dict[str, Any]]:
    """Stream one call through a real server; (agent events, floor events, stored record)."""
    running = await start_server(settings)
    floor_events: list[str] = []
    try:
        async with connect(f"{running.ws}/v1/floor/events") as floor:

            async def watch_floor() -> None:
                async for text in floor:
                    floor_events.append(str(text))

            watcher = asyncio.create_task(watch_floor())
            result = await send(running)
            watcher.cancel()
        status, record = await http_get_json(f"{running.http}/v1/calls/{call_id}")
        assert status == 200, record
    finally:
        await running.server.close()
    return result, floor_events, record


def _assert_nothing_recoverable(
    secrets: tuple[str, ...],
    result: ReplayResult,
    floor_events: list[str],
    record: dict[str, Any],
    db_path: Path,
) -> None:
    customer = _final_texts(result.events, "customer")
    # the numbers were heard (and so had to be redacted), not just missed by the recognizer
    assert any(tag in " ".join(customer) for tag in ("[card]", "[number]", "[phone]")), customer
    assert _leaks(secrets, *customer) == [], customer
    assert _leaks(secrets, *_final_texts(result.events, "agent")) == []
    assert floor_events
    published = [*_strings(result.events), *_strings([json.loads(e) for e in floor_events])]
    assert [leak for text in published for leak in _leaks(secrets, text)] == []
    stored = [*_strings(record), *_stored_strings(db_path)]
    assert [leak for text in stored for leak in _leaks(secrets, text)] == []
    stored_customer = [t["text"] for t in record["transcripts"] if t["channel"] == "customer"]
    assert _leaks(secrets, *stored_customer) == [], stored_customer


@pytest.mark.speech
@pytest.mark.asr
async def test_spoken_numbers_never_reach_the_database_or_the_floor_unredacted(tmp_path):
    """Real speech, real Whisper: digits read out one by one are redacted everywhere, however
    the recognizer splits or spells them."""
    settings = make_settings(
        store={"backend": "sqlite", "path": str(tmp_path / "calls.sqlite3")},
        asr={"enabled": True, "stale_after_s": 600, "max_queue": 512},
    )
    call = synthesized_call("pii")
    result, floor_events, record = await _stream_with_floor(
        settings, lambda running: stream_rendered(running.ws, call, "pii-2"), "pii-2"
    )
    _assert_nothing_recoverable(SECRETS, result, floor_events, record, tmp_path / "calls.sqlite3")


@pytest.mark.asr
async def test_field_f06_a_card_read_in_groups_is_never_published_or_stored(tmp_path):
    """Field case F06 (real recording, real Whisper): a card read in four groups of four with
    the agent's "okay" in between, then the expiry and the security code, each its own
    utterance; none of their digits reaches the agent stream, the floor or the store."""
    if not (F06 / "input.wav").exists():
        pytest.skip(f"field recordings not found: {F06} (clone the shared folder beside the repo)")
    settings = make_settings(
        store={"backend": "sqlite", "path": str(tmp_path / "calls.sqlite3")},
        asr={"enabled": True, "stale_after_s": 600, "max_queue": 512},
    )
    result, floor_events, record = await _stream_with_floor(
        settings,
        lambda running: replay_wav(F06 / "input.wav", running.ws, "a1", "field-F06", speed=0),
        "field-F06",
    )
    assert result.error is None, result.error
    _assert_nothing_recoverable(
        F06_SECRETS, result, floor_events, record, tmp_path / "calls.sqlite3"
    )
