"""Root query fields of posts and comments: post, feed, explore, savedPosts, comment."""

from __future__ import annotations

import strawberry
from strawberry.types import Info

from resolvers.posts import comments, explore, feed, posts
from schema.common import NO_CURSOR, Connection, given, selects
from schema.posts.types import (
    Comment,
    Post,
    prefetched_posts,
    ranked_posts,
    wanted,
)


@strawberry.type
class PostsQuery:
    @strawberry.field(
        description="null with a NOT_FOUND error for an unknown, deleted or hidden post"
    )
    async def post(self, info: Info, id: strawberry.ID) -> Post | None:
        return Post(record=await posts.post(info.context, id))

    @strawberry.field(
        description="posts of followed accounts (and friends) and the viewer, newest first"
    )
    async def feed(
        self, info: Info, first: int | None = 20, after: str | None = NO_CURSOR
    ) -> Connection[Post]:
        page = await feed.feed(
            info.context, first, given(after), wanted(info), selects(info, "totalCount")
        )
        return await prefetched_posts(info, page)

    @strawberry.field(description="ranked public posts and takes for discovery")
    async def explore(
        self, info: Info, first: int | None = 20, after: str | None = NO_CURSOR
    ) -> Connection[Post]:
        return ranked_posts(await explore.explore(info.context, first, given(after)))

    @strawberry.field
    async def saved_posts(
        self, info: Info, first: int | None = 20, after: str | None = NO_CURSOR
    ) -> Connection[Post]:
        page = await feed.saved_posts(
            info.context, first, given(after), wanted(info), selects(info, "totalCount")
        )
        return await prefetched_posts(info, page)

    @strawberry.field(
        description="null with a NOT_FOUND error for an unknown, deleted or hidden comment"
    )
    async def comment(self, info: Info, id: strawberry.ID) -> Comment | None:
        return Comment(record=await comments.comment(info.context, id))
