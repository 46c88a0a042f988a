"""GraphQL of typing and presence: setTyping, setPresence, the `typing` and
`presence` subscriptions and their events. Thin: rules are in
resolvers/messaging/presence.py; the live fields in subscriptions/typing_presence.py
(the hub serves them; the strawberry resolvers here run the same rules for
strawberry's own handlers)."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from datetime import datetime
from enum import Enum

import strawberry
from strawberry.types import Info

from datasources.users.store import UserRecord
from resolvers.ids import encode_id
from resolvers.messaging import presence as presence_resolvers
from schema.users.types import User
from subscriptions.live import stream
from subscriptions.typing_presence import PresenceField, Typing


@strawberry.enum
class PresenceStatus(Enum):
    ONLINE = "ONLINE"
    AWAY = "AWAY"
    OFFLINE = "OFFLINE"


@strawberry.type
class TypingEvent:
    conversation_id: strawberry.ID
    user: User
    is_typing: bool
    at: datetime

    @classmethod
    def of(cls, conversation_id: int, user: UserRecord, typing: bool, at: datetime) -> TypingEvent:
        return cls(
            conversation_id=strawberry.ID(encode_id("Conversation", conversation_id)),
            user=User(record=user),
            is_typing=typing,
            at=at,
        )


@strawberry.type
class PresenceEvent:
    user: User
    status: PresenceStatus
    last_seen_at: datetime | None

    @classmethod
    def of(cls, user: UserRecord, status: str, last_seen_at: datetime | None) -> PresenceEvent:
        return cls(user=User(record=user), status=PresenceStatus(status), last_seen_at=last_seen_at)


@strawberry.type
class PresenceMutation:
    @strawberry.mutation
    async def set_typing(self, info: Info, conversation_id: strawberry.ID, is_typing: bool) -> bool:
        return await presence_resolvers.set_typing(info.context, conversation_id, is_typing)

    @strawberry.mutation
    async def set_presence(self, info: Info, status: PresenceStatus) -> bool:
        return await presence_resolvers.set_presence(info.context, status.value)


@strawberry.type
class PresenceSubscription:
    @strawberry.subscription
    async def typing(
        self, info: Info, conversation_id: strawberry.ID
    ) -> AsyncGenerator[TypingEvent, None]:
        context = info.context
        arguments = {"conversationId": conversation_id}
        async for event in stream(Typing(), context, context.stores.broker, arguments):
            yield event

    @strawberry.subscription
    async def presence(
        self, info: Info, user_ids: list[strawberry.ID]
    ) -> AsyncGenerator[PresenceEvent, None]:
        context = info.context
        arguments = {"userIds": list(user_ids)}
        async for event in stream(PresenceField(), context, context.stores.broker, arguments):
            yield event
