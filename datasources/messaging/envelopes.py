"""SQL of the relay: a message's send transaction, the device queues' reads, purges.

`send` is one transaction on one connection, with statements built once (bind
parameters, Core on the tables: building a statement per call, and a
connection per read, were a good part of a send's CPU):

1. the caller's rules (resolvers/messaging/relay.py), on `SendReads.addressing`:
   one statement for everything the addressing rules ask (the devices of the
   sender and the recipients, which recipients exist, which of them block the
   sender, the pair's DIRECT conversation and its timer) and for the message
   with this client id, if any: a resend is answered with what the first send
   answered before any rule is applied, and nothing is queued (a rule that fails
   before that read, on the request alone, looks for the resend first, so a
   resend is still answered before anything is checked); an error rolls back;
2. the message row (whose unique `(sender_id, client_message_id)` turns a
   concurrent resend into a no-op: the loser's insert fails and it reads the
   winner's row), the DIRECT conversation on first message, the envelopes
   through `queue.enqueue_rows` (dense per-device sequences) and the members'
   unread counters. The caller announces the envelopes on the broker after
   `send` returns (committed).

The conversation's disappearing timer is the one read with the addressing (or
with the conversation): a timer changed meanwhile applies from the next
message, as for a message whose send began before the change.

Reads of a queue skip envelopes past their `expires_at` even before the sweeper
(`purge`) deletes them, so an expired message is never handed out.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    CompoundSelect,
    Table,
    bindparam,
    delete,
    func,
    insert,
    literal_column,
    null,
    or_,
    select,
    union_all,
)
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from datasources.groupcommit import GroupCommit
from datasources.messaging.conversations import direct_conversation, record_activities
from datasources.messaging.members import device_ids
from datasources.messaging.queue import (
    FEW,
    EnvelopeRecord,
    OutgoingEnvelope,
    Sender,
    bound_list,
    bound_values,
    enqueue_rows,
    envelope_row,
)
from datasources.messaging.records import SendResultRecord
from datasources.messaging.tables import (
    ConversationRow,
    EnvelopeRow,
    MessageRow,
    MessagingDeviceRow,
)
from datasources.sql import Database
from datasources.users.graph import blockers_among
from datasources.users.tables import UserRow

E = EnvelopeRow
MESSAGES = MessageRow.__table__.c

SENT_BEFORE = select(
    MESSAGES.conversation_id, MESSAGES.sent_at, MESSAGES.delivered_device_count
).where(
    MESSAGES.sender_id == bindparam("sender_id"),
    MESSAGES.client_message_id == bindparam("client_message_id"),
)
INSERT_MESSAGE = insert(cast(Table, MessageRow.__table__)).returning(
    MESSAGES.id, MESSAGES.sender_id, MESSAGES.client_message_id
)


@functools.lru_cache(maxsize=FEW)
def _addressing_statement(recipients: int) -> CompoundSelect[Any]:
    """For `recipients` bound as recipient_i (queue.FEW), (a, b, c, kind, at) rows:
    (conversation id, delivered device count, NULL, "sent", sent at) for the message
    with this client id (first: its `at` column types the union's), (user, device,
    registration id, "device"), (id, 0, 0, "user"), (id, 0, 0, "blocker"),
    (conversation id, timer, NULL, "direct")."""
    devices = MessagingDeviceRow.__table__.c
    users = UserRow.__table__.c
    conversations = ConversationRow.__table__.c
    zero: ColumnElement[int] = literal_column("0")
    recipient_ids = bound_list("recipient", recipients)
    return union_all(
        select(
            MESSAGES.conversation_id.label("a"),
            MESSAGES.delivered_device_count.label("b"),
            null().label("c"),
            literal_column("'sent'").label("kind"),
            MESSAGES.sent_at.label("at"),
        ).where(
            MESSAGES.sender_id == bindparam("sender_id"),
            MESSAGES.client_message_id == bindparam("client_message_id"),
        ),
        select(
            devices.user_id,
            devices.device_id,
            devices.registration_id,
            literal_column("'device'"),
            null(),
        ).where(devices.user_id.in_([bindparam("sender_id"), *recipient_ids])),
        select(users.id, zero, zero, literal_column("'user'"), null()).where(
            users.platform == bindparam("platform"),
            users.id.in_(recipient_ids),
        ),
        blockers_among(bindparam("sender_id"), recipient_ids).add_columns(
            zero, zero, literal_column("'blocker'"), null()
        ),
        select(
            conversations.id,
            conversations.disappearing_after_seconds,
            null(),
            literal_column("'direct'"),
            null(),
        ).where(
            conversations.platform == bindparam("platform"),
            conversations.direct_key == bindparam("direct_key"),
        ),
    )


def envelope_record(row: EnvelopeRow) -> EnvelopeRecord:
    return EnvelopeRecord(
        id=row.id,
        platform=row.platform,
        recipient_id=row.recipient_id,
        recipient_device_id=row.recipient_device_id,
        sequence=row.sequence,
        type=row.type,
        sender_id=row.sender_id,
        sender_device_id=row.sender_device_id,
        conversation_id=row.conversation_id,
        message_id=row.message_id,
        content=row.content,
        server_timestamp=row.server_timestamp,
        expires_at=row.expires_at,
    )


@dataclass(frozen=True)
class Addressing:
    """What the relay checks a send against, read in one statement."""

    devices: dict[int, dict[int, int]]  # {user id: {device id: registration id}}
    existing: set[int]  # the recipients that are users of the platform
    blockers: set[int]  # the recipients who block the sender
    direct: tuple[int, int | None] | None  # the pair's DIRECT conversation: (id, timer)


@dataclass(frozen=True)
class Outgoing:
    """A message the resolver checked: who sends, where, what is really queued."""

    sender: Sender
    client_message_id: str
    conversation_id: int | None  # None: the DIRECT conversation with `direct_with`, to create
    disappearing_seconds: int | None  # the conversation's timer (unused when created)
    direct_with: int | None
    envelopes: Sequence[OutgoingEnvelope]  # what is queued (drops already left out)
    unread_for: Sequence[int]  # members that get one more unread
    reported_count: int  # what the sender is told was delivered
    expires_in_seconds: int | None


@dataclass(frozen=True)
class Sent:
    result: SendResultRecord
    records: list[EnvelopeRecord]  # to announce after the commit (none for a duplicate)


class _Resent(Exception):
    """The send's reads found the message of its client id: answer it as a duplicate."""

    def __init__(self, previous: SendResultRecord) -> None:
        self.previous = previous


