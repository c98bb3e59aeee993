"""Fan-out of live events to agents and supervisors, behind a narrow interface.

Each subscriber owns a bounded queue of ready-to-send JSON texts (serialized once per
event, shared by every subscriber). Overflow drops the oldest entry and the subscriber is
told with a ``lagged`` message. Call-state updates are coalesced per call: a slow floor
client gets the latest state of each call, never a backlog of stale ones. The in-process
``Hub`` is the embedded default; a Redis/NATS hub can implement the same methods.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import OrderedDict
from collections.abc import Hashable

from pydantic import BaseModel

from assist.events import CallEnded, CallState, CallUpdate, FloorSnapshot, Lagged, Subscribed


class Subscription:
    """One client's bounded, coalescing queue of JSON texts."""

    _ids = itertools.count()

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._items: OrderedDict[Hashable, str] = OrderedDict()
        self._ready = asyncio.Event()
        self.dropped = 0  # lost since the last ``lagged`` notice
        self.dropped_total = 0

    def put(self, text: str, key: Hashable | None = None) -> None:
        """Queue ``text``; an entry with the same ``key`` is replaced in place."""
        if key is not None and key in self._items:
            self._items[key] = text
        else:
            self._items[key if key is not None else ("event", next(self._ids))] = text
            while len(self._items) > self._capacity:
                self._items.popitem(last=False)
                self.dropped += 1
                self.dropped_total += 1
        self._ready.set()

    async def get(self) -> str:
        """The next JSON text to send, waiting for one. When entries were dropped since the last
        notice, a ``lagged`` message with their count comes first."""
        while not self._items and not self.dropped:
            self._ready.clear()
            await self._ready.wait()
        if self.dropped:
            notice = Lagged(dropped=self.dropped).model_dump_json()
            self.dropped = 0
            return notice
        return self._items.popitem(last=False)[1]

    def pending(self) -> int:
        """Entries queued and not yet taken."""
        return len(self._items)


class Hub:
    """The in-process fan-out: agent streams (each sees its own agent's calls only), floor
    streams, and the latest state of every live call.

    ``subscriber_capacity`` bounds each subscription's queue (entries). Event loop only.
    """

    def __init__(self, subscriber_capacity: int = 256) -> None:
        self._capacity = subscriber_capacity
        self._agents: dict[str, set[Subscription]] = {}
        self._floor: set[Subscription] = set()
        self.live_calls: dict[str, CallState] = {}

    # subscriptions -------------------------------------------------------------

    def subscribe_agent(self, agent_id: str) -> Subscription:
        """A new agent-stream subscription, already holding ``subscribed`` and the current state
        of each of that agent's live calls."""
        sub = self._new_agent_subscription(agent_id)
        sub.put(Subscribed(stream="agent", agent_id=agent_id).model_dump_json())
        self._agents.setdefault(agent_id, set()).add(sub)
        for state in self.live_calls.values():
            if state.agent_id == agent_id:
                sub.put(CallUpdate(call=state).model_dump_json(), key=("call", state.call_id))
        return sub

    def _new_agent_subscription(self, agent_id: str) -> Subscription:
        """The empty queue of a new agent stream (a cluster hub's holds its events until the
        agent's bus subject is listened on)."""
        return Subscription(self._capacity)

    def subscribe_floor(self) -> Subscription:
        """A new floor subscription, already holding ``subscribed`` and a ``floor_snapshot``."""
        sub = Subscription(self._capacity)
        sub.put(Subscribed(stream="floor").model_dump_json())
        snapshot = FloorSnapshot(calls=sorted_by_attention(self.live_calls.values()))
        sub.put(snapshot.model_dump_json())
        self._floor.add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        """Forget a subscription of either kind (one not subscribed is ignored)."""
        self._floor.discard(sub)
        for agent_id, subs in list(self._agents.items()):
            subs.discard(sub)
            if not subs:
                del self._agents[agent_id]

    def subscriber_counts(self) -> dict[str, int]:
        """Live subscriptions per stream kind: ``{"agent": n, "floor": n}``."""
        return {"agent": sum(len(s) for s in self._agents.values()), "floor": len(self._floor)}

    def subscribers(self) -> list[Subscription]:
        """Every live subscription, floor ones first."""
        return [*self._floor, *(s for subs in self._agents.values() for s in subs)]

    # publishing ----------------------------------------------------------------

    def to_agent(self, agent_id: str, message: BaseModel) -> None:
        """Queue ``message`` (serialized once) on every stream of ``agent_id``."""
        text = message.model_dump_json()
        for sub in self._agents.get(agent_id, ()):
            sub.put(text)

    def to_floor(self, message: BaseModel) -> None:
        """Queue ``message`` (serialized once) on every floor stream."""
        text = message.model_dump_json()
        for sub in self._floor:
            sub.put(text)

    def call_changed(self, state: CallState) -> None:
        """Latest state of a live call, coalesced per call for every viewer."""
        self.live_calls[state.call_id] = state
        text = CallUpdate(call=state).model_dump_json()
        key = ("call", state.call_id)
        for sub in self._floor:
            sub.put(text, key=key)
        for sub in self._agents.get(state.agent_id, ()):
            sub.put(text, key=key)

    def call_reassigned(self, state: CallState, previous_agent_id: str) -> None:
        """The live call now belongs to ``state.agent_id``: the previous agent's streams get
        ``call_ended`` for it (it left their view), the floor and the new agent the state."""
        ended = CallEnded(call_id=state.call_id, agent_id=previous_agent_id)
        self.to_agent(previous_agent_id, ended)
        self.call_changed(state)

    def call_ended(self, call_id: str, agent_id: str) -> None:
        """The call is over: forget its state, send ``call_ended`` to the floor and the agent."""
        self.live_calls.pop(call_id, None)
        ended = CallEnded(call_id=call_id, agent_id=agent_id)
        self.to_floor(ended)
        self.to_agent(agent_id, ended)


def sorted_by_attention(calls: object) -> list[CallState]:
    """Most urgent first: attention score, then longest hold, then call id."""
    return sorted(
        calls,  # type: ignore[call-overload]
        key=lambda c: (-c.attention, -(c.hold_s or 0.0), c.call_id),
    )
