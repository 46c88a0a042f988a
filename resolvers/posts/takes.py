"""Takes: create, delete, like, view, Behind-the-Takes, the ranked feed, a user's takes.

Authorization first (resolvers/posts/take_policy.py), then input validation,
then one write through TakeStore, which emits the events in its transaction.
Bad input raises before anything is written, so it changes nothing.

Decisions worth knowing:
- A take's `durationMs` is the video's (probed at upload), at most 10 minutes.
- An unknown, hidden or other-platform templateId / trendId / sourceTakeId is
  NOT_FOUND (the id is well-formed but names nothing the viewer can use), like
  every other reference in the contract; a malformed id is BAD_USER_INPUT.
- recordTakeView counts one view per signed-in viewer per hour (sliding: at
  least an hour after the last counted one). Signed-out views and the author's
  own views are not counted (they cannot be deduplicated / would inflate the
  count); the take is returned either way.
- takesFeed ranks (see `feed_score`), not by time.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from datasources.posts.takes_store import (
    BehindRecord,
    FeedCandidate,
    Gone,
    NewStep,
    NewTake,
    TakePage,
    TakeRecord,
)
from datasources.sql import utcnow
from datasources.users.store import UserRecord
from resolvers.context import Context
from resolvers.errors import BadUserInput, NotFound
from resolvers.ids import decode_id, key_of
from resolvers.pagination import Keyset, decode_cursor, encode_cursor, page_size
from resolvers.posts import take_policy as policy
from resolvers.posts import text
from resolvers.posts.take_cursors import Listing, RankedCursor
from resolvers.users import policy as users_policy

MAX_DURATION_MS = 10 * 60 * 1000
MAX_CAPTION = 2200
MAX_SOUND_NAME = 200
MAX_STEPS = 20
MAX_STEP_TITLE = 200
MAX_STEP_BODY = 2200
MAX_TOOLS = 20
MAX_TOOL = 50


def parse_hashtags(caption: str | None) -> tuple[str, ...]:
    """Case-folded hashtags of a caption (the posts rules: resolvers/posts/text.py)."""
    return text.hashtags(caption)


def take_key(global_id: str) -> int | None:
    """The pk of a Take global id, or None when it is not one."""
    return key_of(global_id, "Take")


# ── reads ────────────────────────────────────────────────────────────────


async def take_by_global_id(context: Context, global_id: str) -> TakeRecord | None:
    """The take if the viewer may see it, else None (node, entity references)."""
    pk = take_key(global_id)
    if pk is None:
        return None
    take = await context.loaders.takes.by_id.load(pk)
    return take if await policy.can_see_take(context, take) else None


async def take(context: Context, global_id: str) -> TakeRecord:
    """Query.take: NOT_FOUND alike for unknown, deleted, hidden and other-platform ids."""
    pk = decode_id(global_id, "Take")
    return await policy.require_take(context, await context.loaders.takes.by_id.load(pk))


async def visible_take(context: Context, take_id: int | None) -> TakeRecord | None:
    """A take another object points at (sourceTake, originator), when visible."""
    if take_id is None:
        return None
    found = await context.loaders.takes.by_id.load(take_id)
    return found if await policy.can_see_take(context, found) else None


async def viewer_has_liked(context: Context, take: TakeRecord) -> bool:
    if context.viewer_id is None:
        return False
    return await context.loaders.takes.liked_by(context.viewer_id).load(take.id)


async def behind_the_take(context: Context, take: TakeRecord) -> BehindRecord | None:
    return await context.loaders.takes.behind_of_take.load(take.id)


async def behind_by_global_id(context: Context, global_id: str) -> BehindRecord | None:
    pk = key_of(global_id, "BehindTheTake")
    if pk is None:
        return None
    found = await context.loaders.takes.behind.load(pk)
    if found is None or await visible_take(context, found.take_id) is None:
        return None
    return found


async def prefetch(context: Context, takes: Sequence[TakeRecord], wanted: frozenset[str]) -> None:
    """Load, one batch per kind, what the selected fields of a page of takes need
    (and what their visibility checks need), so the fields resolve from the
    loaders' cache: the statement count of a page does not depend on its size
    or on which takes share authors, trends or templates."""
    loaders = context.loaders.takes
    viewer_id = context.viewer_id
    linked = "trend" in wanted or "originator" in wanted
    trends = await loaders.trend.load_many(
        sorted({t.trend_id for t in takes if t.trend_id is not None}) if linked else []
    )
    templates = await loaders.template.load_many(
        sorted({t.template_id for t in takes if t.template_id is not None})
        if "template" in wanted
        else []
    )
    originators = await loaders.by_id.load_many(
        sorted({tr.originator_take_id for tr in trends if tr is not None})
        if "originator" in wanted
        else []
    )
    loads: list[Awaitable[object]] = []
    if "video" in wanted:
        loads.append(context.loaders.media.by_id.load_many([t.video_media_id for t in takes]))
    if "viewerHasLiked" in wanted and viewer_id is not None:
        loads.append(loaders.liked_by(viewer_id).load_many([t.id for t in takes]))
    users = {t.author_id for t in takes}  # every take's visibility depends on its author
    users |= {tr.originator_author_id for tr in trends if tr is not None}
    users |= {tm.creator_id for tm in templates if tm is not None}
    users |= {o.author_id for o in originators if o is not None}
    loads.append(context.loaders.users.by_id.load_many(sorted(users)))
    if viewer_id is not None:
        others = sorted(u for u in users if u != viewer_id)
        loads.append(context.loaders.users.relationship(viewer_id).load_many(others))
    await asyncio.gather(*loads)


ReadPage = Callable[[tuple[datetime, int] | None, int], Awaitable[tuple[TakePage, int]]]


async def keyset_takes(
    context: Context,
    first: int | None,
    after: str | None,
    read: ReadPage,
    at: Callable[[TakeRecord], datetime] = lambda take: take.created_at,
) -> Listing[TakeRecord]:
    """A page of takes sorted by (`at`, id): validated arguments, one `read` of the
    store, the loader primed with the takes, (at, id) cursors."""
    limit = page_size(first, context.settings.max_page_size)
    position = decode_cursor(after)
    page, total = await read((position.at, position.id) if position else None, limit)
    context.loaders.takes.prime(page.items)
    return Listing(
        items=[(encode_cursor(Keyset(at(t), t.id)), t) for t in page.items],
        has_next=page.has_next,
        has_previous=position is not None,
        total_count=total,
    )


async def user_takes(
    context: Context, author: UserRecord, first: int | None, after: str | None
) -> Listing[TakeRecord]:
    """User.takes, newest first: FORBIDDEN for a private account's non-followers
    (like its other lists), NOT_FOUND across a block."""
    users_policy.require_connections(await users_policy.facts(context, author))

    def read(position: tuple[datetime, int] | None, limit: int) -> Awaitable[tuple[TakePage, int]]:
        return context.stores.takes.author_takes(context.platform, author.id, position, limit)

    return await keyset_takes(context, first, after, read)


# ── the ranked feed ──────────────────────────────────────────────────────

FEED_CANDIDATES = 1000
"""How many of the newest visible takes the feed ranks (older ones have decayed)."""
GRAVITY = 1.8
TREND_BOOST = 1.5


def feed_score(take: FeedCandidate, now: datetime) -> float:
    """The takesFeed rank of a take: engagement, discounted by age, boosted by trends.

        points = 1 + likes + 2·comments + 3·shares + views / 10
        score  = points · (1.5 if the take joined a trend else 1) / (age_hours + 2) ^ 1.8

    The age decay is Hacker News' gravity formula (Paul Graham's news.arc; see
    https://medium.com/hacking-and-gonzo/how-hacker-news-ranking-algorithm-works-1d9b0cf2c08d):
    a take's score falls polynomially with age, so fresh takes surface and old
    ones need far more engagement to stay. Comments and shares weigh more than
    likes (more effort, more reach); a view weighs a tenth of a like (cheap and
    counted once per viewer per hour). Trend participation multiplies the score
    by 1.5: challenges are what the takes surface is for. The leading 1 ranks a
    brand-new take with no engagement by recency alone.
    """
    points: float = 1 + take.like_count + 2 * take.comment_count + 3 * take.share_count
    points += take.view_count / 10.0
    boost = TREND_BOOST if take.in_trend else 1.0
    age_hours = max((now - take.created_at).total_seconds(), 0.0) / 3600
    return points * boost / (age_hours + 2) ** GRAVITY


@dataclass(frozen=True)
class _Ranked:
    score: float
    candidate: FeedCandidate

    @property
    def key(self) -> tuple[float, float]:
        return (self.score, float(self.candidate.id))


async def takes_feed(context: Context, first: int | None, after: str | None) -> Listing[TakeRecord]:
    """Query.takesFeed: the newest FEED_CANDIDATES visible takes, ranked by
    `feed_score` as of the first page's time (carried in the cursor)."""
    limit = page_size(first, context.settings.max_page_size)
    cursor = RankedCursor.decode(after, key_size=2)
    now = cursor.ranked_at if cursor else utcnow()
    candidates = await context.stores.takes.feed_candidates(
        context.platform, context.viewer_id, now, FEED_CANDIDATES
    )
    ranked = sorted(
        (_Ranked(feed_score(c, now), c) for c in candidates), key=lambda r: r.key, reverse=True
    )
    if cursor is not None:
        ranked = [r for r in ranked if r.key < cursor.key]
    page = ranked[:limit]
    takes = await context.loaders.takes.by_id.load_many([r.candidate.id for r in page])
    items = [
        (RankedCursor(now, r.key).encode(), t)
        for r, t in zip(page, takes, strict=True)
        if t is not None
    ]
    return Listing(items, len(ranked) > limit, cursor is not None, len(candidates))


