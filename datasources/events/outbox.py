"""Writing events: `emit` adds the outbox row inside the caller's transaction.

The event then exists exactly when the change does: both commit or neither
(ARCHITECTURE §4). Writers never publish to the bus themselves; the relay does.
"""
from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession

from datasources.events.model import Event, NewEvent
from datasources.events.tables import OutboxRow


async def emit(session: AsyncSession, *events: NewEvent) -> list[Event]:
    """Stage `events` in the open transaction of `session`; returns them stamped."""
    return await emit_all(session, events)


async def emit_all(session: AsyncSession, events: Iterable[NewEvent]) -> list[Event]:
    stamped = [Event.stamp(new) for new in events]
    if stamped:
        await session.execute(
            insert(OutboxRow),
            [
                {
                    "event_id": event.id,
                    "topic": event.topic,
                    "payload": event.to_json(),
                    "created_at": event.time,
                }
                for event in stamped
            ],
        )
    return stamped
