"""GET/HEAD `/attachments/{id}`: the bytes of an encrypted attachment, to a signed-in user.

Whoever holds the id (it is 256 random bits: resolvers/messaging/attachments.py)
and is signed in (an `Authorization: Bearer` access token) on the attachment's
platform gets the bytes; no token is 401, an unknown, expired, purged or
other-platform id the same 404. The bytes are ciphertext: served as
`application/octet-stream`, never sniffed, cacheable by the client only (the URL
answers only with a token) and immutable under their id.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import FileResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from resolvers.messaging.attachments import downloadable
from server.runtime import Runtime

CACHE_PRIVATELY = "private, max-age=31536000, immutable"
BEARER = "bearer "


def attachment_routes(runtime: Runtime) -> list[BaseRoute]:
    async def download(request: Request) -> Response:
        return await serve(runtime, request)

    return [Route("/attachments/{id}", download, methods=["GET", "HEAD"])]


async def serve(runtime: Runtime, request: Request) -> Response:
    header = request.headers.get("authorization", "")
    if not header.lower().startswith(BEARER):
        return unauthorized()
    token = header[len(BEARER) :].strip()
    claimed = runtime.auth.read_access_token(token)  # which platform it is for
    viewer = None if claimed is None else await runtime.authenticate(token, claimed.platform)
    if viewer is None:  # checked before any lookup: signed out learns nothing of ids
        return unauthorized()
    record = await runtime.stores.attachments.by_id(request.path_params["id"][:64])
    if not downloadable(record, viewer.platform, runtime.stores.clock()):
        return not_found()
    assert record is not None
    blob = await runtime.stores.blobs.stat(record.blob_key)
    if blob is None:
        return not_found()
    headers = {
        "Cache-Control": CACHE_PRIVATELY,
        "X-Content-Type-Options": "nosniff",
        "Content-Disposition": "attachment",
    }
    return FileResponse(blob.path, media_type="application/octet-stream", headers=headers)


def unauthorized() -> Response:
    return PlainTextResponse(
        "sign in to download attachments", status_code=401, headers={"WWW-Authenticate": "Bearer"}
    )


def not_found() -> Response:
    return PlainTextResponse("attachment not found", status_code=404)
