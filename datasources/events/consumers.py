"""Idempotent consumers: an event's effect happens once however often it arrives.

The bus delivers at least once (a relay may publish a batch twice, a Kafka
consumer may get records again after a restart). A consumer whose effect lives in
the relational store subclasses `EventConsumer` and writes the effect in `apply`;
`handle` runs `apply` in one transaction with a `consumed_events` row
`(consumer, event_id)`, inserted first. A redelivered event finds that row and
`apply` does not run again; if `apply` fails, the row rolls back with the effect
and the event is retried.

    class FollowerNotifier(EventConsumer):
        name = "notifications"
        domains = ("users",)
        types = frozenset({"user.followed"})

        async def apply(self, session: AsyncSession, event: Event) -> None:
            session.add(NotificationRow(...))

A consumer whose effect is elsewhere (a search index) cannot share the
transaction; it must make the effect itself idempotent (upsert by id).
"""

from __future__ import annotations

from typing import ClassVar

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from datasources.events.bus import EventBus
from datasources.events.model import Event
from datasources.events.tables import ConsumedEventRow
from datasources.events.transactions import transaction
from datasources.sql import Database, utcnow


async def claim(session: AsyncSession, consumer: str, event_id: str) -> bool:
    """Record that `consumer` applies `event_id` in this transaction; False when it
    already did (the caller then changes nothing).

    On PostgreSQL a concurrent duplicate waits on the primary key until the first
    commits, then finds the row; on SQLite the INSERT takes the write lock first.
    """
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    statement = (
        dialect.insert(ConsumedEventRow)
        .values(consumer=consumer, event_id=event_id, consumed_at=utcnow())
        .on_conflict_do_nothing()
        .returning(ConsumedEventRow.event_id)
    )
    return (await session.execute(statement)).first() is not None


class EventConsumer:
    """Base of the relational consumers (search counters, notifications…).

    `name` is the consumer group (one delivery per group, shared by the worker
    processes running it); `domains` the topics it reads; `types`, when set, the
    event types it cares about (others are acknowledged without a transaction).
    """

    name: ClassVar[str]
    domains: ClassVar[tuple[str, ...]]
    types: ClassVar[frozenset[str] | None] = None

    def __init__(self, db: Database) -> None:
        self.db = db

    def wants(self, event: Event) -> bool:
        return self.types is None or event.type in self.types

    async def handle(self, event: Event) -> None:
        """The bus handler: apply `event` once."""
        if not self.wants(event):
            return
        async with transaction(self.db) as session:
            if await claim(session, self.name, event.id):
                await self.apply(session, event)

    async def apply(self, session: AsyncSession, event: Event) -> None:
        """Write the effect of `event` in `session` (the claim's transaction)."""
        raise NotImplementedError

    async def subscribe(self, bus: EventBus) -> None:
        await bus.subscribe(self.name, self.domains, self.handle)