# ── writes ───────────────────────────────────────────────────────────────


async def create_take(
    context: Context,
    video_media_id: str,
    caption: str | None,
    sound_name: str | None,
    template_id: str | None,
    trend_id: str | None,
) -> TakeRecord:
    viewer = context.require_viewer()
    media_pk = decode_id(video_media_id, "Media", "videoMediaId")
    template_pk = decode_id(template_id, "TakeTemplate", "templateId") if template_id else None
    trend_pk = decode_id(trend_id, "TakeTrend", "trendId") if trend_id else None
    caption = text.optional_text(caption, MAX_CAPTION, "caption")
    sound_name = text.optional_text(sound_name, MAX_SOUND_NAME, "soundName")
    duration_ms = await _video_duration(context, media_pk, viewer.user_id)
    if template_pk is not None:
        await policy.require_template(
            context, await context.loaders.takes.template.load(template_pk)
        )
    if trend_pk is not None:
        await policy.require_trend(context, await context.loaders.takes.trend.load(trend_pk))
    new = NewTake(
        platform=context.platform,
        author_id=viewer.user_id,
        video_media_id=media_pk,
        caption=caption,
        hashtags=parse_hashtags(caption),
        sound_name=sound_name,
        duration_ms=duration_ms,
        template_id=template_pk,
        trend_id=trend_pk,
    )
    try:
        created = await context.stores.takes.create_take(new)
    except Gone as gone:  # deleted between the check and the write
        raise NotFound(gone.what) from gone
    _forget_template_and_trend(context, template_pk, trend_pk)
    context.loaders.takes.prime([created])
    return created


