"""SQL of notifications: the consumer's writes (in the claim's transaction) and the reads.

Grouping happens on write, so a read is one indexed range over
`notification_groups` plus one batched read of the actors of a page. An
activity finds the open group of its key (the latest window that started at
most `window` before it), or starts one; a new actor bumps `actor_count`,
moves `latest_at` (the list's order) and marks the group unread. Withdrawing
an actor recounts the group from its actor rows and deletes it when none is
left.

Which events make which activity, and who must not hear of it, is the
consumer's business (consumer.py); business rules of the API (validation,
defaults shown to users) are in resolvers/notifications.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import (
    Table,
    and_,
    bindparam,
    case,
    delete,
    func,
    insert,
    or_,
    select,
    tuple_,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from datasources.notifications import channels as channel_codec
from datasources.notifications.records import (
    Activity,
    Change,
    DeviceRecord,
    GroupRecord,
    PreferencesRecord,
    PreferencesUpdate,
    device_record,
    group_record,
    preferences_record,
)
from datasources.notifications.tables import (
    NotificationActorRow,
    NotificationGroupRow,
    NotificationSettingsRow,
    NotificationTypePreferenceRow,
    PushDeviceRow,
)
from datasources.posts.sqlutil import at_literal, insert_ignore, older_than, windowed
from datasources.sql import Database, UTCDateTime
from datasources.users.tables import BlockRow, UserRow

G = NotificationGroupRow
A = NotificationActorRow


class NotificationStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    # ── the consumer's writes (in the transaction that claimed the event) ──

    @staticmethod
    async def blocked_between(session: AsyncSession, a: int, b: int) -> bool:
        """Whether either user blocks the other."""
        stmt = select(BlockRow.blocker_id).where(
            or_(
                and_(BlockRow.blocker_id == a, BlockRow.blocked_id == b),
                and_(BlockRow.blocker_id == b, BlockRow.blocked_id == a),
            )
        )
        return (await session.execute(stmt.limit(1))).first() is not None

    @staticmethod
    async def chosen_channels(
        session: AsyncSession, user_id: int, type_: str
    ) -> frozenset[str] | None:
        """The channels `user_id` chose for `type_`, None when they never chose."""
        stmt = select(NotificationTypePreferenceRow.channels).where(
            NotificationTypePreferenceRow.user_id == user_id,
            NotificationTypePreferenceRow.type == type_,
        )
        found = await session.scalar(stmt)
        return None if found is None else channel_codec.decode(found)

    @staticmethod
    async def add(session: AsyncSession, activity: Activity, window: timedelta) -> Change:
        """Record `activity` in its group (joined or started); the change to publish."""
        await share_users(session, (activity.recipient_id, activity.actor_id))
        group_id = await _open_group(session, activity, window)
        at = activity.at
        if group_id is None:
            row = NotificationGroupRow(
                platform=activity.platform,
                recipient_id=activity.recipient_id,
                type=activity.type,
                subject_type=activity.subject_type,
                subject_id=activity.subject_id,
                group_key=activity.group_key,
                root_type=activity.root_type,
                root_id=activity.root_id,
                parent_id=activity.parent_id,
                window_start=at,
                latest_at=at,
                actor_count=1,
                is_read=False,
            )
            session.add(row)
            await session.flush()
            session.add(
                NotificationActorRow(group_id=row.id, actor_id=activity.actor_id, acted_at=at)
            )
            await session.flush()
            return Change(activity.platform, activity.recipient_id, row.id)
        values = {"group_id": group_id, "actor_id": activity.actor_id, "acted_at": at}
        if await insert_ignore(session, NotificationActorRow, values):
            await session.execute(
                update(G)
                .where(G.id == group_id)
                .values(
                    actor_count=G.actor_count + 1,
                    latest_at=case(
                        (G.latest_at < at_literal(at), at_literal(at)), else_=G.latest_at
                    ),
                    is_read=False,
                    read_at=None,
                )
            )
            return Change(activity.platform, activity.recipient_id, group_id)
        # The same actor again (another sticker answered): fresher, not new.
        await session.execute(
            update(A)
            .where(
                A.group_id == group_id, A.actor_id == activity.actor_id, A.acted_at < at_literal(at)
            )
            .values(acted_at=at)
        )
        return Change(activity.platform, activity.recipient_id)

    # ── the batched path (consumer.py `handle_batch`) ──────────────────

    @staticmethod
    async def blocked_pairs(session: AsyncSession, user_ids: Iterable[int]) -> set[tuple[int, int]]:
        """(blocker, blocked) among `user_ids`, one statement (`blocked_between` for many)."""
        users = sorted(set(user_ids))
        stmt = select(BlockRow.blocker_id, BlockRow.blocked_id).where(
            BlockRow.blocker_id.in_(users), BlockRow.blocked_id.in_(users)
        )
        return {(a, b) for a, b in (await session.execute(stmt)).all()}

    @staticmethod
    async def chosen_channels_many(
        session: AsyncSession, user_ids: Iterable[int], types: Iterable[str]
    ) -> dict[tuple[int, str], frozenset[str]]:
        """`chosen_channels` of many users and types: only the (user, type) chosen."""
        P = NotificationTypePreferenceRow
        stmt = select(P.user_id, P.type, P.channels).where(
            P.user_id.in_(sorted(set(user_ids))), P.type.in_(sorted(set(types)))
        )
        return {
            (user, type_): channel_codec.decode(channels)
            for user, type_, channels in (await session.execute(stmt)).all()
        }

    @staticmethod
    async def add_many(
        session: AsyncSession, activities: Sequence[Activity], window: timedelta
    ) -> list[Change]:
        """`add` for many activities of grouped types (not `single`), as if added one
        by one in order, with a few statements for them all: one read of the open
        groups of their keys and one of those groups' actors, then one INSERT of
        the new groups, one of the new actors and one (multi-row) UPDATE each of
        the grown groups and of the actors seen again. The changes, one per
        activity, in order; the caller has locked the users (`share_users`)."""
        if not activities:
            return []
        assert not any(a.single for a in activities)
        earliest = min(a.at for a in activities)
        latest = max(a.at for a in activities)
        stmt = select(G.id, G.recipient_id, G.group_key, G.window_start).where(
            G.recipient_id.in_(sorted({a.recipient_id for a in activities})),
            G.group_key.in_(sorted({a.group_key for a in activities})),
            G.window_start > at_literal(earliest - window),
            G.window_start <= at_literal(latest),
        )
        keys = {(a.recipient_id, a.group_key) for a in activities}
        groups: dict[tuple[int, str], list[_Pending]] = {}
        stored: dict[int, _Pending] = {}
        for group_id, recipient, key, start in (await session.execute(stmt)).all():
            if (recipient, key) in keys:
                pending = _Pending(start, group_id)
                groups.setdefault((recipient, key), []).append(pending)
                stored[group_id] = pending
        targets: list[_Pending] = []
        for activity in activities:  # which group each joins: by time alone
            at = activity.at
            candidates = [
                g
                for g in groups.get((activity.recipient_id, activity.group_key), ())
                if at - window < g.window_start <= at
            ]
            if candidates:
                group = max(candidates, key=lambda g: g.window_start)
            else:
                group = _Pending(at, None, first=activity)
                groups.setdefault((activity.recipient_id, activity.group_key), []).append(group)
            targets.append(group)
        pairs = sorted(
            {(g.id, a.actor_id) for a, g in zip(activities, targets, strict=True) if g.id}
        )
        for offset in range(0, len(pairs), 1000):  # which of them already are its actors
            known = select(A.group_id, A.actor_id, A.acted_at).where(
                tuple_(A.group_id, A.actor_id).in_(pairs[offset : offset + 1000])
            )
            for group_id, actor, acted in (await session.execute(known)).all():
                stored[group_id].known[actor] = acted
        placed = [
            (activity, group, group.join(activity.actor_id, activity.at))
            for activity, group in zip(activities, targets, strict=True)
        ]
        new = [g for gs in groups.values() for g in gs if g.id is None]
        if new:
            rows = [g.row() for g in new]
            table = cast(Table, G.__table__)
            inserted = await session.execute(
                insert(table).returning(table.c.id, sort_by_parameter_order=True), rows
            )
            for group, group_id in zip(new, inserted.scalars().all(), strict=True):
                group.id = group_id
        everything = [g for gs in groups.values() for g in gs]
        added = [
            {"group_id": g.id, "actor_id": actor, "acted_at": at}
            for g in everything
            for actor, at in g.added.items()
        ]
        if added:
            dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
            await session.execute(dialect.insert(A.__table__).on_conflict_do_nothing(), added)
        grown = [g for g in everything if g.id in stored and g.added]
        if grown:
            table = cast(Table, G.__table__)
            bound = bindparam("at", type_=UTCDateTime())
            await session.execute(
                update(table)
                .where(table.c.id == bindparam("gid"))
                .values(
                    actor_count=table.c.actor_count + bindparam("n"),
                    latest_at=case((table.c.latest_at < bound, bound), else_=table.c.latest_at),
                    is_read=False,
                    read_at=None,
                ),
                [{"gid": g.id, "n": len(g.added), "at": g.latest} for g in grown],
            )
        fresher = [(g.id, actor, at) for g in everything for actor, at in g.fresher.items()]
        if fresher:
            table = cast(Table, A.__table__)
            bound = bindparam("at", type_=UTCDateTime())
            await session.execute(
                update(table)
                .where(
                    table.c.group_id == bindparam("gid"),
                    table.c.actor_id == bindparam("aid"),
                    table.c.acted_at < bound,
                )
                .values(acted_at=bound),
                [{"gid": gid, "aid": actor, "at": at_} for gid, actor, at_ in fresher],
            )
        return [
            Change(a.platform, a.recipient_id, group.id if new_actor else None)
            for a, group, new_actor in placed
        ]

    async def withdraw(
        self,
        session: AsyncSession,
        types: Iterable[str],
        subject_type: str,
        subject_id: int,
        actor_id: int,
        recipient_id: int | None = None,
    ) -> list[Change]:
        """Take `actor_id` out of the groups of these types about this subject."""
        stmt = (
            select(G.id)
            .join(A, A.group_id == G.id)
            .where(
                G.type.in_(list(types)),
                G.subject_type == subject_type,
                G.subject_id == subject_id,
                A.actor_id == actor_id,
            )
        )
        if recipient_id is not None:
            stmt = stmt.where(G.recipient_id == recipient_id)
        group_ids = list((await session.scalars(stmt)).all())
        return await _drop_actor(session, group_ids, actor_id)

    async def withdraw_between(self, session: AsyncSession, a: int, b: int) -> list[Change]:
        """A block: every activity of each user in the other's notifications goes."""
        changes: list[Change] = []
        for recipient, actor in ((a, b), (b, a)):
            stmt = (
                select(G.id)
                .join(A, A.group_id == G.id)
                .where(G.recipient_id == recipient, A.actor_id == actor)
            )
            group_ids = list((await session.scalars(stmt)).all())
            changes += await _drop_actor(session, group_ids, actor)
        return changes

    @staticmethod
    async def remove_about(
        session: AsyncSession,
        subject_type: str,
        subject_id: int,
        with_children: bool = True,
    ) -> list[Change]:
        """Delete the groups about a subject that is gone and, with `with_children`,
        those about what hung under it (comments of a post, replies of a comment)."""
        conditions = [and_(G.subject_type == subject_type, G.subject_id == subject_id)]
        if with_children:
            conditions.append(and_(G.root_type == subject_type, G.root_id == subject_id))
            if subject_type == "comment":
                conditions.append(G.parent_id == subject_id)
        stmt = delete(G).where(or_(*conditions)).returning(G.platform, G.recipient_id)
        rows = (await session.execute(stmt)).all()
        return [Change(platform, recipient) for platform, recipient in set(rows)]

    # ── reads ───────────────────────────────────────────────────────────

    async def page(
        self,
        recipient_id: int,
        types: Sequence[str] | None,
        limit: int,
        after: tuple[datetime, int] | None,
    ) -> tuple[list[GroupRecord], bool]:
        """Up to `limit` groups, latest activity first, after the cursor; whether more."""
        stmt = select(G).where(G.recipient_id == recipient_id)
        if types:
            stmt = stmt.where(G.type.in_(list(types)))
        if after is not None:
            stmt = stmt.where(older_than(G.latest_at, G.id, after[0], after[1]))
        stmt = stmt.order_by(G.latest_at.desc(), G.id.desc()).limit(limit + 1)
        async with self.db.session() as session:
            rows = (await session.scalars(stmt)).all()
        records = [group_record(row) for row in rows]
        return records[:limit], len(records) > limit

    async def count(self, recipient_id: int, types: Sequence[str] | None = None) -> int:
        stmt = select(func.count()).select_from(G).where(G.recipient_id == recipient_id)
        if types:
            stmt = stmt.where(G.type.in_(list(types)))
        async with self.db.session() as session:
            return int(await session.scalar(stmt) or 0)

    async def unread_count(self, recipient_id: int) -> int:
        stmt = (
            select(func.count())
            .select_from(G)
            .where(G.recipient_id == recipient_id, G.is_read.is_(False))
        )
        async with self.db.session() as session:
            return int(await session.scalar(stmt) or 0)

    async def groups(self, platform: str, ids: Sequence[int]) -> dict[int, GroupRecord]:
        stmt = select(G).where(G.platform == platform, G.id.in_(list(ids)))
        async with self.db.session() as session:
            return {row.id: group_record(row) for row in (await session.scalars(stmt)).all()}

    async def actor_ids(self, group_ids: Sequence[int], limit: int) -> dict[int, list[int]]:
        """The `limit` most recent distinct actors of each group, one statement."""
        numbered = windowed(
            A.actor_id,
            A.group_id,
            order=(A.acted_at.desc(), A.actor_id.desc()),
            where=(A.group_id.in_(list(group_ids)),),
        )
        stmt = (
            select(numbered.c.part, numbered.c.id)
            .where(numbered.c.rn <= limit)
            .order_by(numbered.c.part, numbered.c.rn)
        )
        found: dict[int, list[int]] = {group_id: [] for group_id in group_ids}
        async with self.db.session() as session:
            for group_id, actor_id in (await session.execute(stmt)).all():
                found[group_id].append(actor_id)
        return found

    async def mark_read(self, recipient_id: int, up_to: datetime | None, now: datetime) -> int:
        """Mark unread groups whose latest activity is at or before `up_to` (all when
        None) read; how many were."""
        stmt = update(G).where(G.recipient_id == recipient_id, G.is_read.is_(False))
        if up_to is not None:
            stmt = stmt.where(G.latest_at <= at_literal(up_to))
        stmt = stmt.values(is_read=True, read_at=now).returning(G.id)
        async with self.db.transaction() as session:
            return len((await session.execute(stmt)).all())

    # ── preferences ─────────────────────────────────────────────────────

    async def preferences(self, user_id: int) -> PreferencesRecord:
        async with self.db.session() as session:
            return await _preferences(session, user_id)

    async def update_preferences(
        self, platform: str, user_id: int, change: PreferencesUpdate, now: datetime
    ) -> PreferencesRecord:
        """Apply a validated change in one transaction; the preferences after it."""
        async with self.db.transaction() as session:
            settings = await session.get(NotificationSettingsRow, user_id, with_for_update=True)
            if settings is None:
                settings = NotificationSettingsRow(
                    user_id=user_id, platform=platform, email_digest=False, updated_at=now
                )
                session.add(settings)
            if change.clear_quiet_hours:
                settings.quiet_start = settings.quiet_end = settings.quiet_timezone = None
            if change.quiet_hours is not None:
                settings.quiet_start = change.quiet_hours.start
                settings.quiet_end = change.quiet_hours.end
                settings.quiet_timezone = change.quiet_hours.timezone
            if change.set_paused_until:
                settings.paused_until = change.paused_until
            if change.email_digest is not None:
                settings.email_digest = change.email_digest
            settings.updated_at = now
            for type_, chosen in change.channels.items():
                row = await session.get(NotificationTypePreferenceRow, (user_id, type_))
                if row is None:
                    session.add(
                        NotificationTypePreferenceRow(
                            user_id=user_id, type=type_, channels=channel_codec.encode(chosen)
                        )
                    )
                else:
                    row.channels = channel_codec.encode(chosen)
            await session.flush()
            return await _preferences(session, user_id)

    # ── push devices ────────────────────────────────────────────────────

    async def devices(self, user_id: int) -> list[DeviceRecord]:
        stmt = (
            select(PushDeviceRow)
            .where(PushDeviceRow.user_id == user_id)
            .order_by(PushDeviceRow.created_at, PushDeviceRow.id)
        )
        async with self.db.session() as session:
            return [device_record(row) for row in (await session.scalars(stmt)).all()]

    async def register_device(
        self,
        platform: str,
        user_id: int,
        provider: str,
        token: str,
        name: str | None,
        now: datetime,
    ) -> DeviceRecord:
        """The device of this token, now `user_id`'s (see PushDeviceRow)."""
        async with self.db.transaction() as session:
            await session.execute(
                delete(PushDeviceRow).where(
                    PushDeviceRow.provider == provider, PushDeviceRow.token == token
                )
            )
            row = PushDeviceRow(
                platform=platform,
                user_id=user_id,
                provider=provider,
                token=token,
                name=name,
                created_at=now,
            )
            session.add(row)
            await session.flush()
            return device_record(row)

    async def unregister_device(self, user_id: int, device_id: int) -> bool:
        async with self.db.transaction() as session:
            stmt = (
                delete(PushDeviceRow)
                .where(PushDeviceRow.id == device_id, PushDeviceRow.user_id == user_id)
                .returning(PushDeviceRow.id)
            )
            return (await session.execute(stmt)).first() is not None


