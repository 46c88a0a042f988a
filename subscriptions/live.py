"""What a domain tells the realtime layer about one Subscription root field.

A `LiveField` is the domain's whole say: which broker topics feed a subscription
with these arguments, who may open it (the domain's policy module decides), which
users' blocks hide one event from a viewer, and the root value an event resolves
from. The hub (subscriptions/hub.py) does the rest: grouping, executing once,
fan-out, backpressure, access re-checks.

Domains register their fields in `LIVE_FIELDS` (subscriptions/fields.py); the
strawberry resolvers of the same fields (used by the library's own protocol
handlers, and by anyone executing the schema directly) are built from the same
objects with `stream`, so both paths apply identical rules.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, Sequence
from typing import Any, ClassVar, Protocol

from resolvers.context import Context
from subscriptions.broker import Broker, Payload
from subscriptions.topics import decode

SKIP = object()
"""`root` returns this when the event produces nothing (e.g. the comment is gone)."""


class LiveField(Protocol):
    name: ClassVar[str]  # the GraphQL root field

    def topics(self, platform: str, arguments: dict[str, Any]) -> Sequence[str]:
        """Broker topics whose messages may produce events for this subscription."""
        ...

    async def authorize(self, context: Context, arguments: dict[str, Any]) -> None:
        """Raise an ApiError (NOT_FOUND, FORBIDDEN…) when the viewer may not subscribe.
        Called on subscribe and again whenever the viewer's access may have changed."""
        ...

    def handles(self, message: dict[str, Any]) -> bool:
        """Whether this message produces an event for this field (e.g. kind)."""
        ...

    def hidden_by(self, message: dict[str, Any]) -> Sequence[int]:
        """Users whose block (either way) with a viewer hides this event from them."""
        ...

    async def root(self, context: Context, message: dict[str, Any]) -> Any:
        """The root value the selection resolves from, or SKIP."""
        ...


def is_access_change(message: dict[str, Any]) -> bool:
    return message.get("kind") == "access"


async def stream(
    field: LiveField, context: Context, broker: Broker, arguments: dict[str, Any]
) -> AsyncGenerator[Any, None]:
    """The per-subscriber way (strawberry's handlers): authorize, then yield a root
    value per message. Used by schema resolvers; the hub does not go through it."""
    await field.authorize(context, arguments)
    inbox: asyncio.Queue[Payload] = asyncio.Queue(maxsize=1000)

    def receive(_topic: str, data: Payload) -> None:
        with contextlib.suppress(asyncio.QueueFull):
            inbox.put_nowait(data)

    listening = await broker.subscribe(field.topics(context.platform, arguments), receive)
    try:
        while True:
            message = decode(await inbox.get())
            if is_access_change(message):
                await field.authorize(context, arguments)
                continue
            if not field.handles(message):
                continue
            context.loaders = type(context.loaders)(context.stores, context.platform)
            value = await field.root(context, message)
            if value is not SKIP:
                yield value
    finally:
        await listening.close()
