"""The delivery decision: which push and email messages a new activity owes, and when.

In-app is the group itself, always recorded (when the type's IN_APP is on). Push
and email, when the type's channels have them, become `notification_deliveries`
rows, written in the consumer's transaction:

- due at once normally;
- *held* during the recipient's quiet hours (their IANA zone, quiet.py) or while
  `pausedUntil` is ahead: due when that ends, never dropped;
- email, for a user with `emailDigest` on, held until the next daily digest
  (08:00 on their wall clock, quiet.py `next_digest`);
- one row per group and channel, so a group that grows while its delivery waits
  is one message.

`take_due(db, now)` is what a worker calls: it removes the due rows and returns
what to send: one `Delivery` per group, except that each user's *held* rows of a
channel come back as one grouped summary (`summary=True`), so ten likes during
the night make one push in the morning, not ten (and a digest is one email).
Not decided here: the rule that an email goes only to a user with no live
connection for 15 minutes (the worker can ask presence when it sends). Turning these into provider
requests (datasources/notifications/delivery/: FCM, APNs, SMTP) in
`entativa worker` is left to the worker's wiring.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from datasources.notifications.quiet import held_until, next_digest
from datasources.notifications.records import Activity, QuietHoursRecord
from datasources.notifications.tables import NotificationDeliveryRow, NotificationSettingsRow
from datasources.posts.sqlutil import at_literal, insert_ignore
from datasources.sql import Database

OUTSIDE_CHANNELS = ("PUSH", "EMAIL")
D = NotificationDeliveryRow


@dataclass(frozen=True)
class Delivery:
    """One message to send on `channel`: about `group_ids` (one, or a summary's)."""

    platform: str
    user_id: int
    channel: str
    group_ids: tuple[int, ...]
    summary: bool  # the grouped summary of what quiet hours or a pause held


async def plan(
    session: AsyncSession, activity: Activity, group_id: int, channels: Iterable[str]
) -> list[str]:
    """Owe `group_id`'s recipient its push and email (those in `channels`) for an
    activity at `activity.at`; the channels a row was made for (held or not)."""
    channels = list(channels)
    if not [channel for channel in OUTSIDE_CHANNELS if channel in set(channels)]:
        return []
    settings = await session.get(NotificationSettingsRow, activity.recipient_id)
    made = []
    for values in _owed(activity, group_id, channels, settings):
        if await insert_ignore(session, NotificationDeliveryRow, values):
            made.append(str(values["channel"]))
    return made


async def plan_many(
    session: AsyncSession, owed: Sequence[tuple[Activity, int, Iterable[str]]]
) -> None:
    """`plan` for many (activity, group, channels) at once: one read of the
    recipients' settings, one INSERT … ON CONFLICT DO NOTHING for all the rows."""
    recipients = sorted({activity.recipient_id for activity, _, _ in owed})
    if not recipients:
        return
    stmt = select(NotificationSettingsRow).where(NotificationSettingsRow.user_id.in_(recipients))
    settings = {row.user_id: row for row in (await session.scalars(stmt)).all()}
    rows: dict[tuple[int, str], dict[str, Any]] = {}
    for activity, group_id, channels in owed:
        for values in _owed(activity, group_id, channels, settings.get(activity.recipient_id)):
            # The first row of a group and channel is the one `plan` would keep.
            rows.setdefault((group_id, str(values["channel"])), values)
    if rows:
        dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
        table = NotificationDeliveryRow.__table__
        await session.execute(dialect.insert(table).on_conflict_do_nothing(), list(rows.values()))


def _owed(
    activity: Activity,
    group_id: int,
    channels: Iterable[str],
    settings: NotificationSettingsRow | None,
) -> list[dict[str, Any]]:
    """The delivery rows an activity owes on its outside channels (due or held)."""
    outside = [channel for channel in OUTSIDE_CHANNELS if channel in set(channels)]
    if not outside:
        return []
    quiet = None
    paused = None
    if settings is not None:
        paused = settings.paused_until
        if settings.quiet_start and settings.quiet_end and settings.quiet_timezone:
            quiet = QuietHoursRecord(
                settings.quiet_start, settings.quiet_end, settings.quiet_timezone
            )
    until = held_until(quiet, paused, activity.at)
    rows = []
    for channel in outside:
        due = until
        if channel == "EMAIL" and settings is not None and settings.email_digest:
            digest = next_digest(settings.quiet_timezone, activity.at)
            due = max(digest, until) if until else digest
        rows.append(
            {
                "platform": activity.platform,
                "user_id": activity.recipient_id,
                "group_id": group_id,
                "channel": channel,
                "not_before": due or activity.at,
                "held": due is not None,
                "created_at": activity.at,
            }
        )
    return rows


async def take_due(db: Database, now: datetime, limit: int = 1000) -> list[Delivery]:
    """Remove the deliveries due at `now` and return what to send (see the module).

    On PostgreSQL concurrent workers skip each other's rows (SKIP LOCKED), so each
    row is taken once.
    """
    async with db.transaction() as session:
        stmt = (
            select(D)
            .where(D.not_before <= at_literal(now))
            .order_by(D.not_before, D.id)
            .limit(limit)
        )
        if session.get_bind().dialect.name == "postgresql":
            stmt = stmt.with_for_update(skip_locked=True)
        rows = list((await session.scalars(stmt)).all())
        if rows:
            await session.execute(delete(D).where(D.id.in_([row.id for row in rows])))
    deliveries: list[Delivery] = []
    held: dict[tuple[str, int, str], list[int]] = defaultdict(list)
    for row in rows:
        if row.held:
            held[(row.platform, row.user_id, row.channel)].append(row.group_id)
        else:
            deliveries.append(
                Delivery(row.platform, row.user_id, row.channel, (row.group_id,), summary=False)
            )
    for (platform, user_id, channel), group_ids in held.items():
        deliveries.append(Delivery(platform, user_id, channel, tuple(group_ids), summary=True))
    return deliveries
