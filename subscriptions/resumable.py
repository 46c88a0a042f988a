"""Resumable live fields: a per-subscriber stream that replays a durable log, then goes live.

Most live fields are fan-out (the hub executes an event once for everyone who
listens). A resumable field is one subscriber's own ordered log instead (a
device's envelope queue): each subscription runs `resume.stream` over the log
after the client's cursor, with the hub feeding the broker messages of the
field's topics into the stream's `LiveBuffer` (subscribed before the replay
starts: no gap), and the hub's executor turning each entry into a payload.

A field says how: `log` (the DurableLog for these arguments), `after` (the
client's cursor), `cursor_of`, `live_entry` (a broker message as an entry) and
`root` (an entry as the root value, or SKIP). Replay waits while the peer's
outgoing queue is half full, so a long backlog never overflows a socket.

The hub's executor runs each entry's selection with the stream's one context
(a context builds every domain's DataLoaders: one per entry was most of a
delivery's CPU in the relay bench's profile): a resumable field's entry is a
whole record read from its log (an Envelope resolves every field from it), so
no DataLoader cache can make it stale. A field whose selection reads through
loaders must not be resumable this way.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from resolvers.context import Context
from resolvers.errors import ApiError
from subscriptions.broker import Broker, Payload
from subscriptions.live import SKIP, LiveField, is_access_change
from subscriptions.resume import DurableLog, LiveBuffer, stream
from subscriptions.topics import decode

if TYPE_CHECKING:
    from subscriptions.hub import Hub, Sub

log = logging.getLogger("entativa.realtime")

BACKLOG_WAIT_SECONDS = 0.01


class ResumableField(LiveField, Protocol):
    resumable: ClassVar[bool]

    def log(self, context: Context, arguments: dict[str, Any]) -> DurableLog[Any]: ...

    def after(self, arguments: dict[str, Any]) -> int | None: ...

    def cursor_of(self, entry: Any) -> int: ...

    def live_entry(self, arguments: dict[str, Any], message: dict[str, Any]) -> Any | None:
        """The entry a broker message announces, or None when it announces nothing."""
        ...


def is_resumable(field: object) -> bool:
    return bool(getattr(field, "resumable", False))


class ResumableRun:
    """One resumable subscription on the hub: its live buffer and its task."""

    def __init__(self, hub: Hub, sub: Sub) -> None:
        self.hub = hub
        self.sub = sub
        self.live: LiveBuffer[Any] = LiveBuffer()
        self.task: asyncio.Task[None] | None = None

    def push(self, message: dict[str, Any]) -> None:
        field: Any = self.sub.field
        entry = field.live_entry(self.sub.arguments, message)
        if entry is not None:
            self.live.push(entry)

    def start(self) -> None:
        self.task = asyncio.get_running_loop().create_task(self._run(), name="resumable")

    async def stop(self) -> None:
        if self.task is not None and self.task is not asyncio.current_task():
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.task

    async def _run(self) -> None:
        sub, hub = self.sub, self.hub
        field: Any = sub.field
        peer = sub.peer
        context = hub.contexts(peer.platform, peer.viewer, peer.request_id)
        entries = stream(
            field.log(context, sub.arguments),
            field.cursor_of,
            field.after(sub.arguments),
            self.live,
        )
        try:
            async for entry in entries:
                payload = await hub.execute(sub, entry, context)
                if payload is None:
                    continue
                peer.push_next(sub, payload)
                await _drain(peer)
        except ApiError as error:
            await hub.remove(sub)
            peer.end(sub, [error])
        except asyncio.CancelledError:
            raise
        except Exception:  # a store hiccup: end it, the client resumes from its cursor
            log.exception("resumable subscription %s failed", field.name)
            await hub.remove(sub)
            peer.end(sub, [ApiError("delivery was interrupted; subscribe again", retryable=True)])


async def _drain(peer: Any) -> None:
    """Wait while the peer's outgoing queue is half full (it is still sending)."""
    # The peer's writer drains without telling anyone: poll (cheap, only when full).
    while getattr(peer, "backlog_full", False):  # noqa: ASYNC110
        await asyncio.sleep(BACKLOG_WAIT_SECONDS)


async def resumable_stream(
    field: ResumableField, context: Context, broker: Broker, arguments: dict[str, Any]
) -> AsyncGenerator[Any, None]:
    """The per-subscriber way (strawberry's handlers, `schema.subscribe`): the same
    replay-then-live stream, each entry resolved with fresh loaders."""
    await field.authorize(context, arguments)
    live: LiveBuffer[Any] = LiveBuffer()

    def receive(_topic: str, data: Payload) -> None:
        message = decode(data)
        if is_access_change(message) or not field.handles(message):
            return
        entry = field.live_entry(arguments, message)
        if entry is not None:
            live.push(entry)

    listening = await broker.subscribe(field.topics(context.platform, arguments), receive)
    try:
        log_ = field.log(context, arguments)
        async for entry in stream(log_, field.cursor_of, field.after(arguments), live):
            context.loaders = type(context.loaders)(context.stores, context.platform)
            value = await field.root(context, entry)
            if value is not SKIP:
                yield value
    finally:
        await listening.close()
