"""Privacy and security pieces without a server: redaction corrections through the
pipeline (transcripts, quotes, nudges, scorecard), the store's correction, ownership and
erasure methods, tokens of any bytes, the start-up check, and what the log may say."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
from websockets.datastructures import Headers

from assist.config import AccessConfig, ConfigError, Settings
from assist.events import Evidence, Nudge, Transcript, TranscriptWord
from assist.pipeline import CallPipeline
from assist.server.access import (
    Access,
    check_bind,
    missing_ingest_credentials,
    request_token,
)
from assist.server.app import TokenScrubber
from assist.session import exception_summary
from assist.store import CallStore, MemoryStore, RecordBackend
from assist.store.sqlite import SqliteStore
from assist.vad.silero import SileroModel
from assist.vocabulary import CallSpec, Recognized, TextScores, UtteranceAudio, Word

# -- corrections through the pipeline ---------------------------------------------------


@pytest.fixture(scope="module")
def vad_model() -> SileroModel:
    return SileroModel()


def _said(
    pipeline: CallPipeline, channel: str, uid: int, start: float, text: str, final: bool = True
):
    words = [Word(f" {w}", i * 0.3, i * 0.3 + 0.25, 0.9) for i, w in enumerate(text.split())]
    end = start + 0.3 * len(words) + 0.2
    audio = UtteranceAudio(channel, uid, start, end, np.zeros(1, dtype=np.float32), final, 1.0)
    return pipeline.on_transcript(audio, Recognized(text, words))


def test_a_corrected_final_replaces_the_transcript_its_quote_and_its_nudge(vad_model):
    spec = CallSpec("fix-1", "a-1", 8000, "pcm16", ("customer", "agent"))
    pipeline = CallPipeline(Settings(), vad_model, spec, asr=True, text=True)
    out = _said(pipeline, "customer", 0, 1.0, "This is ridiculous and mine begins with 41")
    (first,) = out.transcripts
    assert first.text.endswith("with 41") and not first.corrected  # nothing says card yet
    scores = TextScores(first.text, "customer", frustration=0.99, frustration_model_threshold=0.5)
    (nudge,) = pipeline.on_scores(first, scores).nudges
    assert nudge.evidence.details["quote"].endswith("41")
    out = _said(pipeline, "customer", 1, 6.0, "11 11 11 11")  # the next group, said on its own
    corrected = [t for t in out.transcripts if t.corrected]
    assert [(t.utterance_id, t.text) for t in corrected] == [
        (0, "This is ridiculous and mine begins with [number]")
    ]
    assert corrected[0].words[-1].word == "[redacted]" and corrected[0].final
    assert pipeline.transcripts[0] == corrected[0]  # the scorecard's "said" reads this one
    (fixed,) = out.corrected_nudges
    assert fixed.id == nudge.id and fixed.corrected
    assert "41" not in fixed.model_dump_json()
    scorecard = pipeline.scorecard()
    moment = next(m for m in scorecard["moments"] if m["kind"] == "customer_frustration")
    assert moment["quote"] == "This is ridiculous and mine begins with [number]"
    assert "41" not in str(scorecard) and "41" not in str(pipeline.call_so_far().to_json())


def test_a_negative_phrasing_quote_and_rewrite_come_from_the_corrected_sentence(vad_model):
    spec = CallSpec("fix-2", "a-1", 8000, "pcm16", ("customer", "agent"))
    pipeline = CallPipeline(Settings(), vad_model, spec, asr=True, text=True)
    (said,) = _said(pipeline, "agent", 0, 1.0, "I can't read back 4 2 here").transcripts
    phrasing = {"none": 0.02, "cant_wont": 0.98}
    scores = TextScores(said.text, "agent", phrasing=phrasing, phrasing_model_threshold=0.5)
    (nudge,) = pipeline.on_scores(said, scores).nudges
    assert "4 2" in nudge.evidence.details["text"]
    out = _said(pipeline, "customer", 0, 4.0, "the card number is 4111 1111")
    (fixed,) = out.corrected_nudges
    details = fixed.evidence.details
    assert details["text"] == "I can't read back [number] here"
    assert "4 2" not in fixed.model_dump_json()


def test_corrections_are_not_judged_again_and_partials_are_not_corrected(vad_model):
    spec = CallSpec("fix-3", "a-1", 8000, "pcm16", ("customer", "agent"))
    pipeline = CallPipeline(Settings(), vad_model, spec, asr=True, text=True)
    _said(pipeline, "customer", 0, 1.0, "well I have 41", final=False)
    out = _said(pipeline, "customer", 1, 3.0, "5555 5555 5555")
    assert [t.corrected for t in out.transcripts] == [False]
    assert pipeline.transcripts == out.transcripts


def test_a_final_corrected_while_it_waits_for_an_earlier_one_is_released_fixed(vad_model):
    """The recognizer answered finals 1 and 2 before 0; final 2 shows 1 ended with part of
    a card number. When 0 comes back, 1 reaches the detectors (and the text models, which
    judge what is released) with its fixed text, never the digits."""
    spec = CallSpec("fix-4", "a-1", 8000, "pcm16", ("customer", "agent"))
    pipeline = CallPipeline(Settings(), vad_model, spec, asr=True, text=True)
    said = {
        0: (1.0, "Hello."),
        1: (3.0, "This is ridiculous and mine begins with 41"),
        2: (8.0, "11 11 11 11"),
    }
    for uid, (start, _) in said.items():
        pipeline.expect_final(
            UtteranceAudio("customer", uid, start, start + 1.0, np.zeros(1, np.float32), True, 1.0)
        )
    waiting = [_said(pipeline, "customer", uid, *said[uid]) for uid in (1, 2)]
    assert [out.released for out in waiting] == [[], []]
    released = _said(pipeline, "customer", 0, *said[0]).released
    assert [t.utterance_id for t in released] == [0, 1, 2]
    assert released[1].text == "This is ridiculous and mine begins with [number]"
    assert released[1].corrected and "41" not in released[1].model_dump_json()


# -- the store -----------------------------------------------------------------------------


def _stores(tmp_path: Path) -> list[RecordBackend]:
    return [MemoryStore(10), SqliteStore(tmp_path / "calls.sqlite3")]


def _transcript(text: str, corrected: bool = False) -> Transcript:
    words = [TranscriptWord(word=f" {w}", start_s=1.0, end_s=1.2, probability=0.9)
             for w in text.split()]  # fmt: skip
    return Transcript(
        call_id="c-1", channel="customer", utterance_id=3, text=text, start_s=1.0, end_s=2.0,
        final=True, words=words, corrected=corrected,
    )  # fmt: skip


def _nudge(quote: str, corrected: bool = False) -> Nudge:
    evidence = Evidence(
        rule="cues.customer_frustration.min_score", threshold=0.5, measured=0.9, unit="score",
        span_start_s=1.0, span_end_s=2.0, explanation="x", details={"quote": quote},
    )  # fmt: skip
    return Nudge(
        id="c-1-1", call_id="c-1", agent_id="a-1", kind="customer_frustration",
        severity="warning", message="m", suggestion=None, media_time_s=2.0, evidence=evidence,
        corrected=corrected,
    )  # fmt: skip


def test_stores_replace_a_transcript_and_a_nudge_and_know_the_owner(tmp_path):
    for store in _stores(tmp_path):
        assert store.agent_of("c-1") is None
        assert not store.replace_transcript("c-1", _transcript("x"))
        store.call_started("c-1", "a-1", "native", 1000.0)
        store.add_transcript("c-1", _transcript("mine begins with 41"))
        store.add_nudge("c-1", _nudge("mine begins with 41"))
        assert store.replace_transcript("c-1", _transcript("mine begins with [number]", True))
        assert store.replace_nudge("c-1", _nudge("mine begins with [number]", True))
        record = store.record("c-1")
        assert record is not None
        assert [t["text"] for t in record["transcripts"]] == ["mine begins with [number]"]
        assert record["nudges"][0]["evidence"]["details"]["quote"].endswith("[number]")
        assert store.agent_of("c-1") == "a-1"
        store.close()


def test_feedback_on_an_unknown_call_is_ignored_not_an_error(tmp_path):
    for store in _stores(tmp_path):
        store.add_feedback("no-such-call", "no-such-call-1", "dead_air", "got_it", 1.0)
        assert store.record("no-such-call") is None
        store.close()


def test_erase_removes_every_copy_even_from_the_file(tmp_path):
    marker = "zebra-umbrella-marker"
    for store in _stores(tmp_path):
        store.call_started("c-1", "a-1", "native", 1000.0)
        store.call_started("c-2", "a-1", "native", 1001.0)
        store.add_transcript("c-1", _transcript(f"my name is {marker}"))
        store.add_nudge("c-1", _nudge(marker))
        store.add_feedback("c-1", "c-1-1", "customer_frustration", "got_it", 1002.0)
        store.checkpoint("c-1", {"quote": marker}, {"media_s": 2.0, "note": marker})
        store.call_ended("c-1", {"quote": marker}, 1003.0, {"media_s": 2.0, "note": marker})
        assert store.erase("c-1")
        assert not store.erase("c-1")
        assert store.record("c-1") is None and store.call_state("c-1") is None
        assert store.agent_of("c-1") is None and store.scorecard("c-1") is None
        assert [r["call_id"] for r in store.export()] == ["c-2"]
        store.close()
    files = list(tmp_path.glob("calls.sqlite3*"))
    assert files and all(marker.encode() not in f.read_bytes() for f in files)


# -- tokens --------------------------------------------------------------------------------


def test_tokens_come_from_the_authorization_header_then_x_assist_token_then_the_query():
    both = Headers([("Authorization", "Bearer from-bearer"), ("X-Assist-Token", "from-x")])
    assert request_token("/v1/calls?token=from-query", both) == b"from-bearer"
    x_only = Headers([("X-Assist-Token", "from-x")])
    assert request_token("/v1/calls?token=from-query", x_only) == b"from-x"
    assert request_token("/v1/calls?a=1&token=from-query", Headers()) == b"from-query"
    assert request_token("/v1/calls", Headers([("Authorization", "Basic abc")])) is None
    assert request_token("/v1/calls?token=%FF%00%C3%A9", Headers()) == b"\xff\x00\xc3\xa9"


@pytest.mark.parametrize(
    "token",
    [b"\xff\xfe", "tök".encode("latin-1"), "t\udcff", "\u00e9\u4e2d", b"", b"sup\x00", "s" * 5000],
)
def test_tokens_of_any_bytes_are_refused_never_an_error(token):
    access = Access(
        AccessConfig(agent_tokens={"agent-t": "a-1"}, supervisor_tokens=["sup"],
                     ingest_tokens=["ing"]),
        "10.0.0.5",
    )  # fmt: skip
    assert access.grant(token) is None
    assert not access.may_ingest(
        token if isinstance(token, bytes) else token.encode("utf-8", "surrogateescape")
    )


def test_configured_tokens_with_any_characters_match_their_bytes():
    access = Access(AccessConfig(supervisor_tokens=["sécret"], ingest_tokens=["ïn"]), "0.0.0.0")
    grant = access.grant("sécret".encode())
    assert grant is not None and grant.supervisor
    assert access.may_ingest("ïn".encode()) and not access.may_ingest(b"in")
    agent = Access(AccessConfig(agent_tokens={"t-1": "a-1"}), "0.0.0.0").grant(b"t-1")
    assert agent is not None and agent.may_see_agent("a-1") and not agent.may_see_agent("a-2")
    assert not agent.may_see_agent(None)


def test_ingest_is_open_only_on_loopback_or_insecure_without_ingest_tokens():
    assert Access(AccessConfig(), "127.0.0.1").ingest_open
    assert not Access(AccessConfig(), "0.0.0.0").ingest_open
    assert Access(AccessConfig(insecure=True), "0.0.0.0").ingest_open
    assert not Access(AccessConfig(ingest_tokens=["t"]), "127.0.0.1").ingest_open


def test_start_up_names_every_ingest_without_credentials():
    assert missing_ingest_credentials(Settings(), "127.0.0.1") == []
    assert missing_ingest_credentials(Settings(access={"insecure": True}), "0.0.0.0") == []
    with pytest.raises(ConfigError) as refused:
        check_bind(Settings(), "0.0.0.0")
    message = str(refused.value)
    for needed in ("native (/v1/calls: [access] ingest_tokens)", "l16", "exotel", "telnyx",
                   "twilio (/v1/twilio: [twilio] auth_token or [access] ingest_tokens)",
                   "audiohook (/v1/audiohook: [audiohook] api_key)", "insecure"):  # fmt: skip
        assert needed in message
    partly = Settings(access={"ingest_tokens": ["t"], "ingest": ["native", "audiohook"]})
    assert missing_ingest_credentials(partly, "0.0.0.0") == [
        "audiohook (/v1/audiohook: [audiohook] api_key)"
    ]
    secured = Settings(
        access={"ingest_tokens": ["t"]},
        twilio={"auth_token": "tw"},
        audiohook={"api_key": "k"},
    )
    check_bind(secured, "0.0.0.0")  # nothing missing: no error


# -- the log -------------------------------------------------------------------------------


def test_the_websockets_log_never_carries_a_token():
    scrubber = TokenScrubber()
    for msg, args in [
        ("< GET %s HTTP/1.1", ("/v1/agents/a/events?token=s3cr3t&x=1",)),
        ("< %s: %s", ("Authorization", "Bearer s3cr3t")),
        ("< %s: %s", ("X-Assist-Token", "s3cr3t")),
        ("< %s: %s", ("X-Twilio-Signature", "s3cr3t")),
    ]:
        record = logging.LogRecord("assist.server.websockets", 10, "x", 1, msg, args, None)
        assert scrubber.filter(record)
        assert "s3cr3t" not in record.getMessage() and "[redacted]" in record.getMessage()


def test_an_exception_summary_names_its_type_and_place_not_its_message():
    try:
        raise ValueError("the customer said 4111 1111")
    except ValueError as exc:
        summary = exception_summary(exc)
    assert summary.startswith("ValueError at ") and "test_privacy.py" in summary
    assert "4111" not in summary


# -- the session: corrections reach the store and the stream; text only with debug_text -----


def _session(vad_model, store: CallStore, debug_text: bool):
    from assist.hub import Hub
    from assist.metrics import ServiceMetrics
    from assist.session import CallSession
    from tests.conftest import make_settings

    spec = CallSpec("c-1", "a-1", 8000, "pcm16", ("customer", "agent"))
    settings = make_settings(logging={"debug_text": debug_text})
    hub = Hub()
    session = CallSession(
        spec, settings, vad_model, hub, ServiceMetrics(), lambda: 0.0, store=store
    )
    return session, hub


@pytest.mark.parametrize("debug_text", [False, True])
async def test_a_correction_replaces_the_stored_copy_and_text_is_logged_only_when_asked(
    vad_model, caplog, debug_text
):
    from assist.pipeline import PipelineOutput

    caplog.set_level(logging.DEBUG)
    from assist.store.threaded import ThreadedStore

    store = ThreadedStore(MemoryStore(10))
    await store.call_started("c-1", "a-1", "native", 1000.0)
    session, hub = _session(vad_model, store, debug_text)
    stream = hub.subscribe_agent("a-1")
    session._publish(PipelineOutput(transcripts=[_transcript("mine begins with 41")]))
    fixed = _transcript("mine begins with [number]", corrected=True)
    session._publish(PipelineOutput(transcripts=[fixed]))
    await session._store_writes()
    record = await store.record("c-1")
    assert record is not None
    assert [t["text"] for t in record["transcripts"]] == ["mine begins with [number]"]
    sent = [await stream.get() for _ in range(stream.pending())]  # subscribed, 2 transcripts
    assert '"corrected":true' in sent[-1] and "[number]" in sent[-1]
    logged = [r.getMessage() for r in caplog.records if "begins" in r.getMessage()]
    if debug_text:
        assert logged and all(r.levelno == logging.DEBUG for r in caplog.records
                              if "begins" in r.getMessage())  # fmt: skip
    else:
        assert logged == []
