"""Tables of calls and encrypted attachments (migration 0011_messaging_calls).

- `messaging_calls`: one row per call, the only trace a call leaves. Signals (the
  OFFER, ANSWER, ICE candidates…) travel on the realtime broker and are never
  stored. `answered_at` stops the ring timer; `ended_at` is set by a hang-up, a
  rejection, or the ring timeout (an unanswered call ends after
  `call_ring_seconds`).
- `messaging_attachments`: opaque ciphertext the clients encrypted, stored as a
  blob under a random key; the row's `id` is the unguessable token
  (`secrets.token_urlsafe`) that whoever holds it downloads with. The server
  never sees the key (it travels inside the end-to-end encrypted message) and
  never looks at the bytes. Purged at `expires_at` (the 30-day retention).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from datasources.sql import Base, BigId, UTCDateTime


class CallRow(Base):
    __tablename__ = "messaging_calls"
    __table_args__ = (
        # The ring sweep: calls still ringing, oldest first.
        Index("ix_messaging_calls_ringing", "ended_at", "answered_at", "started_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    platform: Mapped[str] = mapped_column(String(16))
    conversation_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("messaging_conversations.id", ondelete="CASCADE"), index=True
    )
    caller_id: Mapped[int] = mapped_column(BigId, ForeignKey("users.id", ondelete="CASCADE"))
    caller_device_id: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(8))  # a CallKind name
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class EncryptedAttachmentRow(Base):
    __tablename__ = "messaging_attachments"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # the unguessable token
    platform: Mapped[str] = mapped_column(String(16))
    uploader_id: Mapped[int] = mapped_column(BigId, ForeignKey("users.id", ondelete="CASCADE"))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    blob_key: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
