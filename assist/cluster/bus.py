"""``ClusterHub``: the in-process ``Hub`` with every event also on a NATS bus.

Each worker delivers its own calls' events to its local streams at once (as the embedded
hub does) and publishes them; every other worker delivers what it hears to its own agent
and floor streams. So a supervisor on any worker sees every call, and an agent gets their
nudges from whichever worker holds their call.

Subjects (ids escaped to NATS tokens by ``token``)::

    assist.floor.call.<call>.state       CallUpdate: a call's latest state (floor, agent)
    assist.floor.call.<call>.ended       CallEnded
    assist.floor.call.<call>.alert       Alert and other floor messages of one call
    assist.floor.worker.<worker>.heartbeat  {"worker_id", "calls": [CallState, ...]}
    assist.agent.<agent>                 an agent's nudges, transcripts, errors
    assist.worker.<worker>.snooze        {"call_id", "kind"}: feedback for the call's holder

One subscription covers ``assist.floor.>`` (so one worker's messages keep their order);
an agent's subject is listened on while that agent has a stream on this worker. The
records are in the shared store; the bus carries live events. Where a lost message would
be missed, it is not lost:

* agents' events (nudges, transcripts) are kept for ``AGENT_REPLAY_S`` in the JetStream
  stream ``ASSIST_AGENTS`` (file storage, made by the first worker): each worker reads an
  agent's subject through a consumer of its own and, after a bus outage or a restart of
  the bus, resumes from the first event it has not delivered (each once, in order). A
  bus without JetStream: live subscriptions, nothing replayed (logged, ``/healthz``);
* call states are coalesced anyway: heartbeats carry each worker's calls, so a worker that
  missed messages catches up within one heartbeat, and a worker unheard for
  ``dead_after_s`` is dead: its calls end on every floor and ``on_dead`` marks them
  ``cut_off`` in the store.

A worker that loses the bus keeps serving its own calls and streams; what it publishes
meanwhile is buffered by the client up to its limit (2 MiB), then dropped (counted).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import nats
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription as NatsSubscription
from nats.js import JetStreamContext
from nats.js.api import (
    AckPolicy,
    ConsumerConfig,
    DeliverPolicy,
    DiscardPolicy,
    StorageType,
    StreamConfig,
)
from nats.js.errors import BadRequestError
from pydantic import BaseModel

from assist.cluster.registry import Registry
from assist.config import ClusterConfig
from assist.events import CallEnded, CallState, CallUpdate
from assist.hub import Hub, Subscription

log = logging.getLogger(__name__)

WORKER_HEADER = "Assist-Worker"
# Events waiting to be handed to the NATS client; beyond this the oldest are dropped.
OUTBOX_LIMIT = 10_000
# An agent stream opened while the bus is up waits at most this long for its subject.
SUBSCRIBE_WAIT_S = 2
# Agents' events are kept this long in a JetStream stream, so a worker that lost the bus
# (or a restarted bus) resumes each agent's events where it left off.
AGENT_STREAM = "ASSIST_AGENTS"
AGENT_REPLAY_S = 60.0
AGENT_STREAM_BYTES = 256 * 1024 * 1024
RESUME_WAIT_S = 30.0

SAFE = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-")


def token(name: str) -> str:
    """``name`` as one NATS subject token: letters, digits, ``_`` and ``-`` kept, every
    other character as ``~`` and its UTF-8 bytes in hex (``a.b`` -> ``a~2eb``)."""
    return "".join(c if c in SAFE else "".join(f"~{b:02x}" for b in c.encode()) for c in name)


def redacted_url(url: str) -> str:
    """A bus URL without its credentials (for logs and ``/healthz``)."""
    scheme, sep, rest = url.partition("://")
    return f"{scheme}{sep}{rest.rpartition('@')[2]}" if sep else url


class _HeldSubscription(Subscription):
    """An agent stream's queue that sends nothing until this worker listens on the agent's
    subject, so no event published after ``subscribed`` is missed."""

    def __init__(self, capacity: int, gate: asyncio.Event) -> None:
        super().__init__(capacity)
        self._gate = gate

    async def get(self) -> str:
        """The next JSON text, once the agent's bus subject is listened on."""
        if not self._gate.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._gate.wait(), SUBSCRIBE_WAIT_S)
        return await super().get()


