"""The events of the stories domain (table in DEVELOPERS.md, "Domain events").

Stories may live in MongoDB, outside the relational transaction the outbox
needs, so each event is staged in a transaction of its own right after the
store write succeeded: a crash in between loses that event (at most once for
stories), never records one for a write that did not happen.
"""

from __future__ import annotations

from typing import Any

from datasources.events.model import NewEvent
from datasources.events.outbox import emit
from datasources.sql import Database
from resolvers.context import Context


def story_event(context: Context, event_type: str, story_id: int, data: dict[str, Any]) -> NewEvent:
    """An event about `story_id` done by the request's viewer."""
    return new_story_event(context.platform, context.viewer_id, event_type, story_id, data)


def new_story_event(
    platform: str, actor_id: int | None, event_type: str, story_id: int, data: dict[str, Any]
) -> NewEvent:
    return NewEvent(
        type=event_type,
        platform=platform,
        actor_id=actor_id,
        subject_type="story",
        subject_id=story_id,
        data=data,
    )


async def publish(db: Database, *events: NewEvent) -> None:
    """Stage the events in a transaction of their own (see the module)."""
    if not events:
        return
    async with db.transaction() as session:
        await emit(session, *events)
