"""createPost, editPost, deletePost, sharePost; reading one post and a user's posts.

Every input is validated before anything is written, so bad input changes
nothing: caption length, media (at most 10, each the author's, on this
platform), visibility (FRIENDS only where friendships exist), location ranges.
Hashtags and mentions come from the caption (resolvers/posts/text.py);
mentions resolve to users of the same platform, and unknown names, or users
with a block either way with the author, are ignored.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any

from datasources.loading import DataLoader, unloaded
from datasources.posts.records import Extras, Gone, NewLocation, NewPost, PostRecord, Slice
from datasources.users.store import UserRecord
from resolvers.context import Context
from resolvers.errors import BadUserInput, Forbidden, NotFound
from resolvers.ids import decode_id, split_id
from resolvers.pagination import Page
from resolvers.posts import comments, paging, policy, text
from resolvers.users import policy as users_policy

MAX_CAPTION = 2200
MAX_MEDIA = 10
MAX_LOCATION_NAME = 100


@dataclass(frozen=True)
class LocationInput:
    name: str
    latitude: float
    longitude: float


@dataclass(frozen=True)
class CreatePost:
    """As the client sent it (global ids, enum values as strings)."""

    caption: str | None = None
    media_ids: tuple[str, ...] = ()
    visibility: str = "PUBLIC"
    location: LocationInput | None = None


# ── reads ────────────────────────────────────────────────────────────────


async def post_by_global_id(context: Context, global_id: str) -> PostRecord | None:
    """For `node(id)` and entity references: null when unknown, hidden or malformed."""
    parts = split_id(global_id)
    if parts is None or parts[0] != "Post" or not parts[1].isdigit():
        return None
    return await policy.visible_post(context, int(parts[1]))


async def post(context: Context, global_id: str) -> PostRecord:
    """`Query.post`: NOT_FOUND alike for unknown, deleted, hidden and other-platform posts."""
    return await policy.require_post(context, decode_id(global_id, "Post"))


async def shared_post(context: Context, post: PostRecord) -> PostRecord | None:
    """The post a share points at; null when deleted or hidden from the viewer."""
    if post.shared_post_id is None:
        return None
    return await policy.visible_post(context, post.shared_post_id)


async def user_posts(
    context: Context, user: UserRecord, first: int | None, after: str | None
) -> Page[PostRecord]:
    """A user's posts the viewer may see, newest first. A private account's posts are
    FORBIDDEN to non-followers (as its followers list is); blocked: NOT_FOUND."""
    users_policy.require_connections(await users_policy.facts(context, user))
    limit, position = paging.arguments(context, first, after)
    key = (context.viewer_id, "user", user.id, limit, position)
    found = await context.loaders.posts.posts_page.load(key)
    context.loaders.posts.prime(found.items)
    return paging.to_page(context, found, lambda p: p.id, position)


@dataclass(frozen=True)
class Wanted:
    """What a page's query selects on its posts, to load in one batch per kind."""

    media: bool = False
    liked: bool = False
    saved: bool = False
    comments: tuple[int | None, str | None] | None = None  # (first, after) of `comments`


def extras_for(context: Context, wanted: Wanted | None) -> Extras | None:
    """What a page query should read along with its posts (on its own connection)."""
    if wanted is None:
        return None
    comments_ = None
    if wanted.comments is not None:
        try:
            comments_ = paging.arguments(context, *wanted.comments)
        except BadUserInput:
            comments_ = None  # the comments field itself reports it
    marks = wanted.liked or wanted.saved
    return Extras(
        media=wanted.media,
        marks_of=context.viewer_id if marks else None,
        comments=comments_,
        viewer_id=context.viewer_id,
    )


def keep_extras(context: Context, found: Slice[PostRecord], extras: Extras | None) -> None:
    """Cache what the page read along, for its posts' fields."""
    if extras is not None and found.extras is not None:
        context.loaders.posts.prime_extras(context.viewer_id, found.items, extras, found.extras)


async def prefetch(context: Context, posts: list[PostRecord], wanted: Wanted) -> None:
    """Load what the selection asks of a page's posts, each kind in one batch, before
    the fields ask: they then resolve at once instead of each waiting on a loader
    (datasources/loading.py). Costs no statement the fields would not have run."""
    ids = [post.id for post in posts]
    viewer_id = context.viewer_id
    loads: list[Awaitable[Any]] = []
    if wanted.media:
        loads += _load_missing(context.loaders.posts.media, ids)
    if (wanted.liked or wanted.saved) and viewer_id is not None:
        loads += _load_missing(context.loaders.posts.marks(viewer_id), ids)
    if wanted.comments is not None:
        first, after = wanted.comments
        loads += comments.prefetch_threads(context, "post", ids, first, after)
    if loads:
        await asyncio.gather(*loads)


def _load_missing(loader: DataLoader[int, Any], ids: list[int]) -> list[Awaitable[Any]]:
    """The load of what the page did not read along (see `keep_extras`), if any."""
    missing = unloaded(loader, ids)
    return [loader.load_many(missing)] if missing else []


# ── writes ───────────────────────────────────────────────────────────────


