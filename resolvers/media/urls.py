"""Where a client downloads media bytes: `/media/{id}/{key}` and `…/{key}/thumbnail`.

Media ids are small integers and easy to guess, so the id alone must not open the
bytes of a private account's post. Every URL carries a key, an HMAC of the id
under the server's secret: only a client that was shown the media through the
graph (which applies every visibility rule) learns its URL, as with the signed
CDN URLs of the big platforms. The key does not expire, so URLs stay cacheable;
a leaked URL is as public as a copy of the file would be.
"""
from __future__ import annotations

import base64
import hashlib
import hmac

from datasources.media.store import MediaRecord
from resolvers.ids import encode_id


def media_key(secret: str, media_id: int) -> str:
    """128 bits of HMAC-SHA256 over the media id, URL-safe."""
    digest = hmac.new(secret.encode(), f"media:{media_id}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest[:16]).decode().rstrip("=")


def key_matches(secret: str, media_id: int, key: str) -> bool:
    return hmac.compare_digest(media_key(secret, media_id), key)


def media_url(public_url: str, secret: str, media: MediaRecord) -> str:
    media_id = encode_id("Media", media.id)
    return f"{public_url.rstrip('/')}/media/{media_id}/{media_key(secret, media.id)}"


def thumbnail_url(public_url: str, secret: str, media: MediaRecord) -> str | None:
    if not media.has_thumbnail:
        return None
    return media_url(public_url, secret, media) + "/thumbnail"
