"""Root query fields of Takes (posts subgraph)."""

from __future__ import annotations

import strawberry
from strawberry.types import Info

from resolvers.posts import takes, templates, trends
from schema.common import NO_CURSOR, Connection, given
from schema.posts.takes import (
    Take,
    TakeTemplate,
    TakeTrend,
    listing_connection,
    prefetched_takes,
)


@strawberry.type
class TakesQuery:
    @strawberry.field(description="null with a NOT_FOUND error when unknown or hidden")
    async def take(self, info: Info, id: strawberry.ID) -> Take | None:
        return Take(record=await takes.take(info.context, id))

    @strawberry.field(description="ranked takes: engagement, recency, and trend participation")
    async def takes_feed(
        self, info: Info, first: int | None = 20, after: str | None = NO_CURSOR
    ) -> Connection[Take]:
        return await prefetched_takes(
            info, await takes.takes_feed(info.context, first, given(after))
        )

    @strawberry.field(description="null with a NOT_FOUND error when unknown or hidden")
    async def take_trend(self, info: Info, id: strawberry.ID) -> TakeTrend | None:
        return TakeTrend(record=await trends.trend(info.context, id))

    @strawberry.field(
        description="trends ranked by growth of participants, last 24 h vs the 24 h before"
    )
    async def trending_take_trends(
        self, info: Info, first: int | None = 20, after: str | None = NO_CURSOR
    ) -> Connection[TakeTrend]:
        listing = await trends.trending(info.context, first, given(after))
        return listing_connection(listing, lambda record: TakeTrend(record=record))

    @strawberry.field(description="templates, most used first")
    async def take_templates(
        self, info: Info, first: int | None = 20, after: str | None = NO_CURSOR
    ) -> Connection[TakeTemplate]:
        listing = await templates.templates(info.context, first, given(after))
        return listing_connection(listing, lambda record: TakeTemplate(record=record))
