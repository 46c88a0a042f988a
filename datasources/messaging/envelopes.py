"""SQL of the relay: a message's send transaction, the device queues' reads, purges.

`send` is one transaction on one connection, with statements built once (bind
parameters, Core on the tables: building a statement per call, and a
connection per read, were a good part of a send's CPU):

1. the caller's rules (resolvers/messaging/relay.py, `Addressed`) on one read
   (`_addressings`) of everything they ask (the devices of the sender and the
   recipients, which recipients exist, which of them block the sender, the
   pair's DIRECT conversation and its timer) and of the message with this
   client id, if any: a resend is answered with what the first send answered
   before any rule is applied (one that failed on the request alone included),
   and nothing is queued; a batch of sends (`GroupCommit`) reads all of this in
   the one statement too;
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
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    CompoundSelect,
    String,
    Table,
    bindparam,
    delete,
    func,
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
    EnvelopeRecord,
    OutgoingEnvelope,
    Sender,
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
from datasources.posts.sqlutil import InsertRows, among
from datasources.sql import Database
from datasources.users.tables import BlockRow, UserRow

E = EnvelopeRow
MESSAGES = MessageRow.__table__.c

SENT_BEFORE = select(
    MESSAGES.conversation_id, MESSAGES.sent_at, MESSAGES.delivered_device_count
).where(
    MESSAGES.sender_id == bindparam("sender_id"),
    MESSAGES.client_message_id == bindparam("client_message_id"),
)
INSERT_MESSAGES = InsertRows(
    cast(Table, MessageRow.__table__), MESSAGES.id, MESSAGES.sender_id, MESSAGES.client_message_id
)


@functools.lru_cache(maxsize=2)
def _addressing_statement(dialect: str) -> CompoundSelect[Any]:
    """What the rules of a batch of sends read, as (kind, a, b, c, t, p, at) rows:
    ("sent", sender, conversation id, delivered device count, client id, platform,
    sent at) for the messages of these senders with these client ids (first: its
    columns type the union's), ("device", user, device, registration id),
    ("user", id, …, platform), ("blocker", blocker, blocked), ("direct",
    conversation id, timer, …, direct key, platform). Each list is matched as a
    whole (`among`: one array parameter on PostgreSQL, so the SQL is the same for
    every batch), which reads a little more than the pairs asked for; `_addressings`
    keeps what each send asked."""
    devices = MessagingDeviceRow.__table__.c
    users = UserRow.__table__.c
    blocks = BlockRow.__table__.c
    conversations = ConversationRow.__table__.c
    zero: ColumnElement[int] = literal_column("0")

    def kind(name: str) -> ColumnElement[str]:
        return literal_column(f"'{name}'")

    def ids(column: Any, name: str) -> ColumnElement[bool]:
        return among(column, name, dialect)

    def texts(column: Any, name: str) -> ColumnElement[bool]:
        return among(column, name, dialect, String())

    return union_all(
        select(
            kind("sent").label("kind"),
            MESSAGES.sender_id.label("a"),
            MESSAGES.conversation_id.label("b"),
            MESSAGES.delivered_device_count.label("c"),
            MESSAGES.client_message_id.label("t"),
            MESSAGES.platform.label("p"),
            MESSAGES.sent_at.label("at"),
        ).where(ids(MESSAGES.sender_id, "senders"), texts(MESSAGES.client_message_id, "clients")),
        select(
            kind("device"),
            devices.user_id,
            devices.device_id,
            devices.registration_id,
            null(),
            null(),
            null(),
        ).where(ids(devices.user_id, "users")),
        select(kind("user"), users.id, zero, zero, null(), users.platform, null()).where(
            ids(users.id, "recipients")
        ),
        select(
            kind("blocker"), blocks.blocker_id, blocks.blocked_id, zero, null(), null(), null()
        ).where(ids(blocks.blocked_id, "senders"), ids(blocks.blocker_id, "recipients")),
        select(
            kind("direct"),
            conversations.id,
            conversations.disappearing_after_seconds,
            zero,
            conversations.direct_key,
            conversations.platform,
            null(),
        ).where(texts(conversations.direct_key, "direct_keys")),
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


@dataclass(frozen=True)
class Addressed:
    """What a send's rules read (`recipients`' devices, which of them exist and block
    the sender, the DIRECT conversation of `direct_key` when not None) and the
    rules themselves: the message to queue, or the error the send fails with."""

    recipients: Sequence[int]
    direct_key: str | None
    rules: Callable[[Addressing], Outgoing]


@dataclass(frozen=True)
class SendRequest:
    sender: Sender
    client_message_id: str
    addressed: Addressed | Exception  # an error found before any read (a resend wins)
    now: datetime


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

    async def send(self, request: SendRequest) -> Sent:
        """Queue the message the request's rules make of what its transaction reads
        (see above); a resend, concurrent ones included, is answered as a duplicate
        and queues nothing.

        Sends that arrive while others are being committed share the next
        transaction (`GroupCommit`): their reads are one statement, each is checked
        on its own, and the checked messages are written with one statement per
        table."""
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
        # A Core connection, not an ORM session: a session's begin, commit and close
        # were a measurable part of a message's CPU, for nothing used here.
        async with self.db.engine.begin() as conn:
            found = await _addressings(conn, requests)
            outcomes = [_checked(r, f) for r, f in zip(requests, found, strict=True)]
            to_write = [
                (o, r.now)
                for r, o in zip(requests, outcomes, strict=True)
                if isinstance(o, Outgoing)
            ]
            written = iter(await _write(conn, to_write))
        return [next(written) if isinstance(o, Outgoing) else o for o in outcomes]

    async def _send_alone(self, request: SendRequest) -> Sent:
        try:
            async with self.db.engine.begin() as conn:
                (found,) = await _addressings(conn, [request])
                outcome = _checked(request, found)
                if isinstance(outcome, BaseException):
                    raise outcome
                if isinstance(outcome, Sent):
                    return outcome
                return (await _write(conn, [(outcome, request.now)]))[0]
        except IntegrityError:
            # A concurrent send with the same client id won the unique key.
            previous = await self.sent_before(request.sender.user_id, request.client_message_id)
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


async def _addressings(
    conn: AsyncConnection, requests: Sequence[SendRequest]
) -> list[Addressing | SendResultRecord | None]:
    """Each request's `Addressing`; what its client id's first send answered, for a
    resend (answered before any rule); None for a request that failed before its
    reads. One statement for the whole batch."""
    wanted = [r.addressed for r in requests if isinstance(r.addressed, Addressed)]
    senders = {r.sender.user_id for r in requests}
    recipients = {user_id for w in wanted for user_id in w.recipients}
    params = {
        "senders": sorted(senders),
        "clients": sorted({r.client_message_id for r in requests}),
        "users": sorted(senders | recipients),
        "recipients": sorted(recipients),
        "direct_keys": sorted({w.direct_key for w in wanted if w.direct_key is not None}),
    }
    statement = _addressing_statement(conn.dialect.name)
    sent: dict[tuple[int, str], SendResultRecord] = {}
    devices: dict[int, dict[int, int]] = {}
    platform_of: dict[int, str] = {}
    blocks: set[tuple[int, int]] = set()
    directs: dict[tuple[str, str], tuple[int, int | None]] = {}
    for kind, a, b, c, t, p, at in await conn.execute(statement, params):
        if kind == "device":
            devices.setdefault(a, {})[b] = c
        elif kind == "user":
            platform_of[a] = p
        elif kind == "blocker":
            blocks.add((a, b))
        elif kind == "direct":
            directs[(p, t)] = (int(a), b)
        elif b is not None:  # "sent", committed (a conversation id is set then)
            sent[(a, t)] = _duplicate(b, at, c)
    found: list[Addressing | SendResultRecord | None] = []
    for request in requests:
        sender, asked = request.sender, request.addressed
        previous = sent.get((sender.user_id, request.client_message_id))
        if previous is not None or not isinstance(asked, Addressed):
            found.append(previous)
            continue
        found.append(
            Addressing(
                devices={u: devices.get(u, {}) for u in (sender.user_id, *asked.recipients)},
                existing={u for u in asked.recipients if platform_of.get(u) == sender.platform},
                blockers={u for u in asked.recipients if (u, sender.user_id) in blocks},
                direct=directs.get((sender.platform, asked.direct_key or "")),
            )
        )
    return found


def _checked(
    request: SendRequest, found: Addressing | SendResultRecord | None
) -> Outgoing | Sent | Exception:
    """The request's rules on its reads: the message to write, a resend's answer, or
    the error the request fails with."""
    if isinstance(found, SendResultRecord):
        return Sent(found, [])
    if not isinstance(request.addressed, Addressed):
        return request.addressed
    assert found is not None
    try:
        return request.addressed.rules(found)
    except Exception as error:
        return error


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
    # RETURNING matched by the unique (sender, client id), not by position.
    result = await INSERT_MESSAGES.run(conn, rows)
    ids = {(sender, client_id): id_ for id_, sender, client_id in result.all()}
    return [ids[(row["sender_id"], row["client_message_id"])] for row in rows]


def _expiry(now: datetime, *seconds: int | None) -> datetime | None:
    """The earliest of the message's own timer and the conversation's, if any."""
    given = [s for s in seconds if s is not None]
    return now + timedelta(seconds=min(given)) if given else None
