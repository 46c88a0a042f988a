"""The relational side of a search request: the viewer's own history and the
operators' daily rollup (tables.py).

History keeps the last HISTORY_LIMIT queries of a user: each insert trims the
older ones in the same transaction, so the table never grows past that per user.
The rollup has no user ids: one row per (day, platform, normalized query, search
type) counting searches and the ones that found nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from datasources.search.tables import SearchHistoryRow, SearchQueryDailyRow
from datasources.sql import Database

HISTORY_LIMIT = 50
QUERY_LENGTH = 200


@dataclass(frozen=True)
class HistoryEntry:
    id: int
    query: str
    search_type: str | None
    searched_at: datetime


def normalized(query: str) -> str:
    """The rollup's key: lower-case, single spaces, at most QUERY_LENGTH characters."""
    return " ".join(query.lower().split())[:QUERY_LENGTH]


def _insert(session: AsyncSession, table: Any) -> Any:
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    return dialect.insert(table)


class SearchLog:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def record(
        self,
        platform: str,
        user_id: int | None,
        query: str,
        history_type: str | None,
        rollup_type: str,
        zero_results: bool,
        at: datetime,
    ) -> None:
        """One search: the rollup always, the history when someone signed in searched."""
        key = normalized(query)
        async with self.db.transaction() as session:
            if key:
                upsert = _insert(session, SearchQueryDailyRow).values(
                    day=at.date(),
                    platform=platform,
                    query=key,
                    search_type=rollup_type,
                    count=1,
                    zero_results=int(zero_results),
                )
                table = SearchQueryDailyRow
                await session.execute(
                    upsert.on_conflict_do_update(
                        index_elements=["day", "platform", "query", "search_type"],
                        set_={
                            "count": table.count + 1,
                            "zero_results": table.zero_results + int(zero_results),
                        },
                    )
                )
            if user_id is None or not query.strip():
                return
            session.add(
                SearchHistoryRow(
                    platform=platform,
                    user_id=user_id,
                    query=query.strip()[:QUERY_LENGTH],
                    search_type=history_type,
                    searched_at=at,
                )
            )
            await session.flush()
            kept = (
                select(SearchHistoryRow.id)
                .where(SearchHistoryRow.user_id == user_id)
                .order_by(SearchHistoryRow.searched_at.desc(), SearchHistoryRow.id.desc())
                .limit(HISTORY_LIMIT)
            )
            await session.execute(
                delete(SearchHistoryRow).where(
                    SearchHistoryRow.user_id == user_id,
                    SearchHistoryRow.id.not_in(kept.scalar_subquery()),
                )
            )

    async def history(self, user_id: int, limit: int) -> list[HistoryEntry]:
        async with self.db.session() as session:
            rows = await session.scalars(
                select(SearchHistoryRow)
                .where(SearchHistoryRow.user_id == user_id)
                .order_by(SearchHistoryRow.searched_at.desc(), SearchHistoryRow.id.desc())
                .limit(limit)
            )
            return [HistoryEntry(r.id, r.query, r.search_type, r.searched_at) for r in rows]

    async def clear(self, user_id: int) -> int:
        async with self.db.transaction() as session:
            result = await session.execute(
                delete(SearchHistoryRow).where(SearchHistoryRow.user_id == user_id)
            )
            return int(getattr(result, "rowcount", 0) or 0)
