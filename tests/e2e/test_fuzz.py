"""Hostile and broken input never hurts another call (issue 14): a seeded mutation fuzzer
drives every endpoint with mutated valid sessions while a canary call streams, and
hand-written probes pin each class of failure found.

For every session: nothing escapes the server's connection handler, the client never gets
1011 (nor an HTTP 500), the server logs no traceback and no ERROR, the handler ends within
``FuzzServer.LINGER_S`` of the client leaving, and no call but the canary stays live. After
the run: each canary call's nudges and scorecard equal those of the canary streamed alone,
and no call is live or recorded ``live``.

The run here is short and deterministic (hypothesis, derandomized, no example database):
``FUZZ_EXAMPLES`` sessions per endpoint and mutation family (default 100). A long run::

    FUZZ_EXAMPLES=5000 FUZZ_SEED=1 .venv/bin/python -m pytest -p no:cacheprovider \\
        tests/e2e/test_fuzz.py -k mutated

(``FUZZ_SEED``: another reproducible set of sessions; without it the derandomized one.)
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, seed, settings

from assist.replay import encode_frames
from tests.conftest import make_settings, synthesized_call
from tests.e2e.fuzzing import (
    DEEP_LIST,
    DEEP_OBJECT,
    FUZZ_AGENT,
    LONG_INT,
    CanaryRun,
    Frame,
    FuzzServer,
    HttpRequest,
    LogTrap,
    Outcome,
    Recorded,
    Session,
    TextBytes,
    agent_events_session,
    audiohook_session,
    comparable,
    floor_events_session,
    frame_text,
    http_requests,
    l16_sessions,
    mutated_sessions,
    native_session,
    replaced,
    twilio_sessions,
)

pytestmark = [pytest.mark.e2e, pytest.mark.speech]

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "100"))  # per endpoint and mutation family
SEED = os.environ.get("FUZZ_SEED")


def fuzz_settings(test: Any) -> Any:
    """Deterministic (derandomized, or ``FUZZ_SEED``), no example database, no deadline."""
    configured = settings(
        max_examples=EXAMPLES,
        derandomize=SEED is None,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        print_blob=False,
    )(test)
    return seed(int(SEED))(configured) if SEED is not None else configured


# ---------------------------------------------------------------- open classes


@dataclass(frozen=True)
class OpenClass:
    """A class of failure found in a file owned elsewhere, not fixed yet: the fuzzer skips
    the sessions ``matches`` recognises (so it keeps guarding everything else) and the
    probes that pin it are ``xfail`` with ``reason``. Fixed: delete the entry."""

    name: str
    reason: str
    matches: Callable[[Session], bool]


def _texts(session: Session) -> list[str]:
    out = []
    for frame in session.frames:
        if isinstance(frame, TextBytes):
            out.append(frame.data.decode("utf-8", "replace"))
        elif (text := frame_text(frame)) is not None:
            out.append(text)
    return out


def _messages(session: Session) -> list[dict[str, Any]]:
    """The session's text frames that parse as JSON objects."""
    out = []
    for text in _texts(session):
        try:
            value = json.loads(text)
        except (ValueError, RecursionError):
            continue
        if isinstance(value, dict):
            out.append(value)
    return out


def _media(message: dict[str, Any]) -> dict[str, Any]:
    media = message.get("media")
    return media if isinstance(media, dict) else {}


def _huge(value: Any) -> bool:
    """A number (or a string of digits) past a float's range."""
    if isinstance(value, str):
        digits = value.strip().lstrip("+-")
        return digits.isdigit() and len(digits) > 300
    return isinstance(value, int) and abs(value) > 10**300


# Classes of failure still open in the code, each with the reason and a matcher of the
# sessions that hit it: the fuzzer skips those and the probe is xfail until it is fixed.
OPEN: dict[str, OpenClass] = {
    c.name: c
    for c in [
        # none open: "audiohook-slow-close" (a send after the client's close frame waited
        # out the close timeout while its earlier frames were unread) is fixed in
        # AudioHookConnection.send
    ]
}


def open_class(session: Session) -> OpenClass | None:
    """The open class ``session`` would hit, if any."""
    return next((c for c in OPEN.values() if c.matches(session)), None)


