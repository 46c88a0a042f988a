"""Tables of posts and comments (takes live in take_tables.py of the same domain).

Every post carries its platform (the tenant key) and its denormalized counters
(likes, comments, shares, saves), changed in the transaction of the row they
count (store.py). Rows that hang off a post (media, hashtags, mentions, likes,
saves) go with it through `ON DELETE CASCADE`; a share outlives the post it
shared (`shared_post_id` is set null).

Comments are polymorphic: `subject_type` is 'post' or 'take' and `subject_id`
the row commented on, with no foreign key (takes are another table); deleting
a subject deletes its comments explicitly in the same transaction.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from datasources.sql import Base, BigId, UTCDateTime, utcnow


class LocationRow(Base):
    """A named place; posts at the same name and coordinates share one row."""

    __tablename__ = "locations"
    __table_args__ = (UniqueConstraint("platform", "name", "latitude", "longitude"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    platform: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(100))
    latitude: Mapped[float] = mapped_column(Float)
    longitude: Mapped[float] = mapped_column(Float)


class PostRow(Base):
    __tablename__ = "posts"
    __table_args__ = (
        Index("ix_posts_author_created", "author_id", "created_at", "id"),
        Index("ix_posts_platform_created", "platform", "created_at", "id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    platform: Mapped[str] = mapped_column(String(16))
    author_id: Mapped[int] = mapped_column(BigId, ForeignKey("users.id", ondelete="CASCADE"))
    caption: Mapped[str | None] = mapped_column(Text, nullable=True)
    # JSON list, case-folded, in caption order: read with the post, no extra query.
    hashtags: Mapped[str] = mapped_column(Text, default="[]")
    visibility: Mapped[str] = mapped_column(String(16))  # PUBLIC | FOLLOWERS | FRIENDS | PRIVATE
    location_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("locations.id", ondelete="SET NULL"), nullable=True
    )
    shared_post_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("posts.id", ondelete="SET NULL"), nullable=True, index=True
    )
    like_count: Mapped[int] = mapped_column(Integer, default=0)
    comment_count: Mapped[int] = mapped_column(Integer, default=0)
    share_count: Mapped[int] = mapped_column(Integer, default=0)
    save_count: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    edited_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class PostMediaRow(Base):
    __tablename__ = "post_media"

    post_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("posts.id", ondelete="CASCADE"), primary_key=True
    )
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    media_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("media.id", ondelete="CASCADE"), index=True
    )


class PostHashtagRow(Base):
    """One row per (post, tag): posts by hashtag for search and trends."""

    __tablename__ = "post_hashtags"
    __table_args__ = (Index("ix_post_hashtags_tag", "tag", "post_id"),)

    post_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("posts.id", ondelete="CASCADE"), primary_key=True
    )
    tag: Mapped[str] = mapped_column(String(100), primary_key=True)


class PostMentionRow(Base):
    __tablename__ = "post_mentions"
    __table_args__ = (Index("ix_post_mentions_user", "user_id", "post_id"),)

    post_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("posts.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    position: Mapped[int] = mapped_column(Integer, default=0)


class PostLikeRow(Base):
    __tablename__ = "post_likes"
    __table_args__ = (Index("ix_post_likes_post_created", "post_id", "created_at", "user_id"),)

    post_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("posts.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class PostSaveRow(Base):
    __tablename__ = "post_saves"
    __table_args__ = (Index("ix_post_saves_user_created", "user_id", "created_at", "post_id"),)

    user_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    post_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("posts.id", ondelete="CASCADE"), primary_key=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class CommentRow(Base):
    """A comment on a post or a take; `parent_id` threads replies (deleted with it)."""

    __tablename__ = "comments"
    __table_args__ = (
        Index("ix_comments_subject", "subject_type", "subject_id", "parent_id", "created_at", "id"),
        Index("ix_comments_parent", "parent_id", "created_at", "id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    platform: Mapped[str] = mapped_column(String(16))
    subject_type: Mapped[str] = mapped_column(String(8))  # post | take
    subject_id: Mapped[int] = mapped_column(BigId)
    parent_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("comments.id", ondelete="CASCADE"), nullable=True
    )
    author_id: Mapped[int] = mapped_column(BigId, ForeignKey("users.id", ondelete="CASCADE"))
    body: Mapped[str] = mapped_column(Text)
    like_count: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class CommentLikeRow(Base):
    __tablename__ = "comment_likes"

    comment_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("comments.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
