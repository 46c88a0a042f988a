"""The outbox relay and idempotent consumers, on SQLite and PostgreSQL.

The promise (ARCHITECTURE §4): an event exists exactly when its change committed;
it reaches every consumer even if the relay or the broker was down in between;
and a consumer's effect happens once even when the event arrives twice.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from datasources.events.bus import BusUnavailable, EventBus, InProcessBus
from datasources.events.consumers import EventConsumer
from datasources.events.kafka import KafkaBus
from datasources.events.model import Event, NewEvent
from datasources.events.outbox import emit
from datasources.events.relay import OutboxRelay, RelayOptions
from datasources.events.tables import ConsumedEventRow, OutboxRow
from datasources.sql import Database, utcnow
from datasources.users.store import UserStore
from datasources.users.tables import UserRow
from tests.events_support import (
    BUS_KINDS,
    Recorder,
    eventually,
    kafka_options,
    make_bus,
    outbox,
)

FAST = RelayOptions(poll_seconds=0.05, backoff_first=0.01, backoff_cap=0.05)


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url)
    yield database
    await database.dispose()


class FollowerCounter(EventConsumer):
    """A counter consumer: +1 follower per user.followed (the effect to keep exact)."""

    name = "test-follower-counter"
    domains = ("users",)
    types = frozenset({"user.followed"})

    async def apply(self, session: AsyncSession, event: Event) -> None:
        await session.execute(
            update(UserRow)
            .where(UserRow.id == event.subject_id)
            .values(follower_count=UserRow.follower_count + 1)
        )


class FailingOnce(FollowerCounter):
    name = "test-failing-once"
    failed = False

    async def apply(self, session: AsyncSession, event: Event) -> None:
        await super().apply(session, event)
        if not self.failed:
            self.failed = True
            raise RuntimeError("effect failed after writing (on purpose)")


class DiesAfterPublish:
    """A bus whose process 'dies' right after publishing: the relay never marks."""

    def __init__(self, bus: EventBus) -> None:
        self.bus = bus

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def subscribe(self, *args: object, **kwargs: object) -> None: ...

    async def publish(self, events: Sequence[Event]) -> None:
        await self.bus.publish(events)
        raise BusUnavailable("process died after publishing (simulated)")


class Unreachable(InProcessBus):
    """Refuses the first `failures` batches, as an unreachable broker would."""

    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures = failures

    async def publish(self, events: Sequence[Event]) -> None:
        if self.failures > 0:
            self.failures -= 1
            raise BusUnavailable("broker unreachable (simulated)")
        await super().publish(events)


class RecordingBus(InProcessBus):
    """Keeps every published event, duplicates included (no consumer dedup)."""

    def __init__(self) -> None:
        super().__init__()
        self.published: list[str] = []

    async def publish(self, events: Sequence[Event]) -> None:
        await asyncio.sleep(0.005)  # let concurrent relays interleave
        self.published += [event.id for event in events]


async def a_user(db: Database, name: str = "ada") -> int:
    user = await UserStore(db).create("socialink", name, f"{name}@example.com", "x", name)
    return user.id


async def write_follows(db: Database, user_id: int, count: int, per_transaction: int = 5) -> None:
    for start in range(0, count, per_transaction):
        async with db.transaction() as session:
            await emit(
                session,
                *[
                    NewEvent("user.followed", "socialink", 1000 + n, "user", user_id, {"n": n})
                    for n in range(start, min(count, start + per_transaction))
                ],
            )


async def follower_count(db: Database, user_id: int) -> int:
    async with db.session() as session:
        return int(
            await session.scalar(select(UserRow.follower_count).where(UserRow.id == user_id)) or 0
        )


async def consumed(db: Database, consumer: str) -> int:
    async with db.session() as session:
        query = select(func.count()).where(ConsumedEventRow.consumer == consumer)
        return int(await session.scalar(query) or 0)


async def test_relay_publishes_committed_events_in_order_and_marks_them(db: Database) -> None:
    bus, got = InProcessBus(), Recorder()
    await bus.subscribe("all", ["users", "posts"], got)
    async with db.transaction() as session:
        first = await emit(session, *[NewEvent("user.followed", "socialink", 1, "user", 2)] * 3)
    async with db.transaction() as session:
        second = await emit(session, NewEvent("post.created", "vignette", 1, "post", 9, {"a": 1}))
    relay = OutboxRelay(db, bus)

    assert await relay.drain() == 4
    assert await relay.drain() == 0  # nothing twice

    assert got.ids == [e.id for e in first + second]
    assert got.events[-1] == second[0]
    assert all(published for _, published in await outbox(db))


async def test_a_round_marks_exactly_the_rows_it_published(db: Database) -> None:
    """The ids of a round are bound as one parameter (an array on PostgreSQL, JSON on
    SQLite): the batch's rows are marked, the rows after it are not."""
    bus, got = InProcessBus(), Recorder()
    await bus.subscribe("all", ["users"], got)
    await write_follows(db, 5, 7)
    relay = OutboxRelay(db, bus, RelayOptions(batch_size=3))

    assert await relay.run_once() == 3

    rows = await outbox(db)
    assert [published for _, published in rows] == [True] * 3 + [False] * 4
    assert got.ids == [event.id for event, _ in rows[:3]]