def xfail_open(name: str) -> Any:
    """The xfail mark of an open class (none once the class is deleted from ``OPEN``)."""
    if name not in OPEN:
        return []
    return [pytest.mark.xfail(reason=OPEN[name].reason, strict=False)]


# ---------------------------------------------------------------- the fuzzer


_baseline: list[CanaryRun] = []


def _canary_frames() -> list[bytes]:
    call = synthesized_call("fuzz_canary")
    return encode_frames(call.audio, call.sample_rate, "pcm16")


@pytest.fixture
def fuzz(tmp_path) -> Iterator[FuzzServer]:
    """A real server (SQLite store) in its own thread with the canary subscribed; the
    canary streamed alone once first, for the baseline."""
    store = {"backend": "sqlite", "path": str(tmp_path / "calls.sqlite3")}
    server = FuzzServer(make_settings(store=store), _canary_frames())
    server.start()
    try:
        if not _baseline:
            alone = server.canary_alone()
            assert alone.nudges and alone.scorecard, "the canary must raise nudges"
            _baseline.append(alone)
        server.trap.take()
        server.open_canary()
        yield server
    finally:
        server.stop()


def assert_harmless(fuzz: FuzzServer, what: str, outcome: Outcome) -> None:
    """One session did no harm: handled, no 1011, no traceback, no call left live."""
    tracebacks = LogTrap.tracebacks(outcome.records)  # first: they say where it failed
    assert not tracebacks, f"{what}\nlogged:\n" + "\n".join(tracebacks)
    assert outcome.handler_error is None, f"{what}\nescaped the handler: {outcome.handler_error!r}"
    assert outcome.close_code != 1011, f"{what}\nclosed with 1011"
    assert outcome.refused_status != 500, f"{what}\nthe upgrade failed with 500"
    assert not outcome.lingered, f"{what}\nthe handler outlived its client by {fuzz.LINGER_S} s"
    assert fuzz.live_calls() == [], f"{what}\nleft live: {fuzz.live_calls()}"


def assert_canary_unchanged(fuzz: FuzzServer) -> None:
    """Every canary call of the run got the nudges and scorecard it gets alone; then no call
    is live and no record is left ``live``."""
    runs = fuzz.finish_canary()
    assert runs, "the canary never finished a call"
    for i, run in enumerate(runs):
        assert run.error is None, f"canary run {i}: {run.error}"
        assert comparable(run) == comparable(_baseline[0]), f"canary run {i} changed"
    assert fuzz.service is not None and not fuzz.service.live
    records = fuzz.thread.run(fuzz.service.store.export())
    live_records = [r["call_id"] for r in records if r["status"] == "live"]
    assert live_records == []


def canary_frames_per_session(fuzz: FuzzServer) -> int:
    """Spread at least one whole canary call over the run's sessions."""
    return max(5, math.ceil(len(fuzz.canary_frames) / EXAMPLES))


ENDPOINTS = ["native", "twilio", "l16", "audiohook", "agent_events", "floor_events"]
FAMILIES = ["structure", "bytes", "types"]


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_mutated_sessions_do_no_harm(fuzz: FuzzServer, endpoint: str, family: str) -> None:
    per_session = canary_frames_per_session(fuzz)

    @fuzz_settings
    @given(mutated_sessions(endpoint, family))  # type: ignore[arg-type]
    def one(session: Session) -> None:
        assume(open_class(session) is None)
        assert_harmless(fuzz, session.describe(), fuzz.play(session, per_session))

    one()
    assert_canary_unchanged(fuzz)


def test_mutated_http_requests_do_no_harm(fuzz: FuzzServer) -> None:
    @fuzz_settings
    @given(http_requests())
    def one(request: HttpRequest) -> None:
        status, records = fuzz.request(request)
        what = request.describe()
        assert status != 500, f"{what}\nanswered 500"
        tracebacks = LogTrap.tracebacks(records)
        assert not tracebacks, f"{what}\nlogged:\n" + "\n".join(tracebacks)

    one()
    assert_canary_unchanged(fuzz)


# ---------------------------------------------------------------- probes, one per case found


