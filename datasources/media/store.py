"""SQL for media metadata. The bytes live in the blob store (datasources/media/blobs.py)."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from datasources.media.tables import MediaRow
from datasources.sql import Database


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
