"""Who may see and do what with a conversation: the one members-only rule.

- A conversation is visible to its members only, on its platform. To anyone
  else (signed out, another user, another platform) it does not exist: reads
  and writes answer NOT_FOUND, exactly like an id that was never issued, so a
  conversation's existence tells an outsider nothing.
- Everything hanging under a conversation (members, read states, timers,
  typing, calls, group operations) is checked through `require_member` here.
- Envelopes belong to the device queue of the user they were sent to: only that
  user reads or acknowledges them (resolvers/messaging/relay.py asks
  `require_own_device`).
"""

from __future__ import annotations

from datetime import datetime

from datasources.messaging.records import ConversationRecord
from resolvers.context import Context
from resolvers.errors import NotFound


def now(context: Context) -> datetime:
    """The request's clock (Stores.clock: tests move it to expire envelopes)."""
    return context.stores.clock()


def is_member(user_id: int | None, member_ids: list[int]) -> bool:
    return user_id is not None and user_id in member_ids


async def visible_conversation(context: Context, conversation_id: int) -> ConversationRecord | None:
    """The conversation, when it exists on this platform and the viewer is a member."""
    if context.viewer_id is None:
        return None
    conversation = await context.loaders.messaging.conversation.load(conversation_id)
    if conversation is None:
        return None
    members = await context.loaders.messaging.members.load(conversation_id)
    if not is_member(context.viewer_id, [member.user_id for member in members]):
        return None
    return conversation


async def require_member(context: Context, conversation_id: int) -> ConversationRecord:
    """The conversation for one of its members; NOT_FOUND for anyone else."""
    context.require_viewer()
    conversation = await visible_conversation(context, conversation_id)
    if conversation is None:
        raise NotFound("conversation")
    return conversation
