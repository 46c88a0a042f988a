"""The event bus on Kafka (aiokafka): one topic per platform and domain, consumer groups.

- Topics: `entativa.<platform>.<domain>` (topics and group ids prefixed by
  `namespace` when given: several deployments or test runs on one cluster), created
  on first use with `partitions` partitions. The message key
  is the event's subject, so events about one post or user stay in order.
- Producer: `acks=all`, no idempotent producer and no transactions (not every
  Kafka-protocol broker has them, e.g. Tansu in CI): the outbox relay re-sends a
  batch whose publish failed, so a consumer may see an event twice; consumers are
  idempotent by event id.
- Consumers: one `AIOKafkaConsumer` per subscription, auto-commit off; a partition's
  offset is committed only after the handler succeeded for every record before it.
  A failing handler is retried with backoff on the same record (the partition waits
  rather than skipping). A new group starts at the earliest offset: nothing
  published before its first start is missed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError
from aiokafka.partitioner import murmur2

from datasources.events.bus import (
    BatchHandler,
    BusUnavailable,
    Handler,
    Subscription,
    subject_key,
)
from datasources.events.model import Event, topic_for
from datasources.events.retry import Backoff

log = logging.getLogger("entativa.events.kafka")

TOPIC_EXISTS = 36  # Kafka error code TOPIC_ALREADY_EXISTS


@dataclass(frozen=True)
class KafkaOptions:
    """Connection and group timing; tests shorten the group timings (faster joins)."""

    bootstrap: str
    namespace: str = ""
    partitions: int = 3
    request_timeout_ms: int = 10_000
    session_timeout_ms: int = 10_000
    heartbeat_interval_ms: int = 3_000
    # Records per poll: a batching consumer (notifications) applies each partition's
    # share of a poll in one transaction, so bigger polls mean fewer transactions.
    max_records: int = 5_000
    max_partition_fetch_bytes: int = 4 * 1024 * 1024
    # The producer's record batch (aiokafka's default is 16 KiB): a partition has one
    # batch waiting and a broker one produce request in flight at a time, so a relay
    # round of 5,000 events took ~30 round trips with the default (issue 3). Below
    # Kafka's default `message.max.bytes` (1 MiB), which caps a batch.
    max_batch_bytes: int = 512 * 1024
    # How long the broker may hold a fetch waiting for records: bounds the delivery
    # latency when a broker answers a waiting fetch only at this deadline.
    fetch_max_wait_ms: int = 100
    # How often consumers refresh topic metadata. Short, so a member recovers soon
    # after the broker lost its topics (an in-memory broker restarted, a rebuilt
    # cluster: commits fail as "unknown topic" until the next refresh; issue 9).
    metadata_max_age_ms: int = 5_000
    join_timeout_seconds: float = 30.0


class KafkaBus:
    """EventBus over Kafka; see the module docstring for the delivery rules."""

    def __init__(self, options: KafkaOptions) -> None:
        self.options = options
        self._producer: AIOKafkaProducer | None = None
        self._admin: AIOKafkaAdminClient | None = None
        self._known_topics: set[str] = set()
        self._partition_ids: dict[str, list[int]] = {}
        self._connect_lock = asyncio.Lock()
        self._consumers: list[_GroupConsumer] = []
        self._started = False

    def topic(self, platform: str, domain: str) -> str:
        return self._named(topic_for(platform, domain))

    def group_id(self, group: str) -> str:
        return self._named(group)

    def _named(self, name: str) -> str:
        return f"{self.options.namespace}.{name}" if self.options.namespace else name

    async def start(self) -> None:
        self._started = True
        for consumer in self._consumers:
            consumer.start()

    async def ping(self) -> None:
        """Raise BusUnavailable when no broker answers a metadata request (readiness)."""
        try:
            producer = await self._ready_producer()
            await producer.client.fetch_all_metadata()
        except (KafkaError, OSError) as error:
            raise BusUnavailable(f"Kafka at {self.options.bootstrap}: {error!r}") from error

    async def stop(self) -> None:
        self._started = False
        await asyncio.gather(*(consumer.stop() for consumer in self._consumers))
        async with self._connect_lock:
            if self._producer is not None:
                await self._producer.stop()
                self._producer = None
            if self._admin is not None:
                await self._admin.close()
                self._admin = None

    async def subscribe(
        self,
        group: str,
        domains: Iterable[str],
        handler: Handler,
        platforms: Iterable[str] | None = None,
        batch_handler: BatchHandler | None = None,
    ) -> None:
        """Returns once the group has joined (or after `join_timeout_seconds`, still
        trying in the background) when the bus is started; else at `start`."""
        subscription = Subscription.of(group, domains, platforms)
        topics = sorted(
            self.topic(platform, domain)
            for platform in subscription.platforms
            for domain in subscription.domains
        )
        consumer = _GroupConsumer(self, subscription, topics, handler, batch_handler)
        self._consumers.append(consumer)
        if self._started:
            consumer.start()
            await consumer.wait_joined(self.options.join_timeout_seconds)

    async def publish(self, events: Sequence[Event]) -> None:
        if not events:
            return
        try:
            producer = await self._ready_producer()
            named = [(self.topic(event.platform, event.domain), event) for event in events]
            topics = {topic for topic, _ in named}
            await self.ensure_topics(topics)
            partitions = {topic: await self._partitions(producer, topic) for topic in topics}
            await asyncio.gather(*await self._send_batches(producer, named, partitions))
        except (KafkaError, OSError) as error:
            self._forget_topics()
            raise BusUnavailable(f"Kafka at {self.options.bootstrap}: {error!r}") from error

    def _forget_topics(self) -> None:
        """After a failed publish, check the topics and their partitions again: the
        broker may have come back without them (a rebuilt cluster, an in-memory broker),
        and publishing to a topic that no longer exists would never succeed."""
        self._known_topics.clear()
        self._partition_ids.clear()

    async def _send_batches(
        self,
        producer: AIOKafkaProducer,
        named: list[tuple[str, Event]],
        partitions: dict[str, list[int]],
    ) -> list[asyncio.Future[Any]]:
        """Queue the events as one record batch per partition (in order within each);
        returns the futures of the broker's acknowledgements.

        Much cheaper than a `send` per event (no future and partitioner call each);
        `partitions` holds each topic's partition ids, and the partition is the Java
        client's default for the key (murmur2), so any producer of these topics agrees
        on where a subject's events go.
        """
        per_partition: dict[tuple[str, int], list[tuple[bytes, bytes]]] = {}
        for topic, event in named:
            key = subject_key(event)
            ids = partitions[topic]
            partition = ids[_slot(key) % len(ids)]
            per_partition.setdefault((topic, partition), []).append((key, event.to_json().encode()))
        acks = []
        for (topic, partition), records in per_partition.items():
            batch = producer.create_batch()
            for key, value in records:
                if batch.append(key=key, value=value, timestamp=None) is None:  # full
                    acks.append(await producer.send_batch(batch, topic, partition=partition))
                    batch = producer.create_batch()
                    if batch.append(key=key, value=value, timestamp=None) is None:
                        raise BusUnavailable(f"an event of {len(value)} bytes exceeds the batch")
            acks.append(await producer.send_batch(batch, topic, partition=partition))
        return acks

    async def _partitions(self, producer: AIOKafkaProducer, topic: str) -> list[int]:
        known = self._partition_ids.get(topic)
        if known is None:
            known = self._partition_ids[topic] = sorted(await producer.partitions_for(topic))
        return known

    async def ensure_topics(self, topics: Iterable[str]) -> None:
        """Create the topics not known to exist yet (an existing one is fine)."""
        missing = [topic for topic in topics if topic not in self._known_topics]
        if not missing:
            return
        admin = await self._ready_admin()
        response = await admin.create_topics(
            [NewTopic(topic, self.options.partitions, 1) for topic in missing]
        )
        for topic, code, message in _topic_errors(response):
            if code not in (0, TOPIC_EXISTS):
                raise BusUnavailable(f"cannot create topic {topic}: {code} {message}")
        self._known_topics.update(missing)

    def client_options(self) -> dict[str, Any]:
        return {
            "bootstrap_servers": self.options.bootstrap,
            "request_timeout_ms": self.options.request_timeout_ms,
            "client_id": "entativa",
        }

    async def _ready_producer(self) -> AIOKafkaProducer:
        async with self._connect_lock:
            if self._producer is None:
                producer = AIOKafkaProducer(
                    acks="all",
                    enable_idempotence=False,
                    linger_ms=2,
                    max_batch_size=self.options.max_batch_bytes,
                    **self.client_options(),
                )
                try:
                    await producer.start()
                except BaseException:
                    await producer.stop()
                    raise
                self._producer = producer
            return self._producer

    async def _ready_admin(self) -> AIOKafkaAdminClient:
        async with self._connect_lock:
            if self._admin is None:
                admin = AIOKafkaAdminClient(**self.client_options())
                try:
                    await admin.start()
                except BaseException:
                    await admin.close()
                    raise
                self._admin = admin
            return self._admin


@lru_cache(maxsize=65_536)
def _slot(key: bytes) -> int:
    """The Java client's partition hash of `key` (cached: subjects repeat)."""
    return murmur2(key) & 0x7FFFFFFF


