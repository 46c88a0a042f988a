"""Whose content reaches a viewer's trays: the accounts they follow and their friends."""

from __future__ import annotations

from sqlalchemy import union

from datasources.posts.visibility import followed_by, friends_of
from datasources.sql import Database


async def followed_and_friends(db: Database, viewer_id: int) -> list[int]:
    """Ids of the accounts `viewer_id` follows (approved) or is friends with."""
    query = union(followed_by(viewer_id), friends_of(viewer_id))
    async with db.session() as session:
        return [int(pk) for pk in (await session.scalars(query)).all()]
