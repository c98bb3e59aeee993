"""Twilio-style streams: track alignment and reordering by timestamp, the start event of
each dialect (Twilio, Exotel, Telnyx) with its roles, and the signature check."""

from __future__ import annotations

import base64
import hashlib
import hmac

import numpy as np
import pytest

from assist.config import TwilioConfig
from assist.protocols.errors import ProtocolError
from assist.protocols.twilio import TrackAligner, plan_stream, signature_ok

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
    spec = plan_stream(start_event(**start), TwilioConfig()).spec
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
        plan_stream(event, TwilioConfig())
    assert error.value.code == code


def test_signature():
    token, url = "secret-token", "wss://assist.example.com/v1/twilio"
    good = base64.b64encode(hmac.new(token.encode(), url.encode(), hashlib.sha1).digest()).decode()
    assert signature_ok(token, url, good)
    assert not signature_ok(token, url + "?x=1", good)
    assert not signature_ok("other", url, good)
    assert not signature_ok(token, url, None)


# ---------------------------------------------------------------- reordering


def numbered(track: int, i: int, n: int = 160) -> bytes:
    """A frame whose every sample says which track and frame it is (1-based, < 128)."""
    return bytes([track * 64 + i + 1]) * n


def test_frames_out_of_order_within_the_window_are_put_back():
    aligner = TrackAligner(["inbound"], max_skew_samples=8000, reorder_window_samples=800)
    order = [0, 2, 1, 4, 3, 5]  # 40 ms behind at most; the window is 100 ms
    out = b"".join(aligner.add("inbound", i * 20, numbered(0, i)) for i in order)
    out += aligner.flush()
    assert out == b"".join(numbered(0, i) for i in range(6))
    assert (aligner.reordered_frames, aligner.late_frames, aligner.filled_samples) == (2, 0, 0)


def test_a_hole_holds_the_track_only_until_the_window_is_past():
    aligner = TrackAligner(["inbound"], max_skew_samples=8000, reorder_window_samples=320)
    assert aligner.add("inbound", 0, numbered(0, 0)) == numbered(0, 0)
    assert aligner.add("inbound", 40, numbered(0, 2)) == b""  # 20 ms missing: wait
    assert aligner.add("inbound", 60, numbered(0, 3)) == b""  # 40 ms past the hole: still
    out = aligner.add("inbound", 80, numbered(0, 4))  # 60 ms past: the 20 ms are lost
    assert out == bytes([SILENCE]) * 160 + numbered(0, 2) + numbered(0, 3) + numbered(0, 4)
    assert aligner.add("inbound", 20, numbered(0, 1)) == b""  # too late: dropped
    assert (aligner.late_frames, aligner.reordered_frames, aligner.filled_samples) == (1, 0, 160)


def test_two_tracks_reordered_independently_interleave_in_place():
    aligner = TrackAligner(
        ["inbound", "outbound"], max_skew_samples=8000, reorder_window_samples=800
    )
    arrivals = [("outbound", 1), ("inbound", 0), ("inbound", 2), ("outbound", 0)]
    arrivals += [("inbound", 1), ("outbound", 2)]
    index = {"inbound": 0, "outbound": 1}
    out = b"".join(aligner.add(t, i * 20, numbered(index[t], i)) for t, i in arrivals)
    out += aligner.flush()
    left, right = columns(out)
    assert left == [v for i in range(3) for v in numbered(0, i)]
    assert right == [v for i in range(3) for v in numbered(1, i)]
    assert aligner.reordered_frames == 2 and aligner.filled_samples == 0


def test_a_duplicate_is_not_counted_as_late():
    aligner = TrackAligner(["inbound"], max_skew_samples=8000, reorder_window_samples=800)
    aligner.add("inbound", 0, numbered(0, 0))
    aligner.add("inbound", 0, numbered(0, 0))
    assert (aligner.duplicate_frames, aligner.late_frames) == (1, 0)


def test_pcm16_frames_interleave_whole_samples_and_pad_with_zeros():
    aligner = TrackAligner(["inbound", "outbound"], 8000, sample_bytes=2, silence=b"\0\0")
    a, b = b"\x01\x02" * 160, b"\x03\x04" * 160
    out = aligner.add("inbound", 0, a) + aligner.add("outbound", 0, b)
    out += aligner.add("inbound", 40, a) + aligner.add("outbound", 20, b)
    out += aligner.add("outbound", 40, b)
    samples = np.frombuffer(out, dtype="<u2").reshape(-1, 2)
    assert samples[:160].tolist() == [[0x0201, 0x0403]] * 160
    assert samples[160:320, 0].tolist() == [0] * 160  # lost inbound frame
    assert len(samples) == 480
    with pytest.raises(ValueError):
        aligner.add("inbound", 60, b"\x01")  # half a sample


def test_frames_without_timestamps_follow_each_other():
    aligner = TrackAligner(["inbound"], 8000, sample_bytes=2, silence=b"\0\0")
    out = aligner.add("inbound", None, b"\x01\x00" * 800)
    out += aligner.add("inbound", None, b"\x02\x00")
    assert len(out) == 2 * 801 and aligner.filled_samples == 0