class SendReads:
    """What a send's rules read, in its transaction."""

    def __init__(self, conn: AsyncConnection, sender: Sender, client_message_id: str) -> None:
        self.conn = conn
        self.sender = sender
        self.client_message_id = client_message_id
        self.resend_looked_up = False  # whether a read looked for the message already

    async def addressing(self, recipients: Sequence[int], direct_key: str | None) -> Addressing:
        """The devices of the sender and `recipients`, which recipients exist and which
        block the sender, and the DIRECT conversation of `direct_key` (None: none).
        Raises `_Resent` (`EnvelopeStore.send` answers it) when the message of this
        client id exists: a resend is answered before any rule looks at these."""
        sender_id = self.sender.user_id
        users = [sender_id, *recipients]
        params = {
            **bound_values("recipient", recipients),
            "platform": self.sender.platform,
            "sender_id": sender_id,
            "client_message_id": self.client_message_id,
            "direct_key": direct_key,  # NULL matches no conversation
        }
        self.resend_looked_up = True
        statement = _addressing_statement(len(recipients))
        rows = (await self.conn.execute(statement, params)).all()
        devices: dict[int, dict[int, int]] = {user_id: {} for user_id in users}
        existing: set[int] = set()
        blockers: set[int] = set()
        direct = None
        for a, b, c, kind, at in rows:
            if kind == "device":
                devices[a][b] = c
            elif kind == "user":
                existing.add(a)
            elif kind == "blocker":
                blockers.add(a)
            elif kind == "direct":
                direct = (int(a), b)
            elif a is not None:  # "sent", committed (a conversation id is set then)
                raise _Resent(_duplicate(a, at, b))
        return Addressing(devices, existing, blockers, direct)


