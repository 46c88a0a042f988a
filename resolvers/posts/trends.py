"""Take trends: start one from your take, join one (createTake), rank them by growth.

A trend is a hashtag challenge. Its hashtag is normalized (a leading '#'
dropped, case-folded, letters/digits/underscore only) and unique among the
platform's trends (CONFLICT otherwise). Its originating take is its first
participant; every take that joins links back to the trend and that take.
"""

from __future__ import annotations

import math
import re
from collections.abc import Awaitable
from dataclasses import dataclass
from datetime import datetime, timedelta

from datasources.posts.takes_store import (
    AlreadyInTrend,
    Gone,
    HashtagTaken,
    NewTrend,
    TakePage,
    TakeRecord,
    TrendActivity,
    TrendRecord,
)
from datasources.sql import utcnow
from resolvers.context import Context
from resolvers.errors import BadUserInput, Conflict, NotFound
from resolvers.ids import decode_id, split_id
from resolvers.pagination import page_size
from resolvers.posts import take_policy as policy
from resolvers.posts.take_cursors import Listing, RankedCursor
from resolvers.posts.takes import keyset_takes, visible_take

MAX_NAME = 100
MAX_HASHTAG = 100
HASHTAG = re.compile(r"\w+")
GROWTH_WINDOW = timedelta(hours=24)


def normalize_hashtag(raw: str) -> str:
    """'#Dance_Off' → 'dance_off'; BAD_USER_INPUT unless letters, digits, underscore."""
    tag = raw.strip().removeprefix("#").casefold()
    if not tag or len(tag) > MAX_HASHTAG or not HASHTAG.fullmatch(tag):
        raise BadUserInput(
            "a hashtag is letters, digits and underscores (up to 100)", field="hashtag"
        )
    return tag


async def trend_by_global_id(context: Context, global_id: str) -> TrendRecord | None:
    parts = split_id(global_id)
    if parts is None or parts[0] != "TakeTrend" or not parts[1].isdigit():
        return None
    found = await context.loaders.takes.trend.load(int(parts[1]))
    return found if await policy.can_see_trend(context, found) else None


async def trend(context: Context, global_id: str) -> TrendRecord:
    """Query.takeTrend: NOT_FOUND alike for unknown, hidden and other-platform ids."""
    pk = decode_id(global_id, "TakeTrend")
    return await policy.require_trend(context, await context.loaders.takes.trend.load(pk))


async def trend_of(context: Context, take: TakeRecord) -> TrendRecord | None:
    """Take.trend: the trend the take joined (null outside trends or when hidden)."""
    if take.trend_id is None:
        return None
    found = await context.loaders.takes.trend.load(take.trend_id)
    return found if await policy.can_see_trend(context, found) else None


async def originator_of(context: Context, take: TakeRecord) -> TakeRecord | None:
    """Take.originator: the take that started the take's trend (deep link)."""
    found = await trend_of(context, take)
    return await visible_take(context, found.originator_take_id) if found else None


async def trend_originator(context: Context, trend: TrendRecord) -> TakeRecord:
    """TakeTrend.originator (non-null: a trend is visible only with its originator)."""
    found = await visible_take(context, trend.originator_take_id)
    if found is None:
        raise NotFound("take")
    return found


async def start_trend(context: Context, take_id: str, name: str, hashtag: str) -> TrendRecord:
    """startTrend: by the take's author; the take becomes the first participant."""
    viewer = context.require_viewer()
    pk = decode_id(take_id, "Take", "takeId")
    clean_name = name.strip()
    if not clean_name or len(clean_name) > MAX_NAME:
        raise BadUserInput(f"name is 1 to {MAX_NAME} characters", field="name")
    tag = normalize_hashtag(hashtag)
    await policy.require_own_take(
        context, await context.loaders.takes.by_id.load(pk), "start a trend from it"
    )
    try:
        started = await context.stores.takes.start_trend(
            NewTrend(context.platform, clean_name, tag, pk, viewer.user_id)
        )
    except HashtagTaken as exc:
        raise Conflict(f"a trend #{tag} already exists", field="hashtag") from exc
    except AlreadyInTrend as exc:
        raise Conflict("this take already belongs to a trend", field="takeId") from exc
    except Gone as gone:
        raise NotFound(gone.what) from gone
    context.loaders.takes.forget_take(pk)
    context.loaders.takes.trend.prime(started.id, started)
    return started


async def participants(
    context: Context, trend: TrendRecord, first: int | None, after: str | None
) -> Listing[TakeRecord]:
    """TakeTrend.participants: visible takes in the order they joined, originator first."""

    def read(position: tuple[datetime, int] | None, limit: int) -> Awaitable[tuple[TakePage, int]]:
        return context.stores.takes.trend_participants(
            context.platform, trend.id, context.viewer_id, position, limit
        )

    return await keyset_takes(
        context, first, after, read, at=lambda take: take.trend_joined_at or take.created_at
    )


def growth_score(activity: TrendActivity) -> float:
    """How fast a trend grows: participants gained in the last 24 h (`recent`)
    against the 24 h before (`previous`):

        score = (recent − previous) / √(previous + 1)

    The excess over the previous day, scaled by the Poisson noise expected at
    the previous day's level (a z-score-like surprise measure, as in Twitter-
    style trend detection): going 0 → 5 (score 5) outranks 100 → 110 (≈ 1),
    while 50 → 100 (≈ 7) outranks 0 → 5. A shrinking trend scores below zero;
    a trend with no activity in 48 h scores 0. Ties: more recent joins, more
    participants in all, newest trend.
    """
    return (activity.recent - activity.previous) / math.sqrt(activity.previous + 1)


@dataclass(frozen=True)
class _Ranked:
    activity: TrendActivity

    @property
    def key(self) -> tuple[float, ...]:
        a = self.activity
        return (
            growth_score(a),
            float(a.recent),
            float(a.trend.participant_count),
            float(a.trend.id),
        )


async def trending(context: Context, first: int | None, after: str | None) -> Listing[TrendRecord]:
    """Query.trendingTakeTrends: the platform's visible trends by `growth_score`,
    as of the first page's time (carried in the cursor)."""
    limit = page_size(first, context.settings.max_page_size)
    cursor = RankedCursor.decode(after, key_size=4)
    now = cursor.ranked_at if cursor else utcnow()
    activity = await context.stores.takes.trend_activity(
        context.platform, context.viewer_id, now, GROWTH_WINDOW
    )
    ranked = sorted((_Ranked(a) for a in activity), key=lambda r: r.key, reverse=True)
    if cursor is not None:
        ranked = [r for r in ranked if r.key < cursor.key]
    for r in ranked[:limit]:
        context.loaders.takes.trend.prime(r.activity.trend.id, r.activity.trend)
    return Listing(
        items=[(RankedCursor(now, r.key).encode(), r.activity.trend) for r in ranked[:limit]],
        has_next=len(ranked) > limit,
        has_previous=cursor is not None,
        total_count=len(activity),
    )
