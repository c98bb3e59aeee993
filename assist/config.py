"""Service configuration: one pydantic tree, embedded defaults, TOML file, ASSIST_* env.

Precedence (highest first): ``ASSIST_*`` environment variables (nested keys joined with
``__``, e.g. ``ASSIST_CUES__DEAD_AIR__MIN_SILENCE_S=10``), then the TOML file given with
``--config``, then the defaults written here. ``configs/default.toml`` mirrors these
defaults with a comment per setting; a test keeps the two identical.

Units are in the names: ``_s`` seconds of media time, ``_dbfs`` decibels relative to full
scale, ``_ms`` milliseconds.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class VadConfig(_Section):
    """Per-channel voice activity gate (Silero VAD probabilities, 32 ms windows)."""

    onset_probability: float = Field(0.5, ge=0, le=1)
    offset_probability: float = Field(0.35, ge=0, le=1)
    min_speech_s: float = Field(0.064, ge=0)
    min_silence_s: float = Field(0.25, ge=0)
    min_speech_dbfs: float = -55.0


class InterruptionConfig(_Section):
    min_overlap_s: float = Field(0.8, gt=0)
    customer_gap_tolerance_s: float = Field(0.2, ge=0)
    agent_pause_tolerance_s: float = Field(0.5, ge=0)


class LongHoldConfig(_Section):
    min_hold_s: float = Field(45.0, gt=0)
    remind_every_s: float = Field(45.0, gt=0)
    critical_after_s: float = Field(90.0, gt=0)


class HoldInferenceConfig(_Section):
    music_enabled: bool = True
    music_min_dbfs: float = -50.0
    music_max_speech_probability: float = Field(0.3, ge=0, le=1)
    music_window_s: float = Field(3.0, gt=0)
    music_fraction: float = Field(0.6, gt=0, le=1)
    music_end_s: float = Field(2.0, gt=0)
    line_silence_enabled: bool = True
    line_silence_max_dbfs: float = -72.0
    line_silence_min_s: float = Field(3.0, gt=0)


class DeadAirConfig(_Section):
    min_silence_s: float = Field(8.0, gt=0)


class MonologueConfig(_Section):
    min_turn_s: float = Field(60.0, gt=0)
    customer_turn_min_s: float = Field(1.0, gt=0)
    max_pause_s: float = Field(3.0, gt=0)


class PaceConfig(_Section):
    """Agent speaking rate from word timestamps of final transcripts."""

    max_words_per_minute: float = Field(190.0, gt=0)
    window_s: float = Field(30.0, gt=0)
    min_words: int = Field(25, ge=1)
    min_utterance_s: float = Field(2.0, ge=0)


class NegativePhrasingConfig(_Section):
    """Agent sentences the negative-phrasing model flags (category + rewrite)."""

    min_score: float = Field(0.0, ge=0, le=1)  # 0: the threshold stored in the model


class CustomerFrustrationConfig(_Section):
    """Customer sentences the frustration model flags, unless the agent acknowledged."""

    min_score: float = Field(0.0, ge=0, le=1)  # 0: the threshold stored in the model
    # An agent acknowledgement this recent (media s before the customer's sentence
    # ended) means the feeling was already heard: no nudge.
    acknowledged_within_s: float = Field(45.0, ge=0)


class CuesConfig(_Section):
    interruption: InterruptionConfig = InterruptionConfig()
    long_hold: LongHoldConfig = LongHoldConfig()
    hold_inference: HoldInferenceConfig = HoldInferenceConfig()
    dead_air: DeadAirConfig = DeadAirConfig()
    monologue: MonologueConfig = MonologueConfig()
    pace: PaceConfig = PaceConfig()
    negative_phrasing: NegativePhrasingConfig = NegativePhrasingConfig()
    customer_frustration: CustomerFrustrationConfig = CustomerFrustrationConfig()


class AsrConfig(_Section):
    """Speech recognition: one faster-whisper pool per process, shared by all calls."""

    enabled: bool = True
    model: str = "tiny.en"
    device: Literal["auto", "cpu", "cuda"] = "auto"
    compute_type: str = "auto"
    workers: int = Field(0, ge=0)
    cpu_threads: int = Field(1, ge=1)
    max_batch: int = Field(8, ge=1)
    max_queue: int = Field(64, ge=1)
    stale_after_s: float = Field(4.0, gt=0)
    partial_stale_after_s: float = Field(1.0, gt=0)
    beam_size: int = Field(1, ge=1)


class TextConfig(_Section):
    """Text models on final transcripts (needs ASR): ONNX heads on sentence embeddings."""

    enabled: bool = True
    models_dir: str = ""  # "": the project's models/ folder
    threads: int = Field(1, ge=1)
    # Only sentences Whisper heard clearly are judged: their words' mean probability must
    # reach this (misheard noise like "Oh, ding." must not become a nudge).
    min_word_probability: float = Field(0.5, ge=0, le=1)


class UtteranceConfig(_Section):
    """How each channel's speech is cut into utterances for the recognizer."""

    pre_roll_s: float = Field(0.3, ge=0)
    post_roll_s: float = Field(0.15, ge=0)
    min_pause_s: float = Field(0.5, ge=0)
    min_utterance_s: float = Field(0.3, ge=0)
    max_utterance_s: float = Field(15.0, gt=1)
    partial_every_s: float = Field(2.0, ge=0)
    keep_audio_s: float = Field(20.0, gt=1)


Severity = Literal["info", "warning", "critical"]


class PolicyConfig(_Section):
    """Which findings become nudges: cooldowns in media seconds, a budget per call."""

    cooldown_s: dict[str, float] = {
        "interruption": 10.0,
        "long_hold": 0.0,
        "dead_air": 0.0,
        "monologue": 30.0,
        "pace": 60.0,
        "negative_phrasing": 20.0,
        "customer_frustration": 60.0,
    }
    budget_per_call: int = Field(40, ge=0)
    budget_exempt_severity: Severity = "critical"