@dataclass(frozen=True)
class SendRequest:
    sender: Sender
    client_message_id: str
    checked: Callable[[SendReads], Awaitable[Outgoing]]
    now: datetime
    resend_checked: bool


class EnvelopeStore:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._sends: GroupCommit[SendRequest, Sent] = GroupCommit(self._send_batch)

    # ── sending ─────────────────────────────────────────────────────────

    async def devices(self, user_ids: Sequence[int]) -> dict[int, dict[int, int]]:
        """Each user's devices: {user id: {device id: registration id}}."""
        async with self.db.session() as session:
            return await device_ids(session, user_ids)

    async def sent_before(self, sender_id: int, client_message_id: str) -> SendResultRecord | None:
        """What a message with this client id already sent, as a duplicate's answer."""
        async with self.db.engine.connect() as conn:
            return await _sent_before(conn, sender_id, client_message_id)

    async def send(
        self,
        sender: Sender,
        client_message_id: str,
        checked: Callable[[SendReads], Awaitable[Outgoing]],
        now: datetime,
        resend_checked: bool = False,
    ) -> Sent:
        """Queue the message `checked` makes of what it reads (see above); a resend,
        concurrent ones included, is answered as a duplicate and queues nothing.
        `resend_checked`: the caller already asked `sent_before` (a concurrent resend
        meanwhile is still answered, by the addressing read or the unique key).

        Sends that arrive while others are being committed share the next
        transaction (`GroupCommit`): each is checked on its own reads, and the
        checked messages are written with one statement per table."""
        request = SendRequest(sender, client_message_id, checked, now, resend_checked)
        return await self._sends.submit(request)

    async def _send_batch(self, requests: Sequence[SendRequest]) -> list[Sent | BaseException]:
        if len(requests) > 1:
            try:
                return await self._send_together(requests)
            except SQLAlchemyError:
                # Two of the batch's messages conflict (a resend of one in flight, a
                # deadlock with another process): each alone, as without batching.
                pass
        outcomes: list[Sent | BaseException] = []
        for request in requests:
            try:
                outcomes.append(await self._send_alone(request))
            except Exception as error:
                outcomes.append(error)
        return outcomes

    async def _send_together(self, requests: Sequence[SendRequest]) -> list[Sent | BaseException]:
        """The batch in one transaction; a database error rolls all of it back."""
        outcomes: list[Sent | BaseException | None] = []
        checked: list[tuple[int, Outgoing, datetime]] = []
        # A Core connection, not an ORM session: a session's begin, commit and close
        # were a measurable part of a message's CPU, for nothing used here.
        async with self.db.engine.begin() as conn:
            for index, request in enumerate(requests):
                outcome = await _checked(conn, request)
                if isinstance(outcome, Outgoing):
                    checked.append((index, outcome, request.now))
                    outcomes.append(None)
                else:
                    outcomes.append(outcome)
            sent = await _write(conn, [(outgoing, now) for _, outgoing, now in checked])
        for (index, _, _), one in zip(checked, sent, strict=True):
            outcomes[index] = one
        return [outcome for outcome in outcomes if outcome is not None]

    async def _send_alone(self, request: SendRequest) -> Sent:
        sender = request.sender
        try:
            async with self.db.engine.begin() as conn:
                outcome = await _checked(conn, request)
                if isinstance(outcome, BaseException):
                    raise outcome
                if isinstance(outcome, Sent):
                    return outcome
                return (await _write(conn, [(outcome, request.now)]))[0]
        except IntegrityError:
            # A concurrent send with the same client id won the unique key.
            previous = await self.sent_before(sender.user_id, request.client_message_id)
            if previous is None:
                raise
            return Sent(previous, [])

    # ── queue reads ─────────────────────────────────────────────────────

    async def by_id(self, platform: str, envelope_id: int, now: datetime) -> EnvelopeRecord | None:
        stmt = select(E).where(E.id == envelope_id, E.platform == platform, _live(now))
        async with self.db.session() as session:
            row = await session.scalar(stmt)
        return envelope_record(row) if row is not None else None

    async def after(
        self,
        user_id: int,
        device_id: int,
        after_sequence: int | None,
        limit: int,
        now: datetime,
    ) -> list[EnvelopeRecord]:
        """Up to `limit` envelopes of the device's queue after `after_sequence`, in order."""
        stmt = select(E).where(
            E.recipient_id == user_id, E.recipient_device_id == device_id, _live(now)
        )
        if after_sequence is not None:
            stmt = stmt.where(E.sequence > after_sequence)
        stmt = stmt.order_by(E.sequence).limit(limit)
        async with self.db.session() as session:
            rows = (await session.scalars(stmt)).all()
        return [envelope_record(row) for row in rows]

    async def at_sequence(
        self, user_id: int, device_id: int, sequence: int, now: datetime
    ) -> EnvelopeRecord | None:
        stmt = select(E).where(
            E.recipient_id == user_id,
            E.recipient_device_id == device_id,
            E.sequence == sequence,
            _live(now),
        )
        async with self.db.session() as session:
            row = await session.scalar(stmt)
        return envelope_record(row) if row is not None else None

    async def last_sequence(self, user_id: int, device_id: int) -> int:
        """The device's last sequence handed out (committed), 0 when none or no device."""
        stmt = select(MessagingDeviceRow.last_sequence).where(
            MessagingDeviceRow.user_id == user_id, MessagingDeviceRow.device_id == device_id
        )
        async with self.db.session() as session:
            return int(await session.scalar(stmt) or 0)

    async def count(self, user_id: int, device_id: int, now: datetime) -> int:
        stmt = (
            select(func.count())
            .select_from(E)
            .where(E.recipient_id == user_id, E.recipient_device_id == device_id, _live(now))
        )
        async with self.db.session() as session:
            return int(await session.scalar(stmt) or 0)

    # ── deletes ─────────────────────────────────────────────────────────

    async def acknowledge(self, user_id: int, device_id: int, ids: Sequence[int]) -> int:
        """Delete these envelopes of the device's own queue; others' ids match nothing."""
        if not ids:
            return 0
        stmt = delete(E).where(
            E.recipient_id == user_id, E.recipient_device_id == device_id, E.id.in_(list(ids))
        )
        async with self.db.transaction() as session:
            result = await session.execute(stmt)
        return int(result.rowcount or 0)  # type: ignore[attr-defined]

    async def purge(self, now: datetime, retention: timedelta, batch: int) -> int:
        """Delete up to `batch` envelopes past their expiry or older than the retention
        (undelivered ones too: that is the point); how many went."""
        doomed = (
            select(E.id)
            .where(or_(E.expires_at <= now, E.server_timestamp < now - retention))
            .limit(batch)
            .scalar_subquery()
        )
        async with self.db.transaction() as session:
            result = await session.execute(delete(E).where(E.id.in_(doomed)))
        return int(result.rowcount or 0)  # type: ignore[attr-defined]


