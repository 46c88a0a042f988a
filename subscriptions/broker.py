"""The realtime broker: messages published on a topic reach every process subscribed to it.

Two implementations behind one small protocol, picked like the cache
(datasources/cache.py): `ENTATIVA_REDIS_URL` empty → `InProcessBroker` (one
process); set → `RedisBroker` (Redis pub/sub, any number of processes).

Delivery is at most once and best effort, by design: the broker carries live
notifications ("comment 41 was added to post 7", "close the sockets of family
F"), not data. Streams that must not lose anything replay from their durable log
(subscriptions/resume.py); ephemeral ones (typing, presence) may lose a beat.

A message is bytes, or an object that gives its bytes when asked (`bytes(m)`:
subscriptions/topics.py `Encoded`). The in-process broker hands the published
object itself to its handlers, so a message made in this process is never
turned into JSON and back; Redis carries `bytes(m)` and its handlers get bytes.

Handlers are plain callables run on the event loop: they must not block or
await (the fan-out hub only enqueues), so a publisher is never slowed down by a
subscriber, and one broker connection per process serves every local socket.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable
from typing import Protocol, SupportsBytes, TypeAlias

import redis.asyncio as redis

from datasources.cache import UNREACHABLE

log = logging.getLogger("entativa.realtime")

Payload: TypeAlias = bytes | SupportsBytes
"""What a message is: bytes, or what `bytes()` makes them of (see above)."""

Handler = Callable[[str, Payload], None]
"""Called with (topic, message) for each message on a subscribed topic."""

INTERRUPTED = b'{"kind":"interrupted"}'
"""Delivered on every subscribed topic when the broker lost its server: messages
published meanwhile are lost, so listeners end what cannot tolerate a gap (the hub
ends live subscriptions with an error; clients subscribe again, replaying durable
streams from their cursor). Issue 9: realtime reports a clear error on a Redis outage."""


class BrokerUnavailable(Exception):
    """The broker's server cannot be reached (publish or subscribe failed)."""


class Listening(Protocol):
    """One handler's interest in some topics; `close` ends it (idempotent)."""

    async def close(self) -> None: ...


class Broker(Protocol):
    async def publish(self, topic: str, message: Payload) -> None:
        """Send `message` to every current subscriber of `topic`, in every process."""

    async def subscribe(self, topics: Iterable[str], handler: Handler) -> Listening:
        """Call `handler` for messages on `topics` until the result is closed.

        Once this returns, a message published afterwards (from anywhere) reaches
        the handler: the subscription is registered with the server first.
        """

    async def close(self) -> None:
        """Stop delivering and disconnect; idempotent."""

    async def ping(self) -> None:
        """Raise when the broker cannot be reached (readiness, server/observability.py)."""


class _Interest:
    """Bookkeeping shared by both brokers: which handler wants which topic."""

    def __init__(self) -> None:
        self.handlers: dict[str, dict[int, Handler]] = {}
        self._next = 0

    def add(self, topics: Iterable[str], handler: Handler) -> tuple[int, list[str], list[str]]:
        """Register; returns the key, the topics and those nobody wanted before."""
        self._next += 1
        key, chosen = self._next, list(dict.fromkeys(topics))
        new = [topic for topic in chosen if topic not in self.handlers]
        for topic in chosen:
            self.handlers.setdefault(topic, {})[key] = handler
        return key, chosen, new

    def remove(self, key: int, topics: list[str]) -> list[str]:
        """Unregister; returns the topics nobody wants any more."""
        gone = []
        for topic in topics:
            wanting = self.handlers.get(topic)
            if wanting is None:
                continue
            wanting.pop(key, None)
            if not wanting:
                del self.handlers[topic]
                gone.append(topic)
        return gone

    def interrupt(self) -> None:
        """Tell every handler of every topic that messages may have been lost."""
        for topic in list(self.handlers):
            self.deliver(topic, INTERRUPTED)

    def deliver(self, topic: str, message: Payload) -> None:
        for handler in list(self.handlers.get(topic, {}).values()):
            try:
                handler(topic, message)
            except Exception:  # one bad handler must not starve the others
                log.exception("realtime handler failed on topic %s", topic)


