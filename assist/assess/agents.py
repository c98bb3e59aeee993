"""Whose call is it, and when did it start: agent ids from file names or a CSV.

* A regular expression (``--agent-from``, default ``[assess] agent_rule``) searched in the
  file name (without extension; a pair's ``call`` name), with the named group ``agent``;
  an optional named group ``date`` (ISO 8601, e.g. ``2026-03-02`` or ``20260302T0930``)
  gives the call's start.
* A CSV (``--agents``) with a header and the columns ``file``, ``agent_id`` and optionally
  ``call_date`` (ISO 8601): ``file`` is a path relative to the CSV's folder, or a bare
  file name; either file of a pair may be listed.

A call's start is the CSV's date or the rule's ``date`` when given, else the recording's
``creation_time`` tag, else the file's modification time.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from assist.assess.discover import CallFiles

DEFAULT_AGENT_RULE = r"^(?P<agent>[A-Za-z0-9]+)[_-]"


class AgentUnknown(Exception):
    """No agent id for a call (the rule doesn't match, or the CSV doesn't list it)."""


@dataclass(frozen=True, slots=True)
class CallOwner:
    """A call's agent id and, when known from the name or CSV, its start (epoch seconds)."""

    agent_id: str
    started_at: float | None = None


def parse_date(value: str) -> float:
    """Epoch seconds of an ISO 8601 date or date-time (UTC when it has no zone);
    ``ValueError`` otherwise."""
    parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


class AgentRule:
    """Agent ids (and maybe start times) from file names by a regex with group ``agent``."""

    def __init__(self, pattern: str) -> None:
        try:
            self._rule = re.compile(pattern)
        except re.error as exc:
            raise ValueError(f"agent rule {pattern!r} is not a regular expression: {exc}") from None
        if "agent" not in self._rule.groupindex:
            raise ValueError(f"agent rule {pattern!r} needs the named group (?P<agent>…)")
        self.pattern = pattern

    def owner(self, call: CallFiles) -> CallOwner:
        """The call's owner from its name; ``AgentUnknown`` when the rule doesn't match."""
        match = self._rule.search(call.name)
        if match is None or not match.group("agent"):
            raise AgentUnknown(
                f"{call.describe()}: no agent id in the name {call.name!r} (rule {self.pattern!r})"
            )
        started_at = None
        if "date" in self._rule.groupindex and match.group("date"):
            try:
                started_at = parse_date(match.group("date"))
            except ValueError:
                raise AgentUnknown(
                    f"{call.describe()}: {match.group('date')!r} is not an ISO 8601 date"
                ) from None
        return CallOwner(match.group("agent"), started_at)


class AgentTable:
    """Agent ids and call dates from a CSV (``file,agent_id[,call_date]`` with a header)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._by_path: dict[Path, CallOwner] = {}
        self._by_name: dict[str, CallOwner] = {}
        with open(path, newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            missing = {"file", "agent_id"} - set(reader.fieldnames or ())
            if missing:
                raise ValueError(
                    f"{path}: needs a header with the columns file, agent_id[, call_date]; "
                    f"missing {', '.join(sorted(missing))}"
                )
            for line, row in enumerate(reader, start=2):
                name, agent = (row.get("file") or "").strip(), (row.get("agent_id") or "").strip()
                if not name or not agent:
                    raise ValueError(f"{path}:{line}: file and agent_id must not be empty")
                date = (row.get("call_date") or "").strip()
                try:
                    owner = CallOwner(agent, parse_date(date) if date else None)
                except ValueError:
                    raise ValueError(f"{path}:{line}: {date!r} is not an ISO 8601 date") from None
                self._by_path[(path.parent / name).resolve()] = owner
                self._by_name[Path(name).name] = owner

    def owner(self, call: CallFiles) -> CallOwner:
        """The call's owner: the row of any of its files; ``AgentUnknown`` when none."""
        for file in call.paths:
            owner = self._by_path.get(file.resolve()) or self._by_name.get(file.name)
            if owner is not None:
                return owner
        raise AgentUnknown(f"{call.describe()}: not listed in {self.path}")
