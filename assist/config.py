"""Service configuration: one pydantic tree, embedded defaults, TOML file, ASSIST_* env.

Precedence (highest first), as ``load_settings`` applies it:

1. command-line flags (passed as ``overrides``: ``--host``, ``--port``, the demo's
   in-memory store);
2. ``ASSIST_*`` environment variables, nested keys joined with ``__``
   (``ASSIST_CUES__DEAD_AIR__MIN_SILENCE_S=10``, ``ASSIST_POLICY__COOLDOWN_S__PACE=30``),
   plus the flat ``ASSIST_AUDIOHOOK_API_KEY`` / ``ASSIST_AUDIOHOOK_CLIENT_SECRET``;
3. the TOML file given with ``--config``;
4. the defaults written here (``configs/default.toml`` mirrors them with a comment per
   setting; a test keeps the two identical).

Layers merge key by key: setting one key of a table changes that value only. Every table
has typed fields, so a misspelt key, section or ``ASSIST_*`` name is a ``ConfigError``
naming it. ``Settings(...)`` itself reads nothing from the environment: only
``load_settings`` does, so code and tests that build settings get exactly what they pass.

Units are in the names: ``_s`` seconds of media time, ``_dbfs`` decibels relative to full
scale, ``_ms`` milliseconds.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from assist.vocabulary import CueKind, Severity


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class VadConfig(_Section):
    """Per-channel voice activity gate (Silero VAD probabilities, 32 ms windows)."""

    onset_probability: float = Field(0.5, ge=0, le=1)
    offset_probability: float = Field(0.35, ge=0, le=1)
    min_speech_s: float = Field(0.064, ge=0)
    min_silence_s: float = Field(0.25, ge=0)
    min_speech_dbfs: float = -55.0
    # Speech starts only this far above the channel's noise floor (from its quietest
    # non-speech windows over noise_floor_s, assist.vad.noise_floor), and goes on while
    # windows stay 8 dB less above it (assist.vad.gate.CONTINUATION_SNR_SLACK_DB): Silero
    # hears an echo fainter than a hissing line's noise as speech, but it never stands out
    # of it (0: off).
    min_onset_snr_db: float = Field(10.0, ge=0)
    noise_floor_s: float = Field(10.0, gt=0)


class EchoConfig(_Section):
    """The agent's voice echoed on the customer channel (``assist/echo.py``): the echo path
    (delay, return loss) is found from the audio, and customer audio it explains is not
    customer speech. The same, the other way round, for the customer's voice leaking into
    the agent's channel (``customer_on_agent``); the settings below apply to both ways."""

    enabled: bool = True
    customer_on_agent: bool = True  # look for the customer's voice on the agent's channel too
    max_delay_ms: float = Field(500.0, gt=0, le=3000)  # echo delays searched, 0 to this
    # Envelope correlation (Pearson, 0-1) of the two channels that reveals an echo path.
    min_correlation: float = Field(0.8, gt=0, le=1)
    # Customer audio less than this quieter than the agent is never echo (G.168 hybrids: >= 6).
    min_return_loss_db: float = Field(6.0, ge=0)
    # A customer window this much louder than the predicted echo is the customer's own
    # voice (double-talk), never suppressed.
    double_talk_margin_db: float = Field(6.0, gt=0)
    # An echo path is checked over this much media time of clearly audible predicted echo:
    # too much of it missing on the customer channel (over 20 %), or no second sighting on
    # newer audio by then, ends the path (searched for again); else it is confirmed.
    forget_after_s: float = Field(3.0, gt=0)


class InterruptionConfig(_Section):
    """The agent talking over the customer: overlap needed, pause tolerances (seconds)."""

    min_overlap_s: float = Field(0.8, gt=0)
    customer_gap_tolerance_s: float = Field(0.2, ge=0)
    agent_pause_tolerance_s: float = Field(0.5, ge=0)


