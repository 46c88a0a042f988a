"""GraphQL output types of the relay: Envelope, Conversation, ReadState, SendMessageResult.

Each wraps a plain record (datasources/messaging/records.py, queue.py) that the
resolvers of every messaging part build (relay, groups, calls), so whichever
mutation returns a Conversation, it resolves the same way: its members, read
states and the viewer's unread count come from the member rows of the request's
`messaging.members` DataLoader (one statement for a whole page) and the users
behind them from `users.by_id`. Visibility is resolvers/messaging/policy.py.
"""

from __future__ import annotations

from datetime import datetime
from enum import Enum

import strawberry
from strawberry.types import Info

from datasources.messaging.queue import EnvelopeRecord
from datasources.messaging.records import ConversationRecord, MemberRecord, SendResultRecord
from resolvers.ids import encode_id, key_of
from resolvers.messaging import policy
from resolvers.messaging import relay as relay_resolvers
from resolvers.pagination import Page
from schema.common import Base64, Connection, Node, connection
from schema.users.types import User


@strawberry.enum
class EnvelopeType(Enum):
    PREKEY_MESSAGE = "PREKEY_MESSAGE"
    CIPHERTEXT = "CIPHERTEXT"
    MLS_WELCOME = "MLS_WELCOME"
    MLS_COMMIT = "MLS_COMMIT"
    MLS_APPLICATION = "MLS_APPLICATION"
    RECEIPT = "RECEIPT"
    CALL_SIGNAL = "CALL_SIGNAL"


@strawberry.enum
class ConversationKind(Enum):
    DIRECT = "DIRECT"
    GROUP = "GROUP"


def conversation_global_id(conversation_id: int) -> strawberry.ID:
    return strawberry.ID(encode_id("Conversation", conversation_id))


def user_global_id(user_id: int) -> strawberry.ID:
    return strawberry.ID(encode_id("User", user_id))


# ── envelopes ────────────────────────────────────────────────────────────


@strawberry.federation.type(keys=["id"], name="Envelope")
class Envelope(Node):
    record: strawberry.Private[EnvelopeRecord]

    @strawberry.field
    def id(self) -> strawberry.ID:
        return strawberry.ID(encode_id("Envelope", self.record.id))

    @strawberry.field(description="monotonic per receiving device; resume a subscription after it")
    def sequence(self) -> int:
        return self.record.sequence

    @strawberry.field
    def type(self) -> EnvelopeType:
        return EnvelopeType(self.record.type)

    @strawberry.field
    def sender_id(self) -> strawberry.ID:
        return user_global_id(self.record.sender_id)

    @strawberry.field
    def sender_device_id(self) -> int:
        return self.record.sender_device_id

    @strawberry.field
    def conversation_id(self) -> strawberry.ID | None:
        if self.record.conversation_id is None:
            return None
        return conversation_global_id(self.record.conversation_id)

    @strawberry.field
    def content(self) -> Base64:
        return Base64(self.record.content)

    @strawberry.field
    def server_timestamp(self) -> datetime:
        return self.record.server_timestamp

    @strawberry.field
    def expires_at(self) -> datetime | None:
        return self.record.expires_at

    @classmethod
    async def resolve_reference(cls, info: Info, id: strawberry.ID) -> Envelope | None:
        """Only an envelope still waiting in one of the viewer's own device queues."""
        pk = key_of(id, "Envelope")
        record = await relay_resolvers.envelope_of_viewer(info.context, pk) if pk else None
        return cls(record=record) if record else None


EnvelopeConnection = Connection[Envelope]


def envelopes_connection(page: Page[EnvelopeRecord]) -> Connection[Envelope]:
    return connection(page.map(lambda record: Envelope(record=record)))


# ── conversations ────────────────────────────────────────────────────────


@strawberry.type
class ReadState:
    member: strawberry.Private[MemberRecord]

    @strawberry.field
    async def user(self, info: Info) -> User:
        record = await info.context.loaders.users.by_id.load(self.member.user_id)
        return User(record=record)

    @strawberry.field
    def read_up_to(self) -> datetime:
        assert self.member.read_up_to is not None  # only members who read are listed
        return self.member.read_up_to


@strawberry.federation.type(keys=["id"], name="Conversation")
class Conversation(Node):
    record: strawberry.Private[ConversationRecord]

    @strawberry.field
    def id(self) -> strawberry.ID:
        return conversation_global_id(self.record.id)

    @strawberry.field
    def kind(self) -> ConversationKind:
        return ConversationKind(self.record.kind)

    @strawberry.field
    async def members(self, info: Info) -> list[User]:
        members = await info.context.loaders.messaging.members.load(self.record.id)
        users = await info.context.loaders.users.by_id.load_many([m.user_id for m in members])
        return [User(record=user) for user in users if user is not None]

    @strawberry.field(description="MLS group id (groups only)")
    def group_id(self) -> Base64 | None:
        return Base64(self.record.group_id) if self.record.group_id is not None else None

    @strawberry.field(description="current MLS epoch (groups only)")
    def epoch(self) -> int | None:
        return self.record.epoch

    @strawberry.field
    def name(self) -> str | None:
        return self.record.name

    @strawberry.field
    def last_activity_at(self) -> datetime:
        return self.record.last_activity_at

    @strawberry.field
    async def unread_count(self, info: Info) -> int:
        members = await info.context.loaders.messaging.members.load(self.record.id)
        viewer_id = info.context.viewer_id
        return next((m.unread_count for m in members if m.user_id == viewer_id), 0)

    @strawberry.field(description="per member, the last message sequence they marked read")
    async def read_states(self, info: Info) -> list[ReadState]:
        members = await info.context.loaders.messaging.members.load(self.record.id)
        return [ReadState(member=m) for m in members if m.read_up_to is not None]

    @strawberry.field(description="seconds after reading that messages self-destruct; null = off")
    def disappearing_after_seconds(self) -> int | None:
        return self.record.disappearing_after_seconds

    @classmethod
    async def resolve_reference(cls, info: Info, id: strawberry.ID) -> Conversation | None:
        """Members only: to anyone else the conversation does not exist."""
        pk = key_of(id, "Conversation")
        record = await policy.visible_conversation(info.context, pk) if pk else None
        return cls(record=record) if record else None


ConversationConnection = Connection[Conversation]


def conversations_connection(page: Page[ConversationRecord]) -> Connection[Conversation]:
    return connection(page.map(lambda record: Conversation(record=record)))


@strawberry.type
class SendMessageResult:
    record: strawberry.Private[SendResultRecord]

    @strawberry.field
    def conversation_id(self) -> strawberry.ID:
        return conversation_global_id(self.record.conversation_id)

    @strawberry.field
    def server_timestamp(self) -> datetime:
        return self.record.server_timestamp

    @strawberry.field
    def delivered_device_count(self) -> int:
        return self.record.delivered_device_count

    @strawberry.field
    def duplicate(self) -> bool:
        return self.record.duplicate