async def test_a_rolled_back_write_leaves_no_event(db: Database) -> None:
    with pytest.raises(RuntimeError):
        async with db.transaction() as session:
            await emit(session, NewEvent("user.followed", "socialink", 1, "user", 2))
            raise RuntimeError("the change failed")
    assert await outbox(db) == []


async def test_the_relay_wakes_right_after_a_commit(db: Database) -> None:
    bus, got = InProcessBus(), Recorder()
    await bus.subscribe("all", ["users"], got)
    relay = OutboxRelay(db, bus, RelayOptions(poll_seconds=60))  # polling would be too late
    await relay.start()
    try:
        await asyncio.sleep(0.1)
        await write_follows(db, 5, 1)
        await eventually(lambda: len(got.events) == 1, seconds=2, what="delivery after commit")
    finally:
        await relay.stop()


async def test_the_relay_retries_while_the_bus_is_unreachable(db: Database) -> None:
    bus, got = Unreachable(failures=3), Recorder()
    await bus.subscribe("all", ["users"], got)
    await write_follows(db, 5, 10)
    relay = OutboxRelay(db, bus, FAST)
    await relay.start()
    try:
        await eventually(lambda: relay.stats.published == 10, what="all 10 after the outage")
    finally:
        await relay.stop()
    assert relay.stats.failures == 3
    assert all(published for _, published in await outbox(db))


class FailsOnce(InProcessBus):
    """Refuses its `nth` batch (before delivering any of it), then works."""

    def __init__(self, nth: int) -> None:
        super().__init__()
        self.batches = 0
        self.nth = nth

    async def publish(self, events: Sequence[Event]) -> None:
        self.batches += 1
        if self.batches == self.nth:
            raise BusUnavailable("broker unreachable (simulated)")
        await super().publish(events)


async def test_a_backlog_goes_out_in_order_through_overlapping_rounds(db: Database) -> None:
    """Rounds overlap during a backlog (the next batch is read while the one before
    is published); batches still reach the bus in id order, even across a failure."""
    bus, got = FailsOnce(nth=3), Recorder()
    await bus.subscribe("all", ["users"], got)
    await write_follows(db, 5, 95, per_transaction=19)
    options = RelayOptions(batch_size=10, pipeline_depth=3, backoff_first=0.01, poll_seconds=0.05)
    relay = OutboxRelay(db, bus, options)
    await relay.start()
    try:
        await eventually(lambda: relay.stats.published == 95, what="the backlog relayed")
    finally:
        await relay.stop()
    assert got.ids == [event.id for event, _ in await outbox(db)]  # in order, each once
    assert relay.stats.failures >= 1


async def test_an_unreachable_kafka_leaves_the_rows_for_later(db: Database) -> None:
    bus = KafkaBus(kafka_options(bootstrap="127.0.0.1:1", request_timeout_ms=1000))
    await write_follows(db, 5, 3)
    relay = OutboxRelay(db, bus)
    try:
        with pytest.raises(BusUnavailable):
            await relay.run_once()
    finally:
        await bus.stop()
    assert [published for _, published in await outbox(db)] == [False] * 3


