"""Twilio track alignment by timestamp, the start event, and the signature check."""

from __future__ import annotations

import base64
import hashlib
import hmac

import numpy as np
import pytest

from assist.config import TwilioConfig
from assist.protocols.errors import ProtocolError
from assist.protocols.twilio import TrackAligner, signature_ok, spec_from_start

SILENCE = 0xFF


def frame(value: int, n: int = 160) -> bytes:
    return bytes([value]) * n


def columns(data: bytes, tracks: int = 2) -> list[list[int]]:
    return np.frombuffer(data, dtype=np.uint8).reshape(-1, tracks).T.tolist()


def test_tracks_interleave_once_both_have_the_same_span():
    aligner = TrackAligner(["inbound", "outbound"], max_skew_samples=8000)
    assert aligner.add("inbound", 0, frame(1)) == b""  # waiting for the other track
    out = aligner.add("outbound", 0, frame(2))
    left, right = columns(out)
    assert left == [1] * 160 and right == [2] * 160


def test_lost_packets_become_silence_in_place():
    aligner = TrackAligner(["inbound", "outbound"], max_skew_samples=8000)
    out = aligner.add("inbound", 0, frame(1))
    out += aligner.add("inbound", 40, frame(3))  # the 20 ms at 20 ms was lost
    for t in (0, 20, 40):
        out += aligner.add("outbound", t, frame(2))
    left, right = columns(out)
    assert left == [1] * 160 + [SILENCE] * 160 + [3] * 160
    assert right == [2] * 480
    assert aligner.filled_samples == 160


def test_duplicates_and_overlaps_are_dropped():
    aligner = TrackAligner(["inbound"], max_skew_samples=8000)
    out = aligner.add("inbound", 0, frame(1))
    out += aligner.add("inbound", 0, frame(9))  # duplicate
    out += aligner.add("inbound", 10, frame(2))  # overlaps by 80 samples
    assert list(out) == [1] * 160 + [2] * 80
    assert aligner.dropped_samples == 160 + 80


def test_a_silent_track_is_padded_once_it_lags_too_far():
    aligner = TrackAligner(["inbound", "outbound"], max_skew_samples=800)  # 100 ms
    out = b""
    for t in range(0, 200, 20):
        out += aligner.add("inbound", t, frame(1))
    left, right = columns(out)
    assert len(left) == 1600 - 800  # everything older than the allowed skew came out
    assert right == [SILENCE] * len(right)
    tail = aligner.flush()
    assert len(columns(tail)[0]) == 800


def start_event(**start) -> dict:
    base = {
        "accountSid": "AC1",
        "streamSid": "MZ1",
        "callSid": "CA123",
        "tracks": ["inbound", "outbound"],
        "customParameters": {"agent_id": "a-7"},
        "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
    }
    base.update(start)
    return {"event": "start", "sequenceNumber": "1", "streamSid": "MZ1", "start": base}


@pytest.mark.parametrize(
    ("start", "call_id", "agent_id", "channels"),
    [
        ({}, "CA123", "a-7", ("customer", "agent")),
        ({"tracks": ["inbound"]}, "CA123", "a-7", ("customer",)),
        ({"tracks": ["outbound"], "customParameters": {}}, "CA123", "unassigned", ("agent",)),
        ({"callSid": None}, "MZ1", "a-7", ("customer", "agent")),
    ],
)
def test_start_event_maps_to_a_call(start, call_id, agent_id, channels):
    spec = spec_from_start(start_event(**start), TwilioConfig())
    assert (spec.call_id, spec.agent_id, spec.channels) == (call_id, agent_id, channels)
    assert spec.encoding == "mulaw" and spec.sample_rate == 8000


@pytest.mark.parametrize(
    ("start", "code"),
    [
        ({"mediaFormat": {"encoding": "audio/l16", "sampleRate": 8000}}, "unsupported_media"),
        ({"tracks": ["sideways"]}, "bad_start"),
        ({"callSid": None, "streamSid": None}, "bad_start"),
    ],
)
def test_bad_start_events(start, code):
    event = start_event(**start)
    if start.get("streamSid", "x") is None:
        event.pop("streamSid")
    with pytest.raises(ProtocolError) as error:
        spec_from_start(event, TwilioConfig())
    assert error.value.code == code


def test_signature():
    token, url = "secret-token", "wss://assist.example.com/v1/twilio"
    good = base64.b64encode(hmac.new(token.encode(), url.encode(), hashlib.sha1).digest()).decode()
    assert signature_ok(token, url, good)
    assert not signature_ok(token, url + "?x=1", good)
    assert not signature_ok("other", url, good)
    assert not signature_ok(token, url, None)
