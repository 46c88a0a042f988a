"""Comments on posts and takes (Commentable): threads, adding, deleting, reading.

What depends on the kind of subject is one mapping, `SUBJECTS`: how to load a
subject the viewer may see (NOT_FOUND otherwise) as a `Subject` (kind, id,
author) plus its record. The store's counterpart is
`datasources.posts.comments.subject_table` (whose `comment_count` moves). A new
commentable kind adds one entry to each.

A comment is visible when its subject is and its author has no block either way
with the viewer. Threads: top-level comments of a subject, oldest first, and
`replies` of a comment (parentId), oldest first. Deleting a comment (its author
or the subject's author) deletes its replies too; commentCount drops by all.

For Take.comments (and any other subject's comments field) call
`comments_page(context, "take", take_id, first, after)`: a keyset `Page` of
`CommentRecord`, batched across subjects through the per-request loader (the
schema wraps it with `schema.posts.types.comments_connection`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from datasources.loading import MaybeAwaitable, loaded, resolved, then, unloaded
from datasources.posts.comments import REPLIES
from datasources.posts.loaders import PageKey
from datasources.posts.records import CommentRecord, Gone, Slice, Subject
from resolvers.context import Context
from resolvers.errors import BadUserInput, NotFound
from resolvers.ids import decode_id, split_id
from resolvers.pagination import Page
from resolvers.posts import paging, policy

MAX_BODY = 2200


@dataclass(frozen=True)
class Found:
    """A subject the viewer may see: what comments need of it, and its record."""

    subject: Subject
    record: Any  # PostRecord | TakeRecord


SubjectLoader = Callable[[Context, int], Awaitable[Found | None]]


async def _post(context: Context, pk: int) -> Found | None:
    post = await policy.visible_post(context, pk)
    return Found(Subject("post", post.id, post.author_id), post) if post else None


async def _take(context: Context, pk: int) -> Found | None:
    from resolvers.posts import take_policy

    take = await context.loaders.takes.by_id.load(pk)
    if take is None or not await take_policy.can_see_take(context, take):
        return None
    return Found(Subject("take", take.id, take.author_id), take)


SUBJECTS: dict[str, SubjectLoader] = {"post": _post, "take": _take}


@dataclass(frozen=True)
class AddComment:
    body: str
    post_id: str | None = None
    take_id: str | None = None
    parent_id: str | None = None


# ── reads ────────────────────────────────────────────────────────────────


async def subject(context: Context, subject_type: str, subject_id: int) -> Found | None:
    return await SUBJECTS[subject_type](context, subject_id)


async def visible_comment(context: Context, pk: int) -> tuple[CommentRecord, Found] | None:
    comment = await context.loaders.posts.comment.load(pk)
    if comment is None or not await policy.can_see_comment_author(context, comment):
        return None
    found = await subject(context, comment.subject_type, comment.subject_id)
    return (comment, found) if found else None


async def require_comment(context: Context, pk: int) -> tuple[CommentRecord, Subject]:
    seen = await visible_comment(context, pk)
    if seen is None:
        raise NotFound("comment")
    return seen[0], seen[1].subject


async def comment_by_global_id(context: Context, global_id: str) -> CommentRecord | None:
    """For `node(id)` and entity references: null when unknown, hidden or malformed."""
    parts = split_id(global_id)
    if parts is None or parts[0] != "Comment" or not parts[1].isdigit():
        return None
    seen = await visible_comment(context, int(parts[1]))
    return seen[0] if seen else None


async def comment(context: Context, global_id: str) -> CommentRecord:
    """`Query.comment`: NOT_FOUND alike for unknown, deleted and hidden comments."""
    comment_, _ = await require_comment(context, decode_id(global_id, "Comment"))
    return comment_


async def comments_page(
    context: Context, subject_type: str, subject_id: int, first: int | None, after: str | None
) -> Page[CommentRecord]:
    """Top-level comments of a subject the caller already showed the viewer, oldest
    first. Batched: the first comments of 20 posts are one statement."""
    return await _thread(context, subject_type, subject_id, first, after)


async def replies_page(
    context: Context, parent: CommentRecord, first: int | None, after: str | None
) -> Page[CommentRecord]:
    return await _thread(context, REPLIES, parent.id, first, after)


async def parent(context: Context, comment_: CommentRecord) -> CommentRecord | None:
    if comment_.parent_id is None:
        return None
    seen = await visible_comment(context, comment_.parent_id)
    return seen[0] if seen else None


async def subject_record(context: Context, comment_: CommentRecord) -> Any:
    """The post or take a (visible) comment is on."""
    found = await subject(context, comment_.subject_type, comment_.subject_id)
    if found is None:
        raise NotFound(comment_.subject_type)
    return found.record


# ── writes ───────────────────────────────────────────────────────────────


async def add_comment(context: Context, data: AddComment) -> CommentRecord:
    """On a post or a take (exactly one), optionally replying to a comment on it."""
    viewer = context.require_viewer()
    subject_type, subject_id = _subject_of(data)
    body = _body(data.body)
    found = await subject(context, subject_type, subject_id)
    if found is None:
        raise NotFound(subject_type)
    reply_to = await _parent(context, data.parent_id, found.subject)
    try:
        created = await context.stores.posts.comments.add(
            context.platform, found.subject, viewer.user_id, body, reply_to
        )
    except Gone:
        raise NotFound("parent comment" if reply_to else subject_type) from None
    _forget_subject(context, found.subject)
    context.loaders.posts.replace_comment(created)
    return created


async def delete_comment(context: Context, global_id: str) -> bool:
    """By the comment's author or the subject's author (others: FORBIDDEN)."""
    viewer = context.require_viewer()
    comment_, subject_ = await require_comment(context, decode_id(global_id, "Comment"))
    policy.require_comment_deleter(context, comment_, subject_)
    deleted = await context.stores.posts.comments.delete(comment_, subject_, viewer.user_id)
    if not deleted:
        raise NotFound("comment")
    _forget_subject(context, subject_)
    return True


# ── helpers ──────────────────────────────────────────────────────────────


async def _thread(
    context: Context, kind: str, owner_id: int, first: int | None, after: str | None
) -> Page[CommentRecord]:
    return await resolved(thread_now(context, kind, owner_id, first, after))


def thread_now(
    context: Context, kind: str, owner_id: int, first: int | None, after: str | None
) -> MaybeAwaitable[Page[CommentRecord]]:
    """A thread's page, right away when `prefetch_threads` already loaded it."""
    limit, position = paging.arguments(context, first, after)
    key = (context.viewer_id, kind, owner_id, limit, position)

    def page(found: Slice[CommentRecord]) -> Page[CommentRecord]:
        return paging.to_page(context, found, lambda c: c.id, position)

    return then(loaded(context.loaders.posts.comments_page, key), page)


