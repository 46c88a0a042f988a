"""Relational tables of the stories store (the embedded default of StoryStore).

No foreign keys to users or media: in production stories live in MongoDB, apart
from the relational data, and this store keeps the same independent shape.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from datasources.sql import Base, BigId, UTCDateTime


class StoryRow(Base):
    __tablename__ = "stories"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    author_id: Mapped[int] = mapped_column(BigInteger, nullable=False)
    media_id: Mapped[int] = mapped_column(BigInteger, nullable=False)
    audience: Mapped[str] = mapped_column(String(16), nullable=False)
    stickers: Mapped[list[dict[str, Any]]] = mapped_column(JSON, nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(timezone=True), nullable=False)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(timezone=True), nullable=False)

    __table_args__ = (Index("ix_stories_author_expires", "author_id", "expires_at"),)


class StoryViewRow(Base):
    """One row per (story, viewer): the primary key is what records a viewer once."""

    __tablename__ = "story_views"

    story_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("stories.id", ondelete="CASCADE"), primary_key=True
    )
    viewer_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    viewed_at: Mapped[datetime] = mapped_column(UTCDateTime(timezone=True), nullable=False)
    reaction: Mapped[str | None] = mapped_column(String(16), nullable=True)
