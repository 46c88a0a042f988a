"""Tables of Takes: short videos, their likes and views, Behind-the-Takes, templates, trends.

Every row that can be looked up on its own carries its platform (the tenant key).
Counters (views, likes, comments, shares, template uses, trend participants) are
denormalized columns changed in the same transaction as the rows they count.

Foreign keys point one way only, takes → templates/trends (SET NULL), so the
tables have no cycle: a template's source take and a trend's originator take
are plain ids checked in code (a deleted source take reads as null; deleting a
trend's originator take deletes the trend, see TakeStore.delete_take).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from datasources.sql import Base, BigId, UTCDateTime, utcnow

PLATFORM = String(16)


class TakeTemplateRow(Base):
    """A reusable timing pattern (ordered slots); `use_count` = takes made from it."""

    __tablename__ = "take_templates"
    __table_args__ = (
        Index("ix_take_templates_platform_uses", "platform", "use_count", "id"),
        Index("ix_take_templates_creator", "creator_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    platform: Mapped[str] = mapped_column(PLATFORM)
    creator_id: Mapped[int] = mapped_column(BigId, ForeignKey("users.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(100))
    description: Mapped[str | None] = mapped_column(Text, nullable=True)
    source_take_id: Mapped[int | None] = mapped_column(BigId, nullable=True)
    total_duration_ms: Mapped[int] = mapped_column(Integer, default=0)
    use_count: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class TakeTemplateSlotRow(Base):
    __tablename__ = "take_template_slots"

    template_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("take_templates.id", ondelete="CASCADE"), primary_key=True
    )
    position: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    duration_ms: Mapped[int] = mapped_column(Integer)
    hint: Mapped[str | None] = mapped_column(Text, nullable=True)


class TakeTrendRow(Base):
    """A hashtag challenge started from one take; the hashtag is unique per platform."""

    __tablename__ = "take_trends"
    __table_args__ = (
        UniqueConstraint("platform", "hashtag"),
        Index("ix_take_trends_platform_created", "platform", "created_at", "id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    platform: Mapped[str] = mapped_column(PLATFORM)
    name: Mapped[str] = mapped_column(String(100))
    hashtag: Mapped[str] = mapped_column(String(100))  # normalized, without '#'
    originator_take_id: Mapped[int] = mapped_column(BigId, unique=True)
    originator_author_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("users.id", ondelete="CASCADE")
    )
    participant_count: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class TakeRow(Base):
    """One take. `trend_joined_at` is when it joined its trend (growth ranking counts it)."""

    __tablename__ = "takes"
    __table_args__ = (
        Index("ix_takes_platform_created", "platform", "created_at", "id"),
        Index("ix_takes_author_created", "author_id", "created_at", "id"),
        Index("ix_takes_template_created", "template_id", "created_at", "id"),
        Index("ix_takes_trend_joined", "trend_id", "trend_joined_at", "id"),
        Index("ix_takes_platform_trend_joined", "platform", "trend_joined_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    platform: Mapped[str] = mapped_column(PLATFORM)
    author_id: Mapped[int] = mapped_column(BigId, ForeignKey("users.id", ondelete="CASCADE"))
    video_media_id: Mapped[int] = mapped_column(BigId, ForeignKey("media.id", ondelete="CASCADE"))
    caption: Mapped[str | None] = mapped_column(Text, nullable=True)
    hashtags: Mapped[str] = mapped_column(Text, default="[]")  # JSON list, case-folded
    sound_name: Mapped[str | None] = mapped_column(String(200), nullable=True)
    duration_ms: Mapped[int] = mapped_column(Integer)
    view_count: Mapped[int] = mapped_column(Integer, default=0)
    like_count: Mapped[int] = mapped_column(Integer, default=0)
    comment_count: Mapped[int] = mapped_column(Integer, default=0)
    share_count: Mapped[int] = mapped_column(Integer, default=0)
    template_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("take_templates.id", ondelete="SET NULL"), nullable=True
    )
    trend_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("take_trends.id", ondelete="SET NULL"), nullable=True
    )
    trend_joined_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class TakeLikeRow(Base):
    __tablename__ = "take_likes"
    __table_args__ = (Index("ix_take_likes_user", "user_id", "created_at"),)

    take_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("takes.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class TakeViewRow(Base):
    """Last counted view of a take by one signed-in viewer (one counted view per hour)."""

    __tablename__ = "take_views"

    take_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("takes.id", ondelete="CASCADE"), primary_key=True
    )
    viewer_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    last_counted_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    counted_views: Mapped[int] = mapped_column(Integer, default=1)


class BehindTheTakeRow(Base):
    """How a take was made; at most one per take (adding again replaces it)."""

    __tablename__ = "behind_the_takes"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    platform: Mapped[str] = mapped_column(PLATFORM)
    take_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("takes.id", ondelete="CASCADE"), unique=True
    )
    tools: Mapped[str] = mapped_column(Text, default="[]")  # JSON list of strings
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class BehindTheTakeStepRow(Base):
    __tablename__ = "behind_the_take_steps"

    behind_the_take_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("behind_the_takes.id", ondelete="CASCADE"), primary_key=True
    )
    position: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str | None] = mapped_column(Text, nullable=True)
    media_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("media.id", ondelete="SET NULL"), nullable=True
    )