@pytest.fixture(scope="module")
def probe_server(tmp_path_factory) -> Iterator[FuzzServer]:
    """One server for all probes (no canary: each probe checks its own harm)."""
    path = tmp_path_factory.mktemp("probes") / "calls.sqlite3"
    server = FuzzServer(make_settings(store={"backend": "sqlite", "path": str(path)}), [])
    server.start()
    try:
        yield server
    finally:
        server.stop()


def native_error(code: str, close: int) -> Callable[[Outcome], None]:
    """The native protocol's answer: an ``error`` message with ``code``, then ``close``."""

    def check(outcome: Outcome) -> None:
        errors = [m for m in outcome.texts() if m.get("type") == "error"]
        assert [e["code"] for e in errors] == [code], outcome.texts()
        assert outcome.close_code == close

    return check


def closes(*codes: int) -> Callable[[Outcome], None]:
    """A one-way stream's answer: only the close code."""

    def check(outcome: Outcome) -> None:
        assert outcome.close_code in codes, outcome.close_code

    return check


def disconnects(outcome: Outcome) -> None:
    """AudioHook's answer to a protocol violation: ``disconnect`` with reason ``error``."""
    last = outcome.texts()[-1] if outcome.texts() else {}
    assert last.get("type") == "disconnect", outcome.texts()
    assert last["parameters"]["reason"] == "error"


def audiohook_closed(outcome: Outcome) -> None:
    """AudioHook's answer to ``close``: ``closed``."""
    assert [m["type"] for m in outcome.texts()][-1:] == ["closed"], outcome.texts()


def harmless_only(outcome: Outcome) -> None:
    """Nothing to answer (event streams ignore what they don't take)."""


N = native_session()
N_START, N_AUDIO = N.frames[0], N.frames[1]
T = twilio_sessions()[0]
T_START, T_MEDIA = T.frames[1], T.frames[2]
L_JAMBONZ, L_VONAGE = l16_sessions()
A = audiohook_session()
A_OPEN = A.frames[0]
A_RESUMED = next(
    i for i, f in enumerate(A.frames) if isinstance(f, dict) and f["type"] == "resumed"
)
E = agent_events_session()
F = floor_events_session()
FEEDBACK = {"type": "feedback", "nudge_id": "fz-x-1", "kind": "dead_air", "action": "got_it"}


def twilio(start: Frame = T_START, media: Frame = T_MEDIA) -> list[Frame]:
    return [T.frames[0], start, media, *T.frames[3:]]


def audiohook_with(i: int, path: tuple[Any, ...], value: Any) -> list[Frame]:
    frames = list(A.frames)
    frames[i] = replaced(frames[i], path, value)
    return frames


def probe(
    name: str,
    recorded: Recorded,
    frames: list[Frame],
    expect: Callable[[Outcome], None],
    ending: str = "read",
    open_name: str | None = None,
) -> Any:
    marks = xfail_open(open_name) if open_name else []
    return pytest.param(recorded, frames, expect, ending, id=name, marks=marks)


