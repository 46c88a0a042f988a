"""Per-device queues: the one way an envelope is stored for a device.

Direct messages, MLS commits, Welcomes, group application messages and receipts
all become envelopes through `enqueue`, in the caller's transaction (with the
message row, the conversation's counters…). Each device's `last_sequence` is
advanced by one batched `UPDATE … RETURNING`, so the envelopes of one
transaction take consecutive sequences per device, and concurrent senders to
the same device serialize on that row: sequences are dense and never reused,
which is what lets a resumable subscription detect a gap (subscriptions/resume.py).

After the transaction commits, the caller announces the new envelopes on the
realtime broker (`announce`): one message per device, `{"sequence": n}` and,
when the commit queued exactly one envelope for that device (every direct or
group message), the envelope itself (`"envelope"`: its record in this process,
`envelope_message` of it over Redis), so a live subscriber delivers it without
reading it back. The queue stays the truth:
a subscriber whose announcement is lost, or does not follow the last sequence
it sent, reads the queue (subscriptions/resume.py), so a lost announcement
delays and never loses.
"""

from __future__ import annotations

import functools
from base64 import b64decode, b64encode
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    BigInteger,
    BindParameter,
    Table,
    Update,
    and_,
    bindparam,
    column,
    or_,
    select,
    tuple_,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from datasources.messaging.tables import EnvelopeRow, MessagingDeviceRow
from datasources.posts.sqlutil import InsertRows, unnested, unnested_params
from subscriptions.broker import Broker
from subscriptions.topics import encode


@dataclass(frozen=True)
class OutgoingEnvelope:
    """Ciphertext for one device, as the sender addressed it."""

    recipient_id: int
    recipient_device_id: int
    type: str  # an EnvelopeType name
    content: bytes


@dataclass(frozen=True)
class EnvelopeRecord:
    id: int
    platform: str
    recipient_id: int
    recipient_device_id: int
    sequence: int
    type: str
    sender_id: int
    sender_device_id: int
    conversation_id: int | None
    message_id: int | None
    content: bytes
    server_timestamp: datetime
    expires_at: datetime | None

    def to_json(self) -> dict[str, Any]:
        """Its form on a broker between processes (subscriptions/topics.py `Encoded`)."""
        return envelope_message(self)


@dataclass(frozen=True)
class Sender:
    platform: str
    user_id: int
    device_id: int


DEVICES = MessagingDeviceRow.__table__.c
ENVELOPES = EnvelopeRow.__table__.c
_DEVICE_KEY = tuple_(DEVICES.user_id, DEVICES.device_id)
# Statements are built once (bind parameters): building them was a good part of a
# send's CPU.
FEW = 16
"""Up to this many values, an IN is bound as one parameter per value (`bound_list`),
a statement per count built once: SQLAlchemy renders an expanding IN's SQL again
on every execution, which was a good part of a message's statement CPU."""


def bound_list(name: str, count: int) -> list[BindParameter[Any]]:
    """Bind parameters name_0 … name_{count-1}, for `bound_values(name, …)`."""
    return [bindparam(f"{name}_{index}") for index in range(count)]


def bound_values(name: str, values: Sequence[Any]) -> dict[str, Any]:
    return {f"{name}_{index}": value for index, value in enumerate(values)}


def _take(devices: Any) -> Update:
    return (
        update(cast(Table, MessagingDeviceRow.__table__))
        .where(devices)
        .values(last_sequence=DEVICES.last_sequence + bindparam("count"))
        .returning(DEVICES.user_id, DEVICES.device_id, DEVICES.last_sequence)
    )


TAKE_SEQUENCES = _take(_DEVICE_KEY.in_(bindparam("devices", expanding=True)))


@functools.lru_cache(maxsize=FEW)
def _take_few(count: int) -> Update:
    """TAKE_SEQUENCES for `count` devices bound as user_i, device_i."""
    users, devices = bound_list("user", count), bound_list("device", count)
    return _take(
        or_(
            *(
                and_(DEVICES.user_id == u, DEVICES.device_id == d)
                for u, d in zip(users, devices, strict=True)
            )
        )
    )


def _take_statement(devices: list[tuple[int, int]], count: int) -> tuple[Update, dict[str, Any]]:
    if len(devices) > FEW:
        return TAKE_SEQUENCES, {"devices": devices, "count": count}
    params = {
        **bound_values("user", [user_id for user_id, _ in devices]),
        **bound_values("device", [device_id for _, device_id in devices]),
        "count": count,
    }
    return _take_few(len(devices)), params


