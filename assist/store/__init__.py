"""Call records: metadata, transcripts, nudges and scorecards, behind one narrow interface.

Two layers, so that no store ever runs on the event loop that carries the audio:

* ``CallStore`` (async) is what the service and the sessions use. Every method is a
  coroutine; none blocks the loop. ``ThreadedStore`` (``store/threaded.py``) implements it
  over any ``RecordBackend``: writes go to one writer thread behind a bounded queue (when
  full, the caller awaits a free slot: nothing is dropped), reads run off the loop too and
  see every write queued before them. A natively async store (e.g. PostgreSQL through an
  async driver) may implement ``CallStore`` directly, keeping the same guarantees.
* ``RecordBackend`` (blocking) is a plain, single-threaded store: ``SqliteStore``
  (``store/sqlite.py``, the embedded default) and ``MemoryStore`` (the last few calls in
  memory: tests, demos, ``store.backend = "memory"``). The command line (export, erase,
  reports) uses a backend directly, off any event loop.

Everything handed to a store is already redacted.

A call id that starts again after its call ended is a new leg of the same record
(``assist.legs``): the record lists its legs and keeps what every leg stored; the store also
keeps the call so far (``CallSoFar`` JSON) for the next leg to continue from.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator
from typing import Any, ClassVar, Protocol

from assist.events import Nudge, Transcript

# The columns of a call summary (``summaries``): a record without its transcripts, nudges,
# feedback and legs; ``nudges`` is the count kept at write time.
SUMMARY_KEYS = ("call_id", "agent_id", "protocol", "started_at", "ended_at", "status")


class CallStore(Protocol):
    """Where the running service keeps call records (``[store] backend``), async.

    Contract, for every implementation:

    * No method blocks the event loop: disk and network work happen in another thread (or
      an async driver).
    * Writes keep their order per store. A write that answers nothing (``add_*``,
      ``replace_*``, ``checkpoint``) returns once it is queued; a write that answers
      (``call_started``, ``set_agent``, ``erase``, ``prune``) and ``call_ended`` return once
      it is done (a call's end is durable before its client is told).
    * The queue of writes is bounded: when it is full, the writer awaits a free slot, so a
      slow disk slows the calls that write, it never loses a record (each such wait is
      counted, ``assist_store_queue_waits_total``).
    * A read sees every write queued before it.
    * ``daily_totals`` and ``summaries`` read per-call columns maintained at write time
      (never every transcript), so a busy supervisor page costs little.

    Times are epoch seconds; everything handed to a store is already redacted. Methods
    mean what ``RecordBackend``'s of the same name do.
    """

    async def call_started(
        self,
        call_id: str,
        agent_id: str,
        protocol: str,
        started_at: float,
        media_start_s: float = 0.0,
    ) -> int:
        """A call's new leg (``RecordBackend.call_started``); returns the leg number once
        written."""
        ...

    async def add_transcript(self, call_id: str, transcript: Transcript) -> None:
        """Queue a final transcript of the call."""
        ...

    async def add_nudge(self, call_id: str, nudge: Nudge) -> None:
        """Queue a nudge sent on the call (its record's nudge count goes up by one)."""
        ...

    async def add_feedback(
        self, call_id: str, nudge_id: str, kind: str, action: str, at: float
    ) -> None:
        """Queue an agent's feedback on a nudge (ignored for a call without a record)."""
        ...

    async def replace_transcript(self, call_id: str, transcript: Transcript) -> None:
        """Queue the replacement of a stored final transcript (a redaction correction)."""
        ...

    async def replace_nudge(self, call_id: str, nudge: Nudge) -> None:
        """Queue the replacement of a stored nudge (its quote corrected)."""
        ...

    async def checkpoint(
        self, call_id: str, scorecard: dict[str, Any], state: dict[str, Any] | None = None
    ) -> None:
        """Queue a save of the scorecard so far (and the call so far, when given)."""
        ...

    async def set_agent(self, call_id: str, agent_id: str, nudges_of: str | None = None) -> bool:
        """The call belongs to ``agent_id`` (``RecordBackend.set_agent``); False when there
        is no record."""
        ...

    async def call_ended(
        self,
        call_id: str,
        scorecard: dict[str, Any],
        ended_at: float,
        state: dict[str, Any] | None = None,
    ) -> None:
        """The call's live leg is over; returns once the scorecard is written."""
        ...

    async def erase(self, call_id: str) -> bool:
        """Delete the call's record and everything derived from it; False when none."""
        ...

    async def prune(self, older_than: float) -> int:
        """Delete the calls started before ``older_than``; returns how many."""
        ...

    async def agent_of(self, call_id: str) -> str | None:
        """The agent id of the call's record, or None."""
        ...

    async def call_state(self, call_id: str) -> dict[str, Any] | None:
        """The call so far as last saved, or None."""
        ...

    async def scorecard(self, call_id: str) -> dict[str, Any] | None:
        """The call's latest scorecard (final or checkpoint), or None."""
        ...

    async def record(self, call_id: str) -> dict[str, Any] | None:
        """The call's whole record (``RecordBackend.record``), or None."""
        ...

    async def export(self, since: float | None = None) -> list[dict[str, Any]]:
        """Every whole call record started at ``since`` or later, oldest first (heavy: for
        tools and tests, not for pages)."""
        ...

    async def summaries(self, since: float) -> list[dict[str, Any]]:
        """The calls started at ``since`` or later, oldest first, without their transcripts,
        nudges, feedback or legs (``RecordBackend.summaries``): what reports read."""
        ...

    async def daily_totals(self, since: float) -> dict[str, dict[str, int]]:
        """Per agent, the calls started at ``since`` or later and their nudges."""
        ...

    async def flush(self) -> None:
        """Return once every write queued so far is done."""
        ...

    async def close(self) -> None:
        """Finish the queued writes, then release the store."""
        ...


class RecordBackend(Protocol):
    """A blocking store of call records, used from one thread at a time (``ThreadedStore``
    runs it off the event loop; the command line uses it directly). Times are epoch
    seconds; everything handed to a store is already redacted.

    ``concurrent_reads``: True when reads may run in a thread of their own next to the
    writer thread (``SqliteStore``: a second connection; WAL lets it read while the
    writer writes); False (``MemoryStore``): reads run on the writer thread, in order."""

    concurrent_reads: ClassVar[bool]

    def call_started(
        self,
        call_id: str,
        agent_id: str,
        protocol: str,
        started_at: float,
        media_start_s: float = 0.0,
    ) -> int:
        """A call's new leg, status ``live``: a new record (leg 1), or the next leg of the
        record with that id (nothing earlier legs stored is deleted). Returns the leg number;
        ``media_start_s`` is where the leg starts on the call's media timeline."""
        ...

    def add_transcript(self, call_id: str, transcript: Transcript) -> None:
        """Append a final transcript of the call."""
        ...

    def add_nudge(self, call_id: str, nudge: Nudge) -> None:
        """Append a nudge sent on the call."""
        ...

    def add_feedback(self, call_id: str, nudge_id: str, kind: str, action: str, at: float) -> None:
        """Append an agent's ``action`` (got_it, snooze, not_right) on nudge ``nudge_id`` of cue
        ``kind``, at ``at``; ignored (never an error) for a call without a record."""
        ...

    def replace_transcript(self, call_id: str, transcript: Transcript) -> bool:
        """Replace the text and words of the stored final transcript with the same channel
        and utterance id (a redaction correction); False when there is none."""
        ...

    def replace_nudge(self, call_id: str, nudge: Nudge) -> bool:
        """Replace the stored nudge with the same id (its quote corrected); False when there
        is none."""
        ...

    def agent_of(self, call_id: str) -> str | None:
        """The agent id of the call's record, or None when there is no record."""
        ...

    def erase(self, call_id: str) -> bool:
        """Delete the call's record and everything derived from it (transcripts, nudges,
        feedback, legs, saved call state, scorecard), for a data-subject request; False
        when there was no record."""
        ...

    def checkpoint(
        self, call_id: str, scorecard: dict[str, Any], state: dict[str, Any] | None = None
    ) -> None:
        """Save the scorecard so far, and the call so far (``CallSoFar.to_json``) when given,
        so a crash keeps them."""
        ...

    def call_state(self, call_id: str) -> dict[str, Any] | None:
        """The call so far as last saved, or None."""
        ...

    def set_agent(self, call_id: str, agent_id: str, nudges_of: str | None = None) -> bool:
        """The call belongs to ``agent_id`` (learnt after it started): its record, its latest
        leg and its scorecard say so, and so do the stored nudges that were ``nudges_of``'s
        (a placeholder's, or a record being corrected; None: every nudge keeps its agent, as
        after a transfer). False when there is no record."""
        ...

    def call_ended(
        self,
        call_id: str,
        scorecard: dict[str, Any],
        ended_at: float,
        state: dict[str, Any] | None = None,
    ) -> None:
        """The call's live leg is over: the scorecard (covering every leg), the end time and
        the call so far (``state``, for a next leg); status ``ended``."""
        ...

    def scorecard(self, call_id: str) -> dict[str, Any] | None:
        """The call's latest scorecard (final or checkpoint), or None."""
        ...

    def record(self, call_id: str) -> dict[str, Any] | None:
        """The call's record: metadata, status, scorecard, legs, transcripts, nudges,
        feedback; or None."""
        ...

    def export(self, since: float | None = None) -> Iterator[dict[str, Any]]:
        """Every call record (started at ``since`` or later), oldest first."""
        ...

    def summaries(self, since: float) -> list[dict[str, Any]]:
        """The calls started at ``since`` or later, oldest first: ``SUMMARY_KEYS``, the
        ``scorecard`` and ``nudges`` (how many were stored), read from the calls' own
        columns (no transcript, nudge or leg is read)."""
        ...

    def daily_totals(self, since: float) -> dict[str, dict[str, int]]:
        """Per agent id: ``calls`` started at ``since`` or later and their ``nudges``, summed
        from the calls' own columns."""
        ...

    def prune(self, older_than: float) -> int:
        """Delete the calls started before ``older_than``; returns how many."""
        ...

    def close(self) -> None:
        """Release the store."""
        ...


class MemoryStore:
    """The most recent ``capacity`` calls, in memory (a ``RecordBackend``)."""

    concurrent_reads: ClassVar[bool] = False

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._calls: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._states: dict[str, dict[str, Any]] = {}  # call id -> the call so far

    def call_started(
        self,
        call_id: str,
        agent_id: str,
        protocol: str,
        started_at: float,
        media_start_s: float = 0.0,
    ) -> int:
        """Start a record (leg 1), or the next leg of the one with that id (status ``live``
        again, its agent the new leg's); the oldest records beyond ``capacity`` are
        forgotten. Returns the leg number."""
        call = self._calls.get(call_id)
        if call is None:
            call = self._calls[call_id] = {
                "call_id": call_id,
                "agent_id": agent_id,
                "protocol": protocol,
                "started_at": started_at,
                "ended_at": None,
                "status": "live",
                "scorecard": None,
                "legs": [],
                "transcripts": [],
                "nudges": [],
                "feedback": [],
            }
        call.update(agent_id=agent_id, status="live", ended_at=None)
        leg = len(call["legs"]) + 1
        call["legs"].append(
            {
                "leg": leg,
                "agent_id": agent_id,
                "protocol": protocol,
                "started_at": started_at,
                "ended_at": None,
                "status": "live",
                "media_start_s": media_start_s,
                "media_end_s": None,
            }
        )
        self._calls.move_to_end(call_id)
        while len(self._calls) > self._capacity:
            forgotten, _ = self._calls.popitem(last=False)
            self._states.pop(forgotten, None)
        return leg

    def add_transcript(self, call_id: str, transcript: Transcript) -> None:
        """Append the transcript (as its wire dict); ignored for a call not kept."""
        if call_id in self._calls:
            self._calls[call_id]["transcripts"].append(transcript.model_dump())

    def add_nudge(self, call_id: str, nudge: Nudge) -> None:
        """Append the nudge (as its wire dict); ignored for a call not kept."""
        if call_id in self._calls:
            self._calls[call_id]["nudges"].append(nudge.model_dump())

    def add_feedback(self, call_id: str, nudge_id: str, kind: str, action: str, at: float) -> None:
        """Append the feedback; ignored for a call not kept."""
        if call_id in self._calls:
            entry = {"nudge_id": nudge_id, "kind": kind, "action": action, "at": at}
            self._calls[call_id]["feedback"].append(entry)

    def replace_transcript(self, call_id: str, transcript: Transcript) -> bool:
        """Replace the kept transcript with the same channel and utterance id."""
        kept = self._calls[call_id]["transcripts"] if call_id in self._calls else []
        key = (transcript.channel, transcript.utterance_id)
        for i, old in enumerate(kept):
            if (old["channel"], old["utterance_id"]) == key:
                kept[i] = transcript.model_dump()
                return True
        return False

    def replace_nudge(self, call_id: str, nudge: Nudge) -> bool:
        """Replace the kept nudge with the same id."""
        kept = self._calls[call_id]["nudges"] if call_id in self._calls else []
        for i, old in enumerate(kept):
            if old["id"] == nudge.id:
                kept[i] = nudge.model_dump()
                return True
        return False

    def agent_of(self, call_id: str) -> str | None:
        """The kept call's agent id, or None."""
        call = self._calls.get(call_id)
        return call["agent_id"] if call else None

    def erase(self, call_id: str) -> bool:
        """Forget the call and its saved state."""
        self._states.pop(call_id, None)
        return self._calls.pop(call_id, None) is not None

    def checkpoint(
        self, call_id: str, scorecard: dict[str, Any], state: dict[str, Any] | None = None
    ) -> None:
        """Save the scorecard (and the call so far) so far; ignored for a call not kept."""
        if call_id in self._calls:
            self._calls[call_id]["scorecard"] = scorecard
            if state is not None:
                self._states[call_id] = state

    def call_state(self, call_id: str) -> dict[str, Any] | None:
        """The call so far as last saved, or None."""
        return self._states.get(call_id)

    def set_agent(self, call_id: str, agent_id: str, nudges_of: str | None = None) -> bool:
        """Set the agent of the record, its latest leg, its scorecard and ``nudges_of``'s
        nudges; False for a call not kept."""
        call = self._calls.get(call_id)
        if call is None:
            return False
        call["agent_id"] = agent_id
        if call["legs"]:
            call["legs"][-1]["agent_id"] = agent_id
        if call["scorecard"] is not None:
            call["scorecard"] = {**call["scorecard"], "agent_id": agent_id}
        call["nudges"] = [
            {**nudge, "agent_id": agent_id} if nudge["agent_id"] == nudges_of else nudge
            for nudge in call["nudges"]
        ]
        return True

    def call_ended(
        self,
        call_id: str,
        scorecard: dict[str, Any],
        ended_at: float,
        state: dict[str, Any] | None = None,
    ) -> None:
        """Scorecard, end time and the call so far; status ``ended`` on the call and its live
        leg (its media end from ``state``, else the scorecard's duration); ignored for a call
        not kept."""
        call = self._calls.get(call_id)
        if call is None:
            return
        call.update(scorecard=scorecard, ended_at=ended_at, status="ended")
        if state is not None:
            self._states[call_id] = state
            media_end = state["media_s"]
        else:
            media_end = scorecard.get("metrics", {}).get("duration_s")
        for leg in call["legs"]:
            if leg["status"] == "live":
                leg.update(ended_at=ended_at, status="ended", media_end_s=media_end)

    def scorecard(self, call_id: str) -> dict[str, Any] | None:
        """The latest scorecard, or None (unknown call, or none yet)."""
        call = self._calls.get(call_id)
        return call["scorecard"] if call else None

    def record(self, call_id: str) -> dict[str, Any] | None:
        """The call's record (the stored dict itself, not a copy), or None."""
        return self._calls.get(call_id)

    def export(self, since: float | None = None) -> Iterator[dict[str, Any]]:
        """Records started at ``since`` or later, oldest first."""
        records = sorted(self._calls.values(), key=lambda r: r["started_at"])
        yield from (r for r in records if since is None or r["started_at"] >= since)

    def summaries(self, since: float) -> list[dict[str, Any]]:
        """The kept calls started at ``since`` or later, oldest first, as summaries."""
        return [_summary(r) for r in self.export(since)]

    def daily_totals(self, since: float) -> dict[str, dict[str, int]]:
        """Per agent: the kept calls started at ``since`` or later and their nudges."""
        return _totals(self.summaries(since))

    def prune(self, older_than: float) -> int:
        """Forget the calls started before ``older_than``; returns how many."""
        old = [k for k, v in self._calls.items() if v["started_at"] < older_than]
        for key in old:
            del self._calls[key]
            self._states.pop(key, None)
        return len(old)

    def close(self) -> None:
        """Nothing to release."""
        pass


def _summary(record: dict[str, Any]) -> dict[str, Any]:
    return {
        **{key: record[key] for key in SUMMARY_KEYS},
        "scorecard": record["scorecard"],
        "nudges": len(record["nudges"]),
    }


def _totals(summaries: list[dict[str, Any]]) -> dict[str, dict[str, int]]:
    agents: dict[str, dict[str, int]] = {}
    for call in summaries:
        entry = agents.setdefault(call["agent_id"], {"calls": 0, "nudges": 0})
        entry["calls"] += 1
        entry["nudges"] += call["nudges"]
    return agents