class LongHoldConfig(_Section):
    """Hold reminders: the first, their spacing, and when they turn critical (seconds)."""

    min_hold_s: float = Field(45.0, gt=0)
    remind_every_s: float = Field(45.0, gt=0)
    critical_after_s: float = Field(90.0, gt=0)


class HoldInferenceConfig(_Section):
    """A hold inferred from the agent channel's audio: hold music, or a digitally silent line."""

    music_enabled: bool = True
    music_min_dbfs: float = -50.0
    # Music stands this far above the line's own noise floor: a hissing line is not music
    # (the floor: the second lowest per-second minimum over noise_floor_s,
    # assist.vad.noise_floor).
    music_above_noise_db: float = Field(10.0, ge=0)
    noise_floor_s: float = Field(5.0, gt=0)
    # A floor estimate above this is taken as this (music from the call's start is not noise).
    noise_floor_max_dbfs: float = -45.0
    music_max_speech_probability: float = Field(0.3, ge=0, le=1)
    music_window_s: float = Field(3.0, gt=0)
    music_fraction: float = Field(0.6, gt=0, le=1)
    music_end_s: float = Field(2.0, gt=0)
    line_silence_enabled: bool = True
    line_silence_max_dbfs: float = -72.0
    line_silence_min_s: float = Field(3.0, gt=0)
    # Customer speech this long on a silent agent line: the agent is listening on mute (s).
    line_silence_customer_talk_s: float = Field(1.0, gt=0)
    # Agent-line speech during a music/CTI hold up to this long may be a recorded announcement (s).
    announcement_max_s: float = Field(15.0, gt=0)
    # It was one when this much hold music follows it ... (s)
    announcement_music_s: float = Field(1.0, gt=0)
    # ... within this long after it ends; else the agent is back (s).
    announcement_wait_s: float = Field(3.0, gt=0)

    @model_validator(mode="after")
    def _music_fits_the_wait(self) -> HoldInferenceConfig:
        # The music that confirms an announcement must fit in the wait after it.
        if self.announcement_music_s >= self.announcement_wait_s:
            raise ValueError(
                f"announcement_music_s ({self.announcement_music_s}) must be less than "
                f"announcement_wait_s ({self.announcement_wait_s})"
            )
        return self


class DeadAirConfig(_Section):
    """Nobody speaking while the call is not on hold."""

    min_silence_s: float = Field(8.0, gt=0)


class MonologueConfig(_Section):
    """The agent holding the floor with no customer turn (backchannels don't count)."""

    min_turn_s: float = Field(60.0, gt=0)
    customer_turn_min_s: float = Field(1.0, gt=0)
    max_pause_s: float = Field(3.0, gt=0)


