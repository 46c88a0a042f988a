"""Conversations as their members see them: the list, read marks, disappearing timers.

Every operation goes through policy.require_member: a conversation is the
members' only (NOT_FOUND for anyone else). A DIRECT conversation is created by
its first message (relay.py); groups by createGroup (groups.py).
"""

from __future__ import annotations

from datetime import datetime

from datasources.loading import forget
from datasources.messaging.records import ConversationRecord
from resolvers.context import Context
from resolvers.errors import BadUserInput
from resolvers.ids import decode_id
from resolvers.messaging import policy
from resolvers.pagination import Keyset, Page, decode_cursor, page_size

MAX_PAGE = 100
MIN_DISAPPEARING_SECONDS = 5
MAX_DISAPPEARING_SECONDS = 30 * 24 * 3600  # the retention: nothing outlives it anyway


async def conversations(
    context: Context, first: int | None, after: str | None
) -> Page[ConversationRecord]:
    """The viewer's conversations, latest activity first."""
    viewer = context.require_viewer()
    limit = page_size(first, MAX_PAGE)
    cursor = decode_cursor(after)
    store = context.stores.conversations
    found, more = await store.page_of_member(
        context.platform, viewer.user_id, limit, (cursor.at, cursor.id) if cursor else None
    )
    total = await store.count_of_member(context.platform, viewer.user_id)
    context.loaders.messaging.conversation.prime_many({c.id: c for c in found})
    return Page(
        items=[(Keyset(c.last_activity_at, c.id), c) for c in found],
        has_next=more,
        has_previous=cursor is not None,
        total_count=total,
    )


async def conversation(context: Context, global_id: str) -> ConversationRecord:
    """`Query.conversation`: NOT_FOUND alike for unknown, other-platform and other
    people's conversations."""
    return await policy.require_member(context, decode_id(global_id, "Conversation"))


async def mark_read(context: Context, global_id: str, up_to: datetime) -> ConversationRecord:
    """Move the viewer's read mark to `up_to` (never back, never past now)."""
    viewer = context.require_viewer()
    pk = decode_id(global_id, "Conversation", "conversationId")
    conversation = await policy.require_member(context, pk)
    mark = min(up_to, policy.now(context))
    await context.stores.conversations.mark_read(pk, viewer.user_id, mark)
    forget(context.loaders.messaging.members, [pk])
    return conversation


async def set_disappearing(
    context: Context, global_id: str, seconds: int | None
) -> ConversationRecord:
    """Turn the disappearing timer on (`seconds`) or off (null), for every member."""
    context.require_viewer()
    pk = decode_id(global_id, "Conversation", "conversationId")
    await policy.require_member(context, pk)
    if seconds is not None and not MIN_DISAPPEARING_SECONDS <= seconds <= MAX_DISAPPEARING_SECONDS:
        raise BadUserInput(
            f"seconds must be between {MIN_DISAPPEARING_SECONDS} and "
            f"{MAX_DISAPPEARING_SECONDS}, or null to turn it off",
            field="seconds",
        )
    record = await context.stores.conversations.set_disappearing(pk, seconds)
    assert record is not None  # a member's conversation exists
    forget(context.loaders.messaging.conversation, [pk])
    return record
