"""SQL of encrypted attachments: a row per stored ciphertext blob.

The bytes live in the blob store (datasources/media/blobs.py) under a random
key; the row maps the unguessable attachment id to that key, its size and when
it expires. Purging deletes rows first and their blobs after: a crash in
between leaves an unreferenced file, never an id pointing at nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select

from datasources.messaging.call_tables import EncryptedAttachmentRow
from datasources.sql import Database

PURGE_BATCH = 500


@dataclass(frozen=True)
class AttachmentRecord:
    id: str
    platform: str
    uploader_id: int
    size_bytes: int
    blob_key: str
    created_at: datetime
    expires_at: datetime


def _record(row: EncryptedAttachmentRow) -> AttachmentRecord:
    return AttachmentRecord(
        id=row.id,
        platform=row.platform,
        uploader_id=row.uploader_id,
        size_bytes=row.size_bytes,
        blob_key=row.blob_key,
        created_at=row.created_at,
        expires_at=row.expires_at,
    )


class AttachmentStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def create(self, record: AttachmentRecord) -> AttachmentRecord:
        async with self.db.transaction() as session:
            session.add(
                EncryptedAttachmentRow(
                    id=record.id,
                    platform=record.platform,
                    uploader_id=record.uploader_id,
                    size_bytes=record.size_bytes,
                    blob_key=record.blob_key,
                    created_at=record.created_at,
                    expires_at=record.expires_at,
                )
            )
        return record

    async def by_id(self, attachment_id: str) -> AttachmentRecord | None:
        async with self.db.session() as session:
            row = await session.get(EncryptedAttachmentRow, attachment_id)
            return None if row is None else _record(row)

    async def purge_expired(self, now: datetime, limit: int = PURGE_BATCH) -> list[str]:
        """Delete up to `limit` rows expired at `now`; their blob keys, to delete next."""
        async with self.db.transaction() as session:
            rows = (
                await session.execute(
                    select(EncryptedAttachmentRow.id, EncryptedAttachmentRow.blob_key)
                    .where(EncryptedAttachmentRow.expires_at <= now)
                    .order_by(EncryptedAttachmentRow.expires_at)
                    .limit(limit)
                )
            ).all()
            if not rows:
                return []
            await session.execute(
                delete(EncryptedAttachmentRow).where(
                    EncryptedAttachmentRow.id.in_([row.id for row in rows])
                )
            )
            return [row.blob_key for row in rows]
