"""Domain events → notification groups: the consumer group `notifications`.

Each NotificationType and the event that makes it (DEVELOPERS.md, "Domain events"):

| type | event | recipient | subject | grouped by |
|---|---|---|---|---|
| FOLLOW | user.followed | followee | the followee (User) | type alone |
| FOLLOW_REQUEST | user.follow_requested | followee | the follower (User) | single |
| FOLLOW_ACCEPTED | user.follow_request_answered (accepted) | follower | the followee | single |
| FRIEND_REQUEST | user.friend_requested | recipient | the sender | single |
| FRIEND_ACCEPTED | user.friend_request_answered (accepted) | sender | the recipient | single |
| POST_LIKE | post.liked | post author | Post | type, post |
| POST_COMMENT | comment.created on a post | post author | Comment | single |
| COMMENT_REPLY | comment.created with a parent | parent's author | Comment (the reply) | single |
| COMMENT_LIKE | comment.liked | comment author | Comment | type, comment |
| MENTION | post.mentioned | mentioned user | Post | single |
| POST_SHARE | post.shared | original's author | Post (the original) | type, post |
| TAKE_LIKE | take.liked | take author | Take | type, take |
| TAKE_COMMENT | comment.created on a take | take author | Comment | single |
| TREND_JOINED | trend.joined | originator's author | TakeTrend | type, trend |
| TEMPLATE_USED | template.used | template creator | TakeTemplate | type, template |
| STORY_MENTION | story.mentioned | mentioned user | Story | single |
| STORY_REPLY | story.replied | story author | Story | single (per reply) |
| STICKER_RESPONSE | story.sticker_responded | story author | Story | type, story |
| COUNTDOWN_ENDED | story.countdown_ended | each subscriber | Story | single |

Rules: nobody hears of their own action; nothing from or to a user with a block
either way (read in this transaction); a recipient who turned IN_APP off for a
type gets no group for it. Undoing withdraws: post.unliked, take.unliked,
comment.unliked, user.unfollowed (and a withdrawn or answered request) take the
actor out of the group, which goes when no actor is left; comment.deleted,
post.deleted, take.deleted, story.deleted remove what they subject and what
hung under it (comments of a post, replies of a comment); user.blocked removes
each user's activity from the other's notifications.

Time: an activity is placed at its event's time (`Event.time`), never at the
time the consumer runs, so a late or replayed event groups where it happened
and tests place events hours apart by stamping them so.

Push and email: a new actor also owes the recipient a push and an email when
the type's channels have them, due now or held by quiet hours or a pause
(deliveries.py); the worker takes them when due.

Live: after the transaction commits, each recipient whose notifications changed
gets a message on their own broker topic (`inbox`), which `notificationReceived`
and `unreadNotificationCount` (subscriptions/notifications.py) listen to. This
consumer publishes itself rather than through RealtimeRelay: only it knows,
after grouping, which group changed and whether anything did (a blocked or
self action, a redelivered event: nothing to say).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from datetime import timedelta
from typing import Any, cast

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from datasources.events.bus import EventBus
from datasources.events.consumers import EventConsumer, claim
from datasources.events.model import Event
from datasources.events.tables import ConsumedEventRow
from datasources.events.transactions import transaction
from datasources.notifications import deliveries
from datasources.notifications.channels import DEFAULT_CHANNELS
from datasources.notifications.records import Activity, Change
from datasources.notifications.store import NotificationStore, share_users
from datasources.sql import Database, utcnow
from subscriptions import topics
from subscriptions.broker import Broker

log = logging.getLogger("entativa.notifications")

WINDOW = timedelta(hours=12)
"""A group spans at most this much time from its first activity."""

GROUPED = frozenset(
    {
        "FOLLOW",
        "POST_LIKE",
        "COMMENT_LIKE",
        "POST_SHARE",
        "TAKE_LIKE",
        "TREND_JOINED",
        "TEMPLATE_USED",
        "STICKER_RESPONSE",
    }
)

NOTIFICATION = "notification"  # {"kind", "group_id"}: a group gained an actor
UNREAD = "unread"  # {"kind"}: the unread count may have changed

BATCHED = frozenset(
    {
        "user.followed",
        "post.liked",
        "post.shared",
        "comment.liked",
        "take.liked",
        "template.used",
        "trend.joined",
        "story.sticker_responded",
    }
)
"""Events that make only activities of GROUPED types: `handle_batch` applies runs of
them together (store.py `add_many`)."""


def inbox(platform: str, user_id: int) -> str:
    """A user's own topic. It is the `access` topic every live subscription of a
    signed-in viewer already listens on (subscriptions/server.py), so notification
    fields need no topic derived from arguments (they have none)."""
    return topics.access(platform, user_id)


async def announce(broker: Broker, changes: Iterable[Change]) -> None:
    """Tell each recipient's live subscriptions what changed (best effort)."""
    unread: set[tuple[str, int]] = set()
    for change in changes:
        if change.group_id is not None:
            message = {"kind": NOTIFICATION, "group_id": change.group_id}
            await broker.publish(
                inbox(change.platform, change.recipient_id), topics.encode(message)
            )
        unread.add((change.platform, change.recipient_id))
    for platform, recipient in sorted(unread):
        await broker.publish(inbox(platform, recipient), topics.encode({"kind": UNREAD}))


