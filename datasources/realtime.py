"""Reads the realtime layer needs per connection (subscriptions/): one query each."""

from __future__ import annotations

from sqlalchemy import select, union

from datasources.sql import Database
from datasources.users.tables import BlockRow


async def blocked_either_way(db: Database, user_id: int) -> frozenset[int]:
    """Users with a block either way with `user_id`: the events they cause are hidden
    from this viewer. Loaded when a socket opens and again when a relationship of the
    viewer changes, so filtering an event costs no query per subscriber."""
    statement = union(
        select(BlockRow.blocked_id).where(BlockRow.blocker_id == user_id),
        select(BlockRow.blocker_id).where(BlockRow.blocked_id == user_id),
    )
    async with db.session() as session:
        return frozenset((await session.scalars(statement)).all())
