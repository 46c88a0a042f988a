"""SQL for media metadata. The bytes live in the blob store (datasources/media/blobs.py)."""
from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Column, delete, literal, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from datasources.media.tables import MediaRow
from datasources.sql import Database, utcnow
from datasources.users.tables import UserRow


@dataclass(frozen=True)
class NewMedia:
    """What an upload stores about its bytes (already written to the blob store)."""

    platform: str
    owner_id: int
    kind: str
    mime_type: str
    size_bytes: int
    sha256: str
    width: int | None
    height: int | None
    duration_ms: int | None
    alt_text: str | None
    blob_key: str
    has_thumbnail: bool


@dataclass(frozen=True)
class MediaRecord:
    id: int
    platform: str
    owner_id: int
    kind: str
    mime_type: str
    size_bytes: int
    sha256: str
    width: int | None
    height: int | None
    duration_ms: int | None
    alt_text: str | None
    blob_key: str
    has_thumbnail: bool
    created_at: datetime


def to_record(row: MediaRow) -> MediaRecord:
    return MediaRecord(
        id=row.id,
        platform=row.platform,
        owner_id=row.owner_id,
        kind=row.kind,
        mime_type=row.mime_type,
        size_bytes=row.size_bytes,
        sha256=row.sha256,
        width=row.width,
        height=row.height,
        duration_ms=row.duration_ms,
        alt_text=row.alt_text,
        blob_key=row.blob_key,
        has_thumbnail=row.has_thumbnail,
        created_at=row.created_at,
    )


class MediaStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def by_ids(self, platform: str, ids: Sequence[int]) -> dict[int, MediaRecord]:
        async with self.db.session() as session:
            rows = await session.scalars(
                select(MediaRow).where(MediaRow.platform == platform, MediaRow.id.in_(ids))
            )
            return {row.id: to_record(row) for row in rows}

    async def create(self, media: NewMedia) -> MediaRecord:
        async with self.db.transaction() as session:
            row = MediaRow(
                platform=media.platform,
                owner_id=media.owner_id,
                kind=media.kind,
                mime_type=media.mime_type,
                size_bytes=media.size_bytes,
                sha256=media.sha256,
                width=media.width,
                height=media.height,
                duration_ms=media.duration_ms,
                alt_text=media.alt_text,
                blob_key=media.blob_key,
                has_thumbnail=media.has_thumbnail,
                created_at=utcnow(),
            )
            session.add(row)
            await session.flush()
            return to_record(row)

    async def delete(self, platform: str, media_id: int) -> bool | None:
        """Delete the row, and unset it as anyone's avatar, in one transaction.

        None (nothing changed) while content that would be deleted with it uses it
        (a post's media, a take's video: every cascading foreign key to `media`):
        deleting a take through its video would skip its events and counters. The
        row is locked first, so no post can take the media up meanwhile.
        """
        async with self.db.transaction() as session:
            found = await session.scalar(
                select(MediaRow.id)
                .where(MediaRow.platform == platform, MediaRow.id == media_id)
                .with_for_update()
            )
            if found is None:
                return False
            if await _in_use(session, media_id):
                return None
            await session.execute(
                update(UserRow)
                .where(UserRow.platform == platform, UserRow.avatar_media_id == media_id)
                .values(avatar_media_id=None)
            )
            deleted = await session.execute(
                delete(MediaRow).where(MediaRow.platform == platform, MediaRow.id == media_id)
            )
            return bool(deleted.rowcount)  # type: ignore[attr-defined]

    async def delete_unused(self, media_id: int) -> MediaRecord | None:
        """Delete the row unless anything relational uses it (content through a
        cascading foreign key, or anyone's avatar); the deleted record, else None.
        For media whose last holder outside this database went (an expired story)."""
        async with self.db.transaction() as session:
            row = await session.scalar(
                select(MediaRow).where(MediaRow.id == media_id).with_for_update()
            )
            if row is None or await _in_use(session, media_id):
                return None
            avatar = await session.scalar(
                select(literal(True)).where(UserRow.avatar_media_id == media_id).limit(1)
            )
            if avatar:
                return None
            record = to_record(row)
            await session.execute(delete(MediaRow).where(MediaRow.id == media_id))
            return record

    async def for_serving(self, media_id: int) -> MediaRecord | None:
        """One media by id, whatever its platform: only for the byte-serving route,
        whose URL (`/media/{id}`) names no platform. Ids are unique across platforms."""
        async with self.db.session() as session:
            row = await session.get(MediaRow, media_id)
            return to_record(row) if row else None


async def _in_use(session: AsyncSession, media_id: int) -> bool:
    for column in _cascading_references():
        used = await session.scalar(select(literal(True)).where(column == media_id).limit(1))
        if used:
            return True
    return False


@functools.cache
def _cascading_references() -> tuple[Column[int], ...]:
    """Columns of any domain's table whose rows go when a media row goes."""
    from datasources.tables import metadata  # every table, whatever domain declares it

    return tuple(
        foreign_key.parent
        for table in metadata.tables.values()
        for foreign_key in table.foreign_keys
        if foreign_key.column.table.name == MediaRow.__tablename__
        and (foreign_key.ondelete or "").upper() == "CASCADE"
    )