class FloorConfig(_Section):
    """When the supervisors' floor view raises an alert."""

    alert_kinds: list[str] = ["long_hold"]
    # A kind reaching this many nudges in one call raises an alert ("escalating").
    repeat_alerts: dict[str, int] = {"interruption": 3, "customer_frustration": 2}


class LimitsConfig(_Section):
    max_frame_ms: int = Field(1000, gt=0)
    max_text_bytes: int = Field(65536, gt=0)
    ingest_queue_s: float = Field(5.0, gt=0)
    subscriber_queue: int = Field(256, gt=0)
    max_calls: int = Field(500, gt=0)
    start_timeout_s: float = Field(10.0, gt=0)
    scorecards_kept: int = Field(1000, gt=0)


class TwilioConfig(_Section):
    """Twilio Media Streams (``/v1/twilio``)."""

    auth_token: str = ""
    validate_signature: bool = True
    public_url: str = ""
    agent_id_parameter: str = "agent_id"
    default_agent_id: str = "unassigned"
    max_track_skew_s: float = Field(1.0, gt=0)


class L16Config(_Section):
    """L16 preamble streams (``/v1/l16``: Vonage, jambonz)."""

    mono_role: Literal["customer", "agent"] = "customer"
    stereo_channels: list[Literal["customer", "agent"]] = ["customer", "agent"]
    default_agent_id: str = "unassigned"


class AudioHookConfig(_Section):
    """Genesys AudioHook v2 Monitor (``/v1/audiohook``)."""

    api_key: str = ""
    client_secret: str = ""
    max_signature_age_s: float = Field(10.0, gt=0)
    max_clock_skew_s: float = Field(3.0, ge=0)
    failure_delay_s: float = Field(0.5, ge=0)
    agent_id_field: str = "agentId"
    default_agent_id: str = "unassigned"


class ScorecardConfig(_Section):
    """Points each skill loses per unit of its metrics (scores start at 100, floor 0)."""

    patience_per_interruption_per_10_min: float = Field(12.0, ge=0)
    patience_per_monologue: float = Field(10.0, ge=0)
    efficiency_per_long_hold_reminder: float = Field(15.0, ge=0)
    efficiency_per_dead_air: float = Field(8.0, ge=0)
    efficiency_per_pace: float = Field(5.0, ge=0)
    empathy_per_unacknowledged_frustration: float = Field(25.0, ge=0)
    empathy_per_acknowledgement: float = Field(10.0, ge=0)  # won back, up to 100
    trust_per_phrase: float = Field(15.0, ge=0)
    positive_attitude_per_phrase: float = Field(10.0, ge=0)
    min_rate_window_s: float = Field(300.0, gt=0)


class RedactionConfig(_Section):
    """PII in transcripts, removed before anything is published or stored."""

    enabled: bool = True


class StoreConfig(_Section):
    """Where call records go."""

    backend: Literal["sqlite", "memory"] = "sqlite"
    path: str = "~/.local/share/live-call-assist/calls.sqlite3"
    retention_days: int = Field(90, ge=0)
    checkpoint_every_s: float = Field(30.0, gt=0)


class AccessConfig(_Section):
    """Who may open the pages and event streams (``?token=`` on the URL).

    With no tokens configured, a server bound to loopback is open (development); bound to
    any other address it refuses the pages and streams until tokens are set.
    """

    agent_tokens: dict[str, str] = {}  # token -> the one agent id it may see
    supervisor_tokens: list[str] = []  # may see the floor and every agent
    snooze_s: float = Field(300.0, gt=0)


class ServerConfig(_Section):
    host: str = "127.0.0.1"
    port: int = Field(8765, ge=0, le=65535)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="ASSIST_", env_nested_delimiter="__", extra="forbid"
    )

    server: ServerConfig = ServerConfig()
    vad: VadConfig = VadConfig()
    cues: CuesConfig = CuesConfig()
    policy: PolicyConfig = PolicyConfig()
    floor: FloorConfig = FloorConfig()
    limits: LimitsConfig = LimitsConfig()
    asr: AsrConfig = AsrConfig()
    twilio: TwilioConfig = TwilioConfig()
    audiohook: AudioHookConfig = AudioHookConfig()
    redaction: RedactionConfig = RedactionConfig()
    access: AccessConfig = AccessConfig()
    scorecard: ScorecardConfig = ScorecardConfig()
    store: StoreConfig = StoreConfig()
    l16: L16Config = L16Config()
    utterances: UtteranceConfig = UtteranceConfig()
    text: TextConfig = TextConfig()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Environment beats the file, the file (passed as init kwargs) beats defaults.
        return (env_settings, init_settings)


AUDIOHOOK_ENV = {
    "ASSIST_AUDIOHOOK_API_KEY": "api_key",
    "ASSIST_AUDIOHOOK_CLIENT_SECRET": "client_secret",
}


def load_settings(path: str | Path | None = None, **overrides: Any) -> Settings:
    """Read settings from a TOML file (optional), then environment, then ``overrides``.

    ``overrides`` are section dicts merged over the file (used by tests and the demo).
    """
    data: dict[str, Any] = {}
    if path is not None:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    # The AudioHook credentials also have the flat names Genesys admins expect.
    for env_name, key in AUDIOHOOK_ENV.items():
        if os.environ.get(env_name):
            data.setdefault("audiohook", {})[key] = os.environ[env_name]
    for section, values in overrides.items():
        if not values:
            continue
        merged = dict(data.get(section, {}))
        merged.update(values)
        data[section] = merged
    return Settings(**data)
