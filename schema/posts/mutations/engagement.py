"""likePost, unlikePost, savePost, unsavePost, likeComment, unlikeComment: idempotent."""

from __future__ import annotations

import strawberry
from strawberry.types import Info

from resolvers.posts import engagement
from schema.posts.types import Comment, Post


@strawberry.type
class EngagementMutation:
    @strawberry.mutation
    async def like_post(self, info: Info, post_id: strawberry.ID) -> Post:
        return Post(record=await engagement.like_post(info.context, post_id))

    @strawberry.mutation
    async def unlike_post(self, info: Info, post_id: strawberry.ID) -> Post:
        return Post(record=await engagement.unlike_post(info.context, post_id))

    @strawberry.mutation
    async def save_post(self, info: Info, post_id: strawberry.ID) -> Post:
        return Post(record=await engagement.save_post(info.context, post_id))

    @strawberry.mutation
    async def unsave_post(self, info: Info, post_id: strawberry.ID) -> Post:
        return Post(record=await engagement.unsave_post(info.context, post_id))

    @strawberry.mutation
    async def like_comment(self, info: Info, comment_id: strawberry.ID) -> Comment:
        return Comment(record=await engagement.like_comment(info.context, comment_id))

    @strawberry.mutation
    async def unlike_comment(self, info: Info, comment_id: strawberry.ID) -> Comment:
        return Comment(record=await engagement.unlike_comment(info.context, comment_id))
