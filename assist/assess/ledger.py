"""The resume ledger: which recordings (by content hash) are assessed already.

A call's key is the SHA-256 of its files' bytes (a pair: both, customer's first), so a
renamed or moved recording is still known and an edited one is assessed again. The ledger
is a JSON-lines file, one line per assessed call, appended (and flushed to disk) only
after the call's record and scorecard are in the store: an interrupted run loses at most
the calls in flight, and the next run skips every call in the ledger whose record the
store still has.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any

CHUNK = 1 << 20
MAX_NAME = 48


def content_hash(paths: tuple[Path, ...]) -> str:
    """SHA-256 (hex) of the files' bytes, in order, each prefixed by its length."""
    digest = hashlib.sha256()
    for path in paths:
        digest.update(f"{path.stat().st_size}:".encode())
        with open(path, "rb") as fh:
            while chunk := fh.read(CHUNK):
                digest.update(chunk)
    return digest.hexdigest()


def call_id_for(name: str, digest: str) -> str:
    """The call's id in the store: its name (letters, digits, ``._-``; at most 48) and the
    first 12 hex digits of its content hash, so the same content keeps its id."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-.")[:MAX_NAME] or "call"
    return f"{safe}-{digest[:12]}"


class Ledger:
    """The JSON-lines ledger at ``path`` (None: nothing remembered between runs)."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._entries: dict[str, dict[str, Any]] = {}
        if path is not None and path.exists():
            with open(path, encoding="utf-8") as fh:
                for line in fh:
                    try:
                        entry = json.loads(line)
                        self._entries[entry["hash"]] = entry
                    except (ValueError, KeyError, TypeError):
                        continue  # a line cut short by a crash: that call is assessed again

    def get(self, digest: str) -> dict[str, Any] | None:
        """The entry of the call with that content hash, or None."""
        return self._entries.get(digest)

    def __len__(self) -> int:
        return len(self._entries)

    def add(self, entry: dict[str, Any]) -> None:
        """Remember an assessed call (``entry`` has ``hash`` and ``call_id``); on disk at once."""
        self._entries[entry["hash"]] = entry
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(entry) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
