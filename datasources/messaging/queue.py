"""Per-device queues: the one way an envelope is stored for a device.

Direct messages, MLS commits, Welcomes, group application messages and receipts
all become envelopes through `enqueue`, in the caller's transaction (with the
message row, the conversation's counters…). Each device's `last_sequence` is
advanced by one batched `UPDATE … RETURNING`, so the envelopes of one
transaction take consecutive sequences per device, and concurrent senders to
the same device serialize on that row: sequences are dense and never reused,
which is what lets a resumable subscription detect a gap (subscriptions/resume.py).

After the transaction commits, the caller announces the new envelopes on the
realtime broker (`announce`); a subscriber reads them from the queue, never from
the broker message alone, so a lost announcement delays and never loses.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession

from datasources.messaging.tables import EnvelopeRow, MessagingDeviceRow
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


@dataclass(frozen=True)
class Sender:
    platform: str
    user_id: int
    device_id: int


def device_topic(platform: str, user_id: int, device_id: int) -> str:
    """The broker topic that announces new envelopes of one device's queue."""
    return f"envelopes:{platform}:{user_id}:{device_id}"


async def enqueue(
    session: AsyncSession,
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
    devices = [(e.recipient_id, e.recipient_device_id) for e in envelopes]
    next_sequence = await _take_sequences(session, devices)
    rows: list[dict[str, Any]] = []
    for envelope in envelopes:
        device = (envelope.recipient_id, envelope.recipient_device_id)
        rows.append(
            {
                "platform": sender.platform,
                "recipient_id": envelope.recipient_id,
                "recipient_device_id": envelope.recipient_device_id,
                "sequence": next_sequence[device],
                "type": envelope.type,
                "sender_id": sender.user_id,
                "sender_device_id": sender.device_id,
                "conversation_id": conversation_id,
                "message_id": message_id,
                "content": envelope.content,
                "server_timestamp": now,
                "expires_at": expires_at,
            }
        )
        next_sequence[device] += 1
    # RETURNING matched by the unique (recipient, device, sequence) rather than by
    # parameter order: SQLAlchemy keeps this one multi-row INSERT per 1,000 rows on
    # both backends (ordered RETURNING degrades to one INSERT per row on SQLite).
    E = EnvelopeRow
    result = await session.execute(
        insert(E).returning(E.id, E.recipient_id, E.recipient_device_id, E.sequence), rows
    )
    ids = {(user, device, sequence): id_ for id_, user, device, sequence in result.all()}
    return [
        EnvelopeRecord(
            id=ids[(row["recipient_id"], row["recipient_device_id"], row["sequence"])], **row
        )
        for row in rows
    ]


async def _take_sequences(
    session: AsyncSession, devices: Iterable[tuple[int, int]]
) -> dict[tuple[int, int], int]:
    """Reserve consecutive sequences per device; returns each device's first one.

    On PostgreSQL the device rows are locked first in one fixed order: two senders
    whose recipients overlap (a group fan-out and a direct message) then wait for
    each other instead of deadlocking on rows an UPDATE took in its own order.
    """
    wanted = Counter(devices)
    if session.get_bind().dialect.name == "postgresql":
        key = tuple_(MessagingDeviceRow.user_id, MessagingDeviceRow.device_id)
        await session.execute(
            select(MessagingDeviceRow.user_id)
            .where(key.in_(sorted(wanted)))
            .order_by(MessagingDeviceRow.user_id, MessagingDeviceRow.device_id)
            .with_for_update()
        )
    first: dict[tuple[int, int], int] = {}
    by_count: dict[int, list[tuple[int, int]]] = {}
    for device, count in wanted.items():
        by_count.setdefault(count, []).append(device)
    for count, group in sorted(by_count.items()):
        result = await session.execute(
            update(MessagingDeviceRow)
            .where(tuple_(MessagingDeviceRow.user_id, MessagingDeviceRow.device_id).in_(group))
            .values(last_sequence=MessagingDeviceRow.last_sequence + count)
            .returning(
                MessagingDeviceRow.user_id,
                MessagingDeviceRow.device_id,
                MessagingDeviceRow.last_sequence,
            )
            .execution_options(synchronize_session=False)
        )
        for user_id, device_id, last in result.all():
            first[(user_id, device_id)] = last - count + 1
    missing = set(wanted) - set(first)
    if missing:
        raise LookupError(f"no such devices: {sorted(missing)}")
    return first


async def announce(broker: Broker, records: Iterable[EnvelopeRecord]) -> None:
    """Tell live subscribers, after the commit, up to which sequence each queue grew."""
    latest: dict[tuple[str, int, int], int] = {}
    for record in records:
        key = (record.platform, record.recipient_id, record.recipient_device_id)
        latest[key] = max(latest.get(key, 0), record.sequence)
    for (platform, user_id, device_id), sequence in latest.items():
        await broker.publish(
            device_topic(platform, user_id, device_id), encode({"sequence": sequence})
        )
