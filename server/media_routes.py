"""GET/HEAD `/media/{id}/{key}` and `/media/{id}/{key}/thumbnail`: the stored bytes.

Range requests are Starlette's FileResponse (single and multiple ranges, 206 with
Content-Range, 416 with `Content-Range: bytes */size`, If-Range); we checked it
does them right (starlette ≥ 1.5.1, see pyproject) rather than write our own.
What it lacks we add here: a content ETag (the quoted sha256 instead of its
mtime-and-size hash), `If-None-Match` → 304, and caching forever: media bytes
never change under an id (new bytes are a new media), so clients and CDNs may
keep them for a year without asking again.

The URL names no platform: media ids are unique across platforms. It carries a
key (resolvers/media/urls.py): the bytes are open to whoever was given the URL by
the graph, and a guessed id or a wrong key is the same 404 as an unknown id.
"""
from __future__ import annotations

import logging

from starlette.requests import Request
from starlette.responses import FileResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from datasources.media.blobs import thumbnail_key
from datasources.media.store import MediaRecord
from resolvers.ids import split_id
from resolvers.media.urls import key_matches
from server.runtime import Runtime

log = logging.getLogger(__name__)

CACHE_FOREVER = "public, max-age=31536000, immutable"
THUMBNAIL_TYPE = "image/webp"


def media_routes(runtime: Runtime) -> list[BaseRoute]:
    async def original(request: Request) -> Response:
        return await serve(runtime, request, thumbnail=False)

    async def thumbnail(request: Request) -> Response:
        return await serve(runtime, request, thumbnail=True)

    return [
        Route("/media/{id}/{key}", original, methods=["GET", "HEAD"]),
        Route("/media/{id}/{key}/thumbnail", thumbnail, methods=["GET", "HEAD"]),
    ]


async def find(runtime: Runtime, global_id: str, key: str) -> MediaRecord | None:
    parts = split_id(global_id)
    if parts is None or parts[0] != "Media" or not parts[1].isdigit():
        return None
    if not key_matches(runtime.settings.signing_key, int(parts[1]), key):
        return None
    return await runtime.stores.media.for_serving(int(parts[1]))


async def serve(runtime: Runtime, request: Request, thumbnail: bool) -> Response:
    record = await find(runtime, request.path_params["id"], request.path_params["key"])
    if record is None or (thumbnail and not record.has_thumbnail):
        return not_found()
    key = thumbnail_key(record.blob_key) if thumbnail else record.blob_key
    blob = await runtime.stores.blobs.stat(key)
    if blob is None:
        log.error("media %s has a row but no blob %s", record.id, key)
        return not_found()
    etag = f'"{record.sha256}-thumbnail"' if thumbnail else f'"{record.sha256}"'
    headers = {
        "ETag": etag,
        "Cache-Control": CACHE_FOREVER,
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "default-src 'none'; sandbox",
    }
    if etag_matches(request.headers.get("if-none-match"), etag):
        return Response(status_code=304, headers=headers)
    media_type = THUMBNAIL_TYPE if thumbnail else record.mime_type
    return FileResponse(blob.path, media_type=media_type, headers=headers)


def etag_matches(if_none_match: str | None, etag: str) -> bool:
    """RFC 9110 If-None-Match: `*`, or any listed tag equal under weak comparison."""
    if not if_none_match:
        return False
    tags = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
    return "*" in tags or etag in tags


def not_found() -> Response:
    return PlainTextResponse("media not found", status_code=404)
