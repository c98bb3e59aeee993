"""The same call assessed offline and streamed live (a real server, a real WebSocket, in
20 ms frames) gives the same audio-cue findings and scorecard metrics: both run the
service's one pipeline with media time as the clock. Whisper and the text models run in
both (real models); what they hear may be shed live under load, so the text-derived
metrics are not compared."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from assist.assess.batch import AssessOptions, assess
from assist.config import Settings
from assist.store.sqlite import SqliteStore
from tests.assess.recordings import write_call
from tests.conftest import make_settings, start_server, synthesized_call
from tests.e2e.helpers import stream_rendered

pytestmark = [pytest.mark.e2e, pytest.mark.speech, pytest.mark.asr]

AUDIO_KINDS = {"interruption", "long_hold", "dead_air", "monologue"}
TEXT_METRICS = {
    "negative_phrasing",
    "customer_frustration_moments",
    "frustration_unacknowledged",
    "acknowledgements",
    "nudges_sent",  # counts the text cues' nudges too
}


def _audio_cues(card: dict[str, Any]) -> list[tuple[Any, ...]]:
    return sorted(
        (m["kind"], m["media_time_s"], tuple(m["span_s"]), m["measured"])
        for m in card["moments"]
        if m["kind"] in AUDIO_KINDS
    )


@pytest.mark.parametrize("script", ["fuzz_canary", "silence_hold"])
async def test_offline_and_live_agree(script: str, tmp_path: Path) -> None:
    call = synthesized_call(script)
    running = await start_server(make_settings(asr={"enabled": True}))
    try:
        live = await stream_rendered(running.ws, call, f"live-{script}", agent_id="a1")
    finally:
        await running.server.close()
    assert live.scorecard is not None

    write_call(tmp_path / "calls", f"a1_{script}", call, "wav")
    settings = Settings(store={"path": str(tmp_path / "calls.sqlite3")})
    options = AssessOptions([tmp_path / "calls"], workers=1, out_dir=tmp_path, progress=False)
    summary = await asyncio.to_thread(assess, options, settings)
    assert len(summary.assessed) == 1
    store = SqliteStore(tmp_path / "calls.sqlite3")
    try:
        (record,) = list(store.export())
    finally:
        store.close()
    offline = record["scorecard"]

    assert _audio_cues(offline) == _audio_cues(live.scorecard)
    assert _audio_cues(offline), "the call has audio cues to compare"
    drop = TEXT_METRICS

    def audio_metrics(card: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in card["metrics"].items() if k not in drop}

    assert audio_metrics(offline) == audio_metrics(live.scorecard)
    assert offline["skills"]["patience"] == live.scorecard["skills"]["patience"]
    # the audio nudges the agent would have seen live are the record's
    live_nudges = [(n["kind"], n["media_time_s"]) for n in live.nudges if n["kind"] in AUDIO_KINDS]
    stored = [(n["kind"], n["media_time_s"]) for n in record["nudges"] if n["kind"] in AUDIO_KINDS]
    assert stored == live_nudges