def _topic_errors(response: Any) -> list[tuple[str, int, str | None]]:
    return [
        (entry[0], entry[1], entry[2] if len(entry) > 2 else None)
        for entry in response.topic_errors
    ]


class _GroupConsumer:
    """One member of a consumer group: consume, handle, commit; reconnect on failure."""

    def __init__(
        self,
        bus: KafkaBus,
        subscription: Subscription,
        topics: list[str],
        handler: Handler,
        batch_handler: BatchHandler | None = None,
    ) -> None:
        self.bus = bus
        self.subscription = subscription
        self.topics = topics
        self.handler = handler
        self.batch_handler = batch_handler
        self.joined = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(
                self._run(), name=f"kafka consumer {self.subscription.group}"
            )

    async def wait_joined(self, seconds: float) -> None:
        try:
            await asyncio.wait_for(self.joined.wait(), seconds)
        except TimeoutError:
            log.warning(
                "consumer group %s has not joined after %.0fs; still trying",
                self.subscription.group,
                seconds,
            )

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def _run(self) -> None:
        backoff = Backoff()
        options = self.bus.options
        while True:
            consumer = AIOKafkaConsumer(
                *self.topics,
                group_id=self.bus.group_id(self.subscription.group),
                enable_auto_commit=False,
                auto_offset_reset="earliest",
                session_timeout_ms=options.session_timeout_ms,
                heartbeat_interval_ms=options.heartbeat_interval_ms,
                rebalance_timeout_ms=options.session_timeout_ms,
                metadata_max_age_ms=options.metadata_max_age_ms,
                fetch_max_wait_ms=options.fetch_max_wait_ms,
                max_partition_fetch_bytes=options.max_partition_fetch_bytes,
                **self.bus.client_options(),
            )
            try:
                await self.bus.ensure_topics(self.topics)
                await consumer.start()
                self.joined.set()
                backoff.reset()
                await self._consume(consumer)
            except asyncio.CancelledError:
                raise
            except Exception as error:  # broker gone, group error: reconnect after a pause
                delay = backoff.next()
                log.warning(
                    "consumer group %s: %r; reconnecting in %.1fs",
                    self.subscription.group,
                    error,
                    delay,
                )
                await asyncio.sleep(delay)
            finally:
                await consumer.stop()

    async def _consume(self, consumer: AIOKafkaConsumer) -> None:
        while True:
            batches = await consumer.getmany(
                timeout_ms=500, max_records=self.bus.options.max_records
            )
            for partition, records in batches.items():
                parsed = (_parse(record.value) for record in records)
                # Lazily: a handler of single events gets each as it is parsed, so the
                # poll's thousands of events do not all live (and get scanned by the
                # garbage collector) until the last one is handled.
                wanted = (e for e in parsed if e is not None and self.subscription.wants(e))
                if self.batch_handler is not None:
                    if batch := list(wanted):
                        await self._handle(batch)
                else:
                    for event in wanted:
                        await self._handle([event])
                await consumer.commit({partition: records[-1].offset + 1})

    async def _handle(self, events: list[Event]) -> None:
        """Until it succeeds: the offset must not pass an event whose effect failed."""
        backoff = Backoff()
        while True:
            try:
                if self.batch_handler is not None:
                    await self.batch_handler(events)
                else:
                    await self.handler(events[0])
                return
            except asyncio.CancelledError:
                raise
            except Exception:
                delay = backoff.next()
                log.exception(
                    "consumer %s failed on %d event(s) (first %s, %s); retrying in %.1fs",
                    self.subscription.group,
                    len(events),
                    events[0].id,
                    events[0].type,
                    delay,
                )
                await asyncio.sleep(delay)


def _parse(value: bytes | None) -> Event | None:
    """An event, or None (logged) for a record no version of this code can read."""
    if value is None:
        return None
    try:
        return Event.from_json(value)
    except (ValueError, KeyError, TypeError) as error:
        log.error("skipping an unreadable event record: %r", error)
        return None
