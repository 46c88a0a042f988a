"""Tables of the search domain: what was searched, and which tags were used where.

The search index itself lives outside the relational store (store.py); these
rows are the relational side of search:

- `search_history`: a signed-in viewer's own queries, private to them, trimmed
  to the last 50 on write and cleared on request.
- `hashtag_uses`: one row per (subject, tag) for posts and takes, written by
  the SearchIndexer from domain events; trends and related tags read them by
  (platform, tag, used_at) without scanning posts and takes.
- `search_query_daily`: per day, platform, normalized query and search type,
  how often it was searched and how often it found nothing. No user ids: an
  operator's aggregate, not a trail of who searched what.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import BigInteger, Date, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from datasources.sql import Base, BigId, UTCDateTime, utcnow


class SearchHistoryRow(Base):
    __tablename__ = "search_history"
    __table_args__ = (Index("ix_search_history_user_searched", "user_id", "searched_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    platform: Mapped[str] = mapped_column(String(16))
    user_id: Mapped[int] = mapped_column(BigId, ForeignKey("users.id", ondelete="CASCADE"))
    query: Mapped[str] = mapped_column(String(200))
    search_type: Mapped[str | None] = mapped_column(String(16), nullable=True)
    searched_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class HashtagUseRow(Base):
    """A tag used by a post or a take (`subject_type` 'post' | 'take').

    No foreign key: subjects live in two tables; the indexer deletes a
    subject's rows when the subject is deleted or edited.
    """

    __tablename__ = "hashtag_uses"
    __table_args__ = (
        Index("ix_hashtag_uses_platform_tag_used", "platform", "tag", "used_at"),
        Index("ix_hashtag_uses_platform_used", "platform", "used_at"),
    )

    subject_type: Mapped[str] = mapped_column(String(8), primary_key=True)
    subject_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    tag: Mapped[str] = mapped_column(String(100), primary_key=True)
    platform: Mapped[str] = mapped_column(String(16))
    used_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class SearchQueryDailyRow(Base):
    """Daily counts per normalized query; `search_type` is 'ALL' when unfiltered."""

    __tablename__ = "search_query_daily"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    platform: Mapped[str] = mapped_column(String(16), primary_key=True)
    query: Mapped[str] = mapped_column(String(200), primary_key=True)
    search_type: Mapped[str] = mapped_column(String(16), primary_key=True)
    count: Mapped[int] = mapped_column(Integer, default=0)
    zero_results: Mapped[int] = mapped_column(Integer, default=0)
