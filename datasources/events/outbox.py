"""Writing events: `emit` adds the outbox row inside the caller's transaction.

The event then exists exactly when the change does: both commit or neither
(ARCHITECTURE §4). Writers never publish to the bus themselves; the relay does.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from sqlalchemy import event, insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

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
        session.info[_PENDING] = True
    return stamped


# ── waking the relay ───────────────────────────────────────────────────
# A relay in this process is told right after a transaction with outbox rows
# commits, so in-process delivery takes milliseconds instead of a poll interval.
# (A relay in another process, `entativa worker`, polls.)

_PENDING = "entativa.outbox_pending"
_on_commit: dict[str, set[Callable[[], None]]] = {}


def database_key(bind: Any) -> str:
    """Identifies a database across engines (the relay has an engine of its own)."""
    return str(bind.url)


def notify_on_commit(key: str, callback: Callable[[], None]) -> Callable[[], None]:
    """Call `callback` after each commit that added outbox rows to the database `key`;
    returns the function that unregisters it."""
    _on_commit.setdefault(key, set()).add(callback)
    return lambda: _on_commit.get(key, set()).discard(callback)


@event.listens_for(Session, "after_commit")
def _after_commit(session: Session) -> None:
    if session.info.pop(_PENDING, False):
        for callback in list(_on_commit.get(database_key(session.get_bind()), ())):
            callback()


@event.listens_for(Session, "after_rollback")
def _after_rollback(session: Session) -> None:
    session.info.pop(_PENDING, None)
