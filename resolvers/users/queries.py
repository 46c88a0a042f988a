"""Reading users and their lists, always inside the request's platform.

Authorization first (resolvers/users/policy.py), then argument validation, then
one read. List reads join the users they return and prime the per-request user
loader, so the fields of each listed user cost no extra query.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence

from datasources.loading import MaybeAwaitable, then
from datasources.users.graph import After, RelatedPage, RelationshipRecord
from datasources.users.store import UserRecord
from resolvers.context import Context
from resolvers.errors import BadUserInput, NotFound
from resolvers.ids import split_id
from resolvers.pagination import Keyset, Page, decode_cursor, page_size
from resolvers.users import policy


async def user_by_global_id(context: Context, global_id: str) -> UserRecord | None:
    """node(id) and entity references: None alike for an unknown id and for a block
    either way (as `user(username:)` answers NOT_FOUND for both)."""
    parts = split_id(global_id)
    if parts is None or parts[0] != "User" or not parts[1].isdigit():
        return None
    record = await context.loaders.users.by_id.load(int(parts[1]))
    if record is None or not policy.can_see_profile(await policy.facts(context, record)):
        return None
    return record


async def viewer(context: Context) -> UserRecord | None:
    if context.viewer is None:
        return None
    return await context.loaders.users.by_id.load(context.viewer.user_id)


async def user_by_username(context: Context, username: str) -> UserRecord:
    """NOT_FOUND alike for an unknown username and for a block either way."""
    record = await context.stores.users.by_username(context.platform, username)
    if record is None:
        raise NotFound("user")
    context.loaders.users.prime([record])
    policy.require_profile(await policy.facts(context, record))
    return record


def viewer_relationship(
    context: Context, target: UserRecord
) -> MaybeAwaitable[RelationshipRecord | None]:
    return then(policy.facts_now(context, target), policy.shown_relationship)


async def prefetch(
    context: Context, users: Sequence[UserRecord], avatars: bool, relationships: bool
) -> None:
    """Load, one batch each, the avatars and viewer relationships of a page of users,
    so that their fields resolve from the loaders' cache without a task per node."""
    loads: list[Awaitable[object]] = []
    if avatars:
        ids = [user.avatar_media_id for user in users if user.avatar_media_id is not None]
        loads.append(context.loaders.media.by_id.load_many(ids))
    viewer_id = context.viewer_id
    if relationships and viewer_id is not None:
        others = [user.id for user in users if user.id != viewer_id]
        loads.append(context.loaders.users.relationship(viewer_id).load_many(others))
    await asyncio.gather(*loads)


# ── a user's lists ───────────────────────────────────────────────────────


async def followers(
    context: Context, target: UserRecord, first: int | None, after: str | None
) -> Page[UserRecord]:
    """totalCount is the denormalized follower_count: no COUNT(*) on read."""
    policy.require_connections(await policy.facts(context, target))
    limit, position = _arguments(context, first, after)
    page = await context.stores.users.graph.followers(
        context.platform, target.id, position, limit, hide_for=context.viewer_id
    )
    return _page(context, page, target.follower_count, position)


async def following(
    context: Context, target: UserRecord, first: int | None, after: str | None
) -> Page[UserRecord]:
    """totalCount is the denormalized following_count: no COUNT(*) on read."""
    policy.require_connections(await policy.facts(context, target))
    limit, position = _arguments(context, first, after)
    page = await context.stores.users.graph.following(
        context.platform, target.id, position, limit, hide_for=context.viewer_id
    )
    return _page(context, page, target.following_count, position)


async def friends(
    context: Context, target: UserRecord, first: int | None, after: str | None
) -> Page[UserRecord]:
    """Socialink friendships; on Vignette always empty (after validating arguments)."""
    policy.require_connections(await policy.facts(context, target))
    limit, position = _arguments(context, first, after)
    if not policy.has_friends(context.platform):
        return Page([], has_next=False, has_previous=position is not None, total_count=0)
    page = await context.stores.users.graph.friends(
        context.platform, target.id, position, limit, hide_for=context.viewer_id
    )
    total = await context.loaders.users.friend_count.load(target.id)
    return _page(context, page, total, position)


# ── the viewer's own lists ───────────────────────────────────────────────

ViewerList = Callable[[str, int, After | None, int], Awaitable[tuple[RelatedPage, int]]]


async def follow_requests(
    context: Context, first: int | None, after: str | None
) -> Page[UserRecord]:
    """Pending requests to follow the viewer, newest first."""
    return await viewer_list(context, context.stores.users.graph.follow_requests, first, after)


async def friend_requests(
    context: Context, first: int | None, after: str | None
) -> Page[UserRecord]:
    """Friend requests the viewer received (Socialink only), newest first."""
    context.require_viewer()
    policy.require_friends(context.platform)
    return await viewer_list(context, context.stores.users.graph.friend_requests, first, after)


async def blocked_users(context: Context, first: int | None, after: str | None) -> Page[UserRecord]:
    """Users the viewer blocks, newest block first (listed so they can be unblocked)."""
    return await viewer_list(context, context.stores.users.graph.blocked, first, after)


async def suggested_users(context: Context, limit: int | None) -> list[UserRecord]:
    """Friends of friends (Socialink) and accounts followed by accounts the viewer
    follows, ranked by how many of those link to each; see SocialGraph.suggestions."""
    viewer = context.require_viewer()
    maximum = context.settings.max_page_size
    count = 10 if limit is None else limit
    if not 0 <= count <= maximum:
        raise BadUserInput(f"limit must be between 0 and {maximum}", field="limit")
    users = await context.stores.users.graph.suggestions(
        context.platform, viewer.user_id, count, with_friends=policy.has_friends(context.platform)
    )
    context.loaders.users.prime(users)
    return users


# ── helpers ──────────────────────────────────────────────────────────────


async def viewer_list(
    context: Context, read: ViewerList, first: int | None, after: str | None
) -> Page[UserRecord]:
    viewer = context.require_viewer()
    limit, position = _arguments(context, first, after)
    page, total = await read(context.platform, viewer.user_id, position, limit)
    return _page(context, page, total, position)


def _arguments(context: Context, first: int | None, after: str | None) -> tuple[int, After | None]:
    """Validated `first` (0..max_page_size) and `after` (a cursor we issued)."""
    limit = page_size(first, context.settings.max_page_size)
    key = decode_cursor(after)
    if key is None:
        return limit, None
    if key.at.tzinfo is None:  # every cursor we issue carries its UTC offset
        raise BadUserInput("after is not a valid cursor", field="after")
    return limit, After(key.at, key.id)


def _page(
    context: Context, page: RelatedPage, total: int, position: After | None
) -> Page[UserRecord]:
    context.loaders.users.prime(item.user for item in page.items)
    return Page(
        items=[(Keyset(item.at, item.user.id), item.user) for item in page.items],
        has_next=page.has_next,
        has_previous=position is not None,
        total_count=total,
    )