async def create_post(context: Context, data: CreatePost) -> PostRecord:
    viewer = context.require_viewer()
    caption = _caption(data.caption)
    policy.require_visibility(context.platform, data.visibility)
    media_ids = await _media(context, data.media_ids)
    location = _location(data.location)
    if caption is None and not media_ids:
        raise BadUserInput("a post needs a caption or media", field="caption")
    new = NewPost(
        platform=context.platform,
        author_id=viewer.user_id,
        caption=caption,
        hashtags=text.hashtags(caption),
        visibility=data.visibility,
        media_ids=media_ids,
        mention_ids=await _mentions(context, caption),
        location=location,
    )
    try:
        created = await context.stores.posts.create(new)
    except Gone:
        raise NotFound("media") from None
    context.loaders.posts.replace(created)
    return created


async def share_post(context: Context, post_id: str, caption: str | None) -> PostRecord:
    """A PUBLIC post whose sharedPost is the original (which must be visible: else
    NOT_FOUND); the original's shareCount grows in the same transaction."""
    viewer = context.require_viewer()
    original = await policy.require_post(context, decode_id(post_id, "Post", field="postId"))
    text_ = _caption(caption)
    new = NewPost(
        platform=context.platform,
        author_id=viewer.user_id,
        caption=text_,
        hashtags=text.hashtags(text_),
        visibility="PUBLIC",
        mention_ids=await _mentions(context, text_),
        shared_post_id=original.id,
    )
    try:
        share = await context.stores.posts.create(new)
    except Gone:
        raise NotFound("post") from None
    context.loaders.posts.forget(original.id)
    context.loaders.posts.replace(share)
    return share


async def edit_post(context: Context, post_id: str, caption: str) -> PostRecord:
    """Author only; sets editedAt and re-parses hashtags and mentions."""
    context.require_viewer()
    post = await policy.require_own_post(context, decode_id(post_id, "Post"), "edit")
    new_caption = _caption(caption)
    try:
        edited = await context.stores.posts.edit(
            post,
            new_caption,
            text.hashtags(new_caption),
            await _mentions(context, new_caption),
        )
    except Gone:
        raise NotFound("post") from None
    context.loaders.posts.replace(edited)
    return edited


async def delete_post(context: Context, post_id: str) -> bool:
    """Author only. The post, its comments, likes and saves go; shares of it remain
    with sharedPost null; if it was a share, the original's shareCount drops."""
    context.require_viewer()
    post = await policy.require_own_post(context, decode_id(post_id, "Post"), "delete")
    if not await context.stores.posts.delete(post):
        raise NotFound("post")
    context.loaders.posts.forget(post.id)
    if post.shared_post_id is not None:
        context.loaders.posts.forget(post.shared_post_id)
    return True


# ── validation ───────────────────────────────────────────────────────────


def _caption(value: str | None) -> str | None:
    """Blank is no caption; at most MAX_CAPTION characters."""
    if value is None or not value.strip():
        return None
    if len(value) > MAX_CAPTION:
        raise BadUserInput(f"caption must be at most {MAX_CAPTION} characters", field="caption")
    return value


async def _media(context: Context, global_ids: tuple[str, ...]) -> tuple[int, ...]:
    if len(global_ids) > MAX_MEDIA:
        raise BadUserInput(f"at most {MAX_MEDIA} media per post", field="mediaIds")
    ids = tuple(decode_id(gid, "Media", field="mediaIds") for gid in global_ids)
    if len(set(ids)) != len(ids):
        raise BadUserInput("the same media twice", field="mediaIds")
    found = await context.loaders.media.by_id.load_many(list(ids))  # platform-scoped
    for media in found:
        if media is None:
            raise NotFound("media")
        if media.owner_id != context.viewer_id:
            raise Forbidden("mediaIds must be media you uploaded")
    return ids


def _location(value: LocationInput | None) -> NewLocation | None:
    if value is None:
        return None
    name = value.name.strip()
    if not 1 <= len(name) <= MAX_LOCATION_NAME:
        raise BadUserInput(
            f"location name must be 1-{MAX_LOCATION_NAME} characters", field="location"
        )
    lat, lon = value.latitude, value.longitude
    if not (math.isfinite(lat) and -90 <= lat <= 90):
        raise BadUserInput("latitude must be between -90 and 90", field="latitude")
    if not (math.isfinite(lon) and -180 <= lon <= 180):
        raise BadUserInput("longitude must be between -180 and 180", field="longitude")
    return NewLocation(name, lat, lon)


async def _mentions(context: Context, caption: str | None) -> tuple[int, ...]:
    """Ids of the mentioned users on this platform, in caption order; unknown names and
    users with a block either way with the author are left out."""
    names = text.mentions(caption)
    if not names:
        return ()
    found = await context.stores.posts.user_ids_by_username(context.platform, names)
    ids = [found[name] for name in names if name in found]
    kept = []
    for user_id in ids:
        rel = await policy.relationship(context, user_id)
        if not (rel.blocking or rel.blocked_by):
            kept.append(user_id)
    return tuple(kept)