class PaceConfig(_Section):
    """Agent speaking rate (words a minute of turn time, in-turn pauses included) from
    final transcripts."""

    max_words_per_minute: float = Field(270.0, gt=0)
    window_s: float = Field(30.0, gt=0)
    min_words: int = Field(25, ge=1)
    min_utterance_s: float = Field(2.0, ge=0)
    max_pause_s: float = Field(3.0, ge=0)
    # A rate over less turn time than this is one or two sentences' articulation rate, not
    # the agent's pace: not judged (s).
    min_turn_s: float = Field(10.0, ge=0)


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
    """Every cue's thresholds (``[cues.*]``): one table per detector, plus hold inference."""

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
    # Linux nice steps the recognizer's threads run below the event loop (the audio path):
    # on a saturated CPU audio goes first and transcription gets the rest; 0 = same priority.
    nice: int = Field(10, ge=0, le=19)
    max_batch: int = Field(8, ge=1)
    # Utterances per step on the CPU: with short encoder windows a batch of 4 waiting
    # utterances costs about 2.3 times one (bench/gpu.py --device cpu); 1 = one at a time.
    cpu_max_batch: int = Field(4, ge=1)
    max_queue: int = Field(64, ge=1)
    stale_after_s: float = Field(4.0, gt=0)
    partial_stale_after_s: float = Field(1.0, gt=0)
    # Decoder beam of finals (partials are greedy): with the silence tail at an 8 s floor, 3
    # hears 0.6 / 0.5 point fewer word errors (customer / agent) than greedy decoding in
    # Whisper's full window, greedy 0.4 more / 0.3 fewer, for 16 % more CPU per sentence
    # than greedy (bench/window_floor.py --beam-size, README "Benchmarks"); 1 = greedy.
    beam_size: int = Field(3, ge=1)
    # Shortest Whisper encoder window (s): a step encodes max(this, longest utterance + 0.5 s)
    # instead of 30 s; repetitions, short finals heard as nothing and finals Whisper judges
    # not speech are redone with 15 s, then 30 s (bench/window_floor.py,
    # bench/backchannels.py); 30 = always 30 s.
    window_floor_s: float = Field(8.0, ge=1, le=30)
    # A short window's encoder output is followed by the encoding of silence up to Whisper's
    # 1500 positions, so the decoder sees the 30 s window it was trained on (CPU only; the
    # encoder still runs on the short window): fewer misheard words for about a quarter more
    # CPU per utterance (bench/window_floor.py --no-silence-tail).
    silence_tail: bool = True
    # A partial arriving while more than this many requests wait is not transcribed (no cue
    # reads partials; finals get the time); 0 = only when nothing waits; max_queue = never.
    partial_max_waiting: int = Field(0, ge=0)
    # A customer final with less voiced speech than this (s: "Yeah.", "Okay.") is a
    # backchannel no cue needs: transcribed only under the same rule as partials; 0 = always.
    backchannel_max_s: float = Field(1.0, ge=0)


class TextConfig(_Section):
    """Text models on final transcripts (needs ASR): ONNX heads on sentence embeddings."""

    enabled: bool = True
    models_dir: str = ""  # "": the heads shipped in the package (assist/models/)
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

    @model_validator(mode="after")
    def _keeps_enough_audio(self) -> UtteranceConfig:
        # The segmenter cuts an utterance out of the kept audio: it must all still be there.
        if self.keep_audio_s <= self.max_utterance_s + self.pre_roll_s:
            raise ValueError(
                f"keep_audio_s ({self.keep_audio_s}) must exceed max_utterance_s + pre_roll_s "
                f"({self.max_utterance_s + self.pre_roll_s})"
            )
        return self


class _PerCueKind(_Section):
    """A table with one field per ``CueKind`` (a test keeps them in step)."""

    def value_of(self, kind: CueKind) -> float:
        """The field of ``kind``; ``ValueError`` for a name that is not a cue kind."""
        return float(getattr(self, CueKind(kind).value))


class CooldownConfig(_PerCueKind):
    """Per cue kind: no second nudge of that kind within this many media seconds.

    One field per ``CueKind`` (a test keeps them in step), so setting one kind's cooldown
    leaves the others at their defaults.
    """

    interruption: float = Field(10.0, ge=0)
    long_hold: float = Field(0.0, ge=0)  # reminders are spaced by cues.long_hold.remind_every_s
    dead_air: float = Field(0.0, ge=0)
    monologue: float = Field(30.0, ge=0)
    pace: float = Field(60.0, ge=0)
    negative_phrasing: float = Field(20.0, ge=0)
    customer_frustration: float = Field(60.0, ge=0)

    def of(self, kind: CueKind) -> float:
        """The cooldown of ``kind``, media seconds."""
        return self.value_of(kind)


class PolicyConfig(_Section):
    """Which findings become nudges: cooldowns in media seconds, a budget per call."""

    cooldown_s: CooldownConfig = CooldownConfig()
    budget_per_call: int = Field(40, ge=0)
    budget_exempt_severity: Severity = "critical"


