"""The call script format (TOML): what each side says and when, and the holds.

```toml
duration_s = 40.0
sample_rate = 8000
noise_dbfs = -60.0          # line noise floor on both channels
tts = "espeak"              # espeak (espeak-ng) | piper (neural: Piper with the joe voice)
[[say]]
who = "customer"            # customer | agent
at = 1.0                    # seconds from call start
text = "Hi, I'm calling about my bill."
expect = "customer_frustration"   # optional: the text cue this line must raise (truth)
words_per_minute = 150      # espeak only: its speed (-s)
length_scale = 1.0          # piper only: < 1 speaks faster (0.7 = clearly fast), > 1 slower
[[hold]]
at = 20.0
duration = 50.0
sound = "music"             # music | silence (agent line goes digitally silent) | line
                            # (line noise only: detectable from CTI events alone)
cti = false                 # also send CTI hold events (not representable in a WAV)
[[hold.announce]]           # a recorded prompt the platform plays during that hold (not the agent)
after = 12.0                # seconds into the hold
text = "Thank you for holding. Your call is important to us."
over_music = false          # false: replaces the music while it plays; true: music ducked under it
[[mute]]                    # the agent's microphone muted: digitally silent agent line, not a hold
at = 3.0
duration = 45.0
[echo]                      # optional: the agent line leaks onto the customer line
on = "customer"             # the line that carries it; "agent": the customer's line on the agent's
delay_ms = 120.0            # this late
level_db = -24.0            # this much quieter (minus the echo return loss)
dispersion_ms = 0.0         # > 0: through a decaying echo path this long, not a pure delay
```
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class Utterance(BaseModel):
    """One scripted line: who says it, when (``at``, seconds from the call's start), the text,
    the espeak-ng voice and speed (or Piper's ``length_scale``), and the text cue it must
    raise."""

    model_config = ConfigDict(extra="forbid")
    who: Literal["customer", "agent"]
    at: float = Field(ge=0)
    text: str = Field(min_length=1)
    voice: str | None = None
    words_per_minute: int = Field(150, ge=80, le=400)  # espeak -s
    length_scale: float = Field(1.0, ge=0.5, le=2.0)  # piper: phoneme length, < 1 is faster
    # The text cue this line must raise when the text models run (ground truth, labelled
    # by the script's author): negative phrasing on agent lines, frustration on customer
    # lines the agent hasn't acknowledged yet.
    expect: Literal["negative_phrasing", "customer_frustration"] | None = None


class Announcement(BaseModel):
    """A recorded prompt the platform plays on the agent line ``after`` seconds into a hold
    ("thank you for holding"): espeak-ng speech in its own voice, replacing the hold's sound
    while it plays or, ``over_music``, over the music ducked under it. Not the agent."""

    model_config = ConfigDict(extra="forbid")
    after: float = Field(ge=0)
    text: str = Field(min_length=1)
    voice: str = "en-us+f2"
    words_per_minute: int = Field(150, ge=80, le=400)
    over_music: bool = False


class Hold(BaseModel):
    """A scripted hold from ``at`` for ``duration`` seconds: what the agent line carries
    (``music`` track from ``MOH_DIR``, digital ``silence``, or its ``line`` noise only),
    whether CTI hold events are sent too, and the announcements played during it."""

    model_config = ConfigDict(extra="forbid")
    at: float = Field(ge=0)
    duration: float = Field(gt=0)
    sound: Literal["music", "silence", "line"] = "music"
    music: str = "macroform-cold_day"
    cti: bool = False
    announce: list[Announcement] = []


class Mute(BaseModel):
    """The agent's microphone muted from ``at`` for ``duration`` seconds: the agent line is
    digitally silent (anything scripted for the agent then is unheard). Not a hold: the
    ground truth has no long_hold for it."""

    model_config = ConfigDict(extra="forbid")
    at: float = Field(ge=0)
    duration: float = Field(gt=0)


class Echo(BaseModel):
    """The agent's line mixed onto the customer's (VoIP echo): ``delay_ms`` late,
    ``level_db`` relative to the agent (minus the echo return loss), through a seeded,
    exponentially decaying echo path ``dispersion_ms`` long (0: a pure delay). ``on``
    "agent": the other way round, the customer's line onto the agent's (a loud headset or
    a speakerphone at the agent's desk)."""

    model_config = ConfigDict(extra="forbid")
    on: Literal["customer", "agent"] = "customer"  # the line that carries the echo
    delay_ms: float = Field(ge=0)
    level_db: float = Field(le=0)
    dispersion_ms: float = Field(0.0, ge=0)


class CallScript(BaseModel):
    """A whole call (TOML format in the module docstring): length (s), rate (Hz), noise
    floor (dBFS) and seed, the speech engine, the lines, the holds and the agent's mutes."""

    model_config = ConfigDict(extra="forbid")
    name: str = "call"
    duration_s: float = Field(gt=0)
    sample_rate: Literal[8000, 16000] = 8000
    noise_dbfs: float = -60.0
    seed: int = 7
    tts: Literal["espeak", "piper"] = "espeak"  # the voices of the lines (not announcements)
    say: list[Utterance] = []
    hold: list[Hold] = []
    mute: list[Mute] = []
    echo: Echo | None = None

    def changed(self, **fields: Any) -> CallScript:
        """A validated copy with ``fields`` replacing its top-level fields (nested ones as
        dicts, e.g. ``echo={"delay_ms": 120.0, "level_db": -30.0}``); raises pydantic's
        ``ValidationError``."""
        return CallScript(**{**self.model_dump(), **fields})

    @classmethod
    def load(cls, path: str | Path) -> CallScript:
        """Read a TOML call script; ``name`` defaults to the file's stem. Raises ``OSError``,
        ``tomllib.TOMLDecodeError`` or pydantic's ``ValidationError``."""
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
        data.setdefault("name", Path(path).stem)
        return cls(**data)
