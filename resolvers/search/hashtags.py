"""Hashtags: a tag's counts, posts, takes and related tags; trending tags.

Names are normalized as captions store them (resolvers/posts/text.py): a leading
'#' is optional, case is folded (`#Sunset`, `sunset` and `SUNSET` are one tag). A
name that is not a tag (empty, spaces, punctuation, too long) names nothing: like
an unused tag, `Query.hashtag` answers null, not an error: a client typing into a
search box should not have to validate first.

What is counted and who sees what (the SQL and the formulas:
datasources/search/hashtags.py):
- postCount, takeCount, trending counts and related tags are aggregates over every
  use on the platform (no content is shown), like a tag page's "N posts".
- Hashtag.posts lists only posts the viewer may see (the posts visibility rule,
  in the query); Hashtag.takes only takes the take policy lets the viewer see.
"""

from __future__ import annotations

from datetime import datetime

from datasources.posts.records import PostRecord
from datasources.posts.takes_store import TakePage, TakeRecord
from datasources.search.hashtags import (
    HashtagLoaders,
    HashtagStore,
    Related,
    TagCounts,
    Trending,
    Window,
)
from resolvers.context import Context
from resolvers.errors import BadUserInput
from resolvers.pagination import Page
from resolvers.posts import paging
from resolvers.posts.take_cursors import Listing
from resolvers.posts.takes import keyset_takes
from resolvers.posts.text import MAX_TAG_LENGTH
from resolvers.posts.trends import HASHTAG

MAX_LIMIT = 50
"""Most trending or related tags one request may ask for."""

_LOADERS = "search.hashtags"


def normalize(name: str) -> str | None:
    """'#Sunset' → 'sunset'; None when `name` cannot be a tag."""
    tag = name.strip().removeprefix("#").casefold()
    if not tag or len(tag) > MAX_TAG_LENGTH or not HASHTAG.fullmatch(tag):
        return None
    return tag


def loaders(context: Context) -> HashtagLoaders:
    """This request's hashtag loaders (kept on the context, made on first use)."""
    found = context.extra.get(_LOADERS)
    if not isinstance(found, HashtagLoaders):
        found = HashtagLoaders(HashtagStore(context.stores.db), context.platform)
        context.extra[_LOADERS] = found
    return found


def _limit(limit: int | None, default: int = 10) -> int:
    if limit is None:
        return default
    if limit < 0 or limit > MAX_LIMIT:
        raise BadUserInput(f"limit must be between 0 and {MAX_LIMIT}", field="limit")
    return limit


async def counts(context: Context, name: str) -> TagCounts:
    return await loaders(context).counts.load(name)


async def hashtag(context: Context, name: str) -> TagCounts | None:
    """Query.hashtag: the tag's counts, or None when it is not a tag or never used."""
    tag = normalize(name)
    if tag is None:
        return None
    found = await counts(context, tag)
    return found if found.used else None


async def trending(context: Context, window: Window, limit: int | None) -> list[Trending]:
    """Query.trendingHashtags: tags of the window, most surprising growth first."""
    size = _limit(limit)
    if size == 0:
        return []
    return await loaders(context).store.trending(context.platform, window, size)


async def related(context: Context, name: str, limit: int | None) -> list[Related]:
    """Hashtag.related: tags used together with this one, by Jaccard similarity."""
    size = _limit(limit)
    if size == 0:
        return []
    return await loaders(context).store.related(context.platform, name, size)


async def posts(
    context: Context, name: str, first: int | None, after: str | None
) -> Page[PostRecord]:
    """Hashtag.posts: the tag's posts the viewer may see, newest first."""
    limit, position = paging.arguments(context, first, after)
    found = await loaders(context).store.posts(
        context.platform, name, context.viewer_id, position, limit
    )
    context.loaders.posts.prime(found.items)
    return paging.to_page(context, found, lambda post: post.id, position)


async def takes(
    context: Context, name: str, first: int | None, after: str | None
) -> Listing[TakeRecord]:
    """Hashtag.takes: the tag's takes the viewer may see, newest first."""
    store = loaders(context).store

    async def read(position: tuple[datetime, int] | None, limit: int) -> tuple[TakePage, int]:
        return await store.takes(context.platform, name, context.viewer_id, position, limit)

    return await keyset_takes(context, first, after, read)
