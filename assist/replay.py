"""Stream a recorded call to a running server in (scaled) real time, like a live line.

The client side of the native protocol: reads a stereo WAV (left customer, right agent),
subscribes to the agent's event stream, sends 20 ms frames paced against the event
loop's monotonic clock (``speed`` 2.0 = twice real time, 0 = as fast as possible), and
collects every event with its arrival time relative to the first frame. Used by
``assist replay``, ``assist demo``, the end-to-end tests and the benchmarks.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import wave
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from assist.audio.codecs import mulaw_encode

FRAME_S = 0.02


@dataclass
class ReplayResult:
    """What a replayed call brought back: the call's agent-stream events in order with each
    one's arrival (seconds after the first frame; before it, after the subscription), the
    scorecard from ``stopped`` (None when none came), and the server's ``error`` message if
    it refused or ended the call."""

    call_id: str
    scorecard: dict[str, Any] | None
    events: list[dict[str, Any]] = field(default_factory=list)  # agent stream, in order
    arrivals: list[float] = field(default_factory=list)  # seconds after the first frame
    error: dict[str, Any] | None = None

    @property
    def nudges(self) -> list[dict[str, Any]]:
        """The ``nudge`` events, in order of arrival."""
        return [e for e in self.events if e.get("type") == "nudge"]

    def nudge_arrivals(self) -> list[tuple[dict[str, Any], float]]:
        """Each ``nudge`` event with its arrival, seconds after the first frame."""
        return [
            (e, t) for e, t in zip(self.events, self.arrivals, strict=True) if e["type"] == "nudge"
        ]


def read_stereo_wav(path: str | Path) -> tuple[np.ndarray, int]:
    """(samples (n, 2) float32 customer/agent, rate). Raises ValueError for other files."""
    with wave.open(str(path), "rb") as wav:
        if wav.getnchannels() != 2 or wav.getsampwidth() != 2:
            raise ValueError(
                f"{path}: need a 16-bit stereo WAV (left customer, right agent), got "
                f"{wav.getnchannels()} channel(s) of {8 * wav.getsampwidth()} bits"
            )
        rate = wav.getframerate()
        raw = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")
    return (raw.reshape(-1, 2) / 32768.0).astype(np.float32), rate


def encode_frames(audio: np.ndarray, rate: int, encoding: str) -> list[bytes]:
    """Interleaved 20 ms frames in the wire encoding."""
    step = int(rate * FRAME_S)
    frames = []
    for i in range(0, len(audio), step):
        chunk = audio[i : i + step].reshape(-1)
        if encoding == "mulaw":
            frames.append(mulaw_encode(chunk))
        else:
            frames.append(np.round(chunk * 32768.0).clip(-32768, 32767).astype("<i2").tobytes())
    return frames


async def stream_call(
    base_url: str,
    start: dict[str, Any],
    frames: list[bytes],
    speed: float = 1.0,
    controls: dict[int, list[dict[str, Any]]] | None = None,
    on_event: Callable[[dict[str, Any], float], object] | None = None,
    token: str | None = None,
    ingest_token: str | None = None,
) -> ReplayResult:
    """Send ``frames`` (20 ms each) as one call; ``controls[i]`` go before frame ``i``.
    ``token`` opens the agent's event stream on a server that requires one;
    ``ingest_token`` is sent as ``X-Assist-Token`` with the call. Raises
    ``PermissionError`` when the server refuses the call's connection (401, 403, 404)."""
    call_id = start["call_id"]
    result = ReplayResult(call_id=call_id, scorecard=None)
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    base = base_url.rstrip("/")
    query = f"?token={quote(token)}" if token else ""
    async with connect(f"{base}/v1/agents/{start['agent_id']}/events{query}") as events:
        hello = json.loads(await events.recv())
        if hello.get("type") != "subscribed":
            raise RuntimeError(f"unexpected first event-stream message: {hello}")

        async def collect() -> None:
            async for text in events:
                event = json.loads(text)
                if (
                    event.get("call_id") != call_id
                    and event.get("call", {}).get("call_id") != call_id
                ):
                    continue
                elapsed = loop.time() - t0
                result.events.append(event)
                result.arrivals.append(elapsed)
                if on_event is not None:
                    on_event(event, elapsed)
                if event["type"] == "call_ended":
                    return

        headers = {"X-Assist-Token": ingest_token} if ingest_token else None
        # A recording's server stops reading while it catches up, so a pong can wait behind
        # minutes of buffered audio: its keepalive pings are not timed out.
        keepalive: dict[str, Any] = {"ping_timeout": None} if start.get("live") is False else {}
        try:
            call_ws = await connect(
                f"{base}/v1/calls", compression=None, additional_headers=headers, **keepalive
            )
        except InvalidStatus as exc:
            status = exc.response.status_code
            raise PermissionError(f"server refused the call: HTTP {status}") from None
        async with asyncio.TaskGroup() as group:
            collector = group.create_task(collect())
            async with call_ws as ws:
                await ws.send(json.dumps(start))
                reply = json.loads(await ws.recv())
                if reply["type"] != "started":
                    collector.cancel()
                    result.error = reply
                    return result
                t0 = loop.time()
                for i, frame in enumerate(frames):
                    for control in (controls or {}).get(i, ()):
                        await ws.send(json.dumps(control))
                    if speed > 0:
                        delay = t0 + i * FRAME_S / speed - loop.time()
                        if delay > 0:
                            await asyncio.sleep(delay)  # pacing the sender, not logic
                    await ws.send(frame)
                await ws.send(json.dumps({"type": "stop"}))
                with contextlib.suppress(ConnectionClosed):
                    async for text in ws:
                        reply = json.loads(text)
                        if reply["type"] == "stopped":
                            result.scorecard = reply["scorecard"]
                        elif reply["type"] == "error":
                            result.error = reply
    return result


async def replay_wav(
    path: str | Path,
    base_url: str,
    agent_id: str,
    call_id: str,
    speed: float = 1.0,
    encoding: str = "pcm16",
    on_event: Callable[[dict[str, Any], float], object] | None = None,
    token: str | None = None,
    ingest_token: str | None = None,
) -> ReplayResult:
    """Stream the 16-bit stereo WAV at ``path`` (left customer, right agent, at its own rate:
    the server takes 8000 or 16000 Hz) to the server at ``base_url`` (``ws://host:port``) as
    call ``call_id`` of ``agent_id``, encoded as ``encoding`` (pcm16 or mulaw).

    ``speed`` is the multiple of real time; 0 sends the file unpaced as a recording
    (``"live": false``: the server reads it no faster than it keeps up, no audio is shed),
    any other speed paces it like a line, shed by the server if it falls behind past
    ``[limits] ingest_queue_s``. ``on_event(event, seconds)`` sees
    each of the call's agent-stream events as it arrives. Raises ``ValueError`` for a WAV
    that isn't 16-bit stereo, ``wave.Error`` for a file that isn't a WAV, ``OSError`` for
    an unreadable file or a refused connection.
    """
    audio, rate = read_stereo_wav(path)
    start = {
        "type": "start",
        "call_id": call_id,
        "agent_id": agent_id,
        "sample_rate": rate,
        "encoding": encoding,
        "channels": ["customer", "agent"],
        **({"live": False} if speed <= 0 else {}),  # servers before it know no "live"
    }
    frames = encode_frames(audio, rate, encoding)
    return await stream_call(base_url, start, frames, speed, None, on_event, token, ingest_token)
