"""Where a client downloads media bytes: `/media/{id}` and `/media/{id}/thumbnail`."""
from __future__ import annotations

from datasources.media.store import MediaRecord
from resolvers.ids import encode_id


def media_url(public_url: str, media: MediaRecord) -> str:
    return f"{public_url.rstrip('/')}/media/{encode_id('Media', media.id)}"


def thumbnail_url(public_url: str, media: MediaRecord) -> str | None:
    if not media.has_thumbnail:
        return None
    return media_url(public_url, media) + "/thumbnail"
