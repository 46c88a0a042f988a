"""Fan-out: one execution per event per distinct (document, variables, visibility),
the same bytes to every matching subscriber.

Each process has one hub. It listens on the broker for the topics its live
subscriptions need (one broker subscription per topic, however many sockets),
and handles messages one at a time in one task, in arrival order (a message
only for resumable streams, with nothing ahead of it, is handed to them at
once: `Hub._receive`):

1. an access message (`{"kind": "access"}`) re-authorizes the subscriptions on
   that topic; those no longer allowed end with FORBIDDEN;
2. otherwise the subscriptions the message concerns are grouped by (live field,
   query, operation, variables, platform); in each group the subscribers the
   event is hidden from (a block with the commenter…) are dropped; a shared
   selection (subscriptions/documents.py) is then executed once for the rest,
   anything else once per viewer; the JSON payload is serialized once and each
   subscriber gets it framed for its protocol and operation id.

Delivery to a socket is `Peer.push`: it never waits (a bounded per-connection
queue, see subscriptions/connection.py), so a slow client never holds up the
hub or anyone else.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import defaultdict
from collections.abc import Callable
from typing import Any, Protocol

from graphql import GraphQLError, GraphQLSchema
from graphql.execution import execute_subscription_event

from resolvers.context import Context, Viewer
from resolvers.errors import ApiError, Forbidden
from schema.execution import LeanExecutor
from server.masking import Origin, client_errors
from subscriptions.broker import INTERRUPTED, Broker, BrokerUnavailable, Listening, Payload
from subscriptions.documents import Prepared
from subscriptions.live import SKIP, LiveField, is_access_change
from subscriptions.resumable import ResumableRun, is_resumable
from subscriptions.topics import decode

log = logging.getLogger("entativa.realtime")

LOST_ACCESS = "you can no longer see what this subscription is about"


class RealtimeUnavailable(ApiError):
    """The realtime broker (Redis) cannot be reached: live updates would be missed.

    The contract has no "unavailable" code, so INTERNAL_SERVER_ERROR with a clear
    message and `retryable: true`; the client subscribes again later (durable
    streams resume from their cursor, subscriptions/resume.py)."""

    def __init__(self) -> None:
        super().__init__(
            "realtime updates are unavailable (the broker cannot be reached); "
            "subscribe again in a moment",
            retryable=True,
        )


class Peer(Protocol):
    """A connection as the hub sees it (websocket or HTTP stream)."""

    platform: str
    viewer: Viewer | None
    blocked: frozenset[int]
    request_id: str

    def push_next(self, sub: Sub, payload: str) -> None: ...

    def next_prefix(self, op_id: str) -> str: ...

    def end(self, sub: Sub, errors: list[GraphQLError]) -> None:
        """Send `errors` for this operation only, and forget it."""
        ...

    async def refresh_access(self) -> None:
        """Reload what the viewer's relationships decide (their block list)."""
        ...


class Sub:
    """One live operation of one peer."""

    __slots__ = ("arguments", "field", "frame_prefix", "id", "peer", "prepared", "topics")

    def __init__(
        self,
        peer: Peer,
        op_id: str,
        prepared: Prepared,
        field: LiveField,
        topics: tuple[str, ...],
    ) -> None:
        self.peer, self.id, self.prepared, self.field = peer, op_id, prepared, field
        self.arguments: dict[str, Any] = prepared.arguments
        self.topics = topics
        self.frame_prefix = peer.next_prefix(op_id)  # framed once, used per event

    @property
    def viewer_id(self) -> int | None:
        return self.peer.viewer.user_id if self.peer.viewer else None


ContextFactory = Callable[[str, Viewer | None, str], Context]


