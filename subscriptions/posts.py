"""Live fields of posts: `commentAdded(postId)` and `postLikeCount(postId)`.

Visibility is the post's (resolvers/posts/policy.py): a viewer subscribes only to
a post they may see (NOT_FOUND otherwise, exactly like `post(id)`), receives a
comment only when its author (and the parent comment's author) has no block
either way with them, and loses the subscription (FORBIDDEN, that operation
only) when they lose access to the post: blocked, unfollowed from a FOLLOWERS
post, the post made private or deleted.

The messages come from domain events (subscriptions/relay.py, a consumer group
of the event bus), so every writer that emits `comment.created` / `post.liked` feeds the
live fields with no call from the mutation resolvers, and a mutation in one
process reaches subscribers in every process through the broker.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from resolvers.context import Context
from resolvers.ids import decode_id
from resolvers.posts import policy
from subscriptions import topics
from subscriptions.live import SKIP


def _post_id(arguments: dict[str, Any]) -> int:
    value = arguments.get("postId", arguments.get("post_id"))
    return decode_id(str(value), "Post", field="postId")


class _PostField:
    name: ClassVar[str]
    kind: ClassVar[str]

    def topics(self, platform: str, arguments: dict[str, Any]) -> Sequence[str]:
        return (topics.post(platform, _post_id(arguments)),)

    async def authorize(self, context: Context, arguments: dict[str, Any]) -> None:
        await policy.require_post(context, _post_id(arguments))

    def handles(self, message: dict[str, Any]) -> bool:
        return message.get("kind") == self.kind


class CommentAdded(_PostField):
    name = "commentAdded"
    kind = "comment"

    def hidden_by(self, message: dict[str, Any]) -> Sequence[int]:
        return [uid for uid in (message.get("author_id"), message.get("parent_author_id")) if uid]

    async def root(self, context: Context, message: dict[str, Any]) -> Any:
        from schema.posts.types import Comment

        comment = await context.loaders.posts.comment.load(int(message["comment_id"]))
        if comment is None or not await policy.can_see_comment_author(context, comment):
            return SKIP
        return Comment(record=comment)


class PostLikeCount(_PostField):
    name = "postLikeCount"
    kind = "likes"

    def hidden_by(self, message: dict[str, Any]) -> Sequence[int]:
        return ()

    async def root(self, context: Context, message: dict[str, Any]) -> Any:
        post = await context.loaders.posts.by_id.load(int(message["post_id"]))
        return SKIP if post is None else post.like_count
