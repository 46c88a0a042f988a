"""Who is in a conversation: the membership reads every messaging rule starts from.

Members-only is the one visibility rule of conversations (a non-member gets
NOT_FOUND, resolvers/messaging/policy.py); these reads are what it asks.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from datasources.messaging.tables import (
    ConversationMemberRow,
    ConversationRow,
    MessagingDeviceRow,
)


async def member_ids(session: AsyncSession, conversation_id: int) -> list[int]:
    rows = await session.scalars(
        select(ConversationMemberRow.user_id)
        .where(ConversationMemberRow.conversation_id == conversation_id)
        .order_by(ConversationMemberRow.user_id)
    )
    return list(rows)


async def conversation_of_member(
    session: AsyncSession, platform: str, conversation_id: int, user_id: int
) -> ConversationRow | None:
    """The conversation, when `user_id` is one of its members on `platform`; else None."""
    return await session.scalar(
        select(ConversationRow)
        .join(
            ConversationMemberRow,
            ConversationMemberRow.conversation_id == ConversationRow.id,
        )
        .where(
            ConversationRow.id == conversation_id,
            ConversationRow.platform == platform,
            ConversationMemberRow.user_id == user_id,
        )
    )


async def device_ids(session: AsyncSession, user_ids: Sequence[int]) -> dict[int, dict[int, int]]:
    """Each user's devices: {user id: {device id: registration id}}."""
    devices: dict[int, dict[int, int]] = {user_id: {} for user_id in user_ids}
    rows = await session.execute(
        select(
            MessagingDeviceRow.user_id,
            MessagingDeviceRow.device_id,
            MessagingDeviceRow.registration_id,
        ).where(MessagingDeviceRow.user_id.in_(list(user_ids)))
    )
    for user_id, device_id, registration_id in rows.all():
        devices[user_id][device_id] = registration_id
    return devices
