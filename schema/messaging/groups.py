"""GraphQL of MLS groups: createGroup, commitToGroup, sendGroupMessage, leaveGroup.

Thin: every rule is in resolvers/messaging/groups.py. Byte fields are `Base64`
(decoded by the scalar); the outputs are the relay's Conversation and
SendMessageResult (schema/messaging/types.py), so a group reads like any
conversation.
"""

from __future__ import annotations

import strawberry
from strawberry.types import Info

from resolvers.messaging import groups
from schema.common import Base64, given
from schema.messaging.types import Conversation, SendMessageResult


@strawberry.input
class CreateGroupInput:
    group_id: Base64
    name: str | None = strawberry.UNSET
    member_ids: list[strawberry.ID] = strawberry.field(default_factory=list)


@strawberry.input
class CommitInput:
    conversation_id: strawberry.ID
    sender_device_id: int
    epoch: int = strawberry.field(
        description=(
            "the epoch the commit was created in; "
            "CONFLICT unless it equals the group's current epoch"
        )
    )
    commit: Base64
    welcome: Base64 | None = strawberry.field(
        default=strawberry.UNSET,
        description="Welcome for newly added members, delivered only to them",
    )
    added_member_ids: list[strawberry.ID] = strawberry.field(default_factory=list)
    removed_member_ids: list[strawberry.ID] = strawberry.field(default_factory=list)


@strawberry.input
class GroupMessageInput:
    conversation_id: strawberry.ID
    sender_device_id: int
    epoch: int
    ciphertext: Base64
    client_message_id: str


@strawberry.type
class GroupsMutation:
    @strawberry.mutation
    async def create_group(self, info: Info, input: CreateGroupInput) -> Conversation:
        record = await groups.create_group(
            info.context, bytes(input.group_id), given(input.name), input.member_ids
        )
        return Conversation(record=record)

    @strawberry.mutation
    async def commit_to_group(self, info: Info, input: CommitInput) -> Conversation:
        welcome = given(input.welcome)
        record = await groups.commit_to_group(
            info.context,
            groups.CommitInput(
                conversation_id=input.conversation_id,
                sender_device_id=input.sender_device_id,
                epoch=input.epoch,
                commit=bytes(input.commit),
                welcome=None if welcome is None else bytes(welcome),
                added_member_ids=input.added_member_ids,
                removed_member_ids=input.removed_member_ids,
            ),
        )
        return Conversation(record=record)

    @strawberry.mutation
    async def send_group_message(self, info: Info, input: GroupMessageInput) -> SendMessageResult:
        record = await groups.send_group_message(
            info.context,
            groups.GroupMessageInput(
                conversation_id=input.conversation_id,
                sender_device_id=input.sender_device_id,
                epoch=input.epoch,
                ciphertext=bytes(input.ciphertext),
                client_message_id=input.client_message_id,
            ),
        )
        return SendMessageResult(record=record)

    @strawberry.mutation
    async def leave_group(self, info: Info, conversation_id: strawberry.ID) -> bool:
        return await groups.leave_group(info.context, conversation_id)
