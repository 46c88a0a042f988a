"""Root fields of the relay: queues, conversations, sendMessage and the `envelopes` stream.

The `envelopes` subscription is served by the realtime hub as a resumable
stream (subscriptions/messaging.py); the strawberry resolver here is the same
stream the per-subscriber way (strawberry's handlers, `schema.subscribe`).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Mapping
from datetime import datetime
from typing import Any

import strawberry
from strawberry.types import Info
from strawberry.types.arguments import InputContext

from resolvers.messaging import conversations as conversation_resolvers
from resolvers.messaging import relay as relay_resolvers
from schema.common import NO_CURSOR, Base64, Connection, given
from schema.messaging.types import (
    Conversation,
    Envelope,
    EnvelopeType,
    SendMessageResult,
    conversations_connection,
    envelopes_connection,
)
from subscriptions.messaging import Envelopes
from subscriptions.resumable import resumable_stream


@strawberry.input
class OutgoingEnvelopeInput:
    recipient_id: strawberry.ID
    recipient_device_id: int
    recipient_registration_id: int = strawberry.field(
        description="must equal the registrationId the device registered (detects stale devices)"
    )
    type: EnvelopeType
    content: Base64


@strawberry.input
class SendMessageInput:
    client_message_id: str = strawberry.field(
        description="client-chosen id: resending the same id is a no-op (duplicate: true)"
    )
    sender_device_id: int
    conversation_id: strawberry.ID | None = strawberry.UNSET
    envelopes: list[OutgoingEnvelopeInput] = strawberry.field(
        description="one envelope per device of every recipient, and of the sender's other devices"
    )
    expires_in_seconds: int | None = strawberry.UNSET


# sendMessage's input built straight from what graphql-core coerced (strawberry's
# `from_input` hook): every field is a scalar or an enum, which strawberry's
# generic conversion passes on unchanged too, after resolving each field's type
# for each envelope (about 7% of a relayed message's server CPU).


def _envelope_from_input(
    cls: type[OutgoingEnvelopeInput], value: Mapping[str, Any], _context: InputContext
) -> OutgoingEnvelopeInput:
    return cls(
        recipient_id=value["recipientId"],
        recipient_device_id=value["recipientDeviceId"],
        recipient_registration_id=value["recipientRegistrationId"],
        type=value["type"],
        content=value["content"],
    )


def _send_from_input(
    cls: type[SendMessageInput], value: Mapping[str, Any], context: InputContext
) -> SendMessageInput:
    return cls(
        client_message_id=value["clientMessageId"],
        sender_device_id=value["senderDeviceId"],
        conversation_id=value.get("conversationId", strawberry.UNSET),
        envelopes=[
            _envelope_from_input(OutgoingEnvelopeInput, envelope, context)
            for envelope in value["envelopes"]
        ],
        expires_in_seconds=value.get("expiresInSeconds", strawberry.UNSET),
    )


OutgoingEnvelopeInput.__strawberry_definition__.from_input = _envelope_from_input  # type: ignore[attr-defined,assignment]
SendMessageInput.__strawberry_definition__.from_input = _send_from_input  # type: ignore[attr-defined,assignment]


def _plain(input: SendMessageInput) -> relay_resolvers.SendInput:
    return relay_resolvers.SendInput(
        client_message_id=input.client_message_id,
        sender_device_id=input.sender_device_id,
        conversation_id=given(input.conversation_id),
        envelopes=[
            relay_resolvers.AddressedEnvelope(
                recipient_id=e.recipient_id,
                device_id=e.recipient_device_id,
                registration_id=e.recipient_registration_id,
                type=e.type.value,
                content=bytes(e.content),
            )
            for e in input.envelopes
        ],
        expires_in_seconds=given(input.expires_in_seconds),
    )


@strawberry.type
class RelayQuery:
    @strawberry.field(
        description="messages waiting for this device (the offline queue), oldest first"
    )
    async def pending_envelopes(
        self, info: Info, device_id: int, first: int | None = 100, after: str | None = NO_CURSOR
    ) -> Connection[Envelope]:
        page = await relay_resolvers.pending_envelopes(info.context, device_id, first, given(after))
        return envelopes_connection(page)

    @strawberry.field
    async def conversations(
        self, info: Info, first: int | None = 20, after: str | None = NO_CURSOR
    ) -> Connection[Conversation]:
        page = await conversation_resolvers.conversations(info.context, first, given(after))
        return conversations_connection(page)

    @strawberry.field
    async def conversation(self, info: Info, id: strawberry.ID) -> Conversation | None:
        return Conversation(record=await conversation_resolvers.conversation(info.context, id))


@strawberry.type
class RelayMutation:
    @strawberry.mutation
    async def send_message(self, info: Info, input: SendMessageInput) -> SendMessageResult:
        record = await relay_resolvers.send_message(info.context, _plain(input))
        return SendMessageResult(record=record)

    @strawberry.mutation(description="delete delivered envelopes from this device's queue")
    async def acknowledge_envelopes(
        self, info: Info, device_id: int, ids: list[strawberry.ID]
    ) -> int:
        return await relay_resolvers.acknowledge(info.context, device_id, ids)

    @strawberry.mutation
    async def mark_conversation_read(
        self, info: Info, conversation_id: strawberry.ID, up_to: datetime
    ) -> Conversation:
        record = await conversation_resolvers.mark_read(info.context, conversation_id, up_to)
        return Conversation(record=record)

    @strawberry.mutation
    async def set_disappearing_messages(
        self, info: Info, conversation_id: strawberry.ID, seconds: int | None
    ) -> Conversation:
        record = await conversation_resolvers.set_disappearing(
            info.context, conversation_id, seconds
        )
        return Conversation(record=record)


@strawberry.type
class RelaySubscription:
    @strawberry.subscription(
        description="live delivery to one device; with afterSequence, first replays what was missed"
    )
    async def envelopes(
        self, info: Info, device_id: int, after_sequence: int | None = strawberry.UNSET
    ) -> AsyncGenerator[Envelope, None]:
        arguments = {"deviceId": device_id, "afterSequence": given(after_sequence)}
        context = info.context
        async for envelope in resumable_stream(
            Envelopes(), context, context.stores.broker, arguments
        ):
            yield envelope