class RepeatAlertsConfig(_PerCueKind):
    """Per cue kind: a call reaching this many nudges of it raises a floor alert
    ("escalating"); 0 = never. One field per ``CueKind``."""

    interruption: int = Field(3, ge=0)
    long_hold: int = Field(0, ge=0)
    dead_air: int = Field(0, ge=0)
    monologue: int = Field(0, ge=0)
    pace: int = Field(0, ge=0)
    negative_phrasing: int = Field(0, ge=0)
    customer_frustration: int = Field(2, ge=0)

    def of(self, kind: CueKind) -> int:
        """How many nudges of ``kind`` raise the repeat alert (0: never)."""
        return int(self.value_of(kind))


class FloorConfig(_Section):
    """When the supervisors' floor view raises an alert, and what it marks as urgent."""

    alert_kinds: list[CueKind] = [CueKind.LONG_HOLD]  # every nudge of these alerts
    repeat_alerts: RepeatAlertsConfig = RepeatAlertsConfig()
    # A call on hold this long (media s) moves up the floor's attention ranking.
    attention_hold_s: float = Field(45.0, gt=0)


class LimitsConfig(_Section):
    """Bounds: frame and message sizes, ingest and subscriber backlogs, calls, start timeout."""

    max_frame_ms: int = Field(1000, gt=0)
    max_text_bytes: int = Field(65536, gt=0)
    ingest_queue_s: float = Field(5.0, gt=0)
    subscriber_queue: int = Field(256, gt=0)
    max_calls: int = Field(500, gt=0)
    start_timeout_s: float = Field(10.0, gt=0)
    scorecards_kept: int = Field(1000, gt=0)
    # the most lost audio a client may claim at once (a pause, a timestamp jump); more ends the call
    max_gap_s: float = Field(14400.0, gt=0)


class TwilioConfig(_Section):
    """Twilio Media Streams (``/v1/twilio``)."""

    auth_token: str = ""
    validate_signature: bool = True
    public_url: str = ""
    agent_id_parameter: str = "agent_id"
    default_agent_id: str = "unassigned"
    max_track_skew_s: float = Field(1.0, gt=0)
    # the track that carries the agent unless the stream's agent_track parameter says otherwise
    agent_track: Literal["inbound", "outbound"] = "outbound"
    # media seconds a frame may arrive behind later ones and still be put back in order
    reorder_window_s: float = Field(0.1, ge=0)


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
    # where open.parameters carries the agent id, first found wins ({path}: a key read there)
    agent_id_paths: list[str] = [
        "customConfig.agentsByDnis.{participant.dnis}",
        "customConfig.agentsByAni.{participant.ani}",
        "customConfig.agentId",
    ]
    default_agent_id: str = "unassigned"
    # the channel that carries the agent unless customConfig.agentChannel says otherwise
    agent_channel: Literal["internal", "external"] = "internal"


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
    """Where call records go: SQLite (one machine), memory, or PostgreSQL (a floor of
    several workers: ``dsn`` names the database every worker shares)."""

    backend: Literal["sqlite", "memory", "postgresql"] = "sqlite"
    path: str = "~/.local/share/live-call-assist/calls.sqlite3"
    dsn: str = ""  # postgresql://user:password@host:5432/dbname (backend = "postgresql")
    retention_days: int = Field(90, ge=0)
    checkpoint_every_s: float = Field(30.0, gt=0)
    queue: int = Field(1000, ge=1)  # writes waiting for the writer thread; full: writers wait

    @model_validator(mode="after")
    def _dsn_for_postgresql(self) -> StoreConfig:
        if self.backend == "postgresql" and not self.dsn.startswith(
            ("postgresql://", "postgres://")
        ):
            raise ValueError('backend "postgresql" needs dsn = "postgresql://..."')
        return self


