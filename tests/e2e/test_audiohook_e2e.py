"""Genesys AudioHook v2 Monitor over real sockets, from the protocol's own rules: the
signed handshake, media selection, message numbering, pause/discard timelines, probes; the
agent of a conversation from the open message or bound later through the JSON API."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time

import numpy as np
import pytest
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from assist.audio.codecs import mulaw_encode
from assist.replay import ReplayResult
from tests.conftest import make_settings, synthesized_call
from tests.e2e.audiohook_client import (
    API_KEY,
    NULL_UUID,
    SECRET,
    AudioHookClient,
    offer,
    send_audiohook,
    signed_headers,
)
from tests.e2e.dialects import http_post
from tests.e2e.helpers import assert_nudges_match, collect_agent_events, truth

pytestmark = pytest.mark.e2e


def ah_settings(**audiohook):
    config = {"api_key": API_KEY, "client_secret": SECRET, "failure_delay_s": 0.0, **audiohook}
    return make_settings(audiohook=config)


@pytest.fixture
async def ah(server_factory):
    return await server_factory(ah_settings())


def host(running) -> str:
    return f"127.0.0.1:{running.server.port}"


async def connect(running, **signing) -> AudioHookClient:
    return await AudioHookClient.connect(
        running.ws, signed_headers(host(running), "/v1/audiohook", **signing)
    )


async def refused(running, **signing) -> int:
    with pytest.raises(InvalidStatus) as error:
        await connect(running, **signing)
    return error.value.response.status_code


async def test_signed_handshake_is_accepted(ah):
    client = await connect(ah)
    opened = await client.open([offer(["external", "internal"])])
    assert opened["type"] == "opened"
    assert (await client.close_session())["type"] == "closed"


@pytest.mark.parametrize(
    "signing",
    [
        {"secret": "V3JvbmdTZWNyZXRXcm9uZ1NlY3JldA=="},  # signed with another secret
        {"secret": None},  # unsigned while a secret is configured
        {"created_in_s": -60},  # expired
        {"created_in_s": 60},  # from the future
        {"api_key": "T3RoZXJLZXk="},  # unknown key
        {"keyid": "T3RoZXJLZXk="},  # keyid is not the key
        {"nonce": "short"},
    ],
    ids=["bad-signature", "unsigned", "expired", "future", "unknown-key", "keyid", "short-nonce"],
)
async def test_bad_handshakes_get_401_before_upgrade(ah, signing):
    signing = dict(signing)
    if "created_in_s" in signing:  # relative to now, not to when the tests were collected
        signing["created"] = int(time.time()) + signing.pop("created_in_s")
    assert await refused(ah, **signing) == 401
    assert ah.service.metrics.protocol_errors.get(code="unauthorized") == 1


async def test_a_replayed_signature_is_refused(ah):
    nonce = "n" * 30
    client = await connect(ah, nonce=nonce)
    await client.open([offer(["external"])], conversation=NULL_UUID)
    await client.close_session()
    assert await refused(ah, nonce=nonce) == 401


async def test_unsigned_requests_are_fine_without_a_secret(server_factory):
    running = await server_factory(ah_settings(client_secret=""))
    client = await connect(running, secret=None)
    assert (await client.open([offer(["external"])]))["type"] == "opened"
    await client.close_session()


@pytest.mark.parametrize(
    ("offers", "chosen"),
    [
        ([offer(["external", "internal"])], 0),
        ([offer(["internal", "external"])], 0),
        ([offer(["external"])], 0),
        ([offer(["internal"])], 0),
        ([offer(["external", "internal"], rate=16000), offer(["external"], fmt="L16")], 1),
        ([offer(["external"], fmt="OPUS")], None),
    ],
)
async def test_first_acceptable_offer_is_selected_unmodified(ah, offers, chosen):
    offers[0]["extra"] = "kept as is"
    client = await connect(ah)
    opened = await client.open(offers)
    assert opened["clientseq"] == 1
    expected = [] if chosen is None else [offers[chosen]]
    assert opened["parameters"]["media"] == expected
    await client.close_session()


async def test_ping_pong_numbering_and_update(ah):
    client = await connect(ah)
    await client.open([offer(["external", "internal"])])
    ping = await client.send("ping", {"rtt": "PT0.05S"})
    pong = await client.receive()
    assert (pong["type"], pong["seq"], pong["clientseq"]) == ("pong", 2, ping)
    await client.send("update", {"language": "en-GB"})
    assert (await client.receive())["type"] == "updated"
    await client.send("error", {"code": 500, "message": "something on the client"})
    await client.send("ping")
    assert (await client.receive())["type"] == "pong"  # an error doesn't end the session
    closed = await client.close_session()
    assert closed["type"] == "closed" and closed["clientseq"] == client.seq


async def test_a_seq_gap_gets_disconnect(ah):
    client = await connect(ah)
    await client.open([offer(["external"])])
    client.seq += 1  # skip one
    await client.send("ping")
    message = await client.receive()
    assert message["type"] == "disconnect" and message["parameters"]["reason"] == "error"
    await client.ws.close()


async def test_organization_must_match_the_header(ah):
    client = await connect(ah)
    await client.send(
        "open",
        {"organizationId": "someone-else", "conversationId": "c", "media": [offer(["external"])]},
    )
    message = await client.receive()
    assert message["type"] == "disconnect"


async def test_probe_session_is_answered_but_is_not_a_call(ah):
    client = await connect(ah)
    opened = await client.open([offer(["external", "internal"])], conversation=NULL_UUID)
    assert opened["type"] == "opened"
    await client.ws.send(b"")  # probes send a zero-length frame
    await client.close_session()
    assert ah.service.metrics.calls_total.get(protocol="audiohook") == 0


async def test_paused_and_discarded_audio_counts_in_media_time(ah):
    silence_200ms = bytes([0xFF]) * 1600 * 2

    async def send() -> None:
        client = await connect(ah)
        await client.open(
            [offer(["external", "internal"])], conversation="conv-pause", custom={"agentId": "ah-7"}
        )
        await client.audio(silence_200ms)
        await client.send("paused")
        await client.send("paused")  # tolerated twice
        await client.send("ping")  # pings during a pause still get pongs
        assert (await client.receive())["type"] == "pong"
        client.position_s = 10.0
        await client.send("resumed", {"start": "PT0.2S", "discarded": "PT9.8S"})
        await client.send("discarded", {"start": "PT10.0S", "discarded": "PT5.0S"})
        await client.audio(silence_200ms)
        await client.close_session()

    await collect_agent_events(ah.ws, "ah-7", send)  # until the call has ended
    scorecard = await ah.service.store.scorecard("conv-pause")
    assert scorecard["agent_id"] == "ah-7"
    # 0.2 s heard + 9.8 s paused + 5.0 s discarded + 0.2 s heard
    assert scorecard["metrics"]["duration_s"] == pytest.approx(15.2, abs=0.05)
    assert scorecard["metrics"]["dead_air_moments"] == 0  # nothing was heard, nothing judged


@pytest.mark.speech
@pytest.mark.parametrize("order", [["external", "internal"], ["internal", "external"]])
async def test_synthesized_call_through_audiohook_gives_its_nudges(ah, order):
    call = synthesized_call("interruptions")
    conversation = f"conv-{order[0]}"

    async def send() -> None:
        await send_audiohook(ah.ws, call, conversation, "ah-1", tuple(order))

    result = await collect_agent_events(ah.ws, "ah-1", send)
    assert result.call_id == f"conv-{order[0]}"
    assert_nudges_match(result, truth(call))


async def test_audio_before_open_gets_disconnect(ah):
    client = await connect(ah)
    await client.ws.send(b"\xff" * 320)
    message = json.loads(await client.ws.recv())
    assert message["type"] == "disconnect"
    with pytest.raises(ConnectionClosed):
        await client.ws.recv()


# ---------------------------------------------------------------- the agent of a conversation


async def _stream(client: AudioHookClient, call, start_s: float, end_s: float, order) -> None:
    """Send the call's audio from ``start_s`` to ``end_s`` as 200 ms PCMU frames."""
    columns = {"external": call.audio[:, 0], "internal": call.audio[:, 1]}
    stereo = np.stack([columns[c] for c in order], axis=1)
    step = int(0.2 * call.sample_rate)
    first, last = int(start_s * call.sample_rate), int(end_s * call.sample_rate)
    for i in range(first, min(last, len(stereo)), step):
        await client.audio(mulaw_encode(stereo[i : min(i + step, last)].reshape(-1)))


