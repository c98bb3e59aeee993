"""Settings: embedded defaults, TOML file, ASSIST_* environment, strict keys."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from assist.config import (
    ConfigError,
    CooldownConfig,
    RepeatAlertsConfig,
    Settings,
    load_settings,
)
from assist.vocabulary import CueKind

REPO = Path(__file__).resolve().parents[2]
DEFAULT_TOML = REPO / "configs" / "default.toml"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No ASSIST_* variable from the outside world leaks into these tests."""
    for name in list(os.environ):
        if name.upper().startswith("ASSIST_"):
            monkeypatch.delenv(name)


def flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten(value, name + "."))
        else:
            out[name] = value
    return out


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("server.host", "127.0.0.1"),
        ("server.port", 8765),
        ("vad.onset_probability", 0.5),
        ("vad.offset_probability", 0.35),
        ("vad.min_speech_s", 0.064),
        ("vad.min_silence_s", 0.25),
        ("cues.interruption.min_overlap_s", 0.8),
        ("cues.long_hold.min_hold_s", 45.0),
        ("cues.long_hold.critical_after_s", 90.0),
        ("cues.dead_air.min_silence_s", 8.0),
        ("cues.monologue.min_turn_s", 60.0),
        ("cues.hold_inference.music_window_s", 3.0),
        ("policy.cooldown_s.interruption", 10.0),
        ("policy.budget_per_call", 40),
        ("policy.budget_exempt_severity", "critical"),
        ("limits.ingest_queue_s", 5.0),
        ("floor.alert_kinds", ["long_hold"]),
    ],
)
def test_defaults(path: str, expected: Any) -> None:
    assert flatten(Settings().model_dump())[path] == expected
    assert flatten(load_settings().model_dump())[path] == expected


def write_toml(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "assist.toml"
    path.write_text(text)
    return path


TOML = """
[cues.dead_air]
min_silence_s = 12.0

[cues.monologue]
min_turn_s = 30.0

[server]
port = 9000
"""


def test_toml_file_overrides_defaults(tmp_path: Path) -> None:
    s = load_settings(write_toml(tmp_path, TOML))
    assert s.cues.dead_air.min_silence_s == 12.0
    assert s.cues.monologue.min_turn_s == 30.0
    assert s.cues.monologue.max_pause_s == 3.0  # untouched keys keep their defaults
    assert s.server.port == 9000
    assert s.server.host == "127.0.0.1"


@pytest.mark.parametrize(
    ("env", "value", "path", "expected"),
    [
        ("ASSIST_CUES__DEAD_AIR__MIN_SILENCE_S", "5", "cues.dead_air.min_silence_s", 5.0),
        ("assist_cues__dead_air__min_silence_s", "6.5", "cues.dead_air.min_silence_s", 6.5),
        ("ASSIST_SERVER__PORT", "1234", "server.port", 1234),
        ("ASSIST_POLICY__BUDGET_PER_CALL", "3", "policy.budget_per_call", 3),
    ],
)
def test_env_beats_toml_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, env: str, value: str, path: str, expected: Any
) -> None:
    monkeypatch.setenv(env, value)
    flat = flatten(load_settings(write_toml(tmp_path, TOML)).model_dump())
    assert flat[path] == expected
    # the rest of the file still applies, nested siblings included
    assert flat["cues.monologue.min_turn_s"] == 30.0
    if path != "server.port":
        assert flat["server.port"] == 9000


def test_settings_built_in_code_read_nothing_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ASSIST_CUES__DEAD_AIR__MIN_SILENCE_S", "5")
    assert Settings().cues.dead_air.min_silence_s == 8.0
    s = Settings(cues={"dead_air": {"min_silence_s": 20.0}, "monologue": {"min_turn_s": 7}})
    assert s.cues.dead_air.min_silence_s == 20.0
    assert load_settings().cues.dead_air.min_silence_s == 5.0


def test_flags_beat_environment_beat_file_beat_defaults(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_toml(tmp_path, "[server]\nport = 9000\nhost = '10.0.0.1'\n")
    assert load_settings(path).server.port == 9000
    monkeypatch.setenv("ASSIST_SERVER__PORT", "9100")
    assert load_settings(path).server.port == 9100  # environment over file
    s = load_settings(path, server={"port": 9200})
    assert (s.server.port, s.server.host) == (9200, "10.0.0.1")  # flag over environment


def test_the_demos_memory_store_beats_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ASSIST_STORE__BACKEND", "sqlite")
    assert load_settings(store={"backend": "memory"}).store.backend == "memory"


def test_overrides_merge_over_file(tmp_path: Path) -> None:
    s = load_settings(write_toml(tmp_path, TOML), server={"host": "0.0.0.0"}, vad={})
    assert (s.server.host, s.server.port) == ("0.0.0.0", 9000)


@pytest.mark.parametrize("source", ["file", "env"])
def test_one_cooldown_key_changes_that_kind_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, source: str
) -> None:
    if source == "file":
        s = load_settings(write_toml(tmp_path, "[policy.cooldown_s]\ninterruption = 5\n"))
    else:
        monkeypatch.setenv("ASSIST_POLICY__COOLDOWN_S__INTERRUPTION", "5")
        s = load_settings()
    cooldowns = s.policy.cooldown_s
    assert cooldowns.interruption == 5.0
    assert (cooldowns.monologue, cooldowns.pace, cooldowns.customer_frustration) == (
        30.0,
        60.0,
        60.0,
    )


