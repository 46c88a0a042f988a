"""SQL of MLS groups: creation, the epoch compare-and-set, fan-out, leaving.

A group is a `messaging_conversations` row of kind GROUP with its MLS
`group_id` and `epoch`, and its members in `messaging_members` (per user: every
device of a member receives). Rules (who may add whom, sizes, headers) are
decided in resolvers/messaging/groups.py; what must hold against concurrent
writers is decided here, inside one transaction each:

- A commit is `UPDATE … SET epoch = epoch + 1 WHERE id = :id AND epoch = :epoch`:
  of concurrent commits for one epoch exactly one updates the row, the others
  find no row and raise `EpochConflict` (their transaction rolls back, so their
  Welcome is never queued). On PostgreSQL the loser waits for the winner's row
  lock and then re-reads the epoch; on SQLite writers are serialized. The
  membership change and every envelope of the commit are in that transaction.
- An application message first claims its `(sender_id, client_message_id)` (a
  resend finds it and is a duplicate), then moves the conversation's activity
  with the same epoch guard, so a message is never queued for an epoch a commit
  has just closed.

The first statement of each transaction writes: on SQLite it takes the write
lock there, so every read after it sees the state the transaction commits on.
Envelopes go through `queue.enqueue` (one batched UPDATE of the device
counters, one multi-row INSERT), whatever the group's size.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import case, delete, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from datasources.messaging.queue import EnvelopeRecord, OutgoingEnvelope, Sender, enqueue
from datasources.messaging.records import (
    ConversationRecord,
    SendResultRecord,
    conversation_record,
)
from datasources.messaging.tables import (
    ConversationMemberRow,
    ConversationRow,
    MessageRow,
    MessagingDeviceRow,
)
from datasources.posts.sqlutil import among, dialect_name
from datasources.sql import Database
from datasources.users.tables import BlockRow, UserRow

C = ConversationRow
M = ConversationMemberRow
D = MessagingDeviceRow

COMMIT = "MLS_COMMIT"
WELCOME = "MLS_WELCOME"
APPLICATION = "MLS_APPLICATION"


class GroupIdTaken(Exception):
    """Another group of the platform has this MLS group id."""


class EpochConflict(Exception):
    """The group is no longer at the epoch the client wrote for."""


class NotAMember(Exception):
    """The actor is not (any longer) a member of the group."""


class UnknownDevice(Exception):
    """The sender device is not one of the actor's devices."""


class TooManyMembers(Exception):
    def __init__(self, count: int) -> None:
        super().__init__(f"the group would have {count} members")
        self.count = count


@dataclass(frozen=True)
class CommitPlan:
    """A validated commitToGroup: what the transaction applies."""

    platform: str
    conversation_id: int
    sender_id: int
    sender_device_id: int
    epoch: int
    commit: bytes
    welcome: bytes | None
    added_ids: frozenset[int]
    removed_ids: frozenset[int]
    max_members: int


@dataclass(frozen=True)
class GroupSend:
    """A validated sendGroupMessage."""

    platform: str
    conversation_id: int
    sender_id: int
    sender_device_id: int
    epoch: int
    ciphertext: bytes
    client_message_id: str


@dataclass(frozen=True)
class Outcome:
    """What a write stored: the conversation after it, and the envelopes to announce."""

    conversation: ConversationRecord
    envelopes: list[EnvelopeRecord]


@dataclass(frozen=True)
class SendOutcome:
    result: SendResultRecord
    envelopes: list[EnvelopeRecord]


class GroupStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def addable(self, platform: str, actor_id: int, user_ids: Collection[int]) -> set[int]:
        """Those of `user_ids` who are users of `platform` with no block either way
        with `actor_id` (two statements, whatever the number of users)."""
        if not user_ids:
            return set()
        wanted = list(user_ids)
        async with self.db.session() as session:
            found = set(
                await session.scalars(
                    select(UserRow.id).where(UserRow.platform == platform, UserRow.id.in_(wanted))
                )
            )
            blocking = await session.execute(
                select(BlockRow.blocker_id, BlockRow.blocked_id).where(
                    (BlockRow.blocker_id == actor_id) & BlockRow.blocked_id.in_(wanted)
                    | (BlockRow.blocked_id == actor_id) & BlockRow.blocker_id.in_(wanted)
                )
            )
            for blocker_id, blocked_id in blocking.all():
                found.discard(blocked_id if blocker_id == actor_id else blocker_id)
        return found

    async def create(
        self,
        platform: str,
        creator_id: int,
        group_id: bytes,
        name: str | None,
        member_ids: Collection[int],
        now: datetime,
    ) -> ConversationRecord:
        """A group at epoch 0 with the creator and `member_ids`; GroupIdTaken when the
        platform already has a group with this MLS group id."""
        async with self.db.transaction() as session:
            dialect = postgresql if dialect_name(session) == "postgresql" else sqlite
            created = await session.execute(
                dialect.insert(C)
                .values(
                    platform=platform,
                    kind="GROUP",
                    group_id=group_id,
                    epoch=0,
                    name=name,
                    created_by=creator_id,
                    created_at=now,
                    last_activity_at=now,
                )
                .on_conflict_do_nothing()
                .returning(C.id)
            )
            conversation_id = created.scalar()
            if conversation_id is None:
                raise GroupIdTaken()
            await _add_members(session, conversation_id, {creator_id, *member_ids}, now)
            row = await session.get(C, conversation_id)
            assert row is not None
            return conversation_record(row)

    async def commit(self, plan: CommitPlan, now: datetime) -> Outcome:
        """Apply a commit at `plan.epoch`: epoch + 1, members changed, envelopes queued.

        Recipients: the commit goes to every device of everyone who was a member
        before it (removed members included: processing the commit is how their
        client learns it was removed), except the sending device; the Welcome to
        every device of the added users. A user in both (a member whose new device
        is being added) gets both on every device; each device uses the one it can.
        A commit of epoch 0 goes to no one: an MLS group starts with its creating
        device alone (RFC 9420 §11), so every other device joins by the Welcome.
        """
        async with self.db.transaction() as session:
            moved = await session.execute(
                update(C)
                .where(C.id == plan.conversation_id, C.kind == "GROUP", C.epoch == plan.epoch)
                .values(epoch=C.epoch + 1, last_activity_at=_later(now))
                .returning(C.id)
            )
            if moved.first() is None:
                raise EpochConflict()
            before = set(await _member_ids(session, plan.conversation_id))
            if plan.sender_id not in before:
                raise NotAMember()
            await _require_device(session, plan.sender_id, plan.sender_device_id)
            removed = plan.removed_ids & before
            after = (before | plan.added_ids) - removed
            if len(after) > plan.max_members:
                raise TooManyMembers(len(after))
            if removed:
                await session.execute(
                    delete(M).where(
                        M.conversation_id == plan.conversation_id, M.user_id.in_(list(removed))
                    )
                )
            await _add_members(session, plan.conversation_id, plan.added_ids - before, now)
            devices = await _devices(session, before | plan.added_ids)
            envelopes = [
                OutgoingEnvelope(user_id, device_id, COMMIT, plan.commit)
                for user_id, device_id in devices
                if plan.epoch > 0 and user_id in before and (user_id, device_id) != _device_of(plan)
            ]
            if plan.welcome is not None:
                envelopes += [
                    OutgoingEnvelope(user_id, device_id, WELCOME, plan.welcome)
                    for user_id, device_id in devices
                    if user_id in plan.added_ids
                ]
            sender = Sender(plan.platform, plan.sender_id, plan.sender_device_id)
            records = await enqueue(session, sender, envelopes, now, plan.conversation_id)
            row = await session.get(C, plan.conversation_id, populate_existing=True)
            assert row is not None
            return Outcome(conversation_record(row), records)

    async def send(self, message: GroupSend, now: datetime) -> SendOutcome:
        """Queue an application message for every member device but the sender's.

        Members who block the sender do not receive it (as in the relay: their
        unread count does not move either); every one else's unread count does.
        """
        async with self.db.transaction() as session:
            message_id = await _claim_message(session, message, now)
            if message_id is None:
                return SendOutcome(await _duplicate(session, message), [])
            moved = await session.execute(
                update(C)
                .where(C.id == message.conversation_id, C.kind == "GROUP", C.epoch == message.epoch)
                .values(last_activity_at=_later(now))
                .returning(C.disappearing_after_seconds)
            )
            found = moved.first()
            if found is None:
                raise EpochConflict()
            members = set(await _member_ids(session, message.conversation_id))
            if message.sender_id not in members:
                raise NotAMember()
            await _require_device(session, message.sender_id, message.sender_device_id)
            receivers = members - await _blockers_of(session, message.sender_id, members)
            devices = await _devices(session, receivers)
            envelopes = [
                OutgoingEnvelope(user_id, device_id, APPLICATION, message.ciphertext)
                for user_id, device_id in devices
                if (user_id, device_id) != (message.sender_id, message.sender_device_id)
            ]
            seconds = found[0]
            expires_at = now + timedelta(seconds=seconds) if seconds else None
            sender = Sender(message.platform, message.sender_id, message.sender_device_id)
            records = await enqueue(
                session, sender, envelopes, now, message.conversation_id, message_id, expires_at
            )
            await session.execute(
                update(MessageRow)
                .where(MessageRow.id == message_id)
                .values(delivered_device_count=len(records))
            )
            others = sorted(receivers - {message.sender_id})
            if others:
                await session.execute(
                    update(M)
                    .where(
                        M.conversation_id == message.conversation_id,
                        among(M.user_id, "users", dialect_name(session)),
                    )
                    .values(unread_count=M.unread_count + 1)
                    .execution_options(synchronize_session=False),
                    {"users": others},
                )
            result = SendResultRecord(message.conversation_id, now, len(records), False)
            return SendOutcome(result, records)

    async def leave(self, conversation_id: int, user_id: int) -> bool:
        """Remove `user_id` from the group's members; False when they were not one."""
        async with self.db.transaction() as session:
            result = await session.execute(
                delete(M)
                .where(M.conversation_id == conversation_id, M.user_id == user_id)
                .returning(M.user_id)
            )
            return result.first() is not None


