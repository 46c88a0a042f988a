"""commentAdded(postId), postLikeCount(postId): live fields of posts.

Served by the realtime hub (subscriptions/hub.py: executed once per event for all
subscribers of the same document); these resolvers are the same rules
(subscriptions/posts.py) the per-subscriber way, for strawberry's own protocol
handlers and direct `schema.subscribe` calls.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator

import strawberry
from strawberry.types import Info

from schema.posts.types import Comment
from subscriptions.live import stream
from subscriptions.posts import CommentAdded, PostLikeCount


@strawberry.type
class PostSubscription:
    @strawberry.subscription(description="new comments on a post, for live comment threads")
    async def comment_added(
        self, info: Info, post_id: strawberry.ID
    ) -> AsyncGenerator[Comment, None]:
        context = info.context
        async for comment in stream(
            CommentAdded(), context, context.stores.broker, {"postId": post_id}
        ):
            yield comment

    @strawberry.subscription
    async def post_like_count(
        self, info: Info, post_id: strawberry.ID
    ) -> AsyncGenerator[int, None]:
        context = info.context
        async for count in stream(
            PostLikeCount(), context, context.stores.broker, {"postId": post_id}
        ):
            yield count