PROBES = [
    # native: parser limits, wrong types, sizes, and leaving at every step of the handshake
    probe("native-deep-list", N, [DEEP_LIST], native_error("bad_json", 1007)),
    probe(
        "native-deep-object-field",
        N,
        [replaced(N_START, ("channels",), DEEP_OBJECT)],
        native_error("bad_json", 1007),
    ),
    probe(
        "native-5000-digit-rate",
        N,
        [replaced(N_START, ("sample_rate",), LONG_INT)],
        native_error("bad_json", 1007),
    ),
    probe(
        "native-rate-infinity",
        N,
        [replaced(N_START, ("sample_rate",), math.inf)],
        native_error("bad_start", 1008),
    ),
    probe(
        "native-rate-1e300",
        N,
        [replaced(N_START, ("sample_rate",), 1e300)],
        native_error("bad_start", 1008),
    ),
    probe(
        "native-hold-nan",
        N,
        [N_START, {"type": "hold", "on": math.nan}],
        native_error("bad_hold", 1008),
    ),
    probe(
        "native-channels-string",
        N,
        [replaced(N_START, ("channels",), "customer")],
        native_error("bad_start", 1008),
    ),
    probe(
        "native-call-id-surrogate",
        N,
        [replaced(N_START, ("call_id",), "\ud800")],
        native_error("bad_start", 1008),
    ),
    probe("native-type-number", N, [{"type": 5}], native_error("bad_json", 1007)),
    probe(
        "native-text-too-large",
        N,
        [N_START, '{"pad": "' + "x" * 70_000 + '"}'],
        native_error("message_too_large", 1009),
    ),
    probe(
        "native-frame-too-large", N, [N_START, bytes(32_004)], native_error("frame_too_large", 1009)
    ),
    probe("native-odd-byte-count", N, [N_START, bytes(3)], native_error("odd_byte_count", 1007)),
    probe("native-audio-before-start", N, [N_AUDIO], native_error("audio_before_start", 1008)),
    probe(
        "native-hold-before-start",
        N,
        [{"type": "hold", "on": True}],
        native_error("expected_start", 1008),
    ),
    probe("native-invalid-utf8", N, [N_START, TextBytes(b'{"type": "\xff"}')], closes(1007)),
    probe("native-over-1-mib", N, [N_START, "x" * (1 << 20)], closes(1009)),
    # class 4: a client that starts and misbehaves before reading ``started``
    probe("native-start-then-drop", N, [N_START], harmless_only, ending="abort"),
    probe("native-start-then-close", N, [N_START], harmless_only, ending="close"),
    probe("native-start-then-garbage", N, [N_START, "{"], native_error("bad_json", 1007)),
    probe("native-audio-then-drop", N, [N_START, N_AUDIO, N_AUDIO], harmless_only, ending="abort"),
    probe(
        "native-everything-before-started",
        N,
        [N_START, *[N_AUDIO] * 30],
        harmless_only,
        ending="burst",
    ),
    # slow close: frames pipelined past the one that ends the call
    probe(
        "native-pipelined-after-error",
        N,
        [N_START, N_START, *[N_AUDIO] * 40],
        native_error("duplicate_start", 1008),
    ),
    probe(
        "native-pipelined-after-stop",
        N,
        [*N.frames, *[N_AUDIO] * 40],
        harmless_only,
        ending="close",
    ),
    # Twilio: every wrongly typed field of start and media
    probe(
        "twilio-media-format-string",
        T,
        twilio(replaced(T_START, ("start", "mediaFormat"), "audio/x-mulaw")),
        closes(1008),
    ),
    probe(
        "twilio-sample-rate-not-a-number",
        T,
        twilio(replaced(T_START, ("start", "mediaFormat", "sampleRate"), "abc")),
        closes(1008),
    ),
    probe(
        "twilio-tracks-number", T, twilio(replaced(T_START, ("start", "tracks"), 5)), closes(1008)
    ),
    probe(
        "twilio-custom-parameters-list",
        T,
        twilio(replaced(T_START, ("start", "customParameters"), ["agent_id"])),
        closes(1008),
    ),
    probe(
        "twilio-custom-parameters-deep",
        T,
        twilio(replaced(T_START, ("start", "customParameters"), DEEP_OBJECT)),
        closes(1007),
    ),
    probe(
        "twilio-media-string",
        T,
        twilio(media=replaced(T_MEDIA, ("media",), "x")),
        closes(1007, 1008),
    ),
    probe(
        "twilio-media-number", T, twilio(media=replaced(T_MEDIA, ("media",), 5)), closes(1007, 1008)
    ),
    probe(
        "twilio-timestamp-infinity",
        T,
        twilio(media=replaced(T_MEDIA, ("media", "timestamp"), math.inf)),
        closes(1007, 1008),
    ),
    probe(
        "twilio-timestamp-1e300",
        T,
        twilio(media=replaced(T_MEDIA, ("media", "timestamp"), 1e300)),
        closes(1007, 1008),
    ),
    probe(
        "twilio-timestamp-2-64",
        T,
        twilio(media=replaced(T_MEDIA, ("media", "timestamp"), 2**64)),
        closes(1007, 1008),
    ),
    probe(
        "twilio-timestamp-5000-digits",
        T,
        twilio(media=replaced(T_MEDIA, ("media", "timestamp"), LONG_INT)),
        closes(1007),
    ),
    # class 3: a claimed gap of hours is refused in O(1)
    probe(
        "twilio-timestamp-hours-ahead",
        T,
        twilio(media=replaced(T_MEDIA, ("media", "timestamp"), "36000000")),
        closes(1007, 1008),
    ),
    probe(
        "twilio-timestamp-4000-digits",
        T,
        twilio(media=replaced(T_MEDIA, ("media", "timestamp"), "1" + "0" * 4000)),
        closes(1007, 1008),
        open_name="twilio-huge-timestamp",
    ),
    probe(
        "twilio-payload-non-ascii",
        T,
        twilio(media=replaced(T_MEDIA, ("media", "payload"), "é" * 8)),
        closes(1007, 1008),
        open_name="twilio-non-ascii-payload",
    ),
    probe(
        "twilio-binary-frame", T, [T.frames[0], T_START, b"\x00" * 160], closes(1003, 1007, 1008)
    ),
    # L16
    probe(
        "l16-rate-5000-digits",
        L_VONAGE,
        [
            replaced(L_VONAGE.frames[0], ("content-type",), "audio/l16;rate=" + "9" * 5000),
            *L_VONAGE.frames[1:],
        ],
        closes(1003),
    ),
    probe(
        "l16-sample-rate-string",
        L_JAMBONZ,
        [replaced(L_JAMBONZ.frames[0], ("sampleRate",), "abc"), *L_JAMBONZ.frames[1:]],
        closes(1008),
    ),
    probe(
        "l16-sample-rate-5000-digits",
        L_JAMBONZ,
        [replaced(L_JAMBONZ.frames[0], ("sampleRate",), LONG_INT)],
        closes(1007),
    ),
    probe(
        "l16-metadata-list",
        L_JAMBONZ,
        [replaced(L_JAMBONZ.frames[0], ("metadata",), [1]), *L_JAMBONZ.frames[1:]],
        closes(1003, 1008),
    ),
    probe(
        "l16-channels-number",
        L_JAMBONZ,
        [replaced(L_JAMBONZ.frames[0], ("metadata", "channels"), 5), *L_JAMBONZ.frames[1:]],
        closes(1008),
    ),
    probe("l16-preamble-deep", L_JAMBONZ, [DEEP_LIST], closes(1007)),
    probe("l16-audio-first", L_JAMBONZ, [L_JAMBONZ.frames[1]], closes(1008)),
    probe("l16-odd-byte-count", L_JAMBONZ, [L_JAMBONZ.frames[0], bytes(3)], closes(1007)),
    # AudioHook: parameters of the wrong type, absurd durations, huge gaps
    probe(
        "audiohook-open-parameters-list", A, audiohook_with(0, ("parameters",), [1]), disconnects
    ),
    probe(
        "audiohook-open-parameters-string", A, audiohook_with(0, ("parameters",), "x"), disconnects
    ),
    probe(
        "audiohook-open-deep",
        A,
        audiohook_with(0, ("parameters", "customConfig"), DEEP_OBJECT),
        disconnects,
    ),
    probe("audiohook-seq-5000-digits", A, audiohook_with(0, ("seq",), LONG_INT), disconnects),
    probe(
        "audiohook-resumed-parameters-string",
        A,
        audiohook_with(A_RESUMED, ("parameters",), "PT1S"),
        disconnects,
        open_name="audiohook-parameters-type",
    ),
    probe(
        "audiohook-discarded-exponent",
        A,
        audiohook_with(A_RESUMED, ("parameters", "discarded"), "PT1e9S"),
        disconnects,
    ),
    probe(
        "audiohook-discarded-20-digits",
        A,
        audiohook_with(A_RESUMED, ("parameters", "discarded"), "PT99999999999999999999S"),
        disconnects,
    ),
    probe(
        "audiohook-discarded-5000-digit-fraction",
        A,
        audiohook_with(A_RESUMED, ("parameters", "discarded"), "PT0." + "0" * 5000 + "1S"),
        audiohook_closed,
    ),
    probe(
        "audiohook-discarded-past-max-gap",
        A,
        audiohook_with(A_RESUMED, ("parameters", "discarded"), "PT86400S"),
        disconnects,
    ),
    probe(
        "audiohook-frame-25-s",
        A,
        [A.frames[0], b"\xff" * 400_000, *A.frames[1:]],
        disconnects,
        open_name="audiohook-frame-size",
    ),
    probe("audiohook-audio-before-open", A, [b"\xff" * 320], disconnects),
    probe(
        "audiohook-messages-after-close",
        A,
        [*A.frames, *A.frames[1:5] * 5],
        harmless_only,
        ending="close",
    ),
    # event streams: class 5 and ids no store should see
    probe(
        "agent-feedback-unknown-call",
        E,
        [{**FEEDBACK, "call_id": "fz-unknown"}],
        harmless_only,
        ending="close",
    ),
    probe(
        "agent-feedback-surrogate-id",
        E,
        [{**FEEDBACK, "call_id": "\ud800"}],
        harmless_only,
        ending="close",
    ),
    probe(
        "agent-feedback-long-id",
        E,
        [{**FEEDBACK, "call_id": "c" * 129}],
        harmless_only,
        ending="close",
    ),
    probe(
        "agent-feedback-deep",
        E,
        [json.dumps({"type": "feedback", "x": 0})[:-1] + ', "y": ' + "[" * 1500 + "]" * 1500 + "}"],
        harmless_only,
        ending="close",
    ),
    probe("floor-deep", F, ["[" * 2000 + "]" * 2000, b"\x00" * 3], harmless_only, ending="close"),
]


