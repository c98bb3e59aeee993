"""Shared fixtures: a real server on a loopback port, synthesized calls, a manual clock."""

from __future__ import annotations

import os

# Hermetic: the tests run on the built-in settings, whatever ASSIST_* variables the shell
# has (ASSIST_SERVER__PORT, ASSIST_ASR__ENABLED, ASSIST_AUDIOHOOK_API_KEY, ...). Removed
# here, before anything reads settings, so servers the tests start as subprocesses inherit
# a clean environment too. Tests about the environment set variables with monkeypatch.
if REMOVED_ASSIST_ENV := sorted(n for n in os.environ if n.upper().startswith("ASSIST_")):
    for _name in REMOVED_ASSIST_ENV:
        del os.environ[_name]

import shutil
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from assist.config import Settings
from assist.server.app import AssistServer
from assist.service import AssistService
from assist.synth.render import RenderedCall, render
from assist.synth.script import CallScript

CALLS_DIR = Path(__file__).parent / "calls"
BUNDLED_SCRIPTS = Path(__file__).parent.parent / "assist" / "synth" / "scripts"


def pytest_report_header() -> str:
    removed = ", ".join(REMOVED_ASSIST_ENV) or "none were set"
    return f"hermetic: ASSIST_* variables removed from the environment: {removed}"


class ManualClock:
    """A monotonic clock that moves only when a test says so."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def manual_clock() -> ManualClock:
    return ManualClock()


def make_settings(**overrides: Any) -> Settings:
    """Defaults, except: a deep ingest queue (tests stream faster than real time, a live
    line never does; overload has its own tests), and ASR off unless a test is about it."""
    limits = {"ingest_queue_s": 3600.0, **overrides.pop("limits", {})}
    asr = {"enabled": False, **overrides.pop("asr", {})}
    store = {"backend": "memory", **overrides.pop("store", {})}
    return Settings(limits=limits, asr=asr, store=store, **overrides)


class RunningServer:
    def __init__(self, service: AssistService, server: AssistServer) -> None:
        self.service = service
        self.server = server

    @property
    def ws(self) -> str:
        return f"ws://127.0.0.1:{self.server.port}"

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.server.port}"


async def start_server(settings: Settings) -> RunningServer:
    service = AssistService(settings)
    server = AssistServer(service)
    await server.start("127.0.0.1", 0)
    await service.load_models()
    return RunningServer(service, server)


@pytest.fixture
async def server() -> AsyncIterator[RunningServer]:
    running = await start_server(make_settings())
    yield running
    await running.server.close()


@pytest.fixture
async def server_factory() -> AsyncIterator[Callable[..., Any]]:
    started: list[RunningServer] = []

    async def factory(settings: Settings) -> RunningServer:
        running = await start_server(settings)
        started.append(running)
        return running

    yield factory
    for running in started:
        await running.server.close()


_rendered: dict[tuple[Any, ...], RenderedCall] = {}


def synthesized_call(name: str, **changes: Any) -> RenderedCall:
    """Render tests/calls/NAME.toml (or the bundled assist/synth/scripts/NAME.toml), with
    ``changes`` to its top-level fields (e.g. ``noise_dbfs``), once per session (espeak-ng
    output is cached on disk)."""
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng not installed")
    key = (name, repr(sorted(changes.items())))
    if key not in _rendered:
        path = CALLS_DIR / f"{name}.toml"
        if not path.exists():
            path = BUNDLED_SCRIPTS / f"{name}.toml"
        _rendered[key] = render(CallScript.load(path).changed(**changes))
    return _rendered[key]
