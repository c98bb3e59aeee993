"""Which worker holds which call, and which workers are alive: pure, with an injected clock.

Every worker announces itself on the bus every ``heartbeat_s`` with the state of each call
it holds; call states and endings arrive between heartbeats. A worker unheard for
``dead_after_s`` is dead: its calls are handed back to the caller (``expire``) to be ended
on the floor and marked ``cut_off`` in the store.

Nobody is declared dead while this worker itself can't hear the bus, nor until it has
listened for ``dead_after_s`` since (re)connecting: a bus outage is not every other
worker's death.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from assist.events import CallState


@dataclass
class Heard:
    """What a heartbeat changed: call states that are new or differ from the ones known
    (``changed``), and calls the worker no longer holds (``gone``)."""

    changed: list[CallState] = field(default_factory=list)
    gone: list[CallState] = field(default_factory=list)


class Registry:
    """The other workers of the floor and their calls, as heard on the bus.

    ``clock``: monotonic seconds (injected; tests move it by hand).
    """

    def __init__(self, worker_id: str, dead_after_s: float, clock: Callable[[], float]) -> None:
        self.worker_id = worker_id
        self.dead_after_s = dead_after_s
        self._clock = clock
        self._seen: dict[str, float] = {}  # worker -> last heard (clock)
        self._calls: dict[str, dict[str, CallState]] = {}  # worker -> call id -> state
        self._owner: dict[str, str] = {}  # call id -> worker
        self._listening_since: float | None = None

    # the bus ------------------------------------------------------------------------

    def connected(self) -> None:
        """This worker hears the bus (again): every known worker gets a fresh
        ``dead_after_s`` to be heard from."""
        now = self._clock()
        self._listening_since = now
        for worker in self._seen:
            self._seen[worker] = now

    def disconnected(self) -> None:
        """This worker lost the bus: nobody is declared dead until it hears it again."""
        self._listening_since = None

    @property
    def listening(self) -> bool:
        """Whether this worker hears the bus now."""
        return self._listening_since is not None

    # what was heard -----------------------------------------------------------------

    def call_state(self, worker: str, state: CallState) -> None:
        """``worker`` holds the call ``state`` describes (its latest state); a call that moved
        from another worker (its next leg started there) is that worker's no more."""
        self._heard(worker)
        previous = self._owner.get(state.call_id)
        if previous is not None and previous != worker:
            self._calls.get(previous, {}).pop(state.call_id, None)
        self._owner[state.call_id] = worker
        self._calls.setdefault(worker, {})[state.call_id] = state

    def call_ended(self, worker: str, call_id: str) -> CallState | None:
        """``worker`` ended the call: forgotten; its last known state, or None."""
        self._heard(worker)
        if self._owner.get(call_id) != worker:
            return None
        del self._owner[call_id]
        return self._calls.get(worker, {}).pop(call_id, None)

    def heartbeat(self, worker: str, states: Iterable[CallState]) -> Heard:
        """``worker`` is alive and holds exactly ``states``: what changed since it was last
        heard (a catch-up after lost messages or a bus outage)."""
        self._heard(worker)
        heard = Heard()
        held = self._calls.setdefault(worker, {})
        listed = set()
        for state in states:
            listed.add(state.call_id)
            if held.get(state.call_id) != state:
                self.call_state(worker, state)
                heard.changed.append(state)
        for call_id in [c for c in held if c not in listed]:
            heard.gone.append(held.pop(call_id))
            del self._owner[call_id]
        return heard

    def _heard(self, worker: str) -> None:
        self._seen[worker] = self._clock()

    # questions ----------------------------------------------------------------------

    def expire(self) -> list[tuple[str, list[CallState]]]:
        """The workers unheard for more than ``dead_after_s``, each with the calls it held,
        all forgotten. Nothing while this worker can't hear the bus or has heard it for
        less than ``dead_after_s``."""
        now = self._clock()
        if self._listening_since is None or now - self._listening_since < self.dead_after_s:
            return []
        dead = [w for w, seen in self._seen.items() if now - seen > self.dead_after_s]
        out = []
        for worker in dead:
            del self._seen[worker]
            calls = list(self._calls.pop(worker, {}).values())
            for state in calls:
                self._owner.pop(state.call_id, None)
            out.append((worker, calls))
        return out

    def owner(self, call_id: str) -> str | None:
        """The worker holding the call, as last heard; None for a call not held elsewhere."""
        return self._owner.get(call_id)

    def workers(self) -> list[str]:
        """The other workers heard and not (yet) declared dead, sorted."""
        return sorted(self._seen)

    def calls(self) -> int:
        """How many calls the other workers hold."""
        return len(self._owner)
