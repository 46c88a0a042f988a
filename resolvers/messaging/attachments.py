"""uploadEncryptedAttachment and who may download: opaque bytes, no processing.

The clients encrypt an attachment and send its key inside the end-to-end
encrypted message; the server gets ciphertext only. So nothing here looks at
the bytes: no type detection, no thumbnails, no metadata stripping. The upload
is streamed to a temp file in chunks, held to `max_encrypted_attachment_bytes`
as it streams (PAYLOAD_TOO_LARGE, and the temp file is gone: nothing stored),
then moved into the blob store under a random key, and the row written last (a
failed insert removes the blob again).

The attachment id is `secrets.token_urlsafe(32)` (256 random bits): the id is
the capability. Any signed-in user of the same platform holding it downloads
the bytes from `url` (server/attachment_routes.py); signed out is 401, an
unknown, expired or other-platform id the same 404. Everything is purged
`attachment_retention_days` (30) after upload (`purge_expired`, a step of the
messaging sweeper); reads stop serving it at `expiresAt` already.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import tempfile
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from datasources.media.blobs import new_key
from datasources.messaging.attachments import PURGE_BATCH, AttachmentRecord
from resolvers.context import Context
from resolvers.errors import PayloadTooLarge
from resolvers.media.uploads import UploadedFile
from resolvers.messaging import policy

if TYPE_CHECKING:
    from datasources.registry import Stores

CHUNK = 1024 * 1024
ID_BYTES = 32


def attachment_url(public_url: str, attachment_id: str) -> str:
    return f"{public_url.rstrip('/')}/attachments/{attachment_id}"


async def upload_encrypted_attachment(context: Context, file: UploadedFile) -> AttachmentRecord:
    viewer = context.require_viewer()
    blobs = context.stores.blobs
    limit = context.settings.max_encrypted_attachment_bytes
    path, size = await _spool(file, blobs.temp_dir(), limit)
    try:
        key = new_key()
        await blobs.put(key, path)
        now = policy.now(context)
        retention = timedelta(days=context.settings.attachment_retention_days)
        record = AttachmentRecord(
            id=secrets.token_urlsafe(ID_BYTES),
            platform=context.platform,
            uploader_id=viewer.user_id,
            size_bytes=size,
            blob_key=key,
            created_at=now,
            expires_at=now + retention,
        )
        try:
            return await context.stores.attachments.create(record)
        except BaseException:
            await blobs.delete(key)
            raise
    finally:
        _discard(path)


async def _spool(file: UploadedFile, scratch: Path, limit: int) -> tuple[Path, int]:
    """Stream the upload to a temp file; PAYLOAD_TOO_LARGE (and no file) past `limit`."""
    fd, name = tempfile.mkstemp(dir=scratch, prefix="attachment-")
    path = Path(name)
    size = 0
    try:
        with os.fdopen(fd, "wb") as out:
            while chunk := await file.read(CHUNK):
                size += len(chunk)
                if size > limit:
                    raise PayloadTooLarge(f"attachments may be at most {limit} bytes", limit)
                await asyncio.to_thread(out.write, chunk)
    except BaseException:
        _discard(path)
        raise
    return path, size


def _discard(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


def downloadable(record: AttachmentRecord | None, platform: str, now: datetime) -> bool:
    """Whether a signed-in user of `platform` holding the id may download it now."""
    return record is not None and record.platform == platform and record.expires_at > now


async def purge_expired(stores: Stores, now: datetime | None = None) -> int:
    """The sweeper's step: delete attachments past their retention (rows, then blobs).
    How many went."""
    when = now or stores.clock()
    purged = 0
    while True:
        keys = await stores.attachments.purge_expired(when, PURGE_BATCH)
        for key in keys:
            await stores.blobs.delete(key)
        purged += len(keys)
        if len(keys) < PURGE_BATCH:
            return purged