async def _one_call(running, call, conversation, custom, order=("external", "internal")):
    client = await connect(running)
    await client.open([offer(list(order))], conversation=conversation, custom=custom)
    await _stream(client, call, 0.0, call.script.duration_s, order)
    await client.close_session()


@pytest.mark.speech
@pytest.mark.parametrize(
    ("custom", "agent_id"),
    [
        # the client's participant: ani +15551234567 (the customer), dnis +15557654321
        ({"agentsByDnis": {"+15557654321": "ah-direct-line"}}, "ah-direct-line"),
        ({"agentsByAni": {"+15551234567": "ah-by-ani"}, "agentId": "ah-static"}, "ah-by-ani"),
        ({"agentsByDnis": {"+10000000000": "someone"}, "agentId": "ah-static"}, "ah-static"),
    ],
    ids=["participant-dnis", "participant-ani", "custom-config-fallback"],
)
async def test_agent_id_from_the_participant_and_custom_config(ah, custom, agent_id):
    call = synthesized_call("dead_air")
    conversation = f"conv-{agent_id}"
    result = await collect_agent_events(
        ah.ws, agent_id, lambda: _one_call(ah, call, conversation, custom)
    )
    assert result.call_id == conversation
    assert_nudges_match(result, truth(call))
    assert (await ah.service.store.record(conversation))["agent_id"] == agent_id


