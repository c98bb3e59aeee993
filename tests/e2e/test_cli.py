"""The command line as a user runs it: real processes, real ports."""

from __future__ import annotations

import asyncio
import json
import os
import re
import socket
import subprocess
import sys

import pytest

from assist.cli import _format_event, demo_call_path

pytestmark = pytest.mark.e2e
ASSIST = [sys.executable, "-m", "assist.cli"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_demo_prints_nudges_urls_and_scorecard():
    # 30x real time on a loaded 2-core machine can fall behind the default 5 s ingest queue
    # (a live line never sends faster than real time): a deep queue keeps every frame.
    env = {**os.environ, "ASSIST_LIMITS__INGEST_QUEUE_S": "3600"}
    run = subprocess.run(
        [*ASSIST, "demo", "--speed", "30"], capture_output=True, text=True, timeout=180, env=env
    )
    assert run.returncode == 0, run.stderr
    out = run.stdout
    assert re.search(r"agent events\s+ws://127\.0\.0\.1:\d+/v1/agents/demo-agent/events", out)
    assert re.search(r"floor events\s+ws://127\.0\.0\.1:\d+/v1/floor/events", out)
    assert re.search(r"agent page\s+http://127\.0\.0\.1:\d+/agent\?agent_id=demo-agent", out)
    assert re.search(r"floor page\s+http://127\.0\.0\.1:\d+/floor", out)
    nudges = re.findall(r"NUDGE (\w+)", out)
    audio_cues = [n for n in nudges if n in ("interruption", "long_hold", "dead_air", "monologue")]
    assert audio_cues == ["interruption", "long_hold", "dead_air"]
    # what the text cues raise depends on what Whisper makes of the call at 30x
    assert set(nudges) - set(audio_cues) <= {"negative_phrasing", "customer_frustration", "pace"}
    # the customer's "No, that is all." answers "anything else?": a close, not frustration
    assert not re.search(r"NUDGE .*that is all", out, re.I)
    assert "Scorecard:" in out and "patience" in out


@pytest.mark.parametrize(
    ("text", "printed"),
    [("Okay, have you tried restarting the router?", True), ("", False), (" ", False)],
)
def test_the_demo_prints_finals_with_words_only(text: str, printed: bool) -> None:
    final = {"type": "transcript", "final": True, "channel": "agent", "text": text}
    line = _format_event(final, 9.34)
    assert (line == f"[   9.34s]    agent: {text}") if printed else line is None
    assert _format_event({**final, "final": False}, 9.34) is None  # partials: never


async def test_serve_then_replay_a_wav(tmp_path):
    port = _free_port()
    env = {
        **os.environ,
        "ASSIST_LIMITS__INGEST_QUEUE_S": "3600",
        "ASSIST_STORE__PATH": str(tmp_path / "calls.sqlite3"),
        "ASSIST_ASR__ENABLED": "false",  # the audio cues: what the text cues say is elsewhere
    }
    server = await asyncio.create_subprocess_exec(
        *ASSIST,
        "serve",
        "--port",
        str(port),
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        assert server.stdout is not None
        async with asyncio.timeout(60):
            while b"assist serving on" not in (line := await server.stdout.readline()):
                assert line, "server exited before serving"
        replay = await asyncio.create_subprocess_exec(
            *ASSIST,
            "replay",
            str(demo_call_path()),
            "--agent-id",
            "a-9",
            "--speed",
            "0",
            "--url",
            f"ws://127.0.0.1:{port}",
            stdout=asyncio.subprocess.PIPE,
        )
        out, _ = await asyncio.wait_for(replay.communicate(), 120)
        assert replay.returncode == 0
        assert re.findall(r"NUDGE (\w+)", out.decode()) == ["interruption", "long_hold", "dead_air"]
    finally:
        server.terminate()
        await server.wait()
    assert server.returncode == 0  # SIGTERM is a clean shutdown


def test_replay_refuses_a_mono_wav(tmp_path):
    import wave

    path = tmp_path / "mono.wav"
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(8000)
        wav.writeframes(bytes(1600))
    run = subprocess.run(
        [*ASSIST, "replay", str(path), "--agent-id", "a", "--url", "ws://127.0.0.1:9"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 2
    assert "need a 16-bit stereo WAV" in run.stderr


def test_classify_reads_lines_and_writes_json_verdicts():
    lines = "I can't refund that.\n\nNo problem at all, happy to help.\n"
    run = subprocess.run(
        [*ASSIST, "classify", "--speaker", "agent"],
        input=lines,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    flagged, fine = (json.loads(line) for line in run.stdout.splitlines())  # blank skipped
    assert flagged["text"] == "I can't refund that."
    assert flagged["kind"] == "negative_phrasing"
    assert flagged["category"] == "cant_wont"
    assert flagged["suggestion"].startswith("While I'm not able to refund that")
    assert flagged["score"] >= flagged["threshold"]
    assert fine["kind"] is None and fine["category"] is None and fine["suggestion"] is None
    customer = subprocess.run(
        [*ASSIST, "classify", "--speaker", "customer"],
        input="This is ridiculous, I've called five times and nobody helps!\n",
        capture_output=True,
        text=True,
        timeout=120,
    )
    (verdict,) = (json.loads(line) for line in customer.stdout.splitlines())
    assert verdict["kind"] == "customer_frustration" and verdict["suggestion"]


def test_classify_without_models_says_how_to_build_them(tmp_path):
    run = subprocess.run(
        [*ASSIST, "classify", "--speaker", "agent", "--models", str(tmp_path)],
        input="hello\n",
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 2
    assert "assist train-text" in run.stderr