async def share_users(session: AsyncSession, user_ids: Iterable[int]) -> None:
    """PostgreSQL: the KEY SHARE locks our foreign keys to `users` would take anyway,
    taken first and in id order. Social-graph writes lock the same users FOR UPDATE
    in id order (datasources/users/graph.py `lock_users`); taking ours in another
    order (recipient, then actor) could wait on each other in a cycle."""
    if session.get_bind().dialect.name != "postgresql":
        return  # SQLite: the claim already holds the one write lock
    stmt = (
        select(UserRow.id)
        .where(UserRow.id.in_(sorted(set(user_ids))))
        .order_by(UserRow.id)
        .with_for_update(read=True, key_share=True)
    )
    await session.execute(stmt)


@dataclass
class _Pending:
    """A group as `add_many` changes it: stored (`id`) or about to be (`first`)."""

    window_start: datetime
    id: int | None
    first: Activity | None = None
    known: dict[int, datetime] = field(default_factory=dict)  # stored actors
    added: dict[int, datetime] = field(default_factory=dict)  # new actors → latest time
    fresher: dict[int, datetime] = field(default_factory=dict)  # stored actors seen again
    latest: datetime | None = None  # the latest time a new actor joined

    def join(self, actor: int, at: datetime) -> bool:
        """Whether `actor` is new to the group (else only fresher, as `add`)."""
        if actor in self.added:
            self.added[actor] = max(self.added[actor], at)
            return False
        if actor in self.known:
            if self.fresher.get(actor, self.known[actor]) < at:
                self.fresher[actor] = at
            return False
        self.added[actor] = at
        self.latest = at if self.latest is None else max(self.latest, at)
        return True

    def row(self) -> dict[str, Any]:
        first = self.first
        assert first is not None
        return {
            "platform": first.platform,
            "recipient_id": first.recipient_id,
            "type": first.type,
            "subject_type": first.subject_type,
            "subject_id": first.subject_id,
            "group_key": first.group_key,
            "root_type": first.root_type,
            "root_id": first.root_id,
            "parent_id": first.parent_id,
            "window_start": self.window_start,
            "latest_at": self.latest,
            "actor_count": len(self.added),
            "is_read": False,
        }


