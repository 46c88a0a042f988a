"""addComment, deleteComment."""

from __future__ import annotations

import strawberry
from strawberry.types import Info

from resolvers.posts import comments
from schema.common import given
from schema.posts.types import AddCommentInput, Comment


@strawberry.type
class CommentMutation:
    @strawberry.mutation
    async def add_comment(self, info: Info, input: AddCommentInput) -> Comment:
        data = comments.AddComment(
            body=input.body,
            post_id=given(input.post_id),
            take_id=given(input.take_id),
            parent_id=given(input.parent_id),
        )
        return Comment(record=await comments.add_comment(info.context, data))

    @strawberry.mutation(
        description="by the comment's author or the author of the post or take; "
        "its replies go with it"
    )
    async def delete_comment(self, info: Info, id: strawberry.ID) -> bool:
        return await comments.delete_comment(info.context, id)
