"""The parts of ``assist assess`` on their own: pairing, agent ids, the ledger, decoding
and the report's arithmetic."""

from __future__ import annotations

import numpy as np
import pytest

from assist.assess.agents import AgentRule, AgentTable, AgentUnknown, parse_date
from assist.assess.decode import MonoRecording, UnreadableRecording, decode_pair, decode_stereo
from assist.assess.discover import CallFiles, discover
from assist.assess.ledger import Ledger, call_id_for, content_hash
from assist.assess.report import baseline_report
from tests.assess.recordings import encode, write_broken, write_mono_wav


def _touch(path, data=b"x"):  # type: ignore[no-untyped-def]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def test_discovery_pairs_mono_files_and_reports_half_pairs(tmp_path) -> None:  # type: ignore[no-untyped-def]
    _touch(tmp_path / "a" / "c1.wav")
    _touch(tmp_path / "a" / "c2.customer.wav")
    _touch(tmp_path / "a" / "c2.agent.flac")
    _touch(tmp_path / "b" / "c3_agent.wav")  # its customer file is missing
    _touch(tmp_path / "b" / "notes.txt")  # not audio: not searched
    calls, problems = discover([tmp_path, tmp_path / "missing.wav"])
    assert [c.name for c in calls] == ["c1", "c2"]
    assert calls[1].paths == (tmp_path / "a" / "c2.customer.wav", tmp_path / "a" / "c2.agent.flac")
    assert any("c3_agent.wav: the agent half of call 'c3'" in p for p in problems)
    assert any("missing.wav: no such file" in p for p in problems)
    with pytest.raises(ValueError, match="named groups"):
        discover([tmp_path], r"(?P<call>.+)")


def test_agent_ids_from_a_rule_or_a_csv(tmp_path) -> None:  # type: ignore[no-untyped-def]
    call = CallFiles("A17_20260302T0930_x", stereo=tmp_path / "A17_20260302T0930_x.wav")
    rule = AgentRule(r"^(?P<agent>[A-Z]\d+)_(?P<date>\d{8}T\d{4})")
    assert rule.owner(call).agent_id == "A17"
    assert rule.owner(call).started_at == parse_date("2026-03-02T09:30")
    with pytest.raises(AgentUnknown, match="no agent id"):
        rule.owner(CallFiles("misc", stereo=tmp_path / "misc.wav"))
    with pytest.raises(ValueError, match="named group"):
        AgentRule(r"^(\w+)_")
    bad = _touch(tmp_path / "bad.csv", b"name,agent\nx.wav,a\n")
    with pytest.raises(ValueError, match="missing agent_id, file"):
        AgentTable(bad)
    dates = _touch(tmp_path / "dates.csv", b"file,agent_id,call_date\nx.wav,a,yesterday\n")
    with pytest.raises(ValueError, match=r"dates\.csv:2: 'yesterday' is not an ISO 8601 date"):
        AgentTable(dates)


def test_the_ledger_knows_content_not_names(tmp_path) -> None:  # type: ignore[no-untyped-def]
    one = _touch(tmp_path / "one.wav", b"RIFF-same-bytes")
    two = _touch(tmp_path / "renamed.wav", b"RIFF-same-bytes")
    assert content_hash((one,)) == content_hash((two,))
    assert content_hash((one, two)) != content_hash((one,))
    digest = content_hash((one,))
    assert call_id_for("my call/01", digest) == f"my-call-01-{digest[:12]}"
    ledger = Ledger(tmp_path / "ledger.jsonl")
    ledger.add({"hash": digest, "call_id": "c"})
    with open(tmp_path / "ledger.jsonl", "a") as fh:
        fh.write('{"hash": "cut sh')  # a crash mid-line
    again = Ledger(tmp_path / "ledger.jsonl")
    assert len(again) == 1 and again.get(digest) == {"hash": digest, "call_id": "c"}