def _live(now: datetime):  # type: ignore[no-untyped-def]
    return or_(E.expires_at.is_(None), E.expires_at > now)


async def _sent_before(
    conn: AsyncConnection, sender_id: int, client_message_id: str
) -> SendResultRecord | None:
    params = {"sender_id": sender_id, "client_message_id": client_message_id}
    row = (await conn.execute(SENT_BEFORE, params)).first()
    if row is None or row.conversation_id is None:
        return None
    return _duplicate(row.conversation_id, row.sent_at, row.delivered_device_count)


def _duplicate(conversation_id: int, sent_at: datetime, delivered: int) -> SendResultRecord:
    """What a resend is answered: what its first send answered."""
    return SendResultRecord(
        conversation_id=conversation_id,
        server_timestamp=sent_at,
        delivered_device_count=delivered,
        duplicate=True,
    )


async def _checked(conn: AsyncConnection, request: SendRequest) -> Outgoing | Sent | Exception:
    """The request's rules on its reads: the message to write, a resend's answer, or
    the error the request fails with. A database error is raised (the transaction is
    lost)."""
    reads = SendReads(conn, request.sender, request.client_message_id)
    try:
        return await request.checked(reads)
    except _Resent as resent:
        return Sent(resent.previous, [])
    except SQLAlchemyError:
        raise
    except Exception as error:
        # A rule failed on the request alone, before the reads: a resend is
        # answered first all the same.
        if request.resend_checked or reads.resend_looked_up:
            return error
        previous = await _sent_before(conn, request.sender.user_id, request.client_message_id)
        return error if previous is None else Sent(previous, [])


