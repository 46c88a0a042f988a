"""Hashtag and TrendingHashtag, and the root fields `hashtag` and `trendingHashtags`.

A Hashtag is named, not numbered (no Node id): it wraps its normalized name, and
its counts load through the per-request hashtag loader, so a list of tags (trending,
related, search hits) reads every count in one statement. Rules and formulas:
resolvers/search/hashtags.py and datasources/search/hashtags.py.
"""

from __future__ import annotations

from enum import Enum

import strawberry
from strawberry.types import Info

from datasources.search.hashtags import Window
from resolvers.search import hashtags as resolvers
from schema.common import NO_CURSOR, Connection, given
from schema.posts.takes import Take, prefetched_takes
from schema.posts.types import Post, prefetched_posts


@strawberry.enum
class TrendWindow(Enum):
    HOUR = "HOUR"
    DAY = "DAY"
    WEEK = "WEEK"


@strawberry.type
class Hashtag:
    """A tag as captions carry it: case-folded, without '#'."""

    name: str

    @strawberry.field(description="posts using the tag, every audience counted")
    async def post_count(self, info: Info) -> int:
        return (await resolvers.counts(info.context, self.name)).posts

    @strawberry.field(description="takes using the tag")
    async def take_count(self, info: Info) -> int:
        return (await resolvers.counts(info.context, self.name)).takes

    @strawberry.field(
        description="tags used on the same posts and takes, by Jaccard similarity "
        "(normalised for popularity, not raw co-occurrence)"
    )
    async def related(self, info: Info, limit: int | None = 10) -> list[Hashtag]:
        found = await resolvers.related(info.context, self.name, limit)
        return [Hashtag(name=tag.name) for tag in found]

    @strawberry.field(description="newest first, those the viewer may see")
    async def posts(
        self, info: Info, first: int | None = 20, after: str | None = NO_CURSOR
    ) -> Connection[Post]:
        page = await resolvers.posts(info.context, self.name, first, given(after))
        return await prefetched_posts(info, page)

    @strawberry.field(description="newest first, those the viewer may see")
    async def takes(
        self, info: Info, first: int | None = 20, after: str | None = NO_CURSOR
    ) -> Connection[Take]:
        listing = await resolvers.takes(info.context, self.name, first, given(after))
        return await prefetched_takes(info, listing)


@strawberry.type
class TrendingHashtag:
    hashtag: Hashtag
    count: int = strawberry.field(description="uses in the window")
    previous_count: int = strawberry.field(description="uses in the window before it")
    growth_rate: float = strawberry.field(
        description="(count - previousCount) / max(previousCount, 1)"
    )


@strawberry.type
class HashtagQuery:
    @strawberry.field(description="'#Tag' or 'tag', any case; null when never used")
    async def hashtag(self, info: Info, name: str) -> Hashtag | None:
        found = await resolvers.hashtag(info.context, name)
        return Hashtag(name=found.name) if found else None

    @strawberry.field(
        description="tags used in the window, sudden growth first: Mastodon's "
        "(observed - expected)^2 / expected against the window before"
    )
    async def trending_hashtags(
        self, info: Info, window: TrendWindow | None = TrendWindow.DAY, limit: int | None = 10
    ) -> list[TrendingHashtag]:
        span = Window((window or TrendWindow.DAY).value)
        found = await resolvers.trending(info.context, span, limit)
        return [
            TrendingHashtag(
                hashtag=Hashtag(name=tag.name),
                count=tag.count,
                previous_count=tag.previous_count,
                growth_rate=tag.growth_rate,
            )
            for tag in found
        ]
