"""Plain records of messaging conversations: what resolvers hand the schema.

Schema types (schema/messaging/types.py) wrap these; resolvers of every
messaging part (relay, groups, calls) build them from rows, so a Conversation
looks the same whichever mutation returns it. Envelopes use
`datasources.messaging.queue.EnvelopeRecord`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from datasources.messaging.tables import ConversationMemberRow, ConversationRow


@dataclass(frozen=True)
class ConversationRecord:
    id: int
    platform: str
    kind: str  # DIRECT | GROUP
    group_id: bytes | None
    epoch: int | None
    name: str | None
    created_by: int
    created_at: datetime
    last_activity_at: datetime
    disappearing_after_seconds: int | None


def conversation_record(row: ConversationRow) -> ConversationRecord:
    return ConversationRecord(
        id=row.id,
        platform=row.platform,
        kind=row.kind,
        group_id=row.group_id,
        epoch=row.epoch,
        name=row.name,
        created_by=row.created_by,
        created_at=row.created_at,
        last_activity_at=row.last_activity_at,
        disappearing_after_seconds=row.disappearing_after_seconds,
    )


@dataclass(frozen=True)
class MemberRecord:
    """One member of a conversation: who, what they read, how much they have not."""

    conversation_id: int
    user_id: int
    joined_at: datetime
    read_up_to: datetime | None
    unread_count: int


def member_record(row: ConversationMemberRow) -> MemberRecord:
    return MemberRecord(
        conversation_id=row.conversation_id,
        user_id=row.user_id,
        joined_at=row.joined_at,
        read_up_to=row.read_up_to,
        unread_count=row.unread_count,
    )


@dataclass(frozen=True)
class SendResultRecord:
    """What a sender learns about a message it sent (also for a blocked drop)."""

    conversation_id: int
    server_timestamp: datetime
    delivered_device_count: int
    duplicate: bool