class ClusterConfig(_Section):
    """A floor bigger than one machine: workers sharing a NATS bus (live events, which worker
    holds which call) and a PostgreSQL store. ``bus`` empty: embedded (one process)."""

    bus: str = ""  # nats://host:4222 (comma-separated for a NATS cluster); empty = embedded
    worker_id: str = Field("", max_length=64, pattern=r"^[A-Za-z0-9_-]*$")  # empty: host name
    heartbeat_s: float = Field(1.0, gt=0)  # each worker announces itself and its calls this often
    dead_after_s: float = Field(5.0, gt=0)  # unheard this long: its calls become cut_off

    @model_validator(mode="after")
    def _bus_url(self) -> ClusterConfig:
        for url in filter(None, (u.strip() for u in self.bus.split(","))):
            if not url.startswith(("nats://", "tls://")):
                raise ValueError(f"bus {url!r}: expected nats://host:port")
        if self.bus and self.dead_after_s <= 2 * self.heartbeat_s:
            raise ValueError("dead_after_s must exceed two heartbeats (heartbeat_s)")
        return self


class AssessConfig(_Section):
    """``assist assess``: recorded calls through the live pipeline (README, "Assess recorded
    calls")."""

    customer_channel: Literal["left", "right"] = "left"  # of a stereo recording
    # two mono files of one call: a regex on the file name without extension, groups call, role
    pair_rule: str = r"^(?P<call>.+)[._-](?P<role>customer|agent)$"
    # the agent id in a file name (without --agent-from / --agents): a regex with group agent
    agent_rule: str = r"^(?P<agent>[A-Za-z0-9]+)[_-]"
    workers: int = Field(0, ge=0)  # processes; 0 = one per core
    ledger: str = ""  # resume ledger (JSON lines); "": assessed.jsonl next to store.path
    report_dir: str = "reports"  # baseline.json and baseline.html go here


IngestName = Literal["native", "l16", "twilio", "exotel", "telnyx", "audiohook"]


class AccessConfig(_Section):
    """Who may open the pages, event streams and JSON API (agent and supervisor tokens),
    and who may send call audio (ingest tokens; Twilio and AudioHook also by their own
    signatures). Tokens come in ``Authorization: Bearer``, ``X-Assist-Token`` or ``?token=``.

    With no tokens configured, a server bound to loopback is open (development). Bound to
    any other address, the pages and streams refuse until tokens are set, every ingest
    endpoint refuses unauthenticated connections, and ``assist serve`` refuses to start
    without credentials for every enabled ingest unless ``insecure`` is on.
    """

    agent_tokens: dict[str, str] = {}  # token -> the one agent id it may see
    supervisor_tokens: list[str] = []  # may see the floor and every agent
    # may stream call audio to /v1/calls, /v1/l16, /v1/exotel, /v1/telnyx (and /v1/twilio)
    ingest_tokens: list[str] = []
    # ingest endpoints served (the others answer 404): native is /v1/calls
    ingest: list[IngestName] = ["native", "l16", "twilio", "exotel", "telnyx", "audiohook"]
    # serve ingest without credentials on a non-loopback address (warned): development only
    insecure: bool = False
    snooze_s: float = Field(300.0, gt=0)


class LoggingConfig(_Section):
    """What the log may contain. Off: no transcript text, quote or token at any level."""

    debug_text: bool = False  # log transcripts and nudge quotes at DEBUG (and serve at DEBUG)


class ServerConfig(_Section):
    """Where the one HTTP/WebSocket server listens (port 0 picks a free port)."""

    host: str = "127.0.0.1"
    port: int = Field(8765, ge=0, le=65535)