def test_a_jump_of_the_whole_stream_is_a_gap_not_silence():
    aligner = TrackAligner(["inbound", "outbound"], max_skew_samples=8000)
    out = aligner.add("inbound", 0, frame(1)) + aligner.add("outbound", 0, frame(2))
    out += aligner.add("outbound", 20, frame(4))  # the inbound frame at 20 ms never comes
    assert aligner.take_gap() == 0
    # An hour later: everything before is emitted (the lagging track padded to the leader),
    # the hour in between is a gap, and no silence is made for it.
    out += aligner.add("inbound", 3_600_000, frame(3))
    assert aligner.take_gap() == 3600 * 8000 - 320
    assert aligner.take_gap() == 0  # reported once
    left, right = columns(out)
    assert left == [1] * 160 + [SILENCE] * 160 and right == [2] * 160 + [4] * 160
    after = aligner.add("outbound", 3_600_000, frame(5)) + aligner.flush()
    assert columns(after) == [[3] * 160, [5] * 160]  # the jumping frame came out after it
    assert aligner.filled_samples == 160 and aligner.take_gap() == 0
    # a frame from inside the gap arriving now is late, not audio
    assert aligner.add("outbound", 1_000_000, frame(6)) == b"" and aligner.late_frames == 1


def test_a_jump_smaller_than_the_skew_bound_is_silence_in_place():
    aligner = TrackAligner(["inbound"], max_skew_samples=8000)
    out = aligner.add("inbound", 0, frame(1)) + aligner.add("inbound", 1000, frame(2))
    assert aligner.take_gap() == 0 and list(out) == [1] * 160 + [SILENCE] * 7840 + [2] * 160


# ---------------------------------------------------------------- dialects and roles


def test_agent_track_parameter_swaps_the_roles():
    plan = plan_stream(
        start_event(customParameters={"agent_id": "a-7", "agent_track": "inbound"}),
        TwilioConfig(),
    )
    assert plan.spec.channels == ("agent", "customer") and plan.tracks == ("inbound", "outbound")
    default_inbound = plan_stream(start_event(), TwilioConfig(agent_track="inbound"))
    assert default_inbound.spec.channels == ("agent", "customer")
    with pytest.raises(ProtocolError) as error:
        plan_stream(start_event(customParameters={"agent_track": "left"}), TwilioConfig())
    assert error.value.code == "bad_start"


def test_query_parameters_apply_and_custom_parameters_win():
    plan = plan_stream(
        start_event(customParameters={"agent_id": "from-twiml"}),
        TwilioConfig(),
        query={"agent_id": "from-url", "agent_track": "inbound"},
    )
    assert (plan.spec.agent_id, plan.spec.channels) == ("from-twiml", ("agent", "customer"))
    assert plan.agent_known
    unknown = plan_stream(start_event(customParameters={}), TwilioConfig())
    assert (unknown.spec.agent_id, unknown.agent_known) == ("unassigned", False)


def exotel_start(**media_format) -> dict:
    return {
        "event": "start",
        "sequence_number": "1",
        "stream_sid": "MZexo",
        "start": {
            "stream_sid": "MZexo",
            "call_sid": "CAexo1",
            "account_sid": "ACx",
            "custom_parameters": {"agent_id": "ex-7"},
            "media_format": media_format
            or {"encoding": "audio/x-raw", "sample_rate": "8000", "bit_rate": "16"},
        },
    }


def telnyx_start(**start) -> dict:
    base = {
        "call_control_id": "v3:abc-DEF_1",
        "client_state": "aGk=",
        "custom_parameters": {"agent_id": "tx-7"},
        "media_format": {"encoding": "PCMU", "sample_rate": 8000, "channels": 1},
    }
    base.update(start)
    return {"event": "start", "sequence_number": "1", "stream_id": "32de0dea", "start": base}


@pytest.mark.parametrize(
    ("message", "dialect", "encoding", "rate", "call_id", "channels"),
    [
        (exotel_start(), "exotel", "pcm16", 8000, "CAexo1", ("customer",)),
        (
            exotel_start(encoding="base64", sample_rate="16000", bit_rate="256kbps"),
            "exotel",
            "pcm16",
            16000,
            "CAexo1",
            ("customer",),
        ),
        (telnyx_start(), "telnyx", "mulaw", 8000, "v3:abc-DEF_1", ("customer", "agent")),
        (
            telnyx_start(custom_parameters={"tracks": "inbound_track"}),
            "telnyx",
            "mulaw",
            8000,
            "v3:abc-DEF_1",
            ("customer",),
        ),
    ],
)
def test_dialects_are_recognised_and_decoded(message, dialect, encoding, rate, call_id, channels):
    plan = plan_stream(message, TwilioConfig())
    assert plan.dialect == dialect
    assert (plan.spec.encoding, plan.spec.sample_rate) == (encoding, rate)
    assert (plan.spec.call_id, plan.spec.channels) == (call_id, channels)


@pytest.mark.parametrize(
    "message",
    [
        exotel_start(encoding="audio/x-raw", sample_rate="24000"),
        telnyx_start(media_format={"encoding": "PCMA", "sample_rate": 8000}),
        telnyx_start(media_format={"encoding": "L16", "sample_rate": 16000}),
    ],
)
def test_formats_we_cannot_decode_are_refused(message):
    with pytest.raises(ProtocolError) as error:
        plan_stream(message, TwilioConfig())
    assert error.value.code == "unsupported_media"


def test_a_malformed_start_is_a_bad_start():
    with pytest.raises(ProtocolError) as error:
        plan_stream({"event": "start", "start": {"tracks": "inbound"}}, TwilioConfig())
    assert error.value.code == "bad_start"