INSERT_ENVELOPES = InsertRows(
    cast(Table, EnvelopeRow.__table__),
    ENVELOPES.id,
    ENVELOPES.recipient_id,
    ENVELOPES.recipient_device_id,
    ENVELOPES.sequence,
)

# PostgreSQL's: any number of devices bound as one array per column
# (sqlutil.unnested), so one SQL text serves every batch; LOCK_DEVICES is for
# PostgreSQL only, TAKE_SEQUENCES and `_take_few` are the other backends'.
_KEY_COLUMNS = ("user_id", "device_id")
_LOCKED = unnested("devices", DEVICES.user_id, DEVICES.device_id)
LOCK_DEVICES = (
    select(DEVICES.user_id)
    .where(_DEVICE_KEY.in_(select(_LOCKED.c.user_id, _LOCKED.c.device_id)))
    .order_by(DEVICES.user_id, DEVICES.device_id)
    .with_for_update()
)
_TAKEN = unnested("devices", DEVICES.user_id, DEVICES.device_id, column("count", BigInteger()))
TAKE_SEQUENCES_PG = (
    update(cast(Table, MessagingDeviceRow.__table__))
    .where(DEVICES.user_id == _TAKEN.c.user_id, DEVICES.device_id == _TAKEN.c.device_id)
    .values(last_sequence=DEVICES.last_sequence + _TAKEN.c.count)
    .returning(DEVICES.user_id, DEVICES.device_id, DEVICES.last_sequence)
)


async def connection_of(unit: AsyncSession | AsyncConnection) -> AsyncConnection:
    """The connection of a unit of work: a session's (in its transaction), or itself."""
    return unit if isinstance(unit, AsyncConnection) else await unit.connection()


def device_topic(platform: str, user_id: int, device_id: int) -> str:
    """The broker topic that announces new envelopes of one device's queue."""
    return f"envelopes:{platform}:{user_id}:{device_id}"


async def enqueue(
    unit: AsyncSession | AsyncConnection,
    sender: Sender,
    envelopes: Sequence[OutgoingEnvelope],
    now: datetime,
    conversation_id: int | None = None,
    message_id: int | None = None,
    expires_at: datetime | None = None,
) -> list[EnvelopeRecord]:
    """Store `envelopes` in their devices' queues, in the caller's transaction.

    Every addressed device must exist (the caller checked the addressing).
    """
    if not envelopes:
        return []
    conn = await connection_of(unit)
    return await enqueue_rows(
        conn,
        [
            envelope_row(sender, envelope, now, conversation_id, message_id, expires_at)
            for envelope in envelopes
        ],
    )


def envelope_row(
    sender: Sender,
    envelope: OutgoingEnvelope,
    now: datetime,
    conversation_id: int | None,
    message_id: int | None,
    expires_at: datetime | None,
) -> dict[str, Any]:
    """An envelope's row for `enqueue_rows`, its sequence still to take."""
    return {
        "platform": sender.platform,
        "recipient_id": envelope.recipient_id,
        "recipient_device_id": envelope.recipient_device_id,
        "sequence": 0,
        "type": envelope.type,
        "sender_id": sender.user_id,
        "sender_device_id": sender.device_id,
        "conversation_id": conversation_id,
        "message_id": message_id,
        "content": envelope.content,
        "server_timestamp": now,
        "expires_at": expires_at,
    }


async def enqueue_rows(conn: AsyncConnection, rows: list[dict[str, Any]]) -> list[EnvelopeRecord]:
    """Store `envelope_row`s, of one message or of many senders' messages: each device's
    envelopes take consecutive sequences, in the order of `rows`."""
    if not rows:
        return []
    devices = [(row["recipient_id"], row["recipient_device_id"]) for row in rows]
    next_sequence = await _take_sequences(conn, devices)
    for row, device in zip(rows, devices, strict=True):
        row["sequence"] = next_sequence[device]
        next_sequence[device] += 1
    # RETURNING matched by the unique (recipient, device, sequence) rather than by
    # position: SQLAlchemy keeps this one multi-row INSERT per 1,000 rows on SQLite
    # (ordered RETURNING degrades to one INSERT per row there).
    result = await INSERT_ENVELOPES.run(conn, rows)
    ids = {(user, device, sequence): id_ for id_, user, device, sequence in result.all()}
    return [
        EnvelopeRecord(
            id=ids[(row["recipient_id"], row["recipient_device_id"], row["sequence"])], **row
        )
        for row in rows
    ]