@pytest.mark.parametrize(("recorded", "frames", "expect", "ending"), PROBES)
def test_probe(
    probe_server: FuzzServer,
    recorded: Recorded,
    frames: list[Frame],
    expect: Callable[[Outcome], None],
    ending: Any,
) -> None:
    session = Session(recorded, frames, ending)
    outcome = probe_server.play(session)
    assert_harmless(probe_server, session.describe(), outcome)
    expect(outcome)


def test_feedback_on_an_unknown_or_foreign_call_is_not_stored(probe_server: FuzzServer) -> None:
    """Class 5: feedback for a call that doesn't exist, or is another agent's, is dropped
    (logged) and the agent's stream goes on; on the agent's own ended call it is stored."""
    own = Session(N, [replaced(N_START, ("call_id",), "fz-own"), *N.frames[1:]], "read")
    foreign = replaced(N_START, ("call_id",), "fz-foreign")
    foreign = Session(N, [replaced(foreign, ("agent_id",), "fz-other"), *N.frames[1:]], "read")
    for call in (own, foreign):
        assert_harmless(probe_server, "call", probe_server.play(call))
    feedback = [
        {**FEEDBACK, "call_id": "fz-unknown"},
        {**FEEDBACK, "call_id": "fz-foreign", "nudge_id": "fz-foreign-1"},
        {**FEEDBACK, "call_id": "fz-own", "nudge_id": "fz-own-1"},
    ]
    outcome = probe_server.play(Session(E, feedback, "close"))
    assert_harmless(probe_server, "feedback", outcome)
    assert probe_server.service is not None
    store = probe_server.service.store
    own, foreign, unknown = (
        probe_server.thread.run(store.record(c)) for c in ("fz-own", "fz-foreign", "fz-unknown")
    )
    assert [f["nudge_id"] for f in own["feedback"]] == ["fz-own-1"]
    assert foreign["feedback"] == []
    assert unknown is None
    assert FUZZ_AGENT in E.path


HTTP_PROBES = [
    ("GET", "/static/missing.css", 404),  # class 6
    ("GET", "/static/nothing.js", 404),
    ("GET", "/v1/agents/fz-agent/report?days=1e999", None),
    ("GET", "/v1/agents/fz-agent/report?days=nan", None),
    ("GET", "/v1/agents/fz-agent/report?days=-1e999", None),
    ("GET", "/v1/calls/" + "c" * 129, 404),
    ("GET", "/v1/calls/%00/scorecard", 404),
]


@pytest.mark.parametrize(("method", "target", "status"), HTTP_PROBES)
def test_http_probe(probe_server: FuzzServer, method: str, target: str, status: int | None):
    request = HttpRequest(method.encode(), target.encode())
    got, records = probe_server.request(request)
    assert got is not None and got != 500
    if status is not None:
        assert got == status
    assert not LogTrap.tracebacks(records)
