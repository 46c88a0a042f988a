"""Likes and saves of posts, likes of comments, and who liked a post.

All idempotent: liking twice leaves one like and likeCount unchanged (the store
counts only rows really inserted or deleted). The viewer must be able to see
the post (else NOT_FOUND, as for a post that does not exist).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from datasources.loading import MaybeAwaitable, loaded, then
from datasources.posts.records import CommentRecord, Gone, PostRecord
from datasources.users.store import UserRecord
from resolvers.context import Context
from resolvers.errors import NotFound
from resolvers.ids import decode_id
from resolvers.pagination import Page
from resolvers.posts import comments, paging, policy

Mark = Callable[[PostRecord, int], Awaitable[PostRecord]]


async def like_post(context: Context, post_id: str) -> PostRecord:
    return await _mark(context, post_id, context.stores.posts.like, ("liked", True))


async def unlike_post(context: Context, post_id: str) -> PostRecord:
    return await _mark(context, post_id, context.stores.posts.unlike, ("liked", False))


async def save_post(context: Context, post_id: str) -> PostRecord:
    return await _mark(context, post_id, context.stores.posts.save, ("saved", True))


async def unsave_post(context: Context, post_id: str) -> PostRecord:
    return await _mark(context, post_id, context.stores.posts.unsave, ("saved", False))


async def like_comment(context: Context, comment_id: str) -> CommentRecord:
    return await _like_comment(context, comment_id, True)


async def unlike_comment(context: Context, comment_id: str) -> CommentRecord:
    return await _like_comment(context, comment_id, False)


def viewer_has(context: Context, post: PostRecord, mark: str) -> MaybeAwaitable[bool]:
    """Whether the viewer `liked` / `saved` the post (at once when prefetched)."""
    viewer_id = context.viewer_id
    if viewer_id is None:
        return False
    loaders = context.loaders.posts
    known = loaders.known_marks.get((viewer_id, post.id, mark))
    if known is not None:
        return known
    return then(loaded(loaders.marks(viewer_id), post.id), lambda marks: mark in marks)


async def viewer_has_liked_comment(context: Context, comment: CommentRecord) -> bool:
    if context.viewer_id is None:
        return False
    return await context.loaders.posts.comment_liked(context.viewer_id).load(comment.id)


async def likers(
    context: Context, post: PostRecord, first: int | None, after: str | None
) -> Page[UserRecord]:
    """Who liked a (visible) post, newest like first, without users blocked either way."""
    limit, position = paging.arguments(context, first, after)
    key = (context.viewer_id, "likers", post.id, limit, position)
    found = await context.loaders.posts.likers_page.load(key)
    context.loaders.users.prime(found.items)
    return paging.to_page(context, found, lambda user: user.id, position)


async def _mark(
    context: Context, post_id: str, write: Mark, outcome: tuple[str, bool]
) -> PostRecord:
    viewer = context.require_viewer()
    post = await policy.require_post(context, decode_id(post_id, "Post", field="postId"))
    try:
        changed = await write(post, viewer.user_id)
    except Gone:
        raise NotFound("post") from None
    context.loaders.posts.replace(changed)
    context.loaders.posts.note_mark(viewer.user_id, post.id, *outcome)
    return changed


async def _like_comment(context: Context, comment_id: str, on: bool) -> CommentRecord:
    viewer = context.require_viewer()
    comment, subject = await comments.require_comment(
        context, decode_id(comment_id, "Comment", field="commentId")
    )
    store = context.stores.posts.comments
    try:
        if on:
            changed = await store.like(comment, viewer.user_id, subject)
        else:
            changed = await store.unlike(comment, viewer.user_id, subject)
    except Gone:
        raise NotFound("comment") from None
    context.loaders.posts.replace_comment(changed)
    return changed