@pytest.mark.speech
async def test_agent_channel_external_swaps_the_roles(ah):
    call = synthesized_call("interruptions")
    custom = {"agentId": "ah-swapped", "agentChannel": "external"}
    # the agent's audio on the external channel, the customer's on the internal one
    swapped = dataclasses.replace(call, audio=np.ascontiguousarray(call.audio[:, ::-1]))
    result = await collect_agent_events(
        ah.ws, "ah-swapped", lambda: _one_call(ah, swapped, "conv-swapped", custom)
    )
    assert_nudges_match(result, truth(call))


async def _until(ws, predicate) -> list[dict]:
    """Events from ``ws`` up to and including the first that ``predicate`` accepts."""
    seen = []
    async with asyncio.timeout(60):  # a guard against a hang, not a measurement
        while True:
            seen.append(json.loads(await ws.recv()))
            if predicate(seen[-1]):
                return seen


@pytest.mark.speech
async def test_agent_bound_later_through_the_json_api(server_factory):
    """One Genesys integration for every agent: the open names no agent, a CTI integration
    learns it and binds it. The nudges before the binding reach the agent after it; the
    floor, the record and the scorecard show the agent."""
    tokens = {"supervisor_tokens": ["sup"], "agent_tokens": {"agent-tok": "late-agent"}}
    running = await server_factory(
        make_settings(
            audiohook={"api_key": API_KEY, "client_secret": SECRET, "failure_delay_s": 0.0},
            access=tokens,
        )
    )
    call = synthesized_call("interruptions")
    expected = truth(call)
    early = [c for c in expected if c.at_s < 20.0]
    assert early and len(early) < len(expected)
    conversation = "conv-bound-later"
    bind = f"{running.http}/v1/calls/{conversation}/agent"
    base = running.ws
    async with (
        ws_connect(f"{base}/v1/agents/late-agent/events?token=agent-tok") as agent,
        ws_connect(f"{base}/v1/agents/unassigned/events?token=sup") as unassigned,
        ws_connect(f"{base}/v1/floor/events?token=sup") as floor,
    ):
        client = await connect(running)
        await client.open([offer(["external", "internal"])], conversation=conversation, custom={})
        await _stream(client, call, 0.0, 25.0, ("external", "internal"))
        before: list[dict] = []  # the early nudges, produced while nobody is bound
        while sum(e["type"] == "nudge" for e in before) < len(early):
            before += await _until(unassigned, lambda e: e["type"] == "nudge")
        assert {e["agent_id"] for e in before if e["type"] == "nudge"} == {"unassigned"}

        assert (await http_post(f"{bind}?agent_id=late-agent&token=agent-tok"))[0] == 401
        assert (await http_post(f"{bind}?agent_id=bad%20id&token=sup"))[0] == 400
        status, body = await http_post(f"{bind}?agent_id=late-agent&token=sup")
        assert status == 200
        assert body == {
            "type": "agent_bound",
            "call_id": conversation,
            "agent_id": "late-agent",
            "status": "bound",
            "previous_agent_id": "unassigned",
        }
        await _until(
            floor,
            lambda e: e["type"] == "call_update" and e["call"]["agent_id"] == "late-agent",
        )
        await _until(unassigned, lambda e: e["type"] == "call_ended")

        await _stream(client, call, 25.0, call.script.duration_s, ("external", "internal"))
        await client.close_session()
        events = await _until(agent, lambda e: e["type"] == "call_ended")

    nudges = [e for e in events if e["type"] == "nudge"]
    result = ReplayResult(call_id=conversation, scorecard=None, events=nudges)
    assert_nudges_match(result, expected)
    assert {n["agent_id"] for n in nudges} == {"late-agent"}
    record = await running.service.store.record(conversation)
    assert record["agent_id"] == "late-agent"
    assert record["scorecard"]["agent_id"] == "late-agent"
    assert {n["agent_id"] for n in record["nudges"]} == {"late-agent"}
    # the call has ended: a later binding changes its record only
    status, body = await http_post(f"{bind}?agent_id=other-agent&token=sup")
    assert (status, body["status"], body["previous_agent_id"]) == (200, "recorded", "late-agent")
    assert (await running.service.store.record(conversation))["agent_id"] == "other-agent"
