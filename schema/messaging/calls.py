"""GraphQL of calls: Call (a Node), CallSignal, startCall, sendCallSignal and the
`callSignals` subscription. Thin: rules are in resolvers/messaging/calls.py, the
live field in subscriptions/calls.py."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from datetime import datetime
from enum import Enum

import strawberry
from strawberry.types import Info

from datasources.messaging.calls import CallRecord
from datasources.users.store import UserRecord
from resolvers.ids import encode_id
from resolvers.messaging import calls as call_resolvers
from resolvers.messaging.calls import SignalRecord
from schema.common import Base64, Node, given
from schema.users.types import User
from subscriptions.calls import CallSignals
from subscriptions.live import stream


@strawberry.enum
class CallKind(Enum):
    AUDIO = "AUDIO"
    VIDEO = "VIDEO"


@strawberry.enum
class CallSignalType(Enum):
    OFFER = "OFFER"
    ANSWER = "ANSWER"
    ICE_CANDIDATE = "ICE_CANDIDATE"
    HANGUP = "HANGUP"
    REJECT = "REJECT"
    BUSY = "BUSY"


async def _user(info: Info, user_id: int) -> User:
    found: UserRecord | None = await info.context.loaders.users.by_id.load(user_id)
    if found is None:  # deleted meanwhile: its rows cascade, so this is a race only
        raise LookupError(f"user {user_id} is gone")
    return User(record=found)


@strawberry.federation.type(keys=["id"], name="Call")
class Call(Node):
    record: strawberry.Private[CallRecord]

    @strawberry.field
    def id(self) -> strawberry.ID:
        return strawberry.ID(encode_id("Call", self.record.id))

    @strawberry.field
    def kind(self) -> CallKind:
        return CallKind(self.record.kind)

    @strawberry.field
    def conversation_id(self) -> strawberry.ID:
        return strawberry.ID(encode_id("Conversation", self.record.conversation_id))

    @strawberry.field
    async def caller(self, info: Info) -> User:
        return await _user(info, self.record.caller_id)

    @strawberry.field
    def started_at(self) -> datetime:
        return self.record.started_at

    @strawberry.field(description="set when the call was hung up, rejected or rang out")
    def ended_at(self, info: Info) -> datetime | None:
        return call_resolvers.call_ended_at(info.context, self.record)

    @classmethod
    async def resolve_reference(cls, info: Info, id: strawberry.ID) -> Call | None:
        """Members of the call's conversation only; null for anyone else."""
        found = await call_resolvers.call_by_global_id(info.context, id)
        return None if found is None else cls(record=found)


@strawberry.type
class CallSignal:
    record: strawberry.Private[SignalRecord]

    @strawberry.field
    def call_id(self) -> strawberry.ID:
        return strawberry.ID(encode_id("Call", self.record.call_id))

    @strawberry.field
    def type(self) -> CallSignalType:
        return CallSignalType(self.record.type)

    @strawberry.field
    async def from_user(self, info: Info) -> User:
        return await _user(info, self.record.from_user_id)

    @strawberry.field
    def from_device_id(self) -> int:
        return self.record.from_device_id

    @strawberry.field(description="SDP or ICE candidate, end-to-end encrypted by the clients")
    def payload(self) -> Base64 | None:
        return None if self.record.payload is None else Base64(self.record.payload)

    @strawberry.field
    def at(self) -> datetime:
        return self.record.at


@strawberry.input
class StartCallInput:
    conversation_id: strawberry.ID
    kind: CallKind
    sender_device_id: int
    offer: Base64


@strawberry.input
class CallSignalInput:
    call_id: strawberry.ID
    sender_device_id: int
    type: CallSignalType
    payload: Base64 | None = strawberry.UNSET


@strawberry.type
class CallsMutation:
    @strawberry.mutation
    async def start_call(self, info: Info, input: StartCallInput) -> Call:
        record = await call_resolvers.start_call(
            info.context,
            input.conversation_id,
            input.kind.value,
            input.sender_device_id,
            input.offer,
        )
        return Call(record=record)

    @strawberry.mutation
    async def send_call_signal(self, info: Info, input: CallSignalInput) -> bool:
        return await call_resolvers.send_call_signal(
            info.context,
            input.call_id,
            input.sender_device_id,
            input.type.value,
            given(input.payload),
        )


@strawberry.type
class CallsSubscription:
    @strawberry.subscription
    async def call_signals(self, info: Info, device_id: int) -> AsyncGenerator[CallSignal, None]:
        context = info.context
        arguments = {"deviceId": device_id}
        async for signal in stream(CallSignals(), context, context.stores.broker, arguments):
            yield signal
