"""Relational tables of the stories store (the embedded default of StoryStore).

No foreign keys to users or media: in production stories live in MongoDB, apart
from the relational data, and this store keeps the same independent shape. Within
the stories tables every dependent row references its story (or highlight) with
ON DELETE CASCADE, so deleting or purging a story is one DELETE.

Exactness comes from keys, not from read-modify-write: a view, a sticker response
and a highlight item are each unique by primary key, and counters are upserts
(value = value + 1) evaluated by the database under the row lock.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from datasources.sql import Base, BigId, UTCDateTime


class StoryRow(Base):
    __tablename__ = "stories"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    author_id: Mapped[int] = mapped_column(BigInteger, nullable=False)
    platform: Mapped[str] = mapped_column(String(16), nullable=False)
    media_id: Mapped[int] = mapped_column(BigInteger, nullable=False)
    audience: Mapped[str] = mapped_column(String(16), nullable=False)
    caption: Mapped[str | None] = mapped_column(Text, nullable=True)
    stickers: Mapped[list[dict[str, Any]]] = mapped_column(JSON, nullable=False)
    # The story an ADD_YOURS sticker answers, out of the JSON so it can be counted.
    add_yours_origin_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(timezone=True), nullable=False)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(timezone=True), nullable=False)

    __table_args__ = (
        Index("ix_stories_author_expires", "author_id", "expires_at"),
        Index("ix_stories_add_yours_origin_id", "add_yours_origin_id"),
        Index("ix_stories_expires_at", "expires_at"),  # the purge sweep
        Index("ix_stories_media_id", "media_id"),  # media_in_use
    )


def _story_fk() -> ForeignKey:
    return ForeignKey("stories.id", ondelete="CASCADE")


class StoryViewRow(Base):
    """One row per (story, viewer): the primary key is what records a viewer once."""

    __tablename__ = "story_views"

    story_id: Mapped[int] = mapped_column(BigId, _story_fk(), primary_key=True)
    viewer_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    viewed_at: Mapped[datetime] = mapped_column(UTCDateTime(timezone=True), nullable=False)
    reaction: Mapped[str | None] = mapped_column(String(16), nullable=True)

    # Viewers of a story newest first (keyset pages).
    __table_args__ = (Index("ix_story_views_story_viewed", "story_id", "viewed_at", "viewer_id"),)


class StoryResponseRow(Base):
    """One response per (story, sticker, user), by primary key; tallies are GROUP BYs."""

    __tablename__ = "story_responses"

    story_id: Mapped[int] = mapped_column(BigId, _story_fk(), primary_key=True)
    sticker_index: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), nullable=False)
    option: Mapped[int | None] = mapped_column(Integer, nullable=True)
    value: Mapped[float | None] = mapped_column(Float, nullable=True)
    text: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(timezone=True), nullable=False)

    __table_args__ = (
        Index(
            "ix_story_responses_sticker_created",
            "story_id",
            "sticker_index",
            "created_at",
            "user_id",
        ),
        Index("ix_story_responses_user_story", "user_id", "story_id"),
    )


class StoryCounterRow(Base):
    """A named counter of a story (insights, link taps), bumped by an atomic upsert."""

    __tablename__ = "story_counters"

    story_id: Mapped[int] = mapped_column(BigId, _story_fk(), primary_key=True)
    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    value: Mapped[int] = mapped_column(BigInteger, nullable=False)


class StoryReplyRow(Base):
    __tablename__ = "story_replies"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    story_id: Mapped[int] = mapped_column(BigId, _story_fk(), nullable=False)
    author_id: Mapped[int] = mapped_column(BigInteger, nullable=False)
    body: Mapped[str] = mapped_column(Text, nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(timezone=True), nullable=False)

    __table_args__ = (Index("ix_story_replies_story_created", "story_id", "created_at", "id"),)


class StoryHighlightRow(Base):
    __tablename__ = "story_highlights"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    owner_id: Mapped[int] = mapped_column(BigInteger, nullable=False)
    platform: Mapped[str] = mapped_column(String(16), nullable=False)
    title: Mapped[str] = mapped_column(Text, nullable=False)
    cover_media_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(timezone=True), nullable=False)

    __table_args__ = (
        Index("ix_story_highlights_owner_created", "owner_id", "created_at"),
        Index("ix_story_highlights_cover_media_id", "cover_media_id"),
    )


class StoryHighlightItemRow(Base):
    """A story in a highlight, once (primary key); `position` keeps the order added.

    A story with any item row is never purged; deleting the story or the highlight
    removes the row by cascade."""

    __tablename__ = "story_highlight_items"

    highlight_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("story_highlights.id", ondelete="CASCADE"), primary_key=True
    )
    story_id: Mapped[int] = mapped_column(BigId, _story_fk(), primary_key=True)
    position: Mapped[int] = mapped_column(Integer, nullable=False)

    __table_args__ = (Index("ix_story_highlight_items_story_id", "story_id"),)


class StoryCountdownRow(Base):
    """A COUNTDOWN sticker to announce when it ends; claimed_at marks it announced."""

    __tablename__ = "story_countdowns"

    story_id: Mapped[int] = mapped_column(BigId, _story_fk(), primary_key=True)
    sticker_index: Mapped[int] = mapped_column(Integer, primary_key=True)
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime(timezone=True), nullable=False)
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(timezone=True), nullable=True)

    __table_args__ = (Index("ix_story_countdowns_ends_at", "ends_at"),)
