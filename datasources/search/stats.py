"""Reads of the daily search rollup (`search_query_daily`) for operators.

The rollup holds counts per day, platform, normalized query and search type, and
no user id; these reads add nothing that could tell who searched.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from sqlalchemy import func, select

from datasources.search.tables import SearchQueryDailyRow
from datasources.sql import Database


@dataclass(frozen=True)
class QueryCount:
    query: str
    searches: int
    zero_results: int


@dataclass(frozen=True)
class DayStats:
    day: date
    platform: str
    top: list[QueryCount]  # most searched first
    zero: list[QueryCount]  # most often fruitless first


async def daily_stats(
    db: Database, today: date, days: int = 7, limit: int = 10, platform: str | None = None
) -> list[DayStats]:
    """The last `days` days up to `today`, newest first: per day and platform, the
    `limit` most frequent queries and the `limit` queries that most often found
    nothing (every search type summed)."""
    row = SearchQueryDailyRow
    searches = func.sum(row.count).label("searches")
    zero = func.sum(row.zero_results).label("zero")
    stmt = (
        select(row.day, row.platform, row.query, searches, zero)
        .where(row.day > today - timedelta(days=days), row.day <= today)
        .group_by(row.day, row.platform, row.query)
    )
    if platform is not None:
        stmt = stmt.where(row.platform == platform)
    async with db.session() as session:
        rows = (await session.execute(stmt)).all()
    grouped: dict[tuple[date, str], list[QueryCount]] = {}
    for day, where, query, count, fruitless in rows:
        grouped.setdefault((day, where), []).append(
            QueryCount(query, int(count or 0), int(fruitless or 0))
        )
    found = []
    for (day, where), counts in sorted(
        grouped.items(), key=lambda kv: (-kv[0][0].toordinal(), kv[0][1])
    ):
        top = sorted(counts, key=lambda q: (-q.searches, q.query))[:limit]
        zero_ = sorted(
            (q for q in counts if q.zero_results > 0), key=lambda q: (-q.zero_results, q.query)
        )[:limit]
        found.append(DayStats(day, where, top, zero_))
    return found


def render(stats: list[DayStats], days: int) -> str:
    """The text `entativa search stats` prints."""
    lines = [f"search queries of the last {days} days (UTC), no user ids"]
    if not stats:
        lines.append("no searches recorded")
    for day in stats:
        lines.append(f"\n{day.day.isoformat()} {day.platform}")
        lines.append("  most searched:")
        lines.extend(f"    {q.searches:6d}  {q.query}" for q in day.top)
        lines.append("  zero results:")
        if not day.zero:
            lines.append("    (none)")
        lines.extend(f"    {q.zero_results:6d}  {q.query}" for q in day.zero)
    return "\n".join(lines)