async def _open_group(session: AsyncSession, activity: Activity, window: timedelta) -> int | None:
    """The group `activity` joins: a single type's own group (a redelivery), or the
    latest group of its key whose window (from its first activity) still covers it."""
    stmt = select(G.id).where(
        G.recipient_id == activity.recipient_id, G.group_key == activity.group_key
    )
    if not activity.single:
        stmt = stmt.where(
            G.window_start <= at_literal(activity.at),
            G.window_start > at_literal(activity.at - window),
        )
    stmt = stmt.order_by(G.window_start.desc()).limit(1)
    found: int | None = await session.scalar(stmt)
    return found


async def _drop_actor(session: AsyncSession, group_ids: list[int], actor_id: int) -> list[Change]:
    """Remove `actor_id` from each group; recount it, or delete it when empty."""
    changes: list[Change] = []
    for group_id in group_ids:
        await session.execute(delete(A).where(A.group_id == group_id, A.actor_id == actor_id))
        left, latest = (
            await session.execute(
                select(func.count(), func.max(A.acted_at)).where(A.group_id == group_id)
            )
        ).one()
        if left:
            changed = (
                update(G)
                .where(G.id == group_id)
                .values(actor_count=left, latest_at=latest)
                .returning(G.platform, G.recipient_id)
            )
            row = (await session.execute(changed)).first()
        else:
            gone = delete(G).where(G.id == group_id).returning(G.platform, G.recipient_id)
            row = (await session.execute(gone)).first()
        if row is not None:
            changes.append(Change(row[0], row[1]))
    return changes


async def _preferences(session: AsyncSession, user_id: int) -> PreferencesRecord:
    settings = await session.get(NotificationSettingsRow, user_id)
    stmt = select(NotificationTypePreferenceRow).where(
        NotificationTypePreferenceRow.user_id == user_id
    )
    chosen = {
        row.type: channel_codec.decode(row.channels) for row in (await session.scalars(stmt)).all()
    }
    return preferences_record(settings, chosen)
