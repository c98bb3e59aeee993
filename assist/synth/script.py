"""The call script format (TOML): what each side says and when, and the holds.

```toml
duration_s = 40.0
sample_rate = 8000
noise_dbfs = -60.0          # line noise floor on both channels
[[say]]
who = "customer"            # customer | agent
at = 1.0                    # seconds from call start
text = "Hi, I'm calling about my bill."
expect = "customer_frustration"   # optional: the text cue this line must raise (truth)
[[hold]]
at = 20.0
duration = 50.0
sound = "music"             # music | silence (agent line goes digitally silent) | line
                            # (line noise only: detectable from CTI events alone)
cti = false                 # also send CTI hold events (not representable in a WAV)
```
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class Utterance(BaseModel):
    model_config = ConfigDict(extra="forbid")
    who: Literal["customer", "agent"]
    at: float = Field(ge=0)
    text: str = Field(min_length=1)
    voice: str | None = None
    words_per_minute: int = Field(150, ge=80, le=400)  # espeak -s
    # The text cue this line must raise when the text models run (ground truth, labelled
    # by the script's author): negative phrasing on agent lines, frustration on customer
    # lines the agent hasn't acknowledged yet.
    expect: Literal["negative_phrasing", "customer_frustration"] | None = None


class Hold(BaseModel):
    model_config = ConfigDict(extra="forbid")
    at: float = Field(ge=0)
    duration: float = Field(gt=0)
    sound: Literal["music", "silence", "line"] = "music"
    music: str = "macroform-cold_day"
    cti: bool = False


class CallScript(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = "call"
    duration_s: float = Field(gt=0)
    sample_rate: Literal[8000, 16000] = 8000
    noise_dbfs: float = -60.0
    seed: int = 7
    say: list[Utterance] = []
    hold: list[Hold] = []

    @classmethod
    def load(cls, path: str | Path) -> CallScript:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
        data.setdefault("name", Path(path).stem)
        return cls(**data)