def _forget_template_and_trend(
    context: Context, template_id: int | None, trend_id: int | None
) -> None:
    """Their counters changed: the next read in this request must see it."""
    if template_id is not None:
        context.loaders.takes.forget_template(template_id)
    if trend_id is not None:
        context.loaders.takes.forget_trend(trend_id)


async def _video_duration(context: Context, media_id: int, author_id: int) -> int:
    media = await context.loaders.media.by_id.load(media_id)
    if media is None or media.owner_id != author_id:
        raise BadUserInput("videoMediaId must be a video you uploaded", field="videoMediaId")
    if media.kind != "VIDEO":
        raise BadUserInput("videoMediaId is not a video", field="videoMediaId")
    if not media.duration_ms or media.duration_ms <= 0:
        raise BadUserInput("the video's duration is unknown", field="videoMediaId")
    if media.duration_ms > MAX_DURATION_MS:
        raise BadUserInput("a take is at most 10 minutes long", field="videoMediaId")
    return media.duration_ms


async def delete_take(context: Context, global_id: str) -> bool:
    """deleteTake: the author only (FORBIDDEN for others, NOT_FOUND when hidden)."""
    context.require_viewer()
    pk = decode_id(global_id, "Take")
    found = await policy.require_own_take(
        context, await context.loaders.takes.by_id.load(pk), "delete it"
    )
    deleted = await context.stores.takes.delete_take(context.platform, pk, found.author_id)
    if deleted is None:
        raise NotFound("take")  # deleted meanwhile by another request
    context.loaders.takes.forget_take(pk)
    _forget_template_and_trend(context, deleted.template_id, deleted.trend_id)
    return True


