"""uploadMedia and deleteMedia: who may, what is accepted, and the order of writes.

Upload: the file is streamed to a temp file in chunks (never whole in memory), its
type decided from its first bytes, its size held to that type's limit while it
streams, then probed (and cleaned of location metadata). Only then are the blobs
written, and the row last: a failed insert removes the blobs again. Any rejection
leaves the blob store and the database exactly as they were.
"""
from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from datasources.media import probe
from datasources.media.blobs import BlobStore, new_key, thumbnail_key
from datasources.media.store import MediaRecord, NewMedia
from resolvers.context import Context, Viewer
from resolvers.errors import BadUserInput, Conflict, Forbidden, NotFound, PayloadTooLarge
from resolvers.ids import decode_id

log = logging.getLogger(__name__)

MAX_ALT_TEXT = 1000
CHUNK = 1024 * 1024
UNSUPPORTED = (
    "file is not a supported image (JPEG, PNG, WebP, GIF), video (MP4, MOV, WebM) "
    "or audio (MP3, AAC, Ogg) file"
)


class UploadedFile(Protocol):
    """What the GraphQL layer hands over for an `Upload` (Starlette's UploadFile)."""

    async def read(self, size: int = -1) -> bytes: ...


@dataclass(frozen=True)
class Inspected:
    probed: probe.Probed
    size_bytes: int
    sha256: str


def size_limit(context: Context, kind: str) -> int:
    settings = context.settings
    return {
        probe.IMAGE: settings.max_image_bytes,
        probe.VIDEO: settings.max_video_bytes,
        probe.AUDIO: settings.max_audio_bytes,
    }[kind]


def too_large(kind: str, limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"{kind.lower()} files may be at most {limit} bytes", limit)


def clean_alt_text(alt_text: str | None) -> str | None:
    if alt_text is None or not alt_text.strip():
        return None
    if len(alt_text) > MAX_ALT_TEXT:
        raise BadUserInput(f"altText must be at most {MAX_ALT_TEXT} characters", "altText")
    return alt_text.strip()


async def upload_media(context: Context, file: UploadedFile, alt_text: str | None) -> MediaRecord:
    viewer = context.require_viewer()
    alt_text = clean_alt_text(alt_text)
    blobs = context.stores.blobs
    path, sniffed = await _spool(context, file, blobs.temp_dir())
    try:
        inspected = await asyncio.to_thread(_inspect, path, sniffed)
        limit = size_limit(context, inspected.probed.kind)
        if inspected.size_bytes > limit:  # e.g. an audio-only MP4 held to the audio limit
            raise too_large(inspected.probed.kind, limit)
        return await _store(context, viewer, blobs, path, inspected, alt_text)
    finally:
        discard(path)


def discard(path: Path) -> None:
    """Remove a temp file (a single unlink: too quick to be worth a thread hop)."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


async def _read_head(file: UploadedFile) -> bytes:
    head = b""
    while len(head) < probe.HEAD_BYTES:
        chunk = await file.read(probe.HEAD_BYTES - len(head))
        if not chunk:
            break
        head += chunk
    return head


async def _spool(
    context: Context, file: UploadedFile, scratch: Path
) -> tuple[Path, probe.Sniffed]:
    """Stream the upload into a temp file, refusing unknown types and oversize files early."""
    head = await _read_head(file)
    sniffed = probe.sniff(head)
    if sniffed is None:
        raise BadUserInput(UNSUPPORTED, "file")
    limit = size_limit(context, sniffed.kind)
    fd, name = tempfile.mkstemp(dir=scratch, prefix="upload-")
    path = Path(name)
    try:
        with os.fdopen(fd, "wb") as out:
            size, chunk = 0, head
            while chunk:
                size += len(chunk)
                if size > limit:
                    raise too_large(sniffed.kind, limit)
                await asyncio.to_thread(out.write, chunk)
                chunk = await file.read(CHUNK)
    except BaseException:
        discard(path)
        raise
    return path, sniffed


def _inspect(path: Path, sniffed: probe.Sniffed) -> Inspected:
    try:
        probed = probe.probe(path, sniffed)
    except probe.UnsupportedMedia as exc:
        raise BadUserInput(str(exc), "file") from exc
    return Inspected(probed, path.stat().st_size, probe.sha256_file(path))


async def _store(
    context: Context,
    viewer: Viewer,
    blobs: BlobStore,
    path: Path,
    inspected: Inspected,
    alt_text: str | None,
) -> MediaRecord:
    key, probed = new_key(), inspected.probed
    written = [key]
    try:
        await blobs.put(key, path)
        if probed.thumbnail is not None:
            written.append(thumbnail_key(key))
            await blobs.put(thumbnail_key(key), io.BytesIO(probed.thumbnail))
        return await context.stores.media.create(
            NewMedia(
                platform=context.platform,
                owner_id=viewer.user_id,
                kind=probed.kind,
                mime_type=probed.mime_type,
                size_bytes=inspected.size_bytes,
                sha256=inspected.sha256,
                width=probed.width,
                height=probed.height,
                duration_ms=probed.duration_ms,
                alt_text=alt_text,
                blob_key=key,
                has_thumbnail=probed.thumbnail is not None,
            )
        )
    except BaseException:
        for written_key in written:
            await blobs.delete(written_key)
        raise


async def delete_media(context: Context, global_id: str) -> bool:
    """Owner only. The row goes (and stops being anyone's avatar) before the bytes do:
    a crash in between leaves an unreferenced file, never a row without its bytes."""
    viewer = context.require_viewer()
    media_id = decode_id(global_id, "Media")
    record = await context.loaders.media.by_id.load(media_id)
    if record is None:
        raise NotFound("media")
    if record.owner_id != viewer.user_id:
        raise Forbidden("only the owner can delete this media")
    if await context.stores.stories.media_in_use([media_id]):
        raise Conflict("this media is part of a story or highlight: delete that first")
    deleted = await context.stores.media.delete(context.platform, media_id)
    if deleted is None:
        raise Conflict("this media is part of a post or take: delete that first")
    if not deleted:
        raise NotFound("media")  # deleted meanwhile by another request
    context.loaders.media.by_id.clear(media_id)
    await delete_blobs(context.stores.blobs, record)
    return True


async def delete_blobs(blobs: BlobStore, record: MediaRecord) -> None:
    """The bytes of a media whose row is gone (after the row: a crash in between leaves
    an unreferenced file, never a row without its bytes)."""
    keys = [record.blob_key] + ([thumbnail_key(record.blob_key)] if record.has_thumbnail else [])
    for key in keys:
        try:
            await blobs.delete(key)
        except OSError:  # the media is gone for clients; an orphan file is only disk space
            log.exception("media %s deleted but its blob %s was not", record.id, key)
