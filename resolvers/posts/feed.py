"""The home feed and saved posts: keyset pages filtered for visibility in SQL.

feed: posts of the accounts the viewer follows (approved), of their friends
(Socialink) and their own, newest first. Visibility and blocks are filtered in
the query (datasources/posts/visibility.py), so every page is full and the
cursor never skips a post; shares appear as posts (their sharedPost is checked
on its own).
"""

from __future__ import annotations

from datasources.posts.records import PostRecord
from resolvers.context import Context
from resolvers.pagination import Page
from resolvers.posts import paging
from resolvers.posts.posts import Wanted, extras_for, keep_extras


async def feed(
    context: Context,
    first: int | None,
    after: str | None,
    wanted: Wanted | None = None,
    with_total: bool = True,
) -> Page[PostRecord]:
    """`wanted`: what the query asks of the posts, read along on the page's connection;
    `with_total` False (totalCount not asked for) skips the capped count: the page's
    total_count is then 0 and must not be shown."""
    viewer = context.require_viewer()
    limit, position = paging.arguments(context, first, after)
    extras = extras_for(context, wanted)
    found = await context.stores.posts.feed(
        context.platform, viewer.user_id, position, limit, extras, with_total
    )
    context.loaders.posts.prime(found.items)
    keep_extras(context, found, extras)
    return paging.to_page(context, found, lambda post: post.id, position)


async def saved_posts(
    context: Context,
    first: int | None,
    after: str | None,
    wanted: Wanted | None = None,
    with_total: bool = True,
) -> Page[PostRecord]:
    """The viewer's saved posts (theirs alone: there is no way to ask for another
    user's), most recently saved first; posts they can no longer see are left out.
    `wanted` and `with_total` as for `feed`."""
    viewer = context.require_viewer()
    limit, position = paging.arguments(context, first, after)
    extras = extras_for(context, wanted)
    found = await context.stores.posts.saved_posts(
        context.platform, viewer.user_id, position, limit, extras, with_total
    )
    context.loaders.posts.prime(found.items)
    keep_extras(context, found, extras)
    return paging.to_page(context, found, lambda post: post.id, position)