class _Listening:
    def __init__(self, broker: InProcessBroker | RedisBroker, key: int, topics: list[str]) -> None:
        self._broker, self._key, self._topics = broker, key, topics
        self._closed = False

    async def close(self) -> None:
        if not self._closed:
            self._closed = True
            await self._broker._unsubscribe(self._key, self._topics)


class InProcessBroker:
    """One process: publish calls the handlers directly (they only enqueue)."""

    def __init__(self) -> None:
        self._interest = _Interest()

    async def publish(self, topic: str, message: Payload) -> None:
        self._interest.deliver(topic, message)

    async def subscribe(self, topics: Iterable[str], handler: Handler) -> Listening:
        key, chosen, _new = self._interest.add(topics, handler)
        return _Listening(self, key, chosen)

    async def _unsubscribe(self, key: int, topics: list[str]) -> None:
        self._interest.remove(key, topics)

    async def close(self) -> None:
        self._interest.handlers.clear()

    async def ping(self) -> None:
        return None


class RedisBroker:
    """Redis pub/sub: one connection per process for every topic it listens to.

    Channels are `prefix + topic`. A control channel is always subscribed, so the
    reader never finds the connection idle-unsubscribed; after a lost connection
    redis-py resubscribes every channel when it reconnects (messages published
    meanwhile are lost, as pub/sub always allows).
    """

    RETRY_SECONDS = 0.5
    PREFIX = "entativa:rt:"

    def __init__(self, url: str, prefix: str = PREFIX) -> None:
        self.client = redis.Redis.from_url(url)
        self.prefix = prefix
        self._pubsub = self.client.pubsub()
        self._interest = _Interest()
        self._reader: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self._closed = False
        self._interrupted = False  # told the handlers of this outage already

    async def publish(self, topic: str, message: Payload) -> None:
        try:
            await self.client.publish(self.prefix + topic, bytes(message))
        except UNREACHABLE as error:
            raise BrokerUnavailable(f"Redis: {error!r}") from error

    async def ping(self) -> None:
        await self.client.ping()

    async def subscribe(self, topics: Iterable[str], handler: Handler) -> Listening:
        key, chosen, new = self._interest.add(topics, handler)
        try:
            async with self._lock:
                await self._start()
                if new:
                    await self._pubsub.subscribe(*(self.prefix + topic for topic in new))
        except UNREACHABLE as error:  # not registered: the caller reports it
            self._interest.remove(key, chosen)
            raise BrokerUnavailable(f"Redis: {error!r}") from error
        return _Listening(self, key, chosen)

    async def _unsubscribe(self, key: int, topics: list[str]) -> None:
        gone = self._interest.remove(key, topics)
        if gone and not self._closed:
            async with self._lock:
                # Subscribed again meanwhile? Then the channel must stay.
                still_gone = [t for t in gone if t not in self._interest.handlers]
                if still_gone:
                    # Redis gone: nothing to undo there (a channel resubscribed on
                    # reconnect finds no handler and its messages are dropped).
                    with contextlib.suppress(*UNREACHABLE):
                        await self._pubsub.unsubscribe(*(self.prefix + t for t in still_gone))

    async def _start(self) -> None:
        if self._reader is None:
            await self._pubsub.subscribe(self.prefix + "~control")
            self._interrupted = False
            self._reader = asyncio.create_task(self._read(), name="realtime-redis-reader")

    async def _read(self) -> None:
        skip = len(self.prefix)
        while not self._closed:
            try:
                async for message in self._pubsub.listen():
                    self._interrupted = False  # connected (again): resubscribed
                    if message["type"] == "message":
                        topic = message["channel"].decode()[skip:]
                        self._interest.deliver(topic, message["data"])
            except asyncio.CancelledError:
                raise
            except Exception as error:  # connection lost: redis-py reconnects on next read
                if self._closed:
                    return
                log.warning("realtime broker lost Redis (%r); retrying", error)
                if not self._interrupted:  # once per outage
                    self._interrupted = True
                    self._interest.interrupt()
                await asyncio.sleep(self.RETRY_SECONDS)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._reader
        with contextlib.suppress(Exception):
            await self._pubsub.aclose()
        await self.client.aclose()


def build_broker(redis_url: str) -> Broker:
    """Redis when a URL is configured, else the in-process broker."""
    return RedisBroker(redis_url) if redis_url else InProcessBroker()