@pytest.mark.parametrize("bus_kind", BUS_KINDS)
async def test_fault_relay_down_then_redelivery_applies_each_effect_once(
    db: Database, bus_kind: str
) -> None:
    """Writes commit while no relay runs. A relay publishes them and its process
    'dies' before marking them; after the restart (a new bus, same topics and
    consumer group) a relay publishes everything again. Every event arrived in both
    lives (Kafka may deliver some more than that: at least once), and the counter
    moved exactly once per event."""
    user_id = await a_user(db)
    counter = FollowerCounter(db)
    deliveries: dict[str, list[str]] = {"first": [], "restarted": []}
    life = "first"

    async def counted(event: Event) -> None:
        await counter.handle(event)
        # Noted once handled: stopping a bus may cancel a handler midway (its offset
        # is not committed, so the event comes again), and that is no delivery.
        if counter.wants(event):  # not the user.created of a_user
            deliveries[life].append(event.id)

    first, restarted = make_buses(bus_kind)
    await write_follows(db, user_id, 20)  # committed, no relay running

    await first.start()
    await first.subscribe(counter.name, counter.domains, counted)
    try:
        with pytest.raises(BusUnavailable):
            await OutboxRelay(db, DiesAfterPublish(first)).run_once()
        await eventually(lambda: len(set(deliveries["first"])) == 20, what="the first delivery")
    finally:
        await first.stop()
    rows = await outbox(db)
    assert not any(published for _, published in rows)
    total = len(rows)  # the 20 follows and the user's user.created
    events = set(deliveries["first"])

    life = "restarted"
    await restarted.start()
    await restarted.subscribe(counter.name, counter.domains, counted)
    relay = OutboxRelay(db, restarted, FAST)
    await relay.start()
    try:
        await eventually(lambda: relay.stats.published == total, what="all marked")
        await eventually(lambda: events <= set(deliveries["restarted"]), what="every event again")
    finally:
        await relay.stop()
        await restarted.stop()
    assert set(deliveries["restarted"]) == events
    assert await follower_count(db, user_id) == 20
    assert await consumed(db, counter.name) == 20
    assert all(published for _, published in await outbox(db))


def make_buses(kind: str) -> tuple[EventBus, EventBus]:
    """Two buses as two processes see them: the same topics and consumer groups."""
    if kind == "inprocess":
        return InProcessBus(), InProcessBus()
    first = make_bus(kind)  # skips (or fails in CI) without a broker
    assert isinstance(first, KafkaBus)
    return first, KafkaBus(first.options)


async def test_a_consumer_applies_an_event_once_and_again_after_a_failure(db: Database) -> None:
    user_id = await a_user(db)
    event = Event.stamp(NewEvent("user.followed", "socialink", 9, "user", user_id))
    counter, failing = FollowerCounter(db), FailingOnce(db)

    await counter.handle(event)
    await counter.handle(event)  # redelivered
    with pytest.raises(RuntimeError):
        await failing.handle(event)  # effect and claim roll back together
    await failing.handle(event)
    await failing.handle(event)

    assert await follower_count(db, user_id) == 2  # once per consumer
    assert await consumed(db, counter.name) == 1
    assert await consumed(db, failing.name) == 1


async def test_a_consumer_ignores_types_it_does_not_handle(db: Database) -> None:
    user_id = await a_user(db)
    counter = FollowerCounter(db)
    await counter.handle(Event.stamp(NewEvent("user.blocked", "socialink", 9, "user", user_id)))
    assert await follower_count(db, user_id) == 0
    assert await consumed(db, counter.name) == 0


async def test_two_relays_share_the_outbox_without_publishing_twice(
    db: Database, database_url: str
) -> None:
    if db.is_sqlite:
        pytest.skip("SQLite: one relay process (no row locks to share the outbox)")
    await write_follows(db, 5, 600, per_transaction=50)
    bus = RecordingBus()
    other = Database(database_url)
    options = RelayOptions(batch_size=40)
    try:
        relays = [OutboxRelay(db, bus, options), OutboxRelay(other, bus, options)]
        counts = await asyncio.gather(*(relay.drain() for relay in relays))
    finally:
        await other.dispose()
    assert sum(counts) == 600
    assert all(counts), "both relays took part"
    assert len(bus.published) == len(set(bus.published)) == 600


async def test_prune_deletes_only_old_published_rows(db: Database) -> None:
    await write_follows(db, 5, 3)
    relay = OutboxRelay(db, InProcessBus(), RelayOptions(retention=timedelta(hours=1)))
    await relay.run_once()
    await write_follows(db, 5, 1)  # unpublished: kept however old
    async with db.transaction() as session:
        old = utcnow() - timedelta(hours=2)
        ids = list(await session.scalars(select(OutboxRow.id).order_by(OutboxRow.id)))
        await session.execute(
            update(OutboxRow).where(OutboxRow.id == ids[0]).values(published_at=old)
        )
        await session.execute(
            update(OutboxRow).where(OutboxRow.id == ids[3]).values(created_at=old)
        )

    assert await relay.prune() == 1

    assert [published for _, published in await outbox(db)] == [True, True, False]
