"""StoryStore on SQLAlchemy: SQLite (the embedded default) or PostgreSQL.

Stickers are a JSON column; a viewer is recorded once by the (story, viewer)
primary key with INSERT … ON CONFLICT DO NOTHING, so concurrent views of the same
viewer cannot double count and counts are exact COUNTs.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError

from datasources.sql import Database
from datasources.stories.records import NewStory, StoryRecord, ViewRecord, to_millis
from datasources.stories.tables import StoryRow, StoryViewRow


def _record(row: StoryRow) -> StoryRecord:
    return StoryRecord(
        id=row.id,
        author_id=row.author_id,
        media_id=row.media_id,
        audience=row.audience,
        created_at=row.created_at,
        expires_at=row.expires_at,
        stickers=tuple(row.stickers),
    )


class RelationalStoryStore:
    """The StoryStore protocol on the relational database."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def add_story(self, new: NewStory) -> StoryRecord:
        row = StoryRow(
            author_id=new.author_id,
            media_id=new.media_id,
            audience=new.audience,
            stickers=[dict(sticker) for sticker in new.stickers],
            created_at=to_millis(new.created_at),
            expires_at=new.expires_at,
        )
        async with self.db.transaction() as session:
            session.add(row)
            await session.flush()
            return _record(row)

    async def story(self, story_id: int, now: datetime | None) -> StoryRecord | None:
        query = select(StoryRow).where(StoryRow.id == story_id)
        if now is not None:
            query = query.where(StoryRow.expires_at > now)
        async with self.db.session() as session:
            row = await session.scalar(query)
        return None if row is None else _record(row)

    async def active_stories(
        self, author_ids: Sequence[int], now: datetime
    ) -> list[StoryRecord]:
        if not author_ids:
            return []
        query = (
            select(StoryRow)
            .where(StoryRow.author_id.in_(list(author_ids)), StoryRow.expires_at > now)
            .order_by(StoryRow.created_at, StoryRow.id)
        )
        async with self.db.session() as session:
            rows = (await session.scalars(query)).all()
        return [_record(row) for row in rows]

    async def active_count(self, author_id: int, now: datetime) -> int:
        query = select(func.count()).where(
            StoryRow.author_id == author_id, StoryRow.expires_at > now
        )
        async with self.db.session() as session:
            return int(await session.scalar(query) or 0)

    async def delete_story(self, story_id: int) -> bool:
        async with self.db.transaction() as session:
            await session.execute(delete(StoryViewRow).where(StoryViewRow.story_id == story_id))
            result = await session.execute(delete(StoryRow).where(StoryRow.id == story_id))
        return bool(getattr(result, "rowcount", 0))

    async def add_viewer(
        self, story_id: int, viewer_id: int, viewed_at: datetime, reaction: str | None
    ) -> bool:
        dialect = postgresql if self.db.engine.dialect.name == "postgresql" else sqlite
        stmt = (
            dialect.insert(StoryViewRow)
            .values(
                story_id=story_id,
                viewer_id=viewer_id,
                viewed_at=to_millis(viewed_at),
                reaction=reaction,
            )
            .on_conflict_do_nothing()
            .returning(StoryViewRow.story_id)
        )
        try:
            async with self.db.transaction() as session:
                inserted = (await session.execute(stmt)).first()
        except IntegrityError:  # the story does not exist (or was just deleted)
            return False
        return inserted is not None

    async def viewer(self, story_id: int, viewer_id: int) -> ViewRecord | None:
        async with self.db.session() as session:
            row = await session.get(StoryViewRow, (story_id, viewer_id))
        if row is None:
            return None
        return ViewRecord(row.story_id, row.viewer_id, row.viewed_at, row.reaction)

    async def viewer_count(self, story_id: int) -> int:
        query = select(func.count()).where(StoryViewRow.story_id == story_id)
        async with self.db.session() as session:
            return int(await session.scalar(query) or 0)
