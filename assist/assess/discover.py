"""Finding recorded calls: files and folders (recursively), and pairing mono files.

A call is one stereo recording, or two mono recordings of the same call named by the
pairing rule (``[assess] pair_rule``, a regular expression on the file name without its
extension, with the named groups ``call`` and ``role``; role ``customer`` or ``agent``):
by default ``NAME.customer.wav`` + ``NAME.agent.wav`` (``.``, ``_`` or ``-`` before the
role). Folders are searched for files with an audio extension; files named on the command
line are taken whatever their extension. A half pair is reported and skipped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

AUDIO_SUFFIXES = frozenset(
    {".wav", ".flac", ".mp3", ".ogg", ".opus", ".oga", ".m4a", ".aac", ".wma", ".webm", ".au"}
)
DEFAULT_PAIR_RULE = r"^(?P<call>.+)[._-](?P<role>customer|agent)$"


@dataclass(frozen=True, slots=True)
class CallFiles:
    """One call's recordings: ``stereo`` (one file) or ``customer`` + ``agent`` (two mono
    files). ``name`` is the call's name: the stereo file's stem or the pair's ``call``."""

    name: str
    stereo: Path | None = None
    customer: Path | None = None
    agent: Path | None = None

    @property
    def paths(self) -> tuple[Path, ...]:
        """The call's files (stereo, or customer then agent)."""
        if self.stereo is not None:
            return (self.stereo,)
        assert self.customer is not None and self.agent is not None
        return (self.customer, self.agent)

    def describe(self) -> str:
        """The file names, for messages."""
        return " + ".join(str(p) for p in self.paths)


def compile_pair_rule(pattern: str) -> re.Pattern[str]:
    """The pairing rule as a regex; ``ValueError`` unless it compiles and has the named
    groups ``call`` and ``role``."""
    try:
        rule = re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"pair rule {pattern!r} is not a regular expression: {exc}") from None
    if not {"call", "role"} <= set(rule.groupindex):
        raise ValueError(
            f"pair rule {pattern!r} needs the named groups (?P<call>…) and (?P<role>…)"
        )
    return rule


def _files(paths: list[Path], problems: list[str]) -> list[Path]:
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found += sorted(
                p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES
            )
        elif path.is_file():
            found.append(path)
        else:
            problems.append(f"{path}: no such file or folder")
    unique: dict[Path, Path] = {}
    for path in found:
        unique.setdefault(path.resolve(), path)
    return list(unique.values())


def discover(
    paths: list[Path], pair_rule: str = DEFAULT_PAIR_RULE
) -> tuple[list[CallFiles], list[str]]:
    """The calls under ``paths`` (files or folders, recursively), sorted by path, and the
    problems found (missing paths, half pairs), one message each."""
    rule = compile_pair_rule(pair_rule)
    problems: list[str] = []
    calls: list[CallFiles] = []
    halves: dict[tuple[Path, str], dict[str, Path]] = {}
    for path in _files(paths, problems):
        match = rule.fullmatch(path.stem)
        role = match.group("role").lower() if match else None
        if match is None or role not in ("customer", "agent"):
            calls.append(CallFiles(path.stem, stereo=path))
            continue
        halves.setdefault((path.parent, match.group("call")), {})[role] = path
    for (_, name), roles in halves.items():
        if "customer" in roles and "agent" in roles:
            calls.append(CallFiles(name, customer=roles["customer"], agent=roles["agent"]))
        else:
            (have, path), missing = next(iter(roles.items())), ({"customer", "agent"} - set(roles))
            problems.append(
                f"{path}: the {have} half of call {name!r}; its {missing.pop()} file is missing "
                "(skipped)"
            )
    calls.sort(key=lambda c: c.paths[0])
    return calls, problems
