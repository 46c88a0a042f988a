"""explore: public posts ranked by engagement with age decay (Hacker News gravity).

    score = (likes + 2·comments + 3·shares + 1) / (age_hours + 2) ^ 1.8

This is the ranking Hacker News has used for its front page, `(P - 1) /
(T + 2) ^ G` with gravity G = 1.8 (Amir Salihefendic, "How Hacker News ranking
algorithm works", 2010, https://medium.com/hacking-and-gonzo/how-hacker-news-
ranking-algorithm-works-1d9b0cf2c08d; Paul Graham's published Arc source uses
the same gravity). Points are our engagement: a comment weighs two likes and a
share three (each asks more of the user and spreads the post further), and
the `+ 1` lets a new post with no engagement rank by age alone. The `+ 2`
hours keeps brand-new posts from dividing by (almost) zero.

Only PUBLIC posts the viewer may see, from the last 30 days (older posts score
near zero anyway), whatever the account follows: discovery, not the feed.
Ranking happens in SQL (datasources/posts/store.py `PostStore.explore`), so a
page is a LIMIT over the ordered scores.

Cursors: a ranked list has no stable time key, so the cursor carries
(ranked_at, score, id): later pages score every post at the first page's
`ranked_at` and continue strictly after (score, id), so pages neither repeat
nor skip a post whose score did not change meanwhile.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import datetime

from datasources.posts.records import PostRecord
from datasources.sql import utcnow
from resolvers.context import Context
from resolvers.errors import BadUserInput
from resolvers.pagination import page_size


@dataclass(frozen=True)
class RankedCursor:
    ranked_at: datetime
    score: float
    id: int


@dataclass
class RankedPage:
    items: list[tuple[str, PostRecord]]
    has_next: bool
    has_previous: bool
    total_count: int


def encode(cursor: RankedCursor) -> str:
    raw = json.dumps([cursor.ranked_at.isoformat(), cursor.score, cursor.id], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode(cursor: str | None) -> RankedCursor | None:
    if cursor is None:
        return None
    try:
        raw = base64.urlsafe_b64decode((cursor + "=" * (-len(cursor) % 4)).encode())
        at, score, pk = json.loads(raw)
        found = RankedCursor(datetime.fromisoformat(at), float(score), int(pk))
    except (ValueError, TypeError, json.JSONDecodeError) as exc:
        raise BadUserInput("after is not a valid cursor", field="after") from exc
    if found.ranked_at.tzinfo is None:
        raise BadUserInput("after is not a valid cursor", field="after")
    return found


async def explore(context: Context, first: int | None, after: str | None) -> RankedPage:
    limit = page_size(first, context.settings.max_page_size)
    position = decode(after)
    ranked_at = position.ranked_at if position else utcnow()
    rows, total = await context.stores.posts.explore(
        context.platform,
        context.viewer_id,
        ranked_at,
        (position.score, position.id) if position else None,
        limit,
    )
    kept = rows[:limit]
    context.loaders.users.prime(author for _, _, author in kept)
    context.loaders.posts.prime(post for _, post, _ in kept)
    return RankedPage(
        items=[(encode(RankedCursor(ranked_at, score, post.id)), post) for score, post, _ in kept],
        has_next=len(rows) > limit,
        has_previous=position is not None,
        total_count=total,
    )
