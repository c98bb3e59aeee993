"""Agents' "Not right" on text-cue nudges, as training lines a team reviews and retrains on.

``assist export --feedback`` writes, for every negative-phrasing or customer-frustration
nudge whose agent's last word on it was ``not_right``, the sentence the nudge judged with
the "nothing to flag" label of its head, in the training format of ``models/data``
(tab-separated, ``text`` and ``label`` columns) plus the columns a reviewer needs:
``head`` (the model: ``negative_phrasing`` or ``customer_frustration``), ``flagged`` (what
the model said: a negative-phrasing category or ``frustrated``), ``score``, ``call_id`` and
``nudge_id``. A reviewer may change a label (to another category) or delete a line;
``assist train-text --extra FILE`` adds each head's lines to its training set.

The sentence comes from the nudge as the store keeps it (its whole JSON, with the evidence:
the sentence that fired, or the quote for older records), so nothing is copied at feedback
time and erasing a call erases its lines too.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, TextIO

# head -> its "nothing to flag" label (labels[0] of the head in assist.text.train)
CLEAR_LABELS = {"negative_phrasing": "none", "customer_frustration": "neutral"}
COLUMNS = ("text", "label", "head", "flagged", "score", "call_id", "nudge_id")


def feedback_lines(records: Iterable[dict[str, Any]]) -> Iterator[dict[str, str]]:
    """One training line per text-cue nudge its agent last marked ``not_right``, in the
    records' order (records as ``CallStore.export`` yields them: ``nudges`` with their
    JSON, ``feedback`` with ``nudge_id`` and ``action``). Nudges without a sentence (an
    audio cue) are skipped."""
    for record in records:
        last_action: dict[str, str] = {}
        for entry in record.get("feedback", []):
            last_action[entry["nudge_id"]] = entry["action"]
        for nudge in record.get("nudges", []):
            head = str(nudge.get("kind", ""))
            if head not in CLEAR_LABELS or last_action.get(nudge.get("id", "")) != "not_right":
                continue
            evidence = nudge.get("evidence") or {}
            details = evidence.get("details") or {}
            text = details.get("sentence") or details.get("quote") or details.get("text")
            if not text:
                continue
            flagged = details.get("category") or "frustrated"
            yield {
                "text": _one_line(str(text)),
                "label": CLEAR_LABELS[head],
                "head": head,
                "flagged": str(flagged),
                "score": f"{float(evidence.get('measured', 0.0)):.3f}",
                "call_id": str(record.get("call_id", nudge.get("call_id", ""))),
                "nudge_id": str(nudge["id"]),
            }


def write_feedback_tsv(lines: Iterable[dict[str, str]], out: TextIO) -> int:
    """Write the lines as a TSV with a header (``COLUMNS``); returns how many."""
    out.write("\t".join(COLUMNS) + "\n")
    count = 0
    for line in lines:
        out.write("\t".join(_one_line(line[c]) for c in COLUMNS) + "\n")
        count += 1
    return count


def read_extra(path: Path, head: str) -> list[tuple[str, str]]:
    """``(text, label)`` rows of ``head`` from a reviewed feedback TSV (``head`` column), or
    of a plain ``text``/``label`` TSV without one (all its rows). Raises ``ValueError`` for a
    file without ``text`` and ``label`` columns."""
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh, delimiter="\t", quoting=csv.QUOTE_NONE)
        columns = set(reader.fieldnames or ())
        if not {"text", "label"} <= columns:
            raise ValueError(f"{path}: needs tab-separated text and label columns")
        return [
            (row["text"].strip(), row["label"].strip())
            for row in reader
            if row["text"] and row["text"].strip() and row.get("head", head) == head
        ]


def _one_line(text: str) -> str:
    """No tabs or line breaks inside a TSV cell."""
    return " ".join(text.split())