async def _write(
    conn: AsyncConnection, messages: Sequence[tuple[Outgoing, datetime]]
) -> list[Sent]:
    """The messages' rows, with one statement per table for all of them; a concurrent
    resend fails on the unique client id at the message insert (before anything is
    queued) and is answered by `send`.

    Every send takes its locks in one order (a created conversation, the messages,
    the devices in key order (queue._take_sequences), the conversations, their
    members). The conversations' and members' rows are updated by one statement
    each, whose plan may lock them in another order in another process's batch: a
    deadlock between two batches is resolved by the database, and `_send_batch`
    writes the losing batch's sends one by one."""
    if not messages:
        return []
    conversations = [await _conversation_of(conn, outgoing, now) for outgoing, now in messages]
    message_ids = await _insert_messages(conn, messages, conversations)
    rows: list[dict[str, Any]] = []
    for (outgoing, now), (conversation_id, timer), message_id in zip(
        messages, conversations, message_ids, strict=True
    ):
        expires_at = _expiry(now, outgoing.expires_in_seconds, timer)
        rows += [
            envelope_row(outgoing.sender, e, now, conversation_id, message_id, expires_at)
            for e in outgoing.envelopes
        ]
    records = await enqueue_rows(conn, rows)
    latest = max(now for _, now in messages)
    activity = [
        (conversation_id, outgoing.unread_for)
        for (outgoing, _), (conversation_id, _) in zip(messages, conversations, strict=True)
    ]
    await record_activities(conn, activity, latest)
    sent: list[Sent] = []
    for (outgoing, now), (conversation_id, _) in zip(messages, conversations, strict=True):
        mine, records = records[: len(outgoing.envelopes)], records[len(outgoing.envelopes) :]
        result = SendResultRecord(
            conversation_id=conversation_id,
            server_timestamp=now,
            delivered_device_count=outgoing.reported_count,
            duplicate=False,
        )
        sent.append(Sent(result, mine))
    return sent


async def _conversation_of(
    conn: AsyncConnection, outgoing: Outgoing, now: datetime
) -> tuple[int, int | None]:
    """The message's conversation and its timer; the pair's DIRECT conversation is
    created with its first message."""
    if outgoing.conversation_id is not None:
        return outgoing.conversation_id, outgoing.disappearing_seconds
    assert outgoing.direct_with is not None
    sender = outgoing.sender
    async with AsyncSession(bind=conn) as session:
        return await direct_conversation(
            session, sender.platform, sender.user_id, outgoing.direct_with, now
        )


async def _insert_messages(
    conn: AsyncConnection,
    messages: Sequence[tuple[Outgoing, datetime]],
    conversations: Sequence[tuple[int, int | None]],
) -> list[int]:
    rows = [
        {
            "platform": outgoing.sender.platform,
            "sender_id": outgoing.sender.user_id,
            "sender_device_id": outgoing.sender.device_id,
            "client_message_id": outgoing.client_message_id,
            "conversation_id": conversation_id,
            "sent_at": now,
            "delivered_device_count": outgoing.reported_count,
        }
        for (outgoing, now), (conversation_id, _) in zip(messages, conversations, strict=True)
    ]
    # One row as a single execution (see queue.enqueue_rows); RETURNING matched by the
    # unique (sender, client id), not by parameter order.
    result = await conn.execute(INSERT_MESSAGE, rows[0] if len(rows) == 1 else rows)
    ids = {(sender, client_id): id_ for id_, sender, client_id in result.all()}
    return [ids[(row["sender_id"], row["client_message_id"])] for row in rows]


def _expiry(now: datetime, *seconds: int | None) -> datetime | None:
    """The earliest of the message's own timer and the conversation's, if any."""
    given = [s for s in seconds if s is not None]
    return now + timedelta(seconds=min(given)) if given else None