def test_decoding_rates_channels_and_refusals(tmp_path) -> None:  # type: ignore[no-untyped-def]
    t = np.arange(8000 * 2) / 8000
    left = 0.3 * np.sin(2 * np.pi * 440 * t)
    right = 0.3 * np.sin(2 * np.pi * 660 * t)
    stereo = np.stack([left, right], axis=1).astype(np.float32)
    encode(tmp_path / "call.wav", stereo, 8000, "pcm_alaw")
    call = decode_stereo(tmp_path / "call.wav")
    assert call.sample_rate == 8000 and call.samples.shape == (16000, 2)
    # A-law keeps a 440 Hz tone within its quantization (a few % of the level)
    assert np.abs(call.samples[:, 0] / 32768 - left).max() < 0.02
    swapped = decode_stereo(tmp_path / "call.wav", customer_channel="right")
    assert np.array_equal(swapped.samples[:, 0], call.samples[:, 1])
    encode(tmp_path / "call.flac", stereo, 8000, "flac", 44100)
    wide = decode_stereo(tmp_path / "call.flac")
    assert wide.sample_rate == 16000 and wide.source_rate == 44100
    assert abs(wide.duration_s - 2.0) < 0.01
    write_mono_wav(tmp_path / "mono.wav", left, 8000)
    with pytest.raises(MonoRecording, match=r"mono recording refused.*separate channels"):
        decode_stereo(tmp_path / "mono.wav")
    write_mono_wav(tmp_path / "agent.wav", right[:8000], 8000)
    pair = decode_pair(tmp_path / "mono.wav", tmp_path / "agent.wav")
    assert pair.samples.shape == (16000, 2) and not pair.samples[8000:, 1].any()
    with pytest.raises(UnreadableRecording, match="not a readable recording"):
        decode_stereo(write_broken(tmp_path / "broken.wav"))


def _record(call_id: str, agent: str, at: float, patience: int, empathy: int | None) -> dict:
    moment = {"kind": "interruption", "media_time_s": 1.0, "span_s": [0.5, 1.0],
              "measured": 0.9, "said": {"agent": "let me stop you"}}  # fmt: skip
    moments = [moment] if patience < 100 else []
    skills = {"patience": {"score": patience}, "empathy": {"score": empathy},
              "trust": {"score": None}, "efficiency": {"score": 100},
              "positive_attitude": {"score": None}}  # fmt: skip
    card = {"skills": skills, "metrics": {"duration_s": 60.0}, "moments": moments}
    return {"call_id": call_id, "agent_id": agent, "started_at": at, "scorecard": card}


def test_report_priorities_and_change() -> None:
    records = [
        _record("c1", "a", 10, 40, 80),
        _record("c2", "a", 20, 60, 80),
        _record("c3", "b", 10, 100, 70),
        _record("c4", "c", 10, 90, 90),
        _record("c5", "d", 10, 100, 60),
        _record("c6", "a", 50, 100, 80),  # after the coaching
    ]
    before = baseline_report(records[:5])
    patience = before["skills"]["patience"]
    assert [a["agent_id"] for a in patience["agents"]] == ["b", "d", "c", "a"]
    # agent medians 50, 90, 100, 100: mean 85, best quarter (one agent) 100
    assert (patience["team_mean"], patience["best_quarter"], patience["gap"]) == (85, 100, 15)
    assert patience["calls_affected"] == 3 and patience["calls_below_best_quarter"] == 3
    assert [p["skill"] for p in before["priorities"]] == ["patience", "empathy"]
    example = before["priorities"][0]["examples"][0]
    assert example["call_id"] == "c1" and example["said"] == {"agent": "let me stop you"}
    assert "trust" not in before["skills"]  # never scored: no invented number
    later = baseline_report(records, since=30)
    assert later["calls"] == 1
    a = {x["agent_id"]: x["skills"] for x in later["change"]["agents"]}["a"]
    assert a["patience"] == {"before": 50, "after": 100, "calls_before": 2, "calls_after": 1,
                             "change": 50}  # fmt: skip
