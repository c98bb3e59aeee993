"""Layers point one way: the pure core imports no model runtime, thread pool, socket or
protocol module (they belong to the shell), so it stays testable and free of I/O."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

# Modules the pure core must never pull in, directly or through what it imports.
SHELL_ONLY = (
    "onnxruntime",
    "ctranslate2",
    "faster_whisper",
    "websockets",
    "sqlite3",
    "nats",
    "asyncpg",
    "assist.asr.pool",
    "assist.asr.whisper",
    "assist.text.classify",
    "assist.vad.silero",
    "assist.protocols",
    "assist.server",
    "assist.session",
    "assist.service",
    "assist.store",
    "assist.cluster",
)

CORE = (
    "assist.pipeline",
    "assist.detectors",
    "assist.policy",
    "assist.nudges",
    "assist.floor",
    "assist.scorecard",
    "assist.vocabulary",
)


@pytest.mark.parametrize("module", CORE)
def test_the_pure_core_imports_no_shell_module(module: str) -> None:
    # A fresh interpreter: this test process has imported everything already.
    code = f"import sys, json, {module}; print(json.dumps(sorted(sys.modules)))"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = json.loads(run.stdout)
    pulled_in = [
        name for name in loaded if any(name == s or name.startswith(s + ".") for s in SHELL_ONLY)
    ]
    assert pulled_in == [], f"{module} imports {pulled_in}"
