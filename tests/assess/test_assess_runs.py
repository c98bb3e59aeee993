"""Runs of ``assist assess`` on the audio cues alone (ASR off, one in-process worker, so
each takes seconds): an interrupted run resumed, agents from a CSV, the change since a
date, and the command line."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from concurrent.futures import Future
from pathlib import Path

import pytest

from assist.assess.agents import parse_date
from assist.assess.batch import AssessOptions, _as_completed, _ctrl_c_deferred, assess
from assist.assess.worker import CallOutcome
from assist.cli import main
from assist.config import Settings
from assist.store.sqlite import SqliteStore
from tests.assess.recordings import write_call
from tests.conftest import synthesized_call

pytestmark = [pytest.mark.e2e, pytest.mark.speech]

RULE = r"^(?P<agent>a\d+)_(?P<date>\d{4}-\d{2}-\d{2})"


def _settings(root: Path) -> Settings:
    return Settings(asr={"enabled": False}, store={"path": str(root / "calls.sqlite3")})


def _records(root: Path) -> list[dict]:
    store = SqliteStore(root / "calls.sqlite3")
    try:
        return list(store.export())
    finally:
        store.close()


def test_an_interrupted_run_resumes_without_assessing_again(tmp_path: Path) -> None:
    folder = tmp_path / "calls"
    for stem, script in [("a1_2026-01-05_x", "fuzz_canary"), ("a2_2026-01-05_y", "smooth"),
                         ("a3_2026-01-05_z", "dead_air")]:  # fmt: skip
        write_call(folder, stem, synthesized_call(script), "wav")
    options = AssessOptions([folder], agent_rule=RULE, workers=1, out_dir=tmp_path / "r",
                            progress=False)  # fmt: skip
    done: list[CallOutcome] = []

    def interrupt(outcome: CallOutcome) -> None:
        done.append(outcome)
        raise KeyboardInterrupt  # Ctrl-C once the first call is stored

    with pytest.raises(KeyboardInterrupt):
        assess(options, _settings(tmp_path), on_call=interrupt)
    first = done[0].job.call_id
    assert [r["call_id"] for r in _records(tmp_path)] == [first]
    ledger = (tmp_path / "assessed.jsonl").read_text().splitlines()
    assert [json.loads(line)["call_id"] for line in ledger] == [first]

    again: list[str] = []
    summary = assess(options, _settings(tmp_path), on_call=lambda o: again.append(o.job.call_id))
    assert summary.already == [first]
    assert first not in again and len(again) == 2 == len(summary.assessed)
    records = _records(tmp_path)
    assert sorted(r["call_id"] for r in records) == sorted([first, *again])  # once each
    assert summary.report is not None and summary.report["calls"] == 3


def test_agents_and_dates_from_a_csv(tmp_path: Path) -> None:
    folder = tmp_path / "calls"
    write_call(folder / "q1", "rec-0001", synthesized_call("fuzz_canary"), "wav")
    write_call(folder, "rec-0002", synthesized_call("smooth"), "pair")
    write_call(folder, "rec-0003", synthesized_call("dead_air"), "wav")  # not listed
    table = folder / "agents.csv"
    table.write_text(
        "file,agent_id,call_date\n"
        "q1/rec-0001.wav,maria,2026-02-03T09:30:00\n"
        "rec-0002.agent.wav,li,2026-02-04\n"
    )
    options = AssessOptions([folder], agents_csv=table, workers=1, out_dir=tmp_path / "r",
                            progress=False)  # fmt: skip
    summary = assess(options, _settings(tmp_path))
    by_name = {r["call_id"].rsplit("-", 1)[0]: r for r in _records(tmp_path)}
    assert by_name["rec-0001"]["agent_id"] == "maria"
    assert by_name["rec-0001"]["started_at"] == parse_date("2026-02-03T09:30:00")
    assert by_name["rec-0002"]["agent_id"] == "li"
    assert by_name["rec-0002"]["started_at"] == parse_date("2026-02-04")
    assert len(by_name) == 2
    assert any("rec-0003.wav: not listed in" in p for p in summary.problems)


def test_a_later_run_since_a_date_shows_the_change(tmp_path: Path) -> None:
    before, after = tmp_path / "january", tmp_path / "march"
    # a1 interrupted in January and not in March; a2 the other way round
    write_call(before, "a1_2026-01-10_x", synthesized_call("interruptions"), "wav")
    write_call(before, "a2_2026-01-11_x", synthesized_call("smooth"), "wav")
    write_call(after, "a1_2026-03-10_x", synthesized_call("fuzz_canary"), "wav")
    write_call(after, "a2_2026-03-11_x", synthesized_call("dead_air"), "wav")
    settings = _settings(tmp_path)
    first = assess(
        AssessOptions([before], agent_rule=RULE, workers=1, out_dir=tmp_path / "r1",
                      progress=False), settings)  # fmt: skip
    assert first.report is not None and first.report["change"] is None
    since = parse_date("2026-02-01")
    second = assess(
        AssessOptions([after], agent_rule=RULE, workers=1, out_dir=tmp_path / "r2",
                      since=since, progress=False), settings)  # fmt: skip
    report = second.report
    assert report is not None and report["calls"] == 2  # the picture since the date
    change = report["change"]
    assert change["calls_before"] == 2 and change["calls_after"] == 2
    records = {(r["agent_id"], r["started_at"] >= since): r for r in _records(tmp_path)}

    def score(agent: str, later: bool, skill: str) -> int:
        return records[(agent, later)]["scorecard"]["skills"][skill]["score"]

    agents = {a["agent_id"]: a["skills"] for a in change["agents"]}
    for agent in ("a1", "a2"):
        for skill in ("patience", "efficiency"):
            entry = agents[agent][skill]
            assert entry["before"] == score(agent, False, skill)
            assert entry["after"] == score(agent, True, skill)
            assert entry["change"] == score(agent, True, skill) - score(agent, False, skill)
    assert agents["a1"]["patience"]["change"] > 0  # three interruptions, then one
    assert agents["a2"]["efficiency"]["change"] < 0  # dead air in March
    page = (tmp_path / "r2" / "baseline.html").read_text()
    assert "Change since 2026-02-01" in page


def test_the_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                          monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    folder = tmp_path / "calls"
    write_call(folder, "a1_2026-01-05_x", synthesized_call("fuzz_canary"), "mulaw")
    monkeypatch.setenv("ASSIST_ASR__ENABLED", "false")
    monkeypatch.setenv("ASSIST_STORE__PATH", str(tmp_path / "calls.sqlite3"))
    args = ["assess", str(folder), "--agent-from", RULE, "--workers", "1", "--out",
            str(tmp_path / "out"), "--no-progress"]  # fmt: skip
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "1 call(s) found: 1 assessed" in out and "train first 1:" in out
    assert (tmp_path / "out" / "baseline.html").exists()
    assert main([*args[:3], "(no agent group)", *args[4:]]) == 2
    assert "needs the named group (?P<agent>" in capsys.readouterr().err
    assert main([*args, "--since", "last week"]) == 2


def test_ctrl_c_stops_the_worker_pool_and_the_next_run_resumes(tmp_path: Path) -> None:
    """``assist assess`` as a user runs it, two worker processes, stopped by SIGINT once its
    log says the first call is stored (read line by line: no timer)."""
    folder = tmp_path / "calls"
    for i, script in enumerate(["fuzz_canary", "smooth", "dead_air", "interruptions"]):
        write_call(folder, f"a{i}_2026-01-0{i + 1}_x", synthesized_call(script), "wav")
    env = {**os.environ, "ASSIST_ASR__ENABLED": "false",
           "ASSIST_STORE__PATH": str(tmp_path / "calls.sqlite3")}  # fmt: skip
    command = [sys.executable, "-m", "assist.cli", "-v", "assess", str(folder), "--agent-from",
               RULE, "--workers", "2", "--out", str(tmp_path / "r"), "--no-progress"]  # fmt: skip
    run = subprocess.Popen(
        command,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    assert run.stderr is not None
    for line in run.stderr:
        if "assist.assess.batch: assessed " in line:
            run.send_signal(signal.SIGINT)
            break
    _, err = run.communicate(timeout=120)
    assert run.returncode == 130, err
    assert "interrupted; run it again to resume" in err
    stored = {r["call_id"] for r in _records(tmp_path)}
    ledger = [
        json.loads(x)["call_id"] for x in (tmp_path / "assessed.jsonl").read_text().splitlines()
    ]
    assert set(ledger) == stored and 1 <= len(stored) < 4
    again = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    assert f"{4 - len(stored)} assessed" in again.stdout
    assert f"{len(stored)} assessed before" in again.stdout
    assert len(_records(tmp_path)) == 4


def test_ctrl_c_in_the_pool_loop_is_raised_outside_any_lock() -> None:
    """The pool loop's Ctrl-C: the first SIGINT only marks the flag (a KeyboardInterrupt
    raised inside a Condition wait can surface as "release unlocked lock", as it did in CI),
    the loop's wait raises KeyboardInterrupt itself, a second SIGINT raises at once, and the
    previous handler is back afterwards."""
    before = signal.getsignal(signal.SIGINT)
    waiting: Future[int] = Future()  # never completes
    done: Future[int] = Future()
    done.set_result(7)
    with _ctrl_c_deferred() as ctrl_c:
        assert [f.result() for f in _as_completed([done], ctrl_c)] == [7]
        signal.raise_signal(signal.SIGINT)  # handled before raise_signal returns
        assert ctrl_c.pressed
        with pytest.raises(KeyboardInterrupt):
            next(_as_completed([waiting], ctrl_c))
        with pytest.raises(KeyboardInterrupt):
            signal.raise_signal(signal.SIGINT)
    assert signal.getsignal(signal.SIGINT) is before


def _workers_of(pid: int) -> list[int]:
    """The worker processes (multiprocessing spawn children) of process ``pid``."""
    children = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        children += [int(c) for c in (task / "children").read_text().split()]
    return [c for c in children if b"spawn_main" in Path(f"/proc/{c}/cmdline").read_bytes()]


def test_a_worker_that_dies_does_not_stop_the_batch(tmp_path: Path) -> None:
    """A worker process killed mid-batch (as the OOM killer or a crashing decoder would):
    the calls it left unanswered run again and every call is assessed."""
    folder = tmp_path / "calls"
    for i, script in enumerate(["fuzz_canary", "smooth", "dead_air", "interruptions"]):
        write_call(folder, f"a{i}_2026-01-0{i + 1}_x", synthesized_call(script), "wav")
    env = {**os.environ, "ASSIST_ASR__ENABLED": "false",
           "ASSIST_STORE__PATH": str(tmp_path / "calls.sqlite3")}  # fmt: skip
    command = [sys.executable, "-m", "assist.cli", "-v", "assess", str(folder), "--agent-from",
               RULE, "--workers", "2", "--out", str(tmp_path / "r"), "--no-progress"]  # fmt: skip
    run = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True)  # fmt: skip
    assert run.stderr is not None
    killed = False
    for line in run.stderr:
        if not killed and "assist.assess.batch: assessed " in line:
            os.kill(_workers_of(run.pid)[0], signal.SIGKILL)
            killed = True
        if "a worker process died" in line:
            break
    else:
        pytest.fail("no worker died")
    out, err = run.communicate(timeout=300)
    assert run.returncode == 0, err
    assert "4 call(s) found: 4 assessed" in out, out
    assert len(_records(tmp_path)) == 4