async def like_take(context: Context, global_id: str, like: bool) -> TakeRecord:
    """likeTake / unlikeTake: idempotent; the take as it is afterwards."""
    viewer = context.require_viewer()
    pk = decode_id(global_id, "Take", "takeId")
    await policy.require_take(context, await context.loaders.takes.by_id.load(pk))
    store = context.stores.takes
    try:
        if like:
            await store.like(context.platform, pk, viewer.user_id)
        else:
            await store.unlike(context.platform, pk, viewer.user_id)
    except Gone as gone:
        raise NotFound(gone.what) from gone
    return await _reloaded(context, pk)


async def record_view(context: Context, global_id: str) -> TakeRecord:
    pk = decode_id(global_id, "Take", "takeId")
    found = await policy.require_take(context, await context.loaders.takes.by_id.load(pk))
    viewer_id = context.viewer_id
    if viewer_id is None or viewer_id == found.author_id:
        return found
    try:
        counted = await context.stores.takes.record_view(pk, viewer_id, utcnow())
    except Gone as gone:
        raise NotFound(gone.what) from gone
    return await _reloaded(context, pk) if counted else found


async def _reloaded(context: Context, take_id: int) -> TakeRecord:
    context.loaders.takes.forget_take(take_id)
    found = await context.loaders.takes.by_id.load(take_id)
    if found is None:
        raise NotFound("take")
    return found


@dataclass(frozen=True)
class StepInput:
    title: str
    body: str | None
    media_id: str | None


async def add_behind_the_take(
    context: Context, take_id: str, steps: Sequence[StepInput], tools: Sequence[str] | None
) -> BehindRecord:
    """addBehindTheTake: the take's author only; 1–20 steps; replaces an earlier one."""
    viewer = context.require_viewer()
    pk = decode_id(take_id, "Take", "takeId")
    await policy.require_own_take(
        context, await context.loaders.takes.by_id.load(pk), "add its Behind-the-Take"
    )
    if not 1 <= len(steps) <= MAX_STEPS:
        raise BadUserInput(f"give 1 to {MAX_STEPS} steps", field="steps")
    new_steps = [await _step(context, step, viewer.user_id) for step in steps]
    clean_tools = _tools(tools or [])
    try:
        behind = await context.stores.takes.add_behind(
            context.platform, pk, viewer.user_id, new_steps, clean_tools
        )
    except Gone as gone:
        raise NotFound(gone.what) from gone
    context.loaders.takes.forget_take(pk)
    context.loaders.takes.forget_behind(behind.id)
    return behind


async def _step(context: Context, step: StepInput, author_id: int) -> NewStep:
    title = step.title.strip()
    if not title or len(title) > MAX_STEP_TITLE:
        raise BadUserInput(f"a step title is 1 to {MAX_STEP_TITLE} characters", field="title")
    body = text.optional_text(step.body, MAX_STEP_BODY, "body")
    media_pk = None
    if step.media_id is not None:
        media_pk = decode_id(step.media_id, "Media", "mediaId")
        media = await context.loaders.media.by_id.load(media_pk)
        if media is None or media.owner_id != author_id:
            raise BadUserInput("a step's media must be media you uploaded", field="mediaId")
    return NewStep(title, body, media_pk)


def _tools(tools: Sequence[str]) -> list[str]:
    """Stripped, blank ones dropped, duplicates (case-insensitive) dropped, in order."""
    seen: dict[str, str] = {}
    for tool in tools:
        name = tool.strip()
        if len(name) > MAX_TOOL:
            raise BadUserInput(f"a tool name is at most {MAX_TOOL} characters", field="tools")
        if name:
            seen.setdefault(name.casefold(), name)
    if len(seen) > MAX_TOOLS:
        raise BadUserInput(f"at most {MAX_TOOLS} tools", field="tools")
    return list(seen.values())
