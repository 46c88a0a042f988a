"""search and autocomplete: the rules between the GraphQL fields and the index.

Privacy, twice:
1. The viewer's audience (datasources/search/audience.py, one query) becomes the
   SearchQuery's grants and exclusions, so the index itself leaves out what the
   viewer may not see (and counts and pages without it): posts are returned when
   PUBLIC, FOLLOWERS of an account the viewer follows, FRIENDS of a friend, or the
   viewer's own; nothing by an account blocking or blocked by the viewer; no
   content of a private account the viewer neither follows nor is friends with.
2. Every hit is then loaded through the per-request loaders (the node a client
   gets is the current row, not the indexed copy) and checked by the domain's own
   policy (resolvers/posts/policy.py `allows`, take_policy `can_see_take`, a block
   for a user). A hit that fails, or whose row is gone (the index lags the store
   by one event), is dropped: an index that is behind can never leak.

Ranking, typo tolerance and pagination are the index's (datasources/search/store.py).
Each first page is logged: the operators' daily rollup (no user ids) and the signed-in
viewer's history; each search is timed in `/metrics` by search type.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from datasources.search.audience import Audience, audience
from datasources.search.ranking import MAX_PAGE, BadCursor
from datasources.search.records import (
    ALL_TYPES,
    GeoFilter,
    SearchHit,
    SearchQuery,
    SearchType,
    Suggestion,
)
from datasources.sql import utcnow
from resolvers.context import Context
from resolvers.errors import BadUserInput
from resolvers.ids import decode_id
from resolvers.posts import policy as post_policy
from resolvers.posts import take_policy

MAX_QUERY_LENGTH = 200
MAX_RADIUS_KM = 20_037.5  # half the Earth's circumference: anywhere
MAX_SUGGESTIONS = 20
# How stale the embedded index of a serving process may be after another process
# (`entativa search reindex`) swapped in a new generation: it follows the swap on
# its next refresh, which the indexer does per event and searches at most this often.
FOLLOW_SWAP_SECONDS = 1.0
_followed_at: dict[int, tuple[float, int]] = {}  # index → (looked at, CURRENT's mtime)


@dataclass(frozen=True)
class Filter:
    """SearchFilter as plain values (schema/search/results.py converts the input)."""

    types: frozenset[SearchType] | None = None
    since: datetime | None = None
    until: datetime | None = None
    near: GeoFilter | None = None
    min_likes: int | None = None
    author_id: str | None = None  # a global User id


@dataclass(frozen=True)
class Found:
    """A hit the viewer may see, with the record its node shows."""

    hit: SearchHit
    node: Any  # UserRecord | PostRecord | TakeRecord | LocationRecord | str (a tag)


@dataclass(frozen=True)
class Results:
    found: list[Found]
    total: int
    took_ms: float
    has_next_page: bool
    end_cursor: str | None


def type_label(types: frozenset[SearchType] | None) -> str:
    """One bounded label for metrics and the rollup: a type, ALL or MIXED."""
    if types is None or types == ALL_TYPES:
        return "ALL"
    if len(types) == 1:
        return next(iter(types)).value
    return "MIXED"


def _validated(text: str, given: Filter | None, first: int | None) -> tuple[str, Filter, int]:
    if len(text) > MAX_QUERY_LENGTH:
        raise BadUserInput(f"query is longer than {MAX_QUERY_LENGTH} characters", field="query")
    size = 20 if first is None else first
    if not 1 <= size <= MAX_PAGE:
        raise BadUserInput(f"first must be between 1 and {MAX_PAGE}", field="first")
    chosen = given or Filter()
    if chosen.types is not None and not chosen.types:
        raise BadUserInput("types must name at least one SearchType", field="types")
    near = chosen.near
    if near is not None:
        if not (-90 <= near.latitude <= 90 and -180 <= near.longitude <= 180):
            raise BadUserInput("near is not a valid coordinate", field="near")
        if not 0 < near.radius_km <= MAX_RADIUS_KM:
            raise BadUserInput(f"radiusKm must be in (0, {MAX_RADIUS_KM}]", field="radiusKm")
    if chosen.min_likes is not None and chosen.min_likes < 0:
        raise BadUserInput("minLikes cannot be negative", field="minLikes")
    if chosen.since and chosen.until and chosen.since > chosen.until:
        raise BadUserInput("since is after until", field="since")
    return text.strip(), chosen, size


def _query(
    context: Context, text: str, chosen: Filter, size: int, after: str | None, seen: Audience
) -> SearchQuery:
    viewer = context.viewer_id
    # The author always sees their own content; FOLLOWERS/FRIENDS reach those the
    # author approved or befriended, PRIVATE the author only (policy.can_see).
    own = frozenset({viewer}) if viewer is not None else frozenset()
    grants = (
        {
            "FOLLOWERS": seen.followed | own,
            "FRIENDS": seen.friends | own,
            "PRIVATE": own,
        }
        if viewer is not None
        else {}
    )
    hidden_private = seen.private - seen.followed - seen.friends - own
    author = decode_id(chosen.author_id, "User", "authorId") if chosen.author_id else None
    return SearchQuery(
        platform=context.platform,
        text=text,
        types=chosen.types,
        since=chosen.since,
        until=chosen.until,
        near=chosen.near,
        min_likes=chosen.min_likes,
        author_id=author,
        excluded_author_ids=seen.blocked | hidden_private,
        excluded_user_ids=seen.blocked,
        grants=grants,
        boost_author_ids=seen.followed,
        first=size,
        after=after,
    )


async def search(
    context: Context, text: str, given: Filter | None, first: int | None, after: str | None
) -> Results:
    started = time.perf_counter()
    text, chosen, size = _validated(text, given, first)
    stores = context.stores
    await follow_swaps(context)
    seen = await audience(stores.db, context.platform, context.viewer_id)
    query = _query(context, text, chosen, size, after, seen)
    try:
        page = await stores.search.search(query)
    except BadCursor as error:
        raise BadUserInput("after is not a valid cursor", field="after") from error
    found = await visible(context, page.hits)
    label = type_label(chosen.types)
    if after is None:
        history_type = label if label not in ("ALL", "MIXED") else None
        await stores.search_log.record(
            context.platform,
            context.viewer_id,
            text,
            history_type,
            label,
            zero_results=page.total == 0,
            at=utcnow(),
        )
    took = time.perf_counter() - started
    stores.search_metrics.observe(context.platform, label, took, page.total)
    return Results(
        found=found,
        total=page.total,
        took_ms=round(took * 1000, 3),
        has_next_page=page.has_next_page,
        end_cursor=page.end_cursor,
    )


async def follow_swaps(context: Context) -> None:
    """On the embedded index, pick up a rebuild swapped in by another process: its
    `CURRENT` pointer file changed (tantivy_index.py; looked at at most once per
    FOLLOW_SWAP_SECONDS). Commits of another process need nothing (Tantivy's reader
    reloads on commit), nor does an Elasticsearch alias."""
    stores = context.stores
    config = stores.search_config
    if config.backend != "tantivy":
        return
    index, now = stores.search, time.monotonic()
    last_look, last_seen = _followed_at.get(id(index), (0.0, 0))
    if now - last_look < FOLLOW_SWAP_SECONDS:
        return
    try:
        changed_at = (config.path / "CURRENT").stat().st_mtime_ns
    except OSError:
        changed_at = 0
    _followed_at[id(index)] = (now, changed_at)
    if changed_at != last_seen:  # the first look refreshes once: the swap may predate it
        await index.refresh()


async def visible(context: Context, hits: list[SearchHit]) -> list[Found]:
    """The hits the viewer may see, in order, each with its current record (every
    load batched: one statement per kind for the whole page)."""
    checked = await asyncio.gather(*(_check(context, hit.type, hit.id) for hit in hits))
    return [Found(hit, node) for hit, node in zip(hits, checked, strict=True) if node is not None]


async def _check(context: Context, type_: SearchType, doc_id: str) -> Any:
    loaders = context.loaders
    if type_ is SearchType.HASHTAG:
        return doc_id
    pk = int(doc_id)
    if type_ is SearchType.POST:
        return await post_policy.visible_post(context, pk)
    if type_ is SearchType.TAKE:
        take = await loaders.takes.by_id.load(pk)
        return take if await take_policy.can_see_take(context, take) else None
    if type_ is SearchType.LOCATION:
        return await loaders.posts.location.load(pk)
    user = await loaders.users.by_id.load(pk)
    if user is None:
        return None
    rel = await post_policy.relationship(context, pk)
    return None if rel.blocking or rel.blocked_by else user


async def autocomplete(
    context: Context, prefix: str, types: frozenset[SearchType] | None, limit: int | None
) -> list[tuple[Suggestion, Any]]:
    """Names starting with the prefix, accounts the viewer follows first; the same
    checks as search (a blocked account is never suggested)."""
    started = time.perf_counter()
    if len(prefix) > MAX_QUERY_LENGTH:
        raise BadUserInput(f"prefix is longer than {MAX_QUERY_LENGTH} characters", field="prefix")
    size = 8 if limit is None else limit
    if not 1 <= size <= MAX_SUGGESTIONS:
        raise BadUserInput(f"limit must be between 1 and {MAX_SUGGESTIONS}", field="limit")
    if types is not None and not types:
        raise BadUserInput("types must name at least one SearchType", field="types")
    if not prefix.strip():
        return []
    stores = context.stores
    await follow_swaps(context)
    seen = await _suggestion_audience(context)
    suggestions = await stores.search.autocomplete(
        context.platform,
        prefix,
        types,
        boost_ids=seen.followed,
        limit=size,
        excluded_user_ids=seen.blocked,
    )
    checked = await asyncio.gather(*(_check(context, s.type, s.id) for s in suggestions))
    took = time.perf_counter() - started
    stores.search_metrics.seconds.labels(context.platform, "AUTOCOMPLETE").observe(took)
    return [(s, node) for s, node in zip(suggestions, checked, strict=True) if node is not None]


async def _suggestion_audience(context: Context) -> Audience:
    if context.viewer_id is None:
        return Audience()
    return await audience(context.stores.db, context.platform, context.viewer_id)
