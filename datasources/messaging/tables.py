"""Core tables of messaging: identities, devices, conversations, members, queues.

The server is a key directory, a relay and an MLS delivery service: it keeps
public keys and opaque ciphertext (`LargeBinary` columns it never interprets,
except the MLS wire-format header of what it relays) and can never read a
message.

- `messaging_identities`: one identity key per user, shared by all its devices.
- `messaging_devices`: a user's devices (ids from 1; 1 is the primary) with
  their current signed prekey and optional KEM last-resort prekey, and
  `last_sequence`, the queue counter of the device: every envelope queued for
  it takes the next value in the enqueue transaction (`UPDATE … RETURNING`),
  so a device's queue is totally ordered and a subscription resumes after a
  sequence with no gap and no duplicate.
- `messaging_conversations` / `messaging_members`: DIRECT conversations (one per
  pair, found by `direct_key`) and MLS groups (`group_id`, `epoch`). A member's
  `unread_count` is kept on write; `read_up_to` is what they marked read.
- `messaging_messages`: one row per message sent (metadata only: who, when,
  which conversation, the client's id for idempotent resends); never content.
- `messaging_envelopes`: the per-device offline queue of ciphertext, deleted
  when the device acknowledges it, at `expires_at`, or after the retention.

Tables of one-time prekeys, key packages, calls and attachments live beside
the modules that own them (keys.py, calls.py, attachments.py).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    LargeBinary,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from datasources.sql import Base, BigId, UTCDateTime


class MessagingIdentityRow(Base):
    __tablename__ = "messaging_identities"

    user_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    identity_key: Mapped[bytes] = mapped_column(LargeBinary)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class MessagingDeviceRow(Base):
    __tablename__ = "messaging_devices"

    user_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    device_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    platform: Mapped[str] = mapped_column(String(16))
    registration_id: Mapped[int] = mapped_column(Integer)
    name: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    signed_prekey_id: Mapped[int] = mapped_column(Integer)
    signed_prekey: Mapped[bytes] = mapped_column(LargeBinary)
    signed_prekey_signature: Mapped[bytes] = mapped_column(LargeBinary)
    kem_prekey_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    kem_prekey: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    kem_prekey_signature: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    last_sequence: Mapped[int] = mapped_column(BigInteger, default=0)


class ConversationRow(Base):
    __tablename__ = "messaging_conversations"
    __table_args__ = (
        UniqueConstraint("platform", "direct_key"),
        UniqueConstraint("platform", "group_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    platform: Mapped[str] = mapped_column(String(16))
    kind: Mapped[str] = mapped_column(String(8))  # DIRECT | GROUP
    # DIRECT: "<smaller user id>:<larger user id>", so a pair has one conversation.
    direct_key: Mapped[str | None] = mapped_column(String(48), nullable=True)
    group_id: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)  # MLS group id
    epoch: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    name: Mapped[str | None] = mapped_column(String(100), nullable=True)
    created_by: Mapped[int] = mapped_column(BigId, ForeignKey("users.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_activity_at: Mapped[datetime] = mapped_column(UTCDateTime)
    disappearing_after_seconds: Mapped[int | None] = mapped_column(Integer, nullable=True)


class ConversationMemberRow(Base):
    __tablename__ = "messaging_members"
    __table_args__ = (Index("ix_messaging_members_user", "user_id", "conversation_id"),)

    conversation_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("messaging_conversations.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    joined_at: Mapped[datetime] = mapped_column(UTCDateTime)
    read_up_to: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    unread_count: Mapped[int] = mapped_column(Integer, default=0)


class MessageRow(Base):
    """A sent message's metadata; `client_message_id` makes a resend a no-op."""

    __tablename__ = "messaging_messages"
    __table_args__ = (
        UniqueConstraint("sender_id", "client_message_id"),
        Index("ix_messaging_messages_conversation_sent", "conversation_id", "sent_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    platform: Mapped[str] = mapped_column(String(16))
    sender_id: Mapped[int] = mapped_column(BigId, ForeignKey("users.id", ondelete="CASCADE"))
    sender_device_id: Mapped[int] = mapped_column(Integer)
    client_message_id: Mapped[str] = mapped_column(String(128))
    conversation_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("messaging_conversations.id", ondelete="CASCADE"), nullable=True
    )
    sent_at: Mapped[datetime] = mapped_column(UTCDateTime)
    delivered_device_count: Mapped[int] = mapped_column(Integer, default=0)


class EnvelopeRow(Base):
    __tablename__ = "messaging_envelopes"
    __table_args__ = (
        ForeignKeyConstraint(
            ["recipient_id", "recipient_device_id"],
            ["messaging_devices.user_id", "messaging_devices.device_id"],
            ondelete="CASCADE",
        ),
        UniqueConstraint("recipient_id", "recipient_device_id", "sequence"),
        Index("ix_messaging_envelopes_expires_at", "expires_at"),
        Index("ix_messaging_envelopes_server_timestamp", "server_timestamp"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    platform: Mapped[str] = mapped_column(String(16))
    recipient_id: Mapped[int] = mapped_column(BigId)
    recipient_device_id: Mapped[int] = mapped_column(Integer)
    sequence: Mapped[int] = mapped_column(BigInteger)
    type: Mapped[str] = mapped_column(String(16))  # an EnvelopeType name
    sender_id: Mapped[int] = mapped_column(BigId)
    sender_device_id: Mapped[int] = mapped_column(Integer)
    conversation_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("messaging_conversations.id", ondelete="CASCADE"), nullable=True
    )
    message_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("messaging_messages.id", ondelete="CASCADE"), nullable=True
    )
    content: Mapped[bytes] = mapped_column(LargeBinary)
    server_timestamp: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
