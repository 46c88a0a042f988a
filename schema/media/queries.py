"""Root query fields of the media subgraph."""
from __future__ import annotations

import strawberry
from strawberry.types import Info

from resolvers.media.queries import media_by_global_id
from schema.media.types import Media


@strawberry.type
class MediaQuery:
    @strawberry.field
    async def media(self, info: Info, id: strawberry.ID) -> Media | None:
        record = await media_by_global_id(info.context, id)
        return Media(record=record) if record else None