def _later(now: datetime) -> Any:
    """`now` unless the stored activity is already later (clocks of processes differ)."""
    return case((C.last_activity_at < now, now), else_=C.last_activity_at)


def _device_of(plan: CommitPlan) -> tuple[int, int]:
    return plan.sender_id, plan.sender_device_id


async def _member_ids(session: AsyncSession, conversation_id: int) -> list[int]:
    return list(
        await session.scalars(select(M.user_id).where(M.conversation_id == conversation_id))
    )


async def _add_members(
    session: AsyncSession, conversation_id: int, user_ids: Collection[int], now: datetime
) -> None:
    if not user_ids:
        return
    await session.execute(
        insert(M),
        [
            {"conversation_id": conversation_id, "user_id": user_id, "joined_at": now}
            for user_id in sorted(user_ids)
        ],
    )


async def _devices(session: AsyncSession, user_ids: Collection[int]) -> list[tuple[int, int]]:
    """(user id, device id) of every device of `user_ids`, in a stable order."""
    if not user_ids:
        return []
    rows = await session.execute(
        select(D.user_id, D.device_id)
        .where(among(D.user_id, "users", dialect_name(session)))
        .order_by(D.user_id, D.device_id),
        {"users": sorted(user_ids)},
    )
    return [(user_id, device_id) for user_id, device_id in rows.all()]


async def _require_device(session: AsyncSession, user_id: int, device_id: int) -> None:
    found = await session.scalar(
        select(D.device_id).where(D.user_id == user_id, D.device_id == device_id)
    )
    if found is None:
        raise UnknownDevice()


async def _blockers_of(session: AsyncSession, sender_id: int, users: Collection[int]) -> set[int]:
    rows = await session.scalars(
        select(BlockRow.blocker_id).where(
            BlockRow.blocked_id == sender_id,
            among(BlockRow.blocker_id, "users", dialect_name(session)),
        ),
        {"users": sorted(users)},
    )
    return set(rows)


def _message_of(sender_id: int, client_message_id: str) -> Any:
    return select(MessageRow).where(
        MessageRow.sender_id == sender_id, MessageRow.client_message_id == client_message_id
    )


def _result_of(row: MessageRow) -> SendResultRecord:
    return SendResultRecord(
        conversation_id=row.conversation_id or 0,
        server_timestamp=row.sent_at,
        delivered_device_count=row.delivered_device_count,
        duplicate=True,
    )


async def _claim_message(session: AsyncSession, message: GroupSend, now: datetime) -> int | None:
    """Insert the message row; None when this sender already used the client id."""
    dialect = postgresql if dialect_name(session) == "postgresql" else sqlite
    result = await session.execute(
        dialect.insert(MessageRow)
        .values(
            platform=message.platform,
            sender_id=message.sender_id,
            sender_device_id=message.sender_device_id,
            client_message_id=message.client_message_id,
            conversation_id=message.conversation_id,
            sent_at=now,
            delivered_device_count=0,
        )
        .on_conflict_do_nothing()
        .returning(MessageRow.id)
    )
    return result.scalar()


async def _duplicate(session: AsyncSession, message: GroupSend) -> SendResultRecord:
    row = await session.scalar(_message_of(message.sender_id, message.client_message_id))
    assert row is not None
    return _result_of(row)
