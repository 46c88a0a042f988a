"""Live fields `typing(conversationId)` and `presence(userIds)`: ephemeral, never stored.

typing: members of the conversation only (NOT_FOUND otherwise, checked again
when the viewer's relationships change). The typing state is
subscriptions/presence.py's (its marks expire after 6 s); `setTyping` publishes
on its topic `typing:<platform>:<conversation>` whenever a member starts or
stops typing (`announce_typing`: with the conversation id, which the root
needs); the event's `at` is when the server relayed it. Every member's
subscription gets every member's typing, their own included (a client ignores
its own), so one execution serves them all.

presence: the users named whose presence the viewer may see
(resolvers/messaging/presence.py, `can_see_presence`) are watched, on their
topics `presence:<platform>:<user>` (subscriptions/statuses.py publishes
there on `setPresence`, and subscriptions/server.py when a user's first socket in
the process opens or their last one closes); the others are left out silently,
so a subscription cannot probe who hides their presence. When the viewer's
relationships change (an unfollow, a block), the subscription is checked again
and ends (FORBIDDEN) if one of the watched users may no longer be seen; the
client subscribes again.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, ClassVar

from resolvers.context import Context
from resolvers.errors import Forbidden
from resolvers.ids import decode_id
from subscriptions.live import SKIP
from subscriptions.presence import typing_topic
from subscriptions.statuses import PRESENCE_KIND, presence_topic
from subscriptions.topics import encode

TYPING_KIND = "typing"

WATCHED_ARGUMENT = "_watched_user_ids"
"""Set by `Presence.authorize` (before `topics` is asked): the user ids watched."""


def _conversation_id(arguments: dict[str, Any]) -> int:
    value = arguments.get("conversationId", arguments.get("conversation_id"))
    return decode_id(str(value), "Conversation", field="conversationId")


async def announce_typing(
    broker: Any, platform: str, conversation_id: int, user_id: int, typing: bool
) -> None:
    message = {
        "kind": TYPING_KIND,
        "conversation_id": conversation_id,
        "user_id": user_id,
        "typing": typing,
    }
    await broker.publish(typing_topic(platform, str(conversation_id)), encode(message))


class Typing:
    name: ClassVar[str] = "typing"

    def topics(self, platform: str, arguments: dict[str, Any]) -> Sequence[str]:
        return (typing_topic(platform, str(_conversation_id(arguments))),)

    async def authorize(self, context: Context, arguments: dict[str, Any]) -> None:
        from resolvers.messaging import policy

        await policy.require_member(context, _conversation_id(arguments))

    def handles(self, message: dict[str, Any]) -> bool:
        return message.get("kind") == TYPING_KIND and "conversation_id" in message

    def hidden_by(self, message: dict[str, Any]) -> Sequence[int]:
        return (int(message["user_id"]),) if message.get("user_id") is not None else ()

    async def root(self, context: Context, message: dict[str, Any]) -> Any:
        from resolvers.messaging.policy import now
        from schema.messaging.presence import TypingEvent

        user = await context.loaders.users.by_id.load(int(message["user_id"]))
        if user is None:
            return SKIP
        conversation_id = int(message["conversation_id"])
        return TypingEvent.of(conversation_id, user, bool(message.get("typing")), now(context))


class PresenceField:
    name: ClassVar[str] = "presence"

    def topics(self, platform: str, arguments: dict[str, Any]) -> Sequence[str]:
        return tuple(presence_topic(platform, uid) for uid in arguments.get(WATCHED_ARGUMENT, ()))

    async def authorize(self, context: Context, arguments: dict[str, Any]) -> None:
        from resolvers.messaging.presence import watchable_users

        visible = await watchable_users(context, list(arguments.get("userIds", ())))
        watched = arguments.get(WATCHED_ARGUMENT)
        if watched is None:
            arguments[WATCHED_ARGUMENT] = visible
        elif not set(watched) <= set(visible):
            raise Forbidden("you can no longer see the presence of a user you watch")

    def handles(self, message: dict[str, Any]) -> bool:
        return message.get("kind") == PRESENCE_KIND

    def hidden_by(self, message: dict[str, Any]) -> Sequence[int]:
        return (int(message["user_id"]),) if message.get("user_id") is not None else ()

    async def root(self, context: Context, message: dict[str, Any]) -> Any:
        from schema.messaging.presence import PresenceEvent

        user = await context.loaders.users.by_id.load(int(message["user_id"]))
        if user is None:
            return SKIP
        seen = message.get("last_seen_at")
        last_seen = datetime.fromisoformat(seen) if seen else None
        return PresenceEvent.of(user, str(message["status"]), last_seen)
