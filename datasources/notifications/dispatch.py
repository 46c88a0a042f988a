"""The dispatcher: due push and email deliveries → provider requests, off the request path.

`entativa worker` (or the embedded `serve`) runs `run_once` every few seconds. Each
round takes what is due (`deliveries.take_due`: one delivery per group, a grouped
summary of what quiet hours, a pause or the digest held) and sends it:

- push to every device of the recipient, through the sender of its provider. A
  provider without credentials is *off*: its devices are skipped and counted as
  such (the row is taken: nothing would ever send it). A device the provider
  reports unregistered is removed; one that received the message gets its
  `last_used_at`. 429/5xx are retried in process (`retry.with_retries`), then
  the delivery is put back for later (never sooner than the provider's
  Retry-After). Putting back is per delivery, not per device: another device of
  the same user may get the message twice, which its `collapse_id` makes replace
  the first on screen.
- email (text and HTML) only to a user with no live connection for 15 minutes
  (subscriptions/presence.py: the realtime layer keeps an online mark and a
  last-seen time per user in the cache): otherwise it is put back until 15
  minutes after they were last seen. A digest (`emailDigest` on) goes at its
  hour whatever the presence, since the user chose it.

A group read in the app meanwhile, or withdrawn (an unlike deletes its row with
the group), sends nothing: the user already saw it, or there is nothing to see.

Wording (the summary line, a group's global id) is the API's business
(resolvers/notifications); the server passes it in as `Wording`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import delete, select, update

from datasources.cache import Cache
from datasources.notifications.deliveries import Delivery, take_due
from datasources.notifications.delivery import (
    ApnsConfig,
    ApnsSender,
    DeliveryResult,
    EmailNotification,
    EmailSender,
    FcmConfig,
    FcmSender,
    Outcome,
    PushMessage,
    PushSender,
    PushTarget,
    RetryPolicy,
    SmtpConfig,
    render_digest,
    render_notification,
    with_retries,
)
from datasources.notifications.delivery.retry import Sleep
from datasources.notifications.records import DeviceRecord, GroupRecord
from datasources.notifications.store import NotificationStore
from datasources.notifications.tables import (
    NotificationDeliveryRow,
    NotificationSettingsRow,
    PushDeviceRow,
)
from datasources.posts.sqlutil import insert_ignore
from datasources.sql import Database, utcnow
from datasources.users.tables import UserRow
from subscriptions.presence import Presence

log = logging.getLogger("entativa.notifications.dispatch")

EMAIL_AFTER_OFFLINE = timedelta(minutes=15)
NAMES_SHOWN = 2  # "ada and bob liked…", "ada and 3 others liked…"
BATCH = 500


@dataclass(frozen=True)
class DispatchConfig:
    """What the server configured; a provider left None is off."""

    fcm: FcmConfig | None = None
    apns: ApnsConfig | None = None
    smtp: SmtpConfig | None = None
    every_seconds: float = 10.0  # 0: never on its own (tests call run_once)
    email_after_offline: timedelta = EMAIL_AFTER_OFFLINE
    # In-process retries stay short: a round must not stall on one throttled device.
    retry: RetryPolicy = RetryPolicy(attempts=3, first=1.0, cap=10.0)
    requeue_after: timedelta = timedelta(minutes=1)  # RETRY_LATER without Retry-After

    @property
    def enabled(self) -> bool:
        return any((self.fcm, self.apns, self.smtp))


@dataclass(frozen=True)
class Wording:
    """How the API words a group: its summary line and its global id."""

    summary: Callable[[str, Sequence[str], int], str]
    node_id: Callable[[int], str]


@dataclass
class DispatchStats:
    pushed: int = 0  # devices that received a push
    emailed: int = 0
    devices_removed: int = 0
    requeued: int = 0  # deliveries put back (throttled, or email to a user online)
    off: int = 0  # a push device or an email whose channel has no credentials
    unseen_skipped: int = 0  # read or withdrawn meanwhile: nothing to send
    failed: int = 0

    def add(self, other: DispatchStats) -> None:
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(self, name) + getattr(other, name))


@dataclass(frozen=True)
class _Item:
    group: GroupRecord
    text: str


@dataclass(frozen=True)
class _Recipient:
    username: str
    display_name: str
    email: str
    email_digest: bool
    zone: tzinfo


class NotificationDispatcher:
    def __init__(
        self,
        db: Database,
        cache: Cache,
        config: DispatchConfig,
        wording: Wording,
        *,
        push: dict[str, PushSender] | None = None,
        email: EmailSender | None = None,
        clock: Callable[[], datetime] = utcnow,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.db = db
        self.config = config
        self.wording = wording
        self.store = NotificationStore(db)
        self.presence = Presence(cache)
        self.clock = clock
        self.sleep = sleep
        self.push = push if push is not None else _push_senders(config)
        self.email = email if email is not None or config.smtp is None else EmailSender(config.smtp)
        self.stats = DispatchStats()
        self._task: asyncio.Task[None] | None = None

    # ── lifecycle (as the stories sweeper) ──────────────────────────────

    def start(self) -> None:
        if self._task is None and self.config.every_seconds > 0:
            self._task = asyncio.create_task(self._run(), name="notification-dispatcher")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        for sender in self.push.values():
            await sender.aclose()

    async def _run(self) -> None:
        while True:
            try:
                done = await self.run_once()
                if done != DispatchStats():
                    log.info("notification dispatch: %s", done)
            except Exception:  # a store or provider hiccup: next round tries again
                log.exception(
                    "notification dispatch failed; retrying in %.0fs", self.config.every_seconds
                )
            await asyncio.sleep(self.config.every_seconds)

    # ── one round ───────────────────────────────────────────────────────

    async def run_once(self, now: datetime | None = None) -> DispatchStats:
        """Send everything due at `now` (default: the clock); what became of it."""
        now = now or self.clock()
        stats = DispatchStats()
        # Put-back rows are due after `now`, so this ends when the due ones are done.
        while due := await take_due(self.db, now, BATCH):
            for delivery in due:
                try:
                    await self._deliver(delivery, now, stats)
                except Exception:  # one bad delivery must not lose the rest of the batch
                    log.exception("delivering %s failed; put back", delivery)
                    await self._put_back(delivery, now + self.config.requeue_after)
                    stats.requeued += 1
        self.stats.add(stats)
        return stats

    async def _deliver(self, delivery: Delivery, now: datetime, stats: DispatchStats) -> None:
        if delivery.channel == "PUSH" and not self.push:
            stats.off += 1
            return
        if delivery.channel == "EMAIL" and self.email is None:
            stats.off += 1
            return
        items = await self._items(delivery)
        if not items:
            stats.unseen_skipped += 1
            return
        if delivery.channel == "PUSH":
            await self._send_push(delivery, items, now, stats)
        else:
            await self._send_email(delivery, items, now, stats)

    async def _items(self, delivery: Delivery) -> list[_Item]:
        """The unread groups of the delivery with their summary line, latest first."""
        found = await self.store.groups(delivery.platform, delivery.group_ids)
        groups = sorted(
            (g for g in found.values() if not g.is_read),
            key=lambda g: (g.latest_at, g.id),
            reverse=True,
        )
        if not groups:
            return []
        actors = await self.store.actor_ids([g.id for g in groups], NAMES_SHOWN)
        names = await _usernames({a for ids in actors.values() for a in ids}, self.db)
        return [
            _Item(
                g,
                self.wording.summary(
                    g.type, [names[a] for a in actors[g.id] if a in names], g.actor_count
                ),
            )
            for g in groups
        ]

    # ── push ────────────────────────────────────────────────────────────

    async def _send_push(
        self, delivery: Delivery, items: list[_Item], now: datetime, stats: DispatchStats
    ) -> None:
        devices = await self.store.devices(delivery.user_id)
        if not devices:
            return
        badge = await self.store.unread_count(delivery.user_id)
        message = self.push_message(delivery, items, badge)
        used: list[int] = []
        gone: list[int] = []
        retry_at: datetime | None = None
        for device in devices:
            sender = self.push.get(device.provider)
            if sender is None:
                stats.off += 1
                continue
            result = await self._with_retries(sender, _target(device), message)
            if result.outcome is Outcome.DELIVERED:
                used.append(device.id)
            elif result.outcome is Outcome.UNREGISTERED:
                gone.append(device.id)
            elif result.outcome is Outcome.RETRY_LATER:
                wait = timedelta(seconds=result.retry_after or 0) or self.config.requeue_after
                retry_at = max(retry_at or now, now + wait)
            else:
                stats.failed += 1
                log.warning(
                    "push to device %s failed: %s %s", device.id, result.status, result.reason
                )
        stats.pushed += len(used)
        stats.devices_removed += len(gone)
        async with self.db.transaction() as session:
            if used:
                await session.execute(
                    update(PushDeviceRow).where(PushDeviceRow.id.in_(used)).values(last_used_at=now)
                )
            if gone:
                await session.execute(delete(PushDeviceRow).where(PushDeviceRow.id.in_(gone)))
        if retry_at is not None:
            await self._put_back(delivery, retry_at)
            stats.requeued += 1

    def push_message(self, delivery: Delivery, items: list[_Item], badge: int) -> PushMessage:
        """One group: its summary line, replacing an earlier push of the same group
        (`collapse_id`: a group that grew). A summary of several: the latest and
        how many more."""
        title = delivery.platform.capitalize()
        if len(items) == 1:
            group = items[0].group
            return PushMessage(
                title=title,
                body=items[0].text,
                data={"notificationId": self.wording.node_id(group.id), "type": group.type},
                badge=badge,
                collapse_id=f"notification:{group.id}",
                thread_id=f"{group.subject_type}:{group.subject_id}",
            )
        more = len(items) - 1
        return PushMessage(
            title=title,
            body=f"{items[0].text}, and {more} more notification{'s' if more > 1 else ''}",
            data={
                "notificationIds": ",".join(self.wording.node_id(i.group.id) for i in items),
                "type": "SUMMARY",
            },
            badge=badge,
            thread_id="notifications",
        )

    async def _with_retries(
        self, sender: PushSender, target: PushTarget, message: PushMessage
    ) -> DeliveryResult:
        return await with_retries(
            lambda: sender.send(target, message), self.config.retry, sleep=self.sleep
        )

    # ── email ───────────────────────────────────────────────────────────

    async def _send_email(
        self, delivery: Delivery, items: list[_Item], now: datetime, stats: DispatchStats
    ) -> None:
        assert self.email is not None
        recipient = await self._recipient(delivery.user_id)
        if recipient is None or not recipient.email:
            return
        digest = delivery.summary and recipient.email_digest
        if not digest:
            free_at = await self._offline_since(delivery, now)
            if free_at is not None:
                await self._put_back(delivery, free_at)
                stats.requeued += 1
                return
        notifications = [
            EmailNotification(summary=item.text, occurred_at=item.group.latest_at) for item in items
        ]
        options: dict[str, Any] = {
            "recipient_name": recipient.display_name or recipient.username,
            "platform": delivery.platform.capitalize(),
            "zone": recipient.zone,
        }
        if len(notifications) == 1 and not digest:
            rendered = render_notification(notifications[0], **options)
        else:
            rendered = render_digest(notifications, **options)
        email = self.email
        result = await with_retries(
            lambda: email.send(recipient.email, rendered), self.config.retry, sleep=self.sleep
        )
        if result.delivered:
            stats.emailed += 1
        elif result.outcome is Outcome.RETRY_LATER:
            wait = timedelta(seconds=result.retry_after or 0) or self.config.requeue_after
            await self._put_back(delivery, now + wait)
            stats.requeued += 1
        else:
            stats.failed += 1
            log.warning(
                "email to user %s failed: %s %s", delivery.user_id, result.status, result.reason
            )

    async def _offline_since(self, delivery: Delivery, now: datetime) -> datetime | None:
        """None when the user has had no live connection for `email_after_offline`;
        else when that will be at the earliest (the email waits until then)."""
        after = self.config.email_after_offline
        if await self.presence.is_online(delivery.platform, delivery.user_id):
            return now + after
        seen = await self.presence.last_seen(delivery.platform, delivery.user_id)
        if seen is not None and now - seen < after:
            return seen + after
        return None

    async def _recipient(self, user_id: int) -> _Recipient | None:
        async with self.db.session() as session:
            user = await session.get(UserRow, user_id)
            settings = await session.get(NotificationSettingsRow, user_id)
        if user is None:
            return None
        zone: tzinfo = UTC
        if settings is not None and settings.quiet_timezone:
            zone = ZoneInfo(settings.quiet_timezone)
        return _Recipient(
            username=user.username,
            display_name=user.display_name,
            email=user.email,
            email_digest=bool(settings is not None and settings.email_digest),
            zone=zone,
        )

    # ── putting back ────────────────────────────────────────────────────

    async def _put_back(self, delivery: Delivery, at: datetime) -> None:
        """Owe the delivery again at `at` (a held summary stays one). A row made
        meanwhile for the same group and channel (a new actor) stands instead."""
        async with self.db.transaction() as session:
            for group_id in delivery.group_ids:
                values = {
                    "platform": delivery.platform,
                    "user_id": delivery.user_id,
                    "group_id": group_id,
                    "channel": delivery.channel,
                    "not_before": at,
                    "held": delivery.summary,
                    "created_at": at,
                }
                with contextlib.suppress(Exception):  # the group went meanwhile (FK)
                    async with session.begin_nested():
                        await insert_ignore(session, NotificationDeliveryRow, values)


async def _usernames(user_ids: set[int], db: Database) -> dict[int, str]:
    if not user_ids:
        return {}
    async with db.session() as session:
        rows = await session.execute(
            select(UserRow.id, UserRow.username).where(UserRow.id.in_(sorted(user_ids)))
        )
        return {user_id: name for user_id, name in rows.all()}


def _target(device: DeviceRecord) -> PushTarget:
    if device.provider == "APNS":
        return PushTarget("APNS", device.token, "ios")
    return PushTarget("FCM", device.token, "android")


def _push_senders(config: DispatchConfig) -> dict[str, PushSender]:
    senders: dict[str, PushSender] = {}
    if config.fcm is not None:
        senders["FCM"] = FcmSender(config.fcm)
    if config.apns is not None:
        senders["APNS"] = ApnsSender(config.apns)
    return senders
