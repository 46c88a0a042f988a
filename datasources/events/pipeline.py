"""The event pipeline of one process: the bus, the outbox relay and the consumers.

Where it runs (ARCHITECTURE §4, §6):
- embedded default (no Kafka configured): `entativa serve` starts the in-process
  bus, the relay and the consumers in the server process;
- with Kafka: the servers only write outbox rows; `entativa worker` processes run
  the relay and the consumers (any number: relays share the outbox with SKIP
  LOCKED on PostgreSQL, consumers share partitions through their groups).

The relay has a database engine of its own, so its polling never competes with
request handling for pooled connections (nor shows up in per-request SQL counts).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import timedelta

from datasources.events.bus import EventBus, InProcessBus
from datasources.events.consumers import EventConsumer
from datasources.events.relay import OutboxRelay, RelayOptions
from datasources.sql import Database

log = logging.getLogger("entativa.events")


@dataclass(frozen=True)
class EventConfig:
    """What settings say about events (server/settings.py: `ENTATIVA_KAFKA_*`, …)."""

    kafka_bootstrap: str = ""  # empty: the in-process bus
    kafka_namespace: str = ""  # topic prefix (tests, several deployments on one cluster)
    kafka_partitions: int = 3
    kafka_session_timeout_ms: int = 10_000
    relay_batch_size: int = 5_000
    relay_poll_seconds: float = 1.0
    outbox_retention_hours: float = 7 * 24

    @property
    def uses_kafka(self) -> bool:
        return bool(self.kafka_bootstrap)


def build_bus(config: EventConfig) -> EventBus:
    if not config.uses_kafka:
        return InProcessBus()
    from datasources.events.kafka import KafkaBus, KafkaOptions

    session_timeout = config.kafka_session_timeout_ms
    return KafkaBus(
        KafkaOptions(
            bootstrap=config.kafka_bootstrap,
            namespace=config.kafka_namespace,
            partitions=config.kafka_partitions,
            session_timeout_ms=session_timeout,
            heartbeat_interval_ms=max(100, session_timeout // 3),
        )
    )


class EventPipeline:
    """Bus + relay + consumers, started and stopped together."""

    def __init__(
        self,
        database_url: str,
        config: EventConfig | None = None,
        progress: Callable[[str], None] | None = None,
    ) -> None:
        self.config = config or EventConfig()
        self.bus: EventBus = build_bus(self.config)
        self._relay_db = Database(database_url)
        self.relay = OutboxRelay(
            self._relay_db,
            self.bus,
            RelayOptions(
                batch_size=self.config.relay_batch_size,
                poll_seconds=self.config.relay_poll_seconds,
                retention=timedelta(hours=self.config.outbox_retention_hours),
                progress=progress,
            ),
        )
        self.consumers: list[EventConsumer] = []
        self._started = False

    async def start(self, relay: bool = True, consumers: Iterable[EventConsumer] = ()) -> None:
        """Start the bus, subscribe `consumers`, and run the relay when `relay`."""
        if self._started:
            return
        self._started = True
        await self.bus.start()
        for consumer in consumers:
            await consumer.subscribe(self.bus)
            self.consumers.append(consumer)
        if relay:
            await self.relay.start()

    async def stop(self) -> None:
        await self.relay.stop()
        # Stopped even when never started: a readiness ping may have connected it.
        await self.bus.stop()
        self._started = False

    async def ping(self) -> None:
        """Raise when the bus cannot be reached (Kafka; the in-process bus always can)."""
        ping = getattr(self.bus, "ping", None)
        if ping is not None:
            await ping()

    async def close(self) -> None:
        await self.stop()
        await self._relay_db.dispose()
