"""A Genesys AudioHook client written from the protocol description (PROTOCOLS.md), not
from the server's code: it signs its own requests and numbers its own messages."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
import uuid
from typing import Any

import numpy as np
from websockets.asyncio.client import ClientConnection, connect

from assist.audio.codecs import mulaw_encode
from assist.synth.render import RenderedCall

# The sample credentials Genesys publishes (used by its reference implementation's tests).
API_KEY = "SGVsbG8sIEkgYW0gdGhlIEFQSSBrZXkh"
SECRET = "TXlTdXBlclNlY3JldEtleVRlbGxOby0xITJAMyM0JDU="
NULL_UUID = "00000000-0000-0000-0000-000000000000"


def signed_headers(
    host: str,
    path: str,
    api_key: str = API_KEY,
    secret: str | None = SECRET,
    created: int | None = None,
    nonce: str | None = None,
    keyid: str | None = None,
    organization: str = "d7934305-0972-4844-938e-9060eef73d05",
) -> dict[str, str]:
    session = str(uuid.uuid4())
    headers = {
        "Audiohook-Organization-Id": organization,
        "Audiohook-Session-Id": session,
        "Audiohook-Correlation-Id": str(uuid.uuid4()),
        "X-API-KEY": api_key,
    }
    if secret is None:
        return headers
    created = int(time.time()) if created is None else created
    nonce = nonce or secrets.token_urlsafe(24)
    params = (
        f';keyid="{keyid or api_key}";nonce="{nonce}";alg="hmac-sha256"'
        f";created={created};expires={created + 30}"
    )
    covered = '"@request-target" "@authority" "audiohook-organization-id" "audiohook-session-id" "audiohook-correlation-id" "x-api-key"'  # noqa: E501
    base = "\n".join(
        [
            f'"@request-target": {path}',
            f'"@authority": {host}',
            f'"audiohook-organization-id": {headers["Audiohook-Organization-Id"]}',
            f'"audiohook-session-id": {session}',
            f'"audiohook-correlation-id": {headers["Audiohook-Correlation-Id"]}',
            f'"x-api-key": {api_key}',
            f'"@signature-params": ({covered}){params}',
        ]
    )
    digest = hmac.new(base64.b64decode(secret), base.encode(), hashlib.sha256).digest()
    headers["Signature-Input"] = f"sig1=({covered}){params}"
    headers["Signature"] = f"sig1=:{base64.b64encode(digest).decode()}:"
    return headers


def offer(channels: list[str], fmt: str = "PCMU", rate: int = 8000) -> dict[str, Any]:
    return {"type": "audio", "format": fmt, "channels": channels, "rate": rate}


class AudioHookClient:
    def __init__(self, ws: ClientConnection, headers: dict[str, str]) -> None:
        self.ws = ws
        self.session_id = headers["Audiohook-Session-Id"]
        self.organization = headers["Audiohook-Organization-Id"]
        self.seq = 0
        self.server_seq = 0
        self.position_s = 0.0

    @classmethod
    async def connect(cls, base: str, headers: dict[str, str]) -> AudioHookClient:
        ws = await connect(f"{base}/v1/audiohook", additional_headers=headers)
        return cls(ws, headers)

    async def send(self, kind: str, parameters: dict[str, Any] | None = None) -> int:
        self.seq += 1
        message = {
            "version": "2",
            "id": self.session_id,
            "type": kind,
            "seq": self.seq,
            "serverseq": self.server_seq,
            "position": f"PT{self.position_s:.2f}S",
            "parameters": parameters or {},
        }
        await self.ws.send(json.dumps(message))
        return self.seq

    async def receive(self) -> dict[str, Any]:
        message = json.loads(await self.ws.recv())
        assert message["version"] == "2" and message["id"] == self.session_id
        assert message["seq"] == self.server_seq + 1, "server seq must count up by one"
        self.server_seq = message["seq"]
        return message

    async def open(
        self,
        media: list[dict[str, Any]],
        conversation: str | None = None,
        custom: dict[str, Any] | None = None,
        organization: str | None = None,
    ) -> dict[str, Any]:
        await self.send(
            "open",
            {
                "organizationId": organization or self.organization,
                "conversationId": conversation or str(uuid.uuid4()),
                "participant": {
                    "id": str(uuid.uuid4()),
                    "ani": "+15551234567",
                    "aniName": "",
                    "dnis": "+15557654321",
                },
                "media": media,
                "language": "en-US",
                "customConfig": custom or {},
            },
        )
        return await self.receive()

    async def audio(self, frame: bytes, channels: int = 2) -> None:
        await self.ws.send(frame)
        self.position_s += len(frame) / channels / 8000

    async def close_session(self) -> dict[str, Any]:
        await self.send("close", {"reason": "end"})
        closed = await self.receive()
        await self.ws.close()
        return closed


async def send_audiohook(
    base: str,
    call: RenderedCall,
    conversation: str,
    agent_id: str,
    order: tuple[str, str] = ("external", "internal"),
) -> None:
    """Stream a rendered call as Genesys would: PCMU, 200 ms frames, channels in ``order``."""
    host = base.removeprefix("ws://")
    client = await AudioHookClient.connect(base, signed_headers(host, "/v1/audiohook"))
    await client.open([offer(list(order))], conversation=conversation, custom={"agentId": agent_id})
    columns = {"external": call.audio[:, 0], "internal": call.audio[:, 1]}
    stereo = np.stack([columns[c] for c in order], axis=1)
    for i in range(0, len(stereo), 1600):
        await client.audio(mulaw_encode(stereo[i : i + 1600].reshape(-1)))
    await client.close_session()
