"""Tables of notifications: groups and their actors, preferences, push devices.

A notification is stored as a *group*: one row per (recipient, group key,
window), where the key is the type and subject for the grouped types (likes,
shares, sticker responses, trend joins, template uses), the type alone for
follows, and one activity for the types that stay single (comments, replies,
mentions, story replies). Its distinct actors are rows of
`notification_actors`, each with the time of its latest activity, so a group
reads its most recent actors with one indexed range and withdrawing one
actor (an unlike) is one DELETE. `actor_count` and `latest_at` are kept in
the transaction that changes the actors (never COUNT(*) on read).

`root_type`/`root_id` name what the subject hangs under (the post or take of a
comment, the post itself for a like), and `parent_id` the parent comment of a
reply: deleting a post, take or comment withdraws everything under it by one
indexed DELETE.

Every row carries its platform like every other table; users are per platform
anyway, so the recipient alone scopes the reads.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from datasources.sql import Base, BigId, UTCDateTime, utcnow


class NotificationGroupRow(Base):
    __tablename__ = "notification_groups"
    __table_args__ = (
        # The list: newest activity first, per recipient (and per type when filtered).
        Index("ix_notification_groups_recipient_latest", "recipient_id", "latest_at", "id"),
        # The open group an activity joins: same key, latest window first.
        Index("ix_notification_groups_key", "recipient_id", "group_key", "window_start"),
        # Withdrawal of everything about a subject or under a root (deletions).
        Index("ix_notification_groups_subject", "subject_type", "subject_id"),
        Index("ix_notification_groups_root", "root_type", "root_id"),
        Index("ix_notification_groups_parent", "parent_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    platform: Mapped[str] = mapped_column(String(16))
    recipient_id: Mapped[int] = mapped_column(BigId, ForeignKey("users.id", ondelete="CASCADE"))
    type: Mapped[str] = mapped_column(String(32))  # a NotificationType name
    subject_type: Mapped[str] = mapped_column(String(16))  # post, comment, take, trend, …
    subject_id: Mapped[int] = mapped_column(BigId)
    group_key: Mapped[str] = mapped_column(String(96))
    root_type: Mapped[str | None] = mapped_column(String(16), nullable=True)
    root_id: Mapped[int | None] = mapped_column(BigId, nullable=True)
    parent_id: Mapped[int | None] = mapped_column(BigId, nullable=True)
    window_start: Mapped[datetime] = mapped_column(UTCDateTime)
    latest_at: Mapped[datetime] = mapped_column(UTCDateTime)
    actor_count: Mapped[int] = mapped_column(Integer, default=0)
    is_read: Mapped[bool] = mapped_column(Boolean, default=False)
    read_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class NotificationActorRow(Base):
    """A distinct actor of a group, with the time of their latest activity in it."""

    __tablename__ = "notification_actors"
    __table_args__ = (
        Index("ix_notification_actors_group_acted", "group_id", "acted_at", "actor_id"),
        Index("ix_notification_actors_actor", "actor_id"),
    )

    group_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("notification_groups.id", ondelete="CASCADE"), primary_key=True
    )
    actor_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    acted_at: Mapped[datetime] = mapped_column(UTCDateTime)


class NotificationSettingsRow(Base):
    """A user's notification settings beyond per-type channels; absent: the defaults."""

    __tablename__ = "notification_settings"

    user_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    platform: Mapped[str] = mapped_column(String(16))
    quiet_start: Mapped[str | None] = mapped_column(String(5), nullable=True)  # "22:00"
    quiet_end: Mapped[str | None] = mapped_column(String(5), nullable=True)  # "07:00"
    quiet_timezone: Mapped[str | None] = mapped_column(String(64), nullable=True)  # IANA
    paused_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    email_digest: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class NotificationTypePreferenceRow(Base):
    """The channels a user chose for one type; absent: that type's default channels."""

    __tablename__ = "notification_type_preferences"

    user_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    type: Mapped[str] = mapped_column(String(32), primary_key=True)
    channels: Mapped[str] = mapped_column(String(64))  # "IN_APP,PUSH": a set, sorted


class PushDeviceRow(Base):
    """A device registered for push. A token belongs to one device of one user: the
    same token registered again (an app reinstalled, another account signed in on
    the phone) moves to the latest registration."""

    __tablename__ = "push_devices"
    __table_args__ = (
        UniqueConstraint("provider", "token"),
        Index("ix_push_devices_user", "user_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    platform: Mapped[str] = mapped_column(String(16))
    user_id: Mapped[int] = mapped_column(BigId, ForeignKey("users.id", ondelete="CASCADE"))
    provider: Mapped[str] = mapped_column(String(8))  # FCM | APNS
    token: Mapped[str] = mapped_column(Text)
    name: Mapped[str | None] = mapped_column(String(100), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class NotificationDeliveryRow(Base):
    """A push or email owed for a group, due at `not_before`.

    Made when a group gains an actor and its type has the channel on. During quiet
    hours or a pause it is *held* (`not_before` is when they end); the worker takes
    due rows (deliveries.py `take_due`) and sends one message per group, or one
    grouped summary per channel for what was held. One row per group and channel:
    a group that grows while its delivery waits is still one message. Withdrawing
    the group (an unlike) deletes it with the group.
    """

    __tablename__ = "notification_deliveries"
    __table_args__ = (
        UniqueConstraint("group_id", "channel"),
        Index("ix_notification_deliveries_due", "not_before", "id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    platform: Mapped[str] = mapped_column(String(16))
    user_id: Mapped[int] = mapped_column(BigId, ForeignKey("users.id", ondelete="CASCADE"))
    group_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("notification_groups.id", ondelete="CASCADE")
    )
    channel: Mapped[str] = mapped_column(String(8))  # PUSH | EMAIL
    not_before: Mapped[datetime] = mapped_column(UTCDateTime)
    held: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
