"""createPost, editPost, deletePost, sharePost."""

from __future__ import annotations

import strawberry
from strawberry.types import Info

from resolvers.posts import posts
from schema.common import given
from schema.posts.types import CreatePostInput, Post, SharePostInput, Visibility


@strawberry.type
class PostMutation:
    @strawberry.mutation
    async def create_post(self, info: Info, input: CreatePostInput) -> Post:
        location = given(input.location)
        data = posts.CreatePost(
            caption=given(input.caption),
            media_ids=tuple(input.media_ids or ()),
            visibility=(input.visibility or Visibility.PUBLIC).value,
            location=posts.LocationInput(location.name, location.latitude, location.longitude)
            if location
            else None,
        )
        return Post(record=await posts.create_post(info.context, data))

    @strawberry.mutation
    async def edit_post(self, info: Info, id: strawberry.ID, caption: str) -> Post:
        return Post(record=await posts.edit_post(info.context, id, caption))

    @strawberry.mutation
    async def delete_post(self, info: Info, id: strawberry.ID) -> bool:
        return await posts.delete_post(info.context, id)

    @strawberry.mutation
    async def share_post(self, info: Info, input: SharePostInput) -> Post:
        return Post(
            record=await posts.share_post(info.context, input.post_id, given(input.caption))
        )