class NotificationConsumer(EventConsumer):
    name = "notifications"
    domains = ("users", "posts", "stories")
    types = frozenset(
        {
            "user.followed",
            "user.follow_requested",
            "user.follow_request_answered",
            "user.unfollowed",
            "user.friend_requested",
            "user.friend_request_answered",
            "user.friend_request_withdrawn",
            "user.unfriended",
            "user.blocked",
            "post.liked",
            "post.unliked",
            "post.shared",
            "post.mentioned",
            "post.deleted",
            "comment.created",
            "comment.deleted",
            "comment.liked",
            "comment.unliked",
            "take.liked",
            "take.unliked",
            "take.deleted",
            "template.used",
            "trend.joined",
            "story.mentioned",
            "story.replied",
            "story.sticker_responded",
            "story.countdown_ended",
            "story.deleted",
        }
    )

    def __init__(self, db: Database, broker: Broker | None = None, owns_db: bool = False) -> None:
        """`owns_db`: `db` is the consumer's own engine (as the relay has), so its writes
        never compete with requests for pooled connections nor count in a request's
        statements; `close` disposes it."""
        super().__init__(db)
        self.store = NotificationStore(db)
        self.broker = broker
        self.owns_db = owns_db

    async def close(self) -> None:
        if self.owns_db:
            await self.db.dispose()

    async def handle(self, event: Event) -> None:
        """Apply once (EventConsumer.handle), then publish what changed after commit."""
        if not self.wants(event):
            return
        changes: list[Change] = []
        async with transaction(self.db) as session:
            if await claim(session, self.name, event.id):
                changes = await self.changes(session, event)
        if changes and self.broker is not None:
            try:
                await announce(self.broker, changes)
            except Exception:  # live delivery is best effort; the groups are stored
                log.exception("announcing notifications of event %s failed", event.id)

    async def handle_batch(self, events: Sequence[Event]) -> None:
        """`handle` for many events in one transaction, with the same outcome as
        handling them one by one in order (a redelivered one changes nothing).

        A run of events of the grouped types (likes, shares, follows…) is applied
        with a few statements for the whole run (`_add_many`); any other event
        (an unlike, a deletion, a comment) ends the run and is applied on its own
        where it stands, so the order of a like and its unlike is kept. For a
        transport that hands over batches (a Kafka poll, a relay round): a burst
        of 10,000 likes is ~20 transactions, not 10,000.
        """
        wanted = [event for event in events if self.wants(event)]
        if not wanted:
            return
        changes: list[Change] = []
        async with transaction(self.db) as session:
            claimed = await _claim_many(session, self.name, [event.id for event in wanted])
            # Every user the batch will reference, locked at once in id order: locking
            # them event by event (recipient of one, then of the next) would take them
            # in no particular order and deadlock with a concurrent follow.
            await share_users(session, _users_of([e for e in wanted if e.id in claimed]))
            run: list[Event] = []
            for event in wanted:
                if event.id not in claimed:
                    continue
                claimed.discard(event.id)  # the same event twice in a batch: once
                if event.type in BATCHED:
                    run.append(event)
                    continue
                if run:
                    changes += await self._add_many(session, run)
                    run = []
                changes += await self.changes(session, event)
            if run:
                changes += await self._add_many(session, run)
        if changes and self.broker is not None:
            try:
                await announce(self.broker, changes)
            except Exception:
                log.exception("announcing notifications of %d events failed", len(wanted))

    async def apply(self, session: AsyncSession, event: Event) -> None:
        await self.changes(session, event)

    async def subscribe(self, bus: EventBus) -> None:
        """Batches when the bus has them (a relay round, a Kafka poll): `handle_batch`."""
        await bus.subscribe(self.name, self.domains, self.handle, batch_handler=self.handle_batch)

    # ── event → changes ─────────────────────────────────────────────────

    async def changes(self, session: AsyncSession, event: Event) -> list[Change]:
        try:
            made = activities(event)
            withdrawn = await self._withdrawals(session, event)
        except (KeyError, TypeError, ValueError):
            # An event without the data its type documents: retrying cannot help,
            # and it must not hold up the events behind it. Claimed, not applied.
            log.warning("event %s (%s) lacks its data; no notification", event.id, event.type)
            return []
        if made:  # every user this event may lock, at once and in order (store.py)
            await share_users(session, {a.recipient_id for a in made} | {made[0].actor_id})
        added = []
        for activity in made:
            change = await self._add(session, activity)
            if change is not None:
                added.append(change)
        return withdrawn + added

    async def _add(self, session: AsyncSession, activity: Activity) -> Change | None:
        if activity.recipient_id == activity.actor_id:
            return None
        store = self.store
        if await store.blocked_between(session, activity.recipient_id, activity.actor_id):
            return None
        chosen = await store.chosen_channels(session, activity.recipient_id, activity.type)
        channels = DEFAULT_CHANNELS[activity.type] if chosen is None else chosen
        if "IN_APP" not in channels:
            return None
        change = await store.add(session, activity, WINDOW)
        if change.group_id is not None:  # a new actor: push and email owed (or held)
            await deliveries.plan(session, activity, change.group_id, channels)
        return change

    async def _add_many(self, session: AsyncSession, events: Sequence[Event]) -> list[Change]:
        """`changes` for a run of BATCHED events: the same checks as `_add`, each
        read once for the run (users locked, blocks, chosen channels, settings)."""
        made: list[Activity] = []
        for event in events:
            try:
                made += activities(event)
            except (KeyError, TypeError, ValueError):
                log.warning("event %s (%s) lacks its data; no notification", event.id, event.type)
        made = [a for a in made if a.recipient_id != a.actor_id]
        if not made:
            return []
        store = self.store
        users = {a.recipient_id for a in made} | {a.actor_id for a in made}
        await share_users(session, users)
        blocks = await store.blocked_pairs(session, users)
        chosen = await store.chosen_channels_many(
            session, {a.recipient_id for a in made}, {a.type for a in made}
        )
        kept: list[tuple[Activity, frozenset[str]]] = []
        for activity in made:
            pair = (activity.recipient_id, activity.actor_id)
            if pair in blocks or pair[::-1] in blocks:
                continue
            channels = chosen.get((activity.recipient_id, activity.type))
            channels = DEFAULT_CHANNELS[activity.type] if channels is None else channels
            if "IN_APP" in channels:
                kept.append((activity, channels))
        changes = await store.add_many(session, [a for a, _ in kept], WINDOW)
        await deliveries.plan_many(
            session,
            [
                (activity, change.group_id, channels)
                for (activity, channels), change in zip(kept, changes, strict=True)
                if change.group_id is not None
            ],
        )
        return changes

    async def _withdrawals(self, session: AsyncSession, event: Event) -> list[Change]:
        store, data, kind, actor = self.store, event.data, event.type, event.actor_id
        if kind == "post.unliked" and actor is not None:
            return await store.withdraw(session, ["POST_LIKE"], "post", event.subject_id, actor)
        if kind == "take.unliked" and actor is not None:
            return await store.withdraw(session, ["TAKE_LIKE"], "take", event.subject_id, actor)
        if kind == "comment.unliked" and actor is not None:
            return await store.withdraw(
                session, ["COMMENT_LIKE"], "comment", event.subject_id, actor
            )
        if kind == "comment.deleted":
            return await store.remove_about(session, "comment", event.subject_id)
        if kind == "post.deleted":
            changes = await store.remove_about(session, "post", event.subject_id)
            shared = data.get("shared_post_id")
            if shared and actor is not None:
                changes += await store.withdraw(session, ["POST_SHARE"], "post", int(shared), actor)
            return changes
        if kind == "take.deleted":
            changes = await store.remove_about(session, "take", event.subject_id)
            if data.get("ended_trend_id"):
                changes += await store.remove_about(session, "trend", int(data["ended_trend_id"]))
            if actor is not None:
                if data.get("trend_id"):
                    changes += await store.withdraw(
                        session, ["TREND_JOINED"], "trend", int(data["trend_id"]), actor
                    )
                if data.get("template_id"):
                    changes += await store.withdraw(
                        session, ["TEMPLATE_USED"], "template", int(data["template_id"]), actor
                    )
            return changes
        if kind == "story.deleted":
            return await store.remove_about(session, "story", event.subject_id)
        if kind == "user.unfollowed":
            follower, followee = int(data["follower_id"]), int(data["followee_id"])
            if data.get("was_pending"):  # a request (about the follower) withdrawn
                return await store.withdraw(
                    session, ["FOLLOW_REQUEST"], "user", follower, follower, recipient_id=followee
                )
            return await store.withdraw(
                session, ["FOLLOW"], "user", followee, follower, recipient_id=followee
            )
        if kind == "user.follow_request_answered":
            # The request was dealt with: it leaves the followee's notifications.
            follower, followee = int(data["follower_id"]), int(data["followee_id"])
            return await store.withdraw(
                session, ["FOLLOW_REQUEST"], "user", follower, follower, recipient_id=followee
            )
        if kind in ("user.friend_request_withdrawn", "user.friend_request_answered"):
            sender, recipient = int(data["sender_id"]), int(data["recipient_id"])
            return await store.withdraw(
                session, ["FRIEND_REQUEST"], "user", sender, sender, recipient_id=recipient
            )
        if kind == "user.unfriended":
            user, friend = int(data["user_id"]), int(data["friend_id"])
            return await store.withdraw(
                session, ["FRIEND_ACCEPTED"], "user", user, user, recipient_id=friend
            ) + await store.withdraw(
                session, ["FRIEND_ACCEPTED"], "user", friend, friend, recipient_id=user
            )
        if kind == "user.blocked":
            return await store.withdraw_between(
                session, int(data["blocker_id"]), int(data["blocked_id"])
            )
        return []