def prefetch_threads(
    context: Context, kind: str, owner_ids: list[int], first: int | None, after: str | None
) -> list[Awaitable[None]]:
    """The load of the first comments of many subjects in one batch (a page of posts
    asks for them all), so each subject's `comments` field then resolves without
    waiting: none when every thread is already cached (read along with the page, and
    primed then) or the arguments are bad (the field itself reports them)."""
    try:
        limit, position = paging.arguments(context, first, after)
    except BadUserInput:
        return []
    loader = context.loaders.posts.comments_page
    keys = unloaded(loader, [(context.viewer_id, kind, pk, limit, position) for pk in owner_ids])
    return [_load_threads(context, keys)] if keys else []


async def _load_threads(context: Context, keys: list[PageKey]) -> None:
    await context.loaders.posts.comments_page.load_many(keys)  # primes their comments too


def _subject_of(data: AddComment) -> tuple[str, int]:
    given = [(kind, gid) for kind, gid in (("post", data.post_id), ("take", data.take_id)) if gid]
    if len(given) != 1:
        raise BadUserInput("give exactly one of postId and takeId", field="postId")
    kind, gid = given[0]
    return kind, decode_id(gid, kind.capitalize(), field=f"{kind}Id")


def _body(value: str) -> str:
    body = value.strip()
    if not body:
        raise BadUserInput("a comment needs a body", field="body")
    if len(body) > MAX_BODY:
        raise BadUserInput(f"body must be at most {MAX_BODY} characters", field="body")
    return body


async def _parent(
    context: Context, parent_id: str | None, subject_: Subject
) -> CommentRecord | None:
    if parent_id is None:
        return None
    seen = await visible_comment(context, decode_id(parent_id, "Comment", field="parentId"))
    if seen is None:
        raise NotFound("parent comment")
    reply_to = seen[0]
    if (reply_to.subject_type, reply_to.subject_id) != (subject_.type, subject_.id):
        raise BadUserInput("parentId must be a comment on the same post or take", "parentId")
    return reply_to


def _forget_subject(context: Context, subject_: Subject) -> None:
    """Its commentCount changed: drop the cached record (and cached pages)."""
    if subject_.type == "post":
        context.loaders.posts.forget(subject_.id)
    else:
        context.loaders.takes.forget_take(subject_.id)
        context.loaders.posts.comments_page.cache_map.clear()
