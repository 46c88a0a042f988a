"""Helpers shared by the event tests: buses of each kind, recorders, waiting."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from datasources.events.bus import EventBus, InProcessBus
from datasources.events.kafka import KafkaBus, KafkaOptions
from datasources.events.model import Event, NewEvent
from datasources.events.tables import ConsumedEventRow, OutboxRow
from datasources.sql import Database
from subscriptions.relay import RealtimeRelay
from tests.services import KAFKA_BOOTSTRAP, require

BUS_KINDS = ["inprocess", "kafka"]


def kafka_options(bootstrap: str = KAFKA_BOOTSTRAP, **changes: object) -> KafkaOptions:
    """Fast group joins (the broker waits about half the session timeout for members)
    and a fresh topic namespace, so no test sees another's events."""
    values: dict[str, object] = {
        "bootstrap": bootstrap,
        "namespace": f"test{uuid.uuid4().hex[:12]}",
        "partitions": 2,
        "session_timeout_ms": 1000,
        "heartbeat_interval_ms": 200,
        "request_timeout_ms": 5000,
        "join_timeout_seconds": 20.0,
    }
    values.update(changes)
    return KafkaOptions(**values)  # type: ignore[arg-type]


def make_bus(kind: str, **kafka_changes: object) -> EventBus:
    if kind == "inprocess":
        return InProcessBus()
    host, port = KAFKA_BOOTSTRAP.rsplit(":", 1)
    require("Kafka (Tansu)", host, int(port))
    return KafkaBus(kafka_options(KAFKA_BOOTSTRAP, **kafka_changes))


@dataclass
class Recorder:
    """A handler that keeps what it got; `fail_first` event ids raise once each."""

    events: list[Event] = field(default_factory=list)
    fail_first: set[str] = field(default_factory=set)
    calls: int = 0

    async def __call__(self, event: Event) -> None:
        self.calls += 1
        if event.id in self.fail_first:
            self.fail_first.discard(event.id)
            raise RuntimeError(f"handler failed on {event.id} (on purpose)")
        self.events.append(event)

    @property
    def ids(self) -> list[str]:
        return [event.id for event in self.events]


@dataclass
class BatchRecorder:
    """A batch handler that keeps each batch it got; a batch holding a `fail_first`
    event raises once (the whole batch fails)."""

    batches: list[list[Event]] = field(default_factory=list)
    fail_first: set[str] = field(default_factory=set)
    single: Recorder = field(default_factory=Recorder)  # the per-event handler, unused

    async def __call__(self, events: Sequence[Event]) -> None:
        failing = self.fail_first.intersection(event.id for event in events)
        if failing:
            self.fail_first -= failing
            raise RuntimeError(f"batch failed on {sorted(failing)} (on purpose)")
        self.batches.append(list(events))

    @property
    def ids(self) -> list[str]:
        return [event.id for batch in self.batches for event in batch]


def stamped(
    count: int,
    event_type: str = "user.followed",
    platform: str = "socialink",
    subject_id: int | None = None,
    actor_id: int = 1,
) -> list[Event]:
    return [
        Event.stamp(
            NewEvent(
                event_type,
                platform,
                actor_id,
                event_type.split(".")[0],
                subject_id if subject_id is not None else index + 1,
                {"n": index},
            )
        )
        for index in range(count)
    ]


async def eventually(check: Callable[[], bool], seconds: float = 20.0, what: str = "") -> None:
    """Wait until `check()` holds; fail with `what` after `seconds`."""
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {seconds}s: {what or check}")
        await asyncio.sleep(0.02)


async def publish_until_accepted(bus: EventBus, events: list[Event], attempts: int = 50) -> None:
    """What the relay does with a batch: publish again until the bus takes it."""
    from datasources.events.bus import BusUnavailable

    for _ in range(attempts):
        try:
            await bus.publish(events)
            return
        except BusUnavailable:
            await asyncio.sleep(0.05)
    raise AssertionError("the bus never accepted the batch")


async def outbox(db: Database) -> list[tuple[Event, bool]]:
    """Every outbox row as (event, published), in relay order."""
    async with db.session() as session:
        rows = (await session.execute(select(OutboxRow).order_by(OutboxRow.id))).scalars().all()
    return [(Event.from_json(row.payload), row.published_at is not None) for row in rows]


async def consumers_settled(app: Any, seconds: float = 20.0) -> None:
    """Wait until every relational consumer of the app (notifications, search…) applied
    every event it wants that is in the outbox now, and finished what it does after
    (the search index's refresh): counting tests then see only the request's work."""
    db = app.state.runtime.stores.db
    consumers = [
        c for c in app.state.runtime.stores.events.consumers if not isinstance(c, RealtimeRelay)
    ]
    deadline = time.monotonic() + seconds
    while True:
        async with db.session() as session:
            events = [Event.from_json(p) for p in await session.scalars(select(OutboxRow.payload))]
            claimed = select(ConsumedEventRow.consumer, ConsumedEventRow.event_id)
            done = {(name, event_id) for name, event_id in (await session.execute(claimed)).all()}
        missing = [
            (c.name, e.id)
            for c in consumers
            for e in events
            if e.domain in c.domains and c.wants(e) and (c.name, e.id) not in done
        ]
        if not missing:
            for consumer in consumers:
                settle = getattr(consumer, "settled", None)
                if settle is not None:
                    await settle()
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"{len(missing)} events not consumed within {seconds}s")
        await asyncio.sleep(0.02)