async def _take_sequences(
    conn: AsyncConnection, devices: Iterable[tuple[int, int]]
) -> dict[tuple[int, int], int]:
    """Reserve consecutive sequences per device; returns each device's first one.

    On PostgreSQL the device rows of a multi-device enqueue are locked first in one
    fixed order: two senders whose recipients overlap (a group fan-out and a direct
    message) then wait for each other instead of deadlocking on rows an UPDATE took
    in its own order. (One device needs no order: its UPDATE takes its one lock.)
    """
    wanted = Counter(devices)
    if conn.dialect.name == "postgresql":
        if len(wanted) > 1:
            await conn.execute(LOCK_DEVICES, unnested_params("devices", _KEY_COLUMNS, wanted))
        taken = [(*device, count) for device, count in wanted.items()]
        params = unnested_params("devices", (*_KEY_COLUMNS, "count"), taken)
        result = await conn.execute(TAKE_SEQUENCES_PG, params)
        first = {(u, d): last - wanted[(u, d)] + 1 for u, d, last in result.all()}
    else:
        first = await _take_by_count(conn, wanted)
    missing = set(wanted) - set(first)
    if missing:
        raise LookupError(f"no such devices: {sorted(missing)}")
    return first


async def _take_by_count(
    conn: AsyncConnection, wanted: Counter[tuple[int, int]]
) -> dict[tuple[int, int], int]:
    """`_take_sequences` without arrays: one UPDATE per number of envelopes a device takes."""
    first: dict[tuple[int, int], int] = {}
    by_count: dict[int, list[tuple[int, int]]] = {}
    for device, count in wanted.items():
        by_count.setdefault(count, []).append(device)
    for count, group in sorted(by_count.items()):
        result = await conn.execute(*_take_statement(group, count))
        for user_id, device_id, last in result.all():
            first[(user_id, device_id)] = last - count + 1
    return first


async def announce(broker: Broker, records: Iterable[EnvelopeRecord]) -> None:
    """Tell live subscribers, after the commit, up to which sequence each queue grew
    (with the envelope itself when it is the only one this commit queued there)."""
    by_device: dict[tuple[str, int, int], list[EnvelopeRecord]] = {}
    for record in records:
        key = (record.platform, record.recipient_id, record.recipient_device_id)
        by_device.setdefault(key, []).append(record)
    for (platform, user_id, device_id), queued in by_device.items():
        message: dict[str, Any] = {"sequence": max(r.sequence for r in queued)}
        if len(queued) == 1:
            message["envelope"] = queued[0]  # its to_json() when it leaves the process
        await broker.publish(device_topic(platform, user_id, device_id), encode(message))


def envelope_message(record: EnvelopeRecord) -> dict[str, Any]:
    """An envelope as JSON for the broker (content in base64, times in ISO 8601)."""
    return {
        "id": record.id,
        "platform": record.platform,
        "recipient_id": record.recipient_id,
        "recipient_device_id": record.recipient_device_id,
        "sequence": record.sequence,
        "type": record.type,
        "sender_id": record.sender_id,
        "sender_device_id": record.sender_device_id,
        "conversation_id": record.conversation_id,
        "message_id": record.message_id,
        "content": b64encode(record.content).decode(),
        "server_timestamp": record.server_timestamp.isoformat(),
        "expires_at": record.expires_at.isoformat() if record.expires_at else None,
    }


def envelope_from_message(value: dict[str, Any]) -> EnvelopeRecord:
    """The inverse of `envelope_message`."""
    expires_at = value["expires_at"]
    return EnvelopeRecord(
        id=int(value["id"]),
        platform=str(value["platform"]),
        recipient_id=int(value["recipient_id"]),
        recipient_device_id=int(value["recipient_device_id"]),
        sequence=int(value["sequence"]),
        type=str(value["type"]),
        sender_id=int(value["sender_id"]),
        sender_device_id=int(value["sender_device_id"]),
        conversation_id=value["conversation_id"],
        message_id=value["message_id"],
        content=b64decode(value["content"]),
        server_timestamp=datetime.fromisoformat(value["server_timestamp"]),
        expires_at=datetime.fromisoformat(expires_at) if expires_at else None,
    )