class Hub:
    def __init__(self, broker: Broker, schema: GraphQLSchema, contexts: ContextFactory) -> None:
        self.broker = broker
        self.schema = schema
        self.contexts = contexts
        self.by_topic: dict[str, set[Sub]] = {}
        self._listening: dict[str, Listening] = {}
        self._inbox: asyncio.Queue[tuple[str, Payload]] = asyncio.Queue()
        self._worker: asyncio.Task[None] | None = None
        self._runs: dict[Sub, ResumableRun] = {}  # resumable fields' own streams
        self._dispatching = False  # the task is in `dispatch` (it may be waiting there)
        self.executions = 0  # selection executions (tests and the bench read it)

    # ── subscriptions ───────────────────────────────────────────────────

    async def add(self, sub: Sub) -> None:
        self._start()
        run = ResumableRun(self, sub) if is_resumable(sub.field) else None
        if run is not None:  # its live buffer listens before the topics are subscribed
            self._runs[sub] = run
        new = []
        for topic in sub.topics:
            subs = self.by_topic.setdefault(topic, set())
            if not subs and topic not in self._listening:
                new.append(topic)
            subs.add(sub)
        for topic in new:
            try:
                self._listening[topic] = await self.broker.subscribe([topic], self._receive)
            except BrokerUnavailable as error:
                await self.remove(sub)
                raise RealtimeUnavailable() from error
        if run is not None:
            run.start()  # replay, then live from the buffer

    async def remove(self, sub: Sub) -> None:
        run = self._runs.pop(sub, None)
        if run is not None:
            await run.stop()
        for topic in sub.topics:
            subs = self.by_topic.get(topic)
            if subs is None:
                continue
            subs.discard(sub)
            if not subs:
                del self.by_topic[topic]
                listening = self._listening.pop(topic, None)
                if listening is not None:
                    await listening.close()

    def _start(self) -> None:
        if self._worker is None:
            self._worker = asyncio.create_task(self._run(), name="realtime-hub")

    async def close(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
            self._worker = None
        for run in list(self._runs.values()):
            await run.stop()
        self._runs.clear()
        for listening in list(self._listening.values()):
            with contextlib.suppress(Exception):
                await listening.close()
        self._listening.clear()
        self.by_topic.clear()

    # ── messages ────────────────────────────────────────────────────────

    def _receive(self, topic: str, data: Payload) -> None:
        """Queue a broker message for the hub's task; or, when it is for resumable
        streams only and nothing is ahead of it, hand it to them now.

        A stream's part of `dispatch` is only putting the message into its buffer,
        and each relayed envelope is such a message: waking the hub's task for it
        (a queue put and get, a turn of the loop) cost more than the work. With
        nothing queued or being dispatched, doing it here is what the task would do
        next, in the same order."""
        if not self._dispatching and self._inbox.empty() and data != INTERRUPTED:
            subs = self.by_topic.get(topic)
            if subs and all(sub in self._runs for sub in subs):
                message = decode(data)
                if not is_access_change(message):
                    self._route(subs, message)
                    return
        self._inbox.put_nowait((topic, data))

    async def _run(self) -> None:
        while True:
            topic, data = await self._inbox.get()
            self._dispatching = True
            try:
                await self.dispatch(topic, data)
            except Exception:
                log.exception("realtime dispatch failed on topic %s", topic)
            finally:
                self._dispatching = False

    async def dispatch(self, topic: str, data: Payload) -> None:
        subs = self.by_topic.get(topic)
        if not subs:
            return
        if data == INTERRUPTED:  # the broker lost its server: events may be missed
            for sub in list(subs):
                await self.remove(sub)
                sub.peer.end(sub, [RealtimeUnavailable()])
            return
        message = decode(data)
        if is_access_change(message):
            # A viewer's relationships changed (their block list may have too), or
            # the subject did (an edit, a deletion): re-authorize who listens.
            await self.recheck(list(subs), relationships=topic.startswith("access:"))
            return
        for group in self._route(subs, message).values():
            await self._fan_out(group, message)

    def _route(self, subs: set[Sub], message: dict[str, Any]) -> dict[tuple[Any, ...], list[Sub]]:
        """Hand the message to the resumable streams it concerns; group the other
        subscriptions it concerns for `_fan_out`."""
        groups: dict[tuple[Any, ...], list[Sub]] = defaultdict(list)
        for sub in subs:
            if sub.field.handles(message):
                run = self._runs.get(sub)
                if run is not None:  # a resumable stream reads its own log
                    run.push(message)
                    continue
                key = (sub.field.name, sub.peer.platform, *sub.prepared.key)
                groups[key].append(sub)
        return groups

    async def _fan_out(self, group: list[Sub], message: dict[str, Any]) -> None:
        hidden = frozenset(group[0].field.hidden_by(message))
        eligible = (
            [sub for sub in group if hidden.isdisjoint(sub.peer.blocked)] if hidden else group
        )
        if not eligible:
            return
        classes: dict[Any, list[Sub]]
        if group[0].prepared.shared:
            classes = {None: eligible}
        else:  # viewer-dependent fields: once per viewer
            classes = defaultdict(list)
            for sub in eligible:
                classes[sub.viewer_id].append(sub)
        for members in classes.values():
            payload = await self.execute(members[0], message)
            if payload is None:
                continue
            for sub in members:
                sub.peer.push_next(sub, payload)

    async def execute(
        self, sub: Sub, message: dict[str, Any], context: Context | None = None
    ) -> str | None:
        """The selection of `sub` for this event as the JSON payload, or None
        (`context`: one to reuse; a fresh one otherwise)."""
        peer = sub.peer
        if context is None:
            context = self.contexts(peer.platform, peer.viewer, peer.request_id)
        self.executions += 1
        try:
            root = await sub.field.root(context, message)
        except ApiError:
            return None  # gone or hidden meanwhile: nothing to say
        if root is SKIP:
            return None
        prepared = sub.prepared
        if prepared.plain is not None:
            data = prepared.plain.data(root)
            if data is not None:
                return _payload(data, None, peer)
        built = LeanExecutor.build(  # schema/execution.py: as the schema's own executions
            self.schema,
            prepared.document,
            root,
            context,
            prepared.variables,
            prepared.operation_name,
        )
        if isinstance(built, list):  # cannot happen: checked on subscribe
            return _payload(None, built, peer)
        result = execute_subscription_event(built)
        if asyncio.iscoroutine(result) or isinstance(result, asyncio.Future):
            result = await result
        return _payload(result.data, result.errors, peer)  # type: ignore[union-attr]

    async def recheck(self, subs: list[Sub], relationships: bool = True) -> None:
        """Re-authorize: access may have changed (block, unfollow, edited post…)."""
        if relationships:
            for peer in {sub.peer for sub in subs}:
                await peer.refresh_access()
        for sub in subs:
            context = self.contexts(sub.peer.platform, sub.peer.viewer, sub.peer.request_id)
            try:
                await sub.field.authorize(context, sub.arguments)
            except ApiError:
                await self.remove(sub)
                sub.peer.end(sub, [Forbidden(LOST_ACCESS)])


def _payload(data: Any, errors: list[GraphQLError] | None, peer: Peer) -> str:
    body: dict[str, Any] = {"data": data}
    if errors:
        masked = client_errors(list(errors), Origin(peer.request_id, peer.platform))
        body["errors"] = [error.formatted for error in masked]
    return json.dumps(body, separators=(",", ":"))