def test_one_repeat_alert_key_changes_that_kind_only(tmp_path: Path) -> None:
    s = load_settings(write_toml(tmp_path, "[floor.repeat_alerts]\npace = 4\n"))
    assert (s.floor.repeat_alerts.pace, s.floor.repeat_alerts.interruption) == (4, 3)


def test_every_cue_kind_has_a_cooldown_and_a_repeat_alert() -> None:
    kinds = {kind.value for kind in CueKind}
    assert set(CooldownConfig.model_fields) == kinds
    assert set(RepeatAlertsConfig.model_fields) == kinds


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ("ASSIST_POLICY__COOLDOWN_S__INTERUPTION", "interuption"),
        ("ASSIST_SERVR__PORT", "ASSIST_SERVR__PORT"),
        ("ASSIST_CUES__DEAD_AIR__MIN_SILENCE", "min_silence"),
        ("ASSIST_FLOOR__ALERT_KINDS", "alert_kinds"),
    ],
)
def test_a_typo_in_the_environment_is_an_error_naming_it(
    monkeypatch: pytest.MonkeyPatch, env: str, named: str
) -> None:
    monkeypatch.setenv(env, '["long_hol"]' if "ALERT_KINDS" in env else "5")
    with pytest.raises(ConfigError, match=named):
        load_settings()


def test_a_typo_in_a_table_of_the_file_is_an_error_naming_it(tmp_path: Path) -> None:
    path = write_toml(tmp_path, "[policy.cooldown_s]\nintteruption = 5\n")
    with pytest.raises(ConfigError, match=r"policy\.cooldown_s\.intteruption"):
        load_settings(path)


def test_malformed_toml_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(write_toml(tmp_path, "[server\nport = 1\n"))


def test_partial_nested_init_keeps_other_defaults() -> None:
    s = Settings(cues={"long_hold": {"min_hold_s": 2, "remind_every_s": 2}})
    assert s.cues.long_hold.min_hold_s == 2.0
    assert s.cues.long_hold.critical_after_s == 90.0
    assert s.cues.dead_air.min_silence_s == 8.0


@pytest.mark.parametrize(
    "kwargs",
    [
        {"bogus": 1},
        {"cues": {"dead_air": {"bogus": 1}}},
        {"cues": {"deadair": {"min_silence_s": 1}}},
        {"vad": {"onset_probability": 0.5, "onset_prob": 0.6}},
        {"limits": {"max_calls": 10, "max_call": 10}},
    ],
)
def test_unknown_keys_rejected(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValidationError, match="xtra"):
        Settings(**kwargs)


def test_unknown_key_in_toml_rejected(tmp_path: Path) -> None:
    path = write_toml(tmp_path, "[cues.dead_air]\nmin_silence = 5.0\n")
    with pytest.raises(ConfigError, match="min_silence"):
        load_settings(path)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"vad": {"onset_probability": 1.5}},
        {"cues": {"dead_air": {"min_silence_s": 0}}},
        {"server": {"port": 70000}},
        {"policy": {"budget_exempt_severity": "urgent"}},
    ],
)
def test_out_of_range_values_rejected(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        Settings(**kwargs)


def test_default_toml_mirrors_defaults() -> None:
    if not DEFAULT_TOML.is_file():
        pytest.skip(f"{DEFAULT_TOML} does not exist yet")
    with DEFAULT_TOML.open("rb") as fh:
        file_keys = flatten(tomllib.load(fh))
    defaults = flatten(Settings().model_dump())
    assert load_settings(DEFAULT_TOML).model_dump() == Settings().model_dump()
    # every default is written in the file, with the same value
    assert set(file_keys) == set(defaults)
    for key, value in defaults.items():
        assert file_keys[key] == value, key


def test_tool_variables_are_not_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("ASSIST_MODEL_CACHE", "ASSIST_SYNTH_CACHE", "ASSIST_ARTIFACTS"):
        monkeypatch.setenv(name, str(tmp_path))
    assert load_settings() == Settings()
