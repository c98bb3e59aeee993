"""Graceful shutdown of a real ``assist serve``: SIGTERM (or SIGINT) while a native call and an
AudioHook session are live ends both as if their clients had ended them (native: ``stopped``
with the scorecard and a normal close; AudioHook: ``disconnect`` with reason ``completed``),
writes both records (``ended``, scorecard kept), and the process exits 0."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sys
from pathlib import Path

import pytest
from websockets.asyncio.client import connect

from assist.cli import demo_call_path
from assist.replay import encode_frames, read_stereo_wav
from assist.store.sqlite import SqliteStore
from tests.e2e.audiohook_client import AudioHookClient, offer, signed_headers
from tests.e2e.helpers import start_message

pytestmark = pytest.mark.e2e


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
async def test_a_signal_ends_every_live_call_with_its_record_then_exits_0(tmp_path: Path, sig):
    port = _free_port()
    db = tmp_path / "calls.sqlite3"
    env = {
        **os.environ,
        "ASSIST_STORE__BACKEND": "sqlite",
        "ASSIST_STORE__PATH": str(db),
        "ASSIST_ASR__ENABLED": "false",  # what matters here is the calls' ends
        "ASSIST_LIMITS__INGEST_QUEUE_S": "3600",
    }
    server = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "assist.cli", "serve", "--port", str(port),
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    log: list[str] = []

    async def drain() -> None:  # a full pipe would stall the server
        assert server.stdout is not None
        async for line in server.stdout:
            log.append(line.decode(errors="replace"))

    try:
        assert server.stdout is not None
        async with asyncio.timeout(120):
            while "assist serving on" not in (line := (await server.stdout.readline()).decode()):
                assert line, "server exited before serving"
        drainer = asyncio.create_task(drain())
        base = f"ws://127.0.0.1:{port}"
        audio, rate = read_stereo_wav(demo_call_path())
        pcm = encode_frames(audio, rate, "pcm16")[:150]  # 3 s
        ulaw = encode_frames(audio, rate, "mulaw")[:150]

        native = await connect(f"{base}/v1/calls")
        await native.send(json.dumps(start_message("bye-native", "agent-n", sample_rate=rate)))
        assert json.loads(await native.recv())["type"] == "started"  # live from here on
        for frame in pcm:
            await native.send(frame)

        headers = signed_headers(f"127.0.0.1:{port}", "/v1/audiohook", secret=None)
        hook = await AudioHookClient.connect(base, headers)
        opened = await hook.open([offer(["external", "internal"])], conversation="bye-hook")
        assert opened["type"] == "opened"  # the call is live
        for frame in ulaw:
            await hook.audio(frame)

        server.send_signal(sig)

        async with asyncio.timeout(60):
            while (message := json.loads(await native.recv()))["type"] != "stopped":
                pass
        assert message["call_id"] == "bye-native" and message["scorecard"]["agent_id"] == "agent-n"
        told = message["scorecard"]
        await native.wait_closed()
        assert native.close_code == 1000

        async with asyncio.timeout(60):
            while (said := await hook.receive())["type"] != "disconnect":
                pass
        assert said["parameters"]["reason"] == "completed"
        await hook.ws.close()

        async with asyncio.timeout(60):
            assert await server.wait() == 0
        await drainer
    finally:
        if server.returncode is None:
            server.kill()
            await server.wait()
    text = "".join(log)
    assert "Traceback" not in text, text[-3000:]
    assert text.count("ended by the server's shutdown") == 2

    store = SqliteStore(db)  # reopened: nothing was left live (a crash's calls are cut off)
    for call_id in ("bye-native", "bye-hook"):
        record = store.record(call_id)
        assert record is not None, call_id
        assert record["status"] == "ended" and record["legs"][0]["status"] == "ended"
        # the audio read before the signal (frames still in flight then are not waited for)
        assert 0 < record["scorecard"]["metrics"]["duration_s"] <= 3.0
    assert store.record("bye-native")["scorecard"] == told  # what the client was told
    store.close()