class ClusterHub(Hub):
    """The embedded ``Hub`` plus a NATS bus shared by the workers of one floor.

    ``on_snooze(call_id, kind)`` applies feedback that reached another worker to a call
    this worker holds; ``on_dead(worker_id, call_ids)`` is told a dead worker's calls (to
    cut them off in the store). ``clock``: monotonic seconds for heartbeats. Start with
    ``start`` (connecting in the background: the hub serves its own calls meanwhile), end
    with ``close``. Event loop only.
    """

    def __init__(
        self,
        config: ClusterConfig,
        worker_id: str,
        subscriber_capacity: int = 256,
        clock: Callable[[], float] = time.monotonic,
        on_snooze: Callable[[str, str], None] | None = None,
        on_dead: Callable[[str, list[str]], object] | None = None,
    ) -> None:
        super().__init__(subscriber_capacity)
        self.config = config
        self.worker_id = worker_id
        self.registry = Registry(worker_id, config.dead_after_s, clock)
        self.on_snooze = on_snooze
        self.on_dead = on_dead
        self._servers = [u.strip() for u in config.bus.split(",") if u.strip()]
        self._shown = ", ".join(redacted_url(u) for u in self._servers)  # no credentials
        self._nc: Client | None = None
        self._local: set[str] = set()  # call ids whose states this worker publishes
        self._agent_bus: dict[str, NatsSubscription | None] = {}  # agent -> its subject's sub
        self._agent_of_token: dict[str, str] = {}  # escaped agent id -> agent id
        self._js: JetStreamContext | None = None  # None: no JetStream, live events only
        self._agent_seq: dict[str, int] = {}  # agent -> last stream sequence delivered
        self._gates: dict[str, asyncio.Event] = {}
        self._outbox: deque[tuple[str, bytes]] = deque()
        self._outbox_ready = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._pending: set[asyncio.Task[Any]] = set()  # agent subscriptions being made
        # set once the first connection is made and subscribed (tests, benchmarks wait on it)
        self.joined = asyncio.Event()
        self._closing = False
        self.published = 0
        self.received = 0
        self.dropped = 0

    # life cycle -----------------------------------------------------------------------

    async def start(self) -> None:
        """Connect to the bus in the background (retrying until it answers), then publish
        and heartbeat."""
        self._tasks = [
            asyncio.create_task(self._connect(), name="bus-connect"),
            asyncio.create_task(self._publisher(), name="bus-publisher"),
        ]

    async def close(self) -> None:
        """Say goodbye (the others end this worker's calls only when they time out, unless
        it ended them), stop publishing and close the connection."""
        self._closing = True
        nc = self._nc
        if nc is not None and nc.is_connected:
            with contextlib.suppress(Exception):
                await self._drain_outbox(nc)
                await nc.flush(timeout=1)
        tasks = [*self._tasks, *self._pending]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if nc is not None:
            with contextlib.suppress(Exception):
                await nc.close()

    @property
    def connected(self) -> bool:
        """Whether the bus is connected now."""
        return self._nc is not None and self._nc.is_connected

    def health(self) -> dict[str, Any]:
        """The bus part of ``/healthz``."""
        return {
            "bus": self._shown,
            "state": "connected" if self.connected else "disconnected",
            "agent_replay": self._js is not None,  # agents' events kept in JetStream
            "worker_id": self.worker_id,
            "workers": self.registry.workers(),
            "remote_calls": self.registry.calls(),
            "published": self.published,
            "received": self.received,
            "dropped": self.dropped,
        }

    async def _connect(self) -> None:
        while True:
            try:
                nc = await nats.connect(
                    self._servers,
                    name=f"assist-{self.worker_id}",
                    no_echo=True,  # this worker's own events are delivered locally
                    allow_reconnect=True,
                    max_reconnect_attempts=-1,
                    reconnect_time_wait=0.25,
                    connect_timeout=2,
                    ping_interval=max(1, round(self.config.heartbeat_s * 2)),
                    max_outstanding_pings=2,
                    disconnected_cb=self._on_disconnected,
                    reconnected_cb=self._on_reconnected,
                    error_cb=self._on_error,
                )
                break
            except Exception as exc:
                log.warning("bus %s unreachable (%s); retrying", self._shown, exc)
                await asyncio.sleep(1.0)
        self._nc = nc
        self._js = await self._agent_stream(nc)
        await nc.subscribe("assist.floor.>", cb=self._on_floor)
        await nc.subscribe(f"assist.worker.{token(self.worker_id)}.>", cb=self._on_worker)
        for agent_id in list(self._agents):
            await self._listen_agent(agent_id)
        await subscriptions_flushed(nc)
        log.info("bus connected: %s as worker %s", self._shown, self.worker_id)
        self.registry.connected()
        self.joined.set()
        self._tasks.append(asyncio.create_task(self._heartbeats(), name="bus-heartbeat"))

    async def _on_disconnected(self) -> None:
        if self._closing:
            return
        log.warning("bus lost: serving this worker's calls alone until it is back")
        self.registry.disconnected()

    async def _on_reconnected(self) -> None:
        log.info("bus back: catching up")
        self.registry.connected()
        self._heartbeat()  # the others learn this worker's calls at once
        if self._nc is not None:
            self._spawn(self._resume_agents(self._nc))

    async def _agent_stream(self, nc: Client, quiet: bool = False) -> JetStreamContext | None:
        """The JetStream stream of the agents' subjects (made, or its limits set, by
        whichever worker comes first); None when the bus has no JetStream (now)."""
        js = nc.jetstream(timeout=2)
        config = StreamConfig(
            name=AGENT_STREAM,
            subjects=["assist.agent.>"],
            max_age=AGENT_REPLAY_S,
            max_bytes=AGENT_STREAM_BYTES,
            storage=StorageType.FILE,
            discard=DiscardPolicy.OLD,
        )
        try:
            try:
                await js.add_stream(config)
            except BadRequestError:  # made with other limits (another version): these
                await js.update_stream(config)
        except Exception as exc:
            if not quiet:
                log.warning("bus without JetStream (%s): agent events are not replayed", exc)
            return None
        return js

    async def _resume_agents(self, nc: Client) -> None:
        """After a reconnection: each agent's events from the agent stream, from the first
        one this worker has not delivered. The old subscriptions go (their consumers may be
        gone with a restarted bus); a restarted bus may take a moment to serve its stream
        again (retried for ``RESUME_WAIT_S``, then the agents listen live only)."""
        for agent_id, old in list(self._agent_bus.items()):
            if old is not None:
                del self._agent_bus[agent_id]
                await _quietly(old.unsubscribe())
        loop = asyncio.get_running_loop()
        deadline = loop.time() + RESUME_WAIT_S
        state = None
        while not self._closing:
            js = await self._agent_stream(nc, quiet=loop.time() < deadline)
            with contextlib.suppress(Exception):
                state = (await js.stream_info(AGENT_STREAM)).state if js is not None else None
            if state is not None or loop.time() >= deadline:
                break
            await asyncio.sleep(0.5)  # the bus's JetStream is recovering its storage
        self._js = js if state is not None else None
        for agent_id in list(self._agents):
            start = None
            if state is not None and agent_id in self._agent_seq:
                last = self._agent_seq[agent_id]
                start = (last if last <= state.last_seq else state.first_seq - 1) + 1
            await self._listen_agent(agent_id, start)

    async def _on_error(self, exc: Exception) -> None:
        log.info("bus: %s", exc)

    async def _heartbeats(self) -> None:
        while True:
            self._heartbeat()
            self.expire_workers()
            await asyncio.sleep(self.config.heartbeat_s)

    def _heartbeat(self) -> None:
        calls = [self.live_calls[c].model_dump() for c in sorted(self._local)]
        body = json.dumps({"worker_id": self.worker_id, "calls": calls})
        self._publish(f"assist.floor.worker.{token(self.worker_id)}.heartbeat", body)

    def expire_workers(self) -> list[str]:
        """End the calls of workers unheard for ``dead_after_s`` on this worker's streams
        and tell ``on_dead``; returns the dead workers' ids."""
        dead = []
        for worker, calls in self.registry.expire():
            dead.append(worker)
            log.warning("worker %s is gone: %d call(s) cut off", worker, len(calls))
            for state in calls:
                self._ended_here(state.call_id, state.agent_id)
            if self.on_dead is not None:
                self.on_dead(worker, [state.call_id for state in calls])
        return dead

    # publishing -----------------------------------------------------------------------

    def _publish(self, subject: str, text: str) -> None:
        if self._nc is None:
            self.dropped += 1  # never connected yet: heartbeats catch the others up
            return
        self._outbox.append((subject, text.encode()))
        while len(self._outbox) > OUTBOX_LIMIT:
            self._outbox.popleft()
            self.dropped += 1
        self._outbox_ready.set()

    async def _publisher(self) -> None:
        while True:
            await self._outbox_ready.wait()
            self._outbox_ready.clear()
            if self._nc is not None:
                await self._drain_outbox(self._nc)

    async def _drain_outbox(self, nc: Client) -> None:
        headers = {WORKER_HEADER: self.worker_id}
        while self._outbox:
            subject, data = self._outbox.popleft()
            try:
                await nc.publish(subject, data, headers=headers)
                self.published += 1
            except Exception as exc:  # closed, or the reconnect buffer is full
                self.dropped += 1
                log.debug("bus publish dropped: %s", exc)

    def to_agent(self, agent_id: str, message: BaseModel) -> None:
        """Queue ``message`` on the agent's streams here and publish it on their subject."""
        text = message.model_dump_json()
        self._deliver_agent(agent_id, text)
        self._publish(f"assist.agent.{token(agent_id)}", text)

    def to_floor(self, message: BaseModel) -> None:
        """Queue ``message`` on the floor streams here and publish it (a call's message on
        that call's subject)."""
        text = message.model_dump_json()
        self._deliver_floor(text)
        call_id = getattr(message, "call_id", None)
        subject = f"assist.floor.call.{token(call_id)}.alert" if call_id else "assist.floor.event"
        self._publish(subject, text)

    def call_changed(self, state: CallState) -> None:
        """A call of this worker changed: delivered here, published for the others."""
        self._local.add(state.call_id)
        self.live_calls[state.call_id] = state
        text = CallUpdate(call=state).model_dump_json()
        self._deliver_state(state, text)
        self._publish(f"assist.floor.call.{token(state.call_id)}.state", text)

    def call_ended(self, call_id: str, agent_id: str) -> None:
        """A call of this worker ended: delivered here, published for the others."""
        self._local.discard(call_id)
        text = self._ended_here(call_id, agent_id)
        self._publish(f"assist.floor.call.{token(call_id)}.ended", text)

    def forward_snooze(self, call_id: str, kind: str) -> bool:
        """Send an agent's snooze on ``call_id`` (held by another worker) to that worker;
        False when no other worker holds the call."""
        owner = self.registry.owner(call_id)
        if owner is None:
            return False
        body = json.dumps({"call_id": call_id, "kind": kind})
        self._publish(f"assist.worker.{token(owner)}.snooze", body)
        return True

    # local delivery -----------------------------------------------------------------

    def _deliver_agent(self, agent_id: str, text: str, key: Any = None) -> None:
        for sub in self._agents.get(agent_id, ()):
            sub.put(text, key=key)

    def _deliver_floor(self, text: str, key: Any = None) -> None:
        for sub in self._floor:
            sub.put(text, key=key)

    def _deliver_state(self, state: CallState, text: str) -> None:
        key = ("call", state.call_id)
        self._deliver_floor(text, key)
        self._deliver_agent(state.agent_id, text, key)

    def _ended_here(self, call_id: str, agent_id: str) -> str:
        self.live_calls.pop(call_id, None)
        text = CallEnded(call_id=call_id, agent_id=agent_id).model_dump_json()
        self._deliver_floor(text)
        self._deliver_agent(agent_id, text)
        return text

    # subscriptions ------------------------------------------------------------------

    def _new_agent_subscription(self, agent_id: str) -> Subscription:
        """An agent stream's queue (filled by ``Hub.subscribe_agent``) that also listens on
        the agent's bus subject; while that subscription is being made it holds its events."""
        gate = self._gates.get(agent_id)
        if gate is None:
            gate = self._gates[agent_id] = asyncio.Event()
            if self.connected:
                self._spawn(self._listen_agent(agent_id))
            else:
                gate.set()  # nothing to wait for: subscribed on (re)connection
        return _HeldSubscription(self._capacity, gate)

    def unsubscribe(self, sub: Subscription) -> None:
        """Forget a subscription; an agent with no stream left here stops listening."""
        super().unsubscribe(sub)
        for agent_id in [a for a in self._gates if a not in self._agents]:
            del self._gates[agent_id]
            self._agent_of_token.pop(token(agent_id), None)
            self._agent_seq.pop(agent_id, None)
            bus_sub = self._agent_bus.pop(agent_id, None)
            if bus_sub is not None:
                self._spawn(_quietly(bus_sub.unsubscribe()))

    def _spawn(self, coroutine: Any) -> None:
        """Run ``coroutine`` as a task kept until it is done (the loop keeps only weak
        references)."""
        task = asyncio.get_running_loop().create_task(coroutine)
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _listen_agent(self, agent_id: str, start_seq: int | None = None) -> None:
        """Listen on the agent's subject: through the agent stream when there is one (from
        ``start_seq``, else from now on), else a plain subscription."""
        nc = self._nc
        try:
            if nc is not None and agent_id in self._agents and agent_id not in self._agent_bus:
                self._agent_bus[agent_id] = None  # being made
                self._agent_of_token[token(agent_id)] = agent_id
                subject = f"assist.agent.{token(agent_id)}"
                if self._js is not None:
                    if start_seq is None:
                        state = (await self._js.stream_info(AGENT_STREAM)).state
                        start_seq = state.last_seq + 1
                    self._agent_seq[agent_id] = start_seq - 1
                    config = ConsumerConfig(
                        deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
                        opt_start_seq=start_seq,
                        ack_policy=AckPolicy.NONE,
                        mem_storage=True,
                        num_replicas=1,
                        inactive_threshold=AGENT_REPLAY_S,
                    )
                    sub: NatsSubscription = await self._js.subscribe(
                        subject, stream=AGENT_STREAM, cb=self._on_agent, config=config,
                        manual_ack=True,
                    )  # fmt: skip
                else:
                    sub = await nc.subscribe(subject, cb=self._on_agent)
                if agent_id in self._agent_bus:
                    self._agent_bus[agent_id] = sub
                    await subscriptions_flushed(nc, SUBSCRIBE_WAIT_S)
                else:  # the agent left meanwhile
                    await sub.unsubscribe()
        except Exception as exc:
            log.warning("bus: listening for agent %s failed: %s", agent_id, exc)
            if self._agent_bus.get(agent_id, 0) is None:
                del self._agent_bus[agent_id]  # not being made any more
                if self.connected and not self._closing:  # else: made again on reconnection
                    self._spawn(self._listen_again(agent_id))
        finally:
            if (gate := self._gates.get(agent_id)) is not None:
                gate.set()

    async def _listen_again(self, agent_id: str) -> None:
        await asyncio.sleep(0.5)  # a moment for the bus (its JetStream) to recover
        last = self._agent_seq.get(agent_id)
        await self._listen_agent(agent_id, None if last is None else last + 1)

    # receiving ----------------------------------------------------------------------

    async def _on_floor(self, msg: Msg) -> None:
        worker = (msg.headers or {}).get(WORKER_HEADER, "")
        if not worker or worker == self.worker_id:
            return
        self.received += 1
        kind = msg.subject.rsplit(".", 1)[-1]
        try:
            if kind == "state":
                self._heard_state(worker, CallUpdate.model_validate_json(msg.data).call, msg.data)
            elif kind == "ended":
                ended = CallEnded.model_validate_json(msg.data)
                if ended.call_id not in self._local:
                    self.registry.call_ended(worker, ended.call_id)
                    self._ended_here(ended.call_id, ended.agent_id)
            elif kind == "heartbeat":
                body = json.loads(msg.data)
                states = [CallState.model_validate(s) for s in body["calls"]]
                heard = self.registry.heartbeat(worker, states)
                for state in heard.changed:
                    if state.call_id not in self._local:
                        self.live_calls[state.call_id] = state
                        self._deliver_state(state, CallUpdate(call=state).model_dump_json())
                for state in heard.gone:
                    if state.call_id not in self._local:
                        self._ended_here(state.call_id, state.agent_id)
            else:  # alerts and other floor messages
                self._deliver_floor(msg.data.decode())
        except (ValueError, KeyError, TypeError) as exc:
            log.warning("bus: unreadable %s from worker %s: %s", msg.subject, worker, exc)

    def _heard_state(self, worker: str, state: CallState, data: bytes) -> None:
        if state.call_id in self._local:
            return  # this worker holds the call now (a late message of an earlier leg)
        self.registry.call_state(worker, state)
        self.live_calls[state.call_id] = state
        self._deliver_state(state, data.decode())

    async def _on_agent(self, msg: Msg) -> None:
        if (msg.headers or {}).get(WORKER_HEADER) == self.worker_id:
            return  # this worker's own, delivered here already (the stream echoes them)
        # the agent id is in the subject, escaped; the streams are found by it
        agent_id = self._agent_of_token.get(msg.subject.split(".", 2)[2])
        if agent_id is None:
            return
        if msg.reply.startswith("$JS.ACK."):  # from the agent stream: each once, in order
            seq = msg.metadata.sequence.stream
            if seq <= self._agent_seq.get(agent_id, 0):
                return
            self._agent_seq[agent_id] = seq
        self.received += 1
        self._deliver_agent(agent_id, msg.data.decode())

    async def _on_worker(self, msg: Msg) -> None:
        self.received += 1
        try:
            body = json.loads(msg.data)
            if msg.subject.endswith(".snooze") and self.on_snooze is not None:
                self.on_snooze(str(body["call_id"]), str(body["kind"]))
        except (ValueError, KeyError, TypeError) as exc:
            log.warning("bus: unreadable %s: %s", msg.subject, exc)


async def subscriptions_flushed(nc: Client, round_trip_s: int = 10) -> None:
    """Return once the server has every subscription ``nc`` made so far (raises
    ``nats.errors.FlushTimeoutError`` after ``round_trip_s`` per round trip; 10 s is
    nats-py's own default).

    One ``flush`` is not enough: nats-py writes its PING straight to the socket while a new
    SUB may still wait in its pending buffer, so the PONG can come back before the server
    has the SUB, and a message published on the subject by another worker just then is
    lost (seen: 3 runs of 34 of ``test_without_jetstream_agents_events_are_live_only``).
    During the first round trip the client's flusher writes the buffer; the second PING
    follows it on the socket, so its PONG comes after the server has read the SUBs."""
    await nc.flush(timeout=round_trip_s)
    await nc.flush(timeout=round_trip_s)


async def _quietly(awaitable: Any) -> None:
    with contextlib.suppress(Exception):
        await awaitable