class Settings(BaseSettings):
    """Every setting of the service. Build it with ``load_settings`` to apply the file and
    the environment; ``Settings(**sections)`` takes exactly what it is given."""

    model_config = SettingsConfigDict(
        env_prefix="ASSIST_", env_nested_delimiter="__", extra="forbid"
    )

    server: ServerConfig = ServerConfig()
    vad: VadConfig = VadConfig()
    echo: EchoConfig = EchoConfig()
    cues: CuesConfig = CuesConfig()
    policy: PolicyConfig = PolicyConfig()
    floor: FloorConfig = FloorConfig()
    limits: LimitsConfig = LimitsConfig()
    asr: AsrConfig = AsrConfig()
    twilio: TwilioConfig = TwilioConfig()
    audiohook: AudioHookConfig = AudioHookConfig()
    redaction: RedactionConfig = RedactionConfig()
    access: AccessConfig = AccessConfig()
    logging: LoggingConfig = LoggingConfig()
    scorecard: ScorecardConfig = ScorecardConfig()
    store: StoreConfig = StoreConfig()
    assess: AssessConfig = AssessConfig()
    cluster: ClusterConfig = ClusterConfig()
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
        """pydantic-settings hook: the constructor's arguments are the only source."""
        # Only what the caller passes: load_settings layers file, environment and flags.
        return (init_settings,)


ENV_PREFIX = "ASSIST_"
# The AudioHook credentials also have the flat names Genesys admins expect.
AUDIOHOOK_ENV = {
    "ASSIST_AUDIOHOOK_API_KEY": "api_key",
    "ASSIST_AUDIOHOOK_CLIENT_SECRET": "client_secret",
}


# ASSIST_* variables that are not settings: cache folders of tools and tests.
NOT_SETTINGS_ENV = frozenset({"ASSIST_MODEL_CACHE", "ASSIST_SYNTH_CACHE", "ASSIST_ARTIFACTS"})


class ConfigError(ValueError):
    """Settings that can't be used: an unknown key or section, or a value out of range.
    The message names every offending key and where it came from."""


def deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """``over`` merged into a copy of ``base`` key by key; nested tables merge too."""
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def environment_layer(environ: dict[str, str] | None = None) -> dict[str, Any]:
    """The ``ASSIST_*`` variables as nested settings (values still strings).

    Raises ``ConfigError`` for an ``ASSIST_*`` name whose section isn't a settings table,
    so a typo never passes silently.
    """
    environ = dict(os.environ if environ is None else environ)
    sections = set(Settings.model_fields)
    unknown = []
    for name in environ:
        upper = name.upper()
        if not upper.startswith(ENV_PREFIX) or upper in AUDIOHOOK_ENV or upper in NOT_SETTINGS_ENV:
            continue
        section = upper[len(ENV_PREFIX) :].split("__", 1)[0].lower()
        if section not in sections or "__" not in upper[len(ENV_PREFIX) :]:
            unknown.append(name)
    if unknown:
        raise ConfigError(
            f"unknown setting(s) in the environment: {', '.join(sorted(unknown))} "
            f"(ASSIST_<SECTION>__<KEY>; sections: {', '.join(sorted(sections))})"
        )
    layer: dict[str, Any] = EnvSettingsSource(Settings)()
    for env_name, key in AUDIOHOOK_ENV.items():
        if environ.get(env_name):
            layer = deep_merge(layer, {"audiohook": {key: environ[env_name]}})
    return layer


def load_settings(path: str | Path | None = None, **overrides: Any) -> Settings:
    """Settings from defaults < TOML file ``path`` < ``ASSIST_*`` environment < ``overrides``.

    ``overrides`` are section dicts (command-line flags, the demo's memory store); empty
    ones are ignored. Raises ``ConfigError`` (naming the keys) for unknown or invalid
    settings and ``OSError`` / ``ConfigError`` for an unreadable or malformed file.
    """
    data: dict[str, Any] = {}
    if path is not None:
        try:
            with open(path, "rb") as fh:
                data = tomllib.load(fh)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    data = deep_merge(data, environment_layer())
    data = deep_merge(data, {k: v for k, v in overrides.items() if v})
    try:
        return Settings(**data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        source = f"{path} or the environment" if path else "the environment"
        raise ConfigError(f"invalid settings (from {source}): {problems}") from exc