async def _claim_many(session: AsyncSession, consumer: str, event_ids: list[str]) -> set[str]:
    """`claim` for many events at once: the ids not claimed before."""
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    table = cast(Table, ConsumedEventRow.__table__)
    now = utcnow()
    rows = [
        {"consumer": consumer, "event_id": event_id, "consumed_at": now}
        for event_id in dict.fromkeys(event_ids)
    ]
    # Core executemany: SQLAlchemy sends it as multi-row INSERTs ("insertmanyvalues"),
    # compiled once, and gathers what RETURNING gave (the rows really inserted).
    stmt = dialect.insert(table).on_conflict_do_nothing().returning(table.c.event_id)
    return set((await session.execute(stmt, rows)).scalars().all())


def _users_of(events: Iterable[Event]) -> set[int]:
    """The recipients and actors of the activities these events make (an event
    without its data makes none: `changes` skips it)."""
    users: set[int] = set()
    for event in events:
        try:
            made = activities(event)
        except (KeyError, TypeError, ValueError):
            continue
        users.update(user for a in made for user in (a.recipient_id, a.actor_id))
    return users


def activities(event: Event) -> list[Activity]:
    """The activities an event makes (before the self, block and preference checks)."""
    data, kind, actor = event.data, event.type, event.actor_id
    if actor is None:
        return []

    def make(
        recipient: Any,
        type_: str,
        subject_type: str,
        subject_id: int,
        *,
        key: str | None = None,
        root: tuple[str, int] | None = None,
        parent_id: int | None = None,
        by: int = actor,
    ) -> Activity:
        single = type_ not in GROUPED
        if key is None:
            key = type_ if type_ == "FOLLOW" else f"{type_}:{subject_type}:{subject_id}"
        return Activity(
            platform=event.platform,
            recipient_id=int(recipient),
            actor_id=by,
            type=type_,
            subject_type=subject_type,
            subject_id=subject_id,
            group_key=key,
            at=event.time,
            single=single,
            root_type=root[0] if root else None,
            root_id=root[1] if root else None,
            parent_id=parent_id,
        )

    subject = event.subject_id
    if kind == "user.followed":
        followee = int(data["followee_id"])
        return [make(followee, "FOLLOW", "user", followee)]
    if kind == "user.follow_requested":
        follower = int(data["follower_id"])
        return [make(data["followee_id"], "FOLLOW_REQUEST", "user", follower)]
    if kind == "user.follow_request_answered" and data.get("accepted"):
        followee = int(data["followee_id"])
        return [make(data["follower_id"], "FOLLOW_ACCEPTED", "user", followee)]
    if kind == "user.friend_requested":
        sender = int(data["sender_id"])
        return [make(data["recipient_id"], "FRIEND_REQUEST", "user", sender)]
    if kind == "user.friend_request_answered" and data.get("accepted"):
        recipient = int(data["recipient_id"])
        return [make(data["sender_id"], "FRIEND_ACCEPTED", "user", recipient)]
    if kind == "post.liked":
        return [make(data["author_id"], "POST_LIKE", "post", subject, root=("post", subject))]
    if kind == "post.shared":
        return [make(data["author_id"], "POST_SHARE", "post", subject, root=("post", subject))]
    if kind == "post.mentioned":
        return [make(data["mentioned_user_id"], "MENTION", "post", subject, root=("post", subject))]
    if kind == "comment.created":
        root = (str(data["subject_type"]), int(data["subject_id"]))
        made = []
        parent_author = data.get("parent_author_id")
        if data.get("parent_id") and parent_author:
            made.append(
                make(
                    parent_author,
                    "COMMENT_REPLY",
                    "comment",
                    subject,
                    root=root,
                    parent_id=int(data["parent_id"]),
                )
            )
        subject_author = data.get("subject_author_id")
        if subject_author and subject_author != parent_author:
            type_ = "TAKE_COMMENT" if root[0] == "take" else "POST_COMMENT"
            made.append(
                make(
                    subject_author,
                    type_,
                    "comment",
                    subject,
                    root=root,
                    parent_id=int(data["parent_id"]) if data.get("parent_id") else None,
                )
            )
        return made
    if kind == "comment.liked":
        root = (str(data["subject_type"]), int(data["subject_id"]))
        return [make(data["author_id"], "COMMENT_LIKE", "comment", subject, root=root)]
    if kind == "take.liked":
        return [make(data["author_id"], "TAKE_LIKE", "take", subject, root=("take", subject))]
    if kind == "template.used":
        return [make(data["template_creator_id"], "TEMPLATE_USED", "template", subject)]
    if kind == "trend.joined":
        return [make(data["trend_originator_author_id"], "TREND_JOINED", "trend", subject)]
    if kind == "story.mentioned":
        return [make(data["mentioned_user_id"], "STORY_MENTION", "story", subject)]
    if kind == "story.replied":
        key = f"STORY_REPLY:story:{subject}:{data.get('reply_id')}"
        return [make(data["author_id"], "STORY_REPLY", "story", subject, key=key)]
    if kind == "story.sticker_responded":
        return [make(data["author_id"], "STICKER_RESPONSE", "story", subject)]
    if kind == "story.countdown_ended":
        key = f"COUNTDOWN_ENDED:story:{subject}:{data.get('sticker_index')}"
        return [
            make(uid, "COUNTDOWN_ENDED", "story", subject, key=key)
            for uid in data.get("subscriber_ids") or []
        ]
    return []
