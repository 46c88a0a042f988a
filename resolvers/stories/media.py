"""What happens to a story's media when the story goes (deleted or purged)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from resolvers.media.uploads import delete_blobs

if TYPE_CHECKING:
    from datasources.registry import Stores


async def release_media(stores: Stores, media_ids: Iterable[int]) -> int:
    """Delete the media no longer used by anything: not by another story or a
    highlight cover (the story store), nor by a post, a take or an avatar (the
    media store checks those under a row lock). Returns how many went."""
    candidates = sorted(set(media_ids))
    if not candidates:
        return 0
    still_used = await stores.stories.media_in_use(candidates)
    released = 0
    for media_id in candidates:
        if media_id in still_used:
            continue
        record = await stores.media.delete_unused(media_id)
        if record is not None:
            await delete_blobs(stores.blobs, record)
            released += 1
    return released
