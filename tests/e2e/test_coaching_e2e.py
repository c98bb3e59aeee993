"""A scripted day on the floor: three agents, synthesized calls through the real server
(with a restart in the middle), then the coaching reports a supervisor would read."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

import pytest

from tests.conftest import make_settings, start_server, synthesized_call
from tests.e2e.helpers import http_get_json, stream_rendered

pytestmark = [pytest.mark.e2e, pytest.mark.speech]

MORNING = [("calm", "smooth"), ("talker", "interruptions"), ("holder", "holds")]
AFTERNOON = [("calm", "smooth"), ("talker", "interruptions"), ("holder", "smooth")]


async def test_a_day_of_calls_ranks_agents_and_names_their_focus(tmp_path):
    settings = make_settings(store={"backend": "sqlite", "path": str(tmp_path / "day.sqlite3")})
    for half, calls in (("am", MORNING), ("pm", AFTERNOON)):
        running = await start_server(settings)  # a restart between the halves of the day
        try:
            for agent, script in calls:
                call = synthesized_call(script)
                await stream_rendered(running.ws, call, f"{half}-{agent}", agent_id=agent)
        finally:
            await running.server.close()

    running = await start_server(settings)
    try:
        reports = {}
        for agent in ("calm", "talker", "holder"):
            status, reports[agent] = await http_get_json(
                f"{running.http}/v1/agents/{agent}/report?days=1"
            )
            assert status == 200 and reports[agent]["calls"] == 2
    finally:
        await running.server.close()

    patience = {a: r["skills"]["patience"]["median"] for a, r in reports.items()}
    efficiency = {a: r["skills"]["efficiency"]["median"] for a, r in reports.items()}
    assert patience["calm"] > patience["talker"] and patience["holder"] > patience["talker"]
    assert efficiency["calm"] > efficiency["holder"]
    assert reports["talker"]["focus_skill"] == "patience"
    assert reports["holder"]["focus_skill"] == "efficiency"
    talker_moments = reports["talker"]["moments"]
    assert len(talker_moments) == 3 and {m["kind"] for m in talker_moments} == {"interruption"}
    assert reports["talker"]["skills"]["empathy"]["median"] is None  # no text cues yet

    env = {**os.environ, "ASSIST_STORE__PATH": str(tmp_path / "day.sqlite3")}
    out = tmp_path / "reports"
    for args in (["--agent", "talker"], ["--team"]):
        run = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "assist.cli", "report", *args, "--days", "1", "--out", str(out)],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
        )
        assert run.returncode == 0, run.stderr
    page = (out / "report-talker.html").read_text()
    assert "Focus next: patience" in page and page.count("<svg") == 2  # patience, efficiency
    team = (out / "team.html").read_text()
    assert "best quartile" in team
    ranking = run.stdout.splitlines()
    assert ranking[0].startswith("patience") and ranking[1].startswith("efficiency")
    assert "gap +24.0" in ranking[0]  # best quartile 100, team mean (28 + 100 + 100) / 3
