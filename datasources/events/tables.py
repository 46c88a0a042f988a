"""The outbox table: events committed with the change they describe."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from datasources.sql import Base, BigId, UTCDateTime, utcnow


class OutboxRow(Base):
    """One event waiting for (or done with) the relay; `id` orders publication."""

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_unpublished", "published_at", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(String(36), unique=True)
    topic: Mapped[str] = mapped_column(String(128))
    payload: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class ConsumedEventRow(Base):
    """An event a consumer has applied, written in the transaction of its effect:
    a redelivered event finds its row and changes nothing (consumers.py)."""

    __tablename__ = "consumed_events"
    __table_args__ = (Index("ix_consumed_events_consumed_at", "consumed_at"),)

    consumer: Mapped[str] = mapped_column(String(64), primary_key=True)
    event_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    consumed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
