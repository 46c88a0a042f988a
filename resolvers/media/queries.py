"""Reading media: by id, scoped to the request's platform."""
from __future__ import annotations

from datasources.media.store import MediaRecord
from resolvers.context import Context
from resolvers.ids import split_id


async def media_by_global_id(context: Context, global_id: str) -> MediaRecord | None:
    parts = split_id(global_id)
    if parts is None or parts[0] != "Media" or not parts[1].isdigit():
        return None
    return await context.loaders.media.by_id.load(int(parts[1]))
