"""SQL for the social graph: follows, friend requests, friendships, blocks.

Every write runs in one transaction that first locks the users it touches (in id
order, so two writers never wait on each other in a cycle). The denormalized
follower/following counts change in that same transaction, and only by the rows
an INSERT or DELETE really touched (read back with RETURNING), so they stay
exact under any concurrency: a repeated follow inserts nothing and adds nothing.

Relation tables carry no platform column: both ends are users, and every read
joins `users` on the platform of the request, so nothing crosses platforms.
Business rules (who may follow whom, which platform has friends) live in
resolvers/users; this module only knows how to change rows consistently.

Each write that changed something emits its `user.*` domain event in the same
transaction (DEVELOPERS.md, "Domain events"); a write that changed nothing (a
repeated follow, an unblock without a block) emits none. `platform`, when the
caller knows it, saves reading it from the users row. Close-friend entries are
the exception: a private list, changed silently (no event).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Select,
    String,
    and_,
    bindparam,
    case,
    delete,
    func,
    literal,
    not_,
    or_,
    select,
    tuple_,
    union_all,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from datasources.events.model import NewEvent
from datasources.events.outbox import emit
from datasources.sql import Database, utcnow
from datasources.users.store import UserRecord, to_record
from datasources.users.tables import (
    BlockRow,
    CloseFriendRow,
    FollowRow,
    FriendRequestRow,
    FriendshipRow,
    UserRow,
)


@dataclass(frozen=True)
class RelationshipRecord:
    """What links a viewer to one other user, as stored (before any policy)."""

    following: bool = False
    followed_by: bool = False
    requested: bool = False
    blocking: bool = False
    blocked_by: bool = False
    friends: bool = False
    friend_request_sent: bool = False
    friend_request_received: bool = False
    is_close_friend: bool = False
    # The target lists the viewer as a close friend: whether the viewer may see the
    # target's CLOSE_FRIENDS stories. Never shown to the viewer (lists are private).
    close_friend_of: bool = False


NO_RELATIONSHIP = RelationshipRecord()


@dataclass(frozen=True)
class Related:
    """A user at the other end of a relation row, with the row's time (the sort key)."""

    at: datetime
    user: UserRecord


@dataclass(frozen=True)
class After:
    """Keyset position: rows strictly older than (at, user_id) come next."""

    at: datetime
    user_id: int


@dataclass(frozen=True)
class RelatedPage:
    items: list[Related]
    has_next: bool


@dataclass(frozen=True)
class FollowOutcome:
    created: bool
    approved: bool


class SocialGraph:
    """Reads and writes of the relation tables; see the module docstring for the rules."""

    def __init__(self, db: Database) -> None:
        self.db = db

    # ── reads ──────────────────────────────────────────────────────────

    async def relationships(
        self, viewer_id: int, target_ids: Sequence[int]
    ) -> dict[int, RelationshipRecord]:
        """The viewer's relationship to each target, in one statement for the whole batch."""
        targets = [t for t in set(target_ids) if t != viewer_id]
        if not targets:
            return {}
        async with self.db.session() as session:
            params = {"viewer": viewer_id, "targets": targets}
            rows = (await session.execute(_relationship_statement(), params)).all()
        flags: dict[int, dict[str, bool]] = {}
        for kind, target in rows:
            flags.setdefault(target, {})[kind] = True
        return {target: RelationshipRecord(**found) for target, found in flags.items()}

    async def followers(
        self, platform: str, user_id: int, after: After | None, limit: int, hide_for: int | None
    ) -> RelatedPage:
        """Approved followers of `user_id`, newest follow first."""
        return await self._page(
            platform,
            other=FollowRow.follower_id,
            at=FollowRow.created_at,
            where=[FollowRow.followee_id == user_id, FollowRow.approved.is_(True)],
            after=after,
            limit=limit,
            hide_for=hide_for,
        )

    async def following(
        self, platform: str, user_id: int, after: After | None, limit: int, hide_for: int | None
    ) -> RelatedPage:
        """Accounts `user_id` follows (approved), newest follow first."""
        return await self._page(
            platform,
            other=FollowRow.followee_id,
            at=FollowRow.created_at,
            where=[FollowRow.follower_id == user_id, FollowRow.approved.is_(True)],
            after=after,
            limit=limit,
            hide_for=hide_for,
        )

    async def friends(
        self, platform: str, user_id: int, after: After | None, limit: int, hide_for: int | None
    ) -> RelatedPage:
        return await self._page(
            platform,
            other=FriendshipRow.friend_id,
            at=FriendshipRow.created_at,
            where=[FriendshipRow.user_id == user_id],
            after=after,
            limit=limit,
            hide_for=hide_for,
        )

    async def friend_counts(self, user_ids: Sequence[int]) -> dict[int, int]:
        """How many friends each user has (no denormalized column: one GROUP BY)."""
        stmt = (
            select(FriendshipRow.user_id, func.count())
            .where(FriendshipRow.user_id.in_(user_ids))
            .group_by(FriendshipRow.user_id)
        )
        async with self.db.session() as session:
            return {row[0]: int(row[1]) for row in (await session.execute(stmt)).all()}

    async def follow_requests(
        self, platform: str, user_id: int, after: After | None, limit: int
    ) -> tuple[RelatedPage, int]:
        """Pending follow requests to `user_id`, newest first, and how many there are."""
        where = [FollowRow.followee_id == user_id, FollowRow.approved.is_(False)]
        page = await self._page(
            platform, FollowRow.follower_id, FollowRow.created_at, where, after, limit, None
        )
        return page, await self._count(where)

    async def friend_requests(
        self, platform: str, user_id: int, after: After | None, limit: int
    ) -> tuple[RelatedPage, int]:
        """Friend requests `user_id` received, newest first, and how many there are."""
        where = [FriendRequestRow.recipient_id == user_id]
        page = await self._page(
            platform,
            FriendRequestRow.sender_id,
            FriendRequestRow.created_at,
            where,
            after,
            limit,
            None,
        )
        return page, await self._count(where)

    async def blocked(
        self, platform: str, user_id: int, after: After | None, limit: int
    ) -> tuple[RelatedPage, int]:
        """Users `user_id` blocks, newest block first, and how many there are."""
        where = [BlockRow.blocker_id == user_id]
        page = await self._page(
            platform, BlockRow.blocked_id, BlockRow.created_at, where, after, limit, None
        )
        return page, await self._count(where)

    async def close_friends(
        self, platform: str, user_id: int, after: After | None, limit: int
    ) -> tuple[RelatedPage, int]:
        """Whom `user_id` lists as close friends, newest entry first, and how many.

        No block filter: a block deletes the entries both ways (see `block`)."""
        where = [CloseFriendRow.user_id == user_id]
        page = await self._page(
            platform, CloseFriendRow.friend_id, CloseFriendRow.created_at, where, after, limit, None
        )
        return page, await self._count(where)

    async def suggestions(
        self, platform: str, viewer_id: int, limit: int, with_friends: bool
    ) -> list[UserRecord]:
        """People two steps away, ranked by how many distinct people link to them.

        Candidates are accounts followed by accounts the viewer follows and, when
        `with_friends`, friends of the viewer's friends. Excluded: the viewer, anyone
        with a block either way, anyone the viewer follows or asked to follow, and
        existing friends or friend requests either way. One statement.
        """
        if limit <= 0:
            return []
        paths: list[Select[Any, Any]] = [
            select(
                FollowRow.followee_id.label("candidate"), FollowRow.follower_id.label("via")
            ).where(
                FollowRow.approved.is_(True),
                FollowRow.follower_id.in_(_followed_by(viewer_id)),
            )
        ]
        if with_friends:
            paths.append(
                select(
                    FriendshipRow.friend_id.label("candidate"), FriendshipRow.user_id.label("via")
                ).where(FriendshipRow.user_id.in_(_friends_of(viewer_id)))
            )
        two_steps = union_all(*paths).subquery("two_steps")
        mutual = func.count(two_steps.c.via.distinct())
        candidate = two_steps.c.candidate
        stmt = (
            select(UserRow)
            .join(two_steps, candidate == UserRow.id)
            .where(
                UserRow.platform == platform,
                candidate != viewer_id,
                not_(candidate.in_(_blocked_either_way(viewer_id))),
                not_(
                    candidate.in_(
                        select(FollowRow.followee_id).where(FollowRow.follower_id == viewer_id)
                    )
                ),
                not_(candidate.in_(_friends_of(viewer_id))),
                not_(
                    candidate.in_(
                        select(FriendRequestRow.recipient_id).where(
                            FriendRequestRow.sender_id == viewer_id
                        )
                    )
                ),
                not_(
                    candidate.in_(
                        select(FriendRequestRow.sender_id).where(
                            FriendRequestRow.recipient_id == viewer_id
                        )
                    )
                ),
            )
            .group_by(UserRow.id)
            .order_by(mutual.desc(), UserRow.follower_count.desc(), UserRow.id)
            .limit(limit)
        )
        async with self.db.session() as session:
            return [to_record(row) for row in await session.scalars(stmt)]

    # ── writes ─────────────────────────────────────────────────────────

    async def follow(
        self, follower_id: int, followee_id: int, platform: str | None = None
    ) -> FollowOutcome:
        """Follow, or ask to follow when the followee is private (approved false).

        The followee's privacy is read under its row lock, in the transaction that
        inserts, so a concurrent switch to public (which approves pending requests
        under the same lock) can never leave a request stranded.
        """
        async with self.db.transaction() as session:
            await lock_users(session, (follower_id, followee_id))
            is_private = await session.scalar(
                select(UserRow.is_private).where(UserRow.id == followee_id)
            )
            approved = not is_private
            inserted = await _insert_ignore(
                session,
                FollowRow,
                {
                    "follower_id": follower_id,
                    "followee_id": followee_id,
                    "approved": approved,
                    "created_at": utcnow(),
                },
            )
            if inserted and approved:
                await _count_follows(session, [(follower_id, followee_id)], +1)
            if inserted:
                kind = "user.followed" if approved else "user.follow_requested"
                await _emit(
                    session,
                    kind,
                    platform,
                    follower_id,
                    followee_id,
                    {"follower_id": follower_id, "followee_id": followee_id},
                )
            if not inserted:
                current = await session.scalar(
                    select(FollowRow.approved).where(
                        FollowRow.follower_id == follower_id, FollowRow.followee_id == followee_id
                    )
                )
                approved = bool(current)
            return FollowOutcome(created=inserted, approved=approved)

    async def unfollow(
        self, follower_id: int, followee_id: int, platform: str | None = None
    ) -> bool:
        """Remove a follow or withdraw a pending request; True when a row was removed."""
        async with self.db.transaction() as session:
            await lock_users(session, (follower_id, followee_id))
            removed = await _delete_follows(
                session,
                and_(FollowRow.follower_id == follower_id, FollowRow.followee_id == followee_id),
            )
            for row in removed:
                await _emit(
                    session,
                    "user.unfollowed",
                    platform,
                    follower_id,
                    followee_id,
                    {
                        "follower_id": follower_id,
                        "followee_id": followee_id,
                        "was_pending": not row[2],
                    },
                )
            return bool(removed)

    async def approve_request(
        self, followee_id: int, follower_id: int, platform: str | None = None
    ) -> bool:
        """Turn a pending request into a follow; False when there was none pending."""
        async with self.db.transaction() as session:
            await lock_users(session, (follower_id, followee_id))
            approved = await _approve(
                session,
                and_(
                    FollowRow.followee_id == followee_id,
                    FollowRow.follower_id == follower_id,
                ),
            )
            if approved:
                await _emit_follow_answer(session, platform, followee_id, follower_id, True)
            return bool(approved)

    async def decline_request(
        self, followee_id: int, follower_id: int, platform: str | None = None
    ) -> bool:
        """Delete a pending request; False when there was none pending."""
        async with self.db.transaction() as session:
            result = await session.execute(
                delete(FollowRow)
                .where(
                    FollowRow.followee_id == followee_id,
                    FollowRow.follower_id == follower_id,
                    FollowRow.approved.is_(False),
                )
                .returning(FollowRow.follower_id)
            )
            declined = bool(result.all())
            if declined:
                await _emit_follow_answer(session, platform, followee_id, follower_id, False)
            return declined

    async def send_friend_request(
        self, sender_id: int, recipient_id: int, platform: str | None = None
    ) -> None:
        """Ask for a friendship; when the other side already asked, become friends."""
        async with self.db.transaction() as session:
            await lock_users(session, (sender_id, recipient_id))
            if await _are_friends(session, sender_id, recipient_id):
                return
            crossed = await session.execute(
                delete(FriendRequestRow)
                .where(
                    FriendRequestRow.sender_id == recipient_id,
                    FriendRequestRow.recipient_id == sender_id,
                )
                .returning(FriendRequestRow.sender_id)
            )
            if crossed.all():  # asking back answers the other's request: accepted
                await _befriend(session, sender_id, recipient_id)
                await _emit_friend_answer(session, platform, sender_id, recipient_id, True)
                return
            requested = await _insert_ignore(
                session,
                FriendRequestRow,
                {"sender_id": sender_id, "recipient_id": recipient_id, "created_at": utcnow()},
            )
            if requested:
                await _emit(
                    session,
                    "user.friend_requested",
                    platform,
                    sender_id,
                    recipient_id,
                    {"sender_id": sender_id, "recipient_id": recipient_id},
                )

    async def answer_friend_request(
        self, recipient_id: int, sender_id: int, accept: bool, platform: str | None = None
    ) -> bool:
        """Accept (befriend) or decline a received request; False when there was none."""
        async with self.db.transaction() as session:
            await lock_users(session, (sender_id, recipient_id))
            result = await session.execute(
                delete(FriendRequestRow)
                .where(
                    FriendRequestRow.sender_id == sender_id,
                    FriendRequestRow.recipient_id == recipient_id,
                )
                .returning(FriendRequestRow.sender_id)
            )
            if not result.all():
                return False
            if accept:
                await _befriend(session, sender_id, recipient_id)
            await _emit_friend_answer(session, platform, recipient_id, sender_id, accept)
            return True

    async def unfriend(self, user_id: int, other_id: int, platform: str | None = None) -> None:
        """End a friendship (both rows) and withdraw `user_id`'s pending request, if any."""
        async with self.db.transaction() as session:
            await lock_users(session, (user_id, other_id))
            ended = await session.execute(
                delete(FriendshipRow).where(_pair(FriendshipRow, user_id, other_id))
            )
            withdrawn = await session.execute(
                delete(FriendRequestRow).where(
                    FriendRequestRow.sender_id == user_id,
                    FriendRequestRow.recipient_id == other_id,
                )
            )
            if _rowcount(ended):
                await _emit(
                    session,
                    "user.unfriended",
                    platform,
                    user_id,
                    other_id,
                    {"user_id": user_id, "friend_id": other_id},
                )
            if _rowcount(withdrawn):
                await _emit(
                    session,
                    "user.friend_request_withdrawn",
                    platform,
                    user_id,
                    other_id,
                    {"sender_id": user_id, "recipient_id": other_id},
                )

    async def add_close_friend(self, user_id: int, friend_id: int) -> bool:
        """List `friend_id` as a close friend of `user_id`; idempotent (the first
        entry's time stays). False, and nothing stored, when a block either way exists.

        The block check runs under both users' locks, the ones `block` takes before it
        deletes close-friend entries, so a concurrent block never leaves one behind.
        Silent: close-friend lists are private, no event is emitted.
        """
        async with self.db.transaction() as session:
            await lock_users(session, (user_id, friend_id))
            blocked = await session.scalar(
                select(BlockRow.blocker_id).where(_pair_blocks(user_id, friend_id)).limit(1)
            )
            if blocked is not None:
                return False
            await _insert_ignore(
                session,
                CloseFriendRow,
                {"user_id": user_id, "friend_id": friend_id, "created_at": utcnow()},
            )
            return True

    async def remove_close_friend(self, user_id: int, friend_id: int) -> bool:
        """Take `friend_id` off `user_id`'s close friends; True when an entry was removed."""
        async with self.db.transaction() as session:
            removed = await session.execute(
                delete(CloseFriendRow).where(
                    CloseFriendRow.user_id == user_id, CloseFriendRow.friend_id == friend_id
                )
            )
            return bool(_rowcount(removed))

    async def block(self, blocker_id: int, blocked_id: int, platform: str | None = None) -> None:
        """Block, and cut every other tie both ways: follows (counts adjusted), follow
        requests, friend requests, friendship and close-friend entries."""
        async with self.db.transaction() as session:
            await lock_users(session, (blocker_id, blocked_id))
            cut = await _delete_follows(
                session,
                or_(
                    and_(FollowRow.follower_id == blocker_id, FollowRow.followee_id == blocked_id),
                    and_(FollowRow.follower_id == blocked_id, FollowRow.followee_id == blocker_id),
                ),
            )
            await session.execute(
                delete(FriendRequestRow).where(
                    or_(
                        and_(
                            FriendRequestRow.sender_id == blocker_id,
                            FriendRequestRow.recipient_id == blocked_id,
                        ),
                        and_(
                            FriendRequestRow.sender_id == blocked_id,
                            FriendRequestRow.recipient_id == blocker_id,
                        ),
                    )
                )
            )
            unfriended = await session.execute(
                delete(FriendshipRow).where(_pair(FriendshipRow, blocker_id, blocked_id))
            )
            await session.execute(
                delete(CloseFriendRow).where(_pair(CloseFriendRow, blocker_id, blocked_id))
            )
            blocked = await _insert_ignore(
                session,
                BlockRow,
                {"blocker_id": blocker_id, "blocked_id": blocked_id, "created_at": utcnow()},
            )
            if blocked:
                await _emit(
                    session,
                    "user.blocked",
                    platform,
                    blocker_id,
                    blocked_id,
                    {
                        "blocker_id": blocker_id,
                        "blocked_id": blocked_id,
                        # What the block cut, for consumers keeping their own copies:
                        "unfollowed": [
                            {"follower_id": row[0], "followee_id": row[1]} for row in cut if row[2]
                        ],
                        "unfriended": bool(_rowcount(unfriended)),
                    },
                )

    async def unblock(self, blocker_id: int, blocked_id: int, platform: str | None = None) -> None:
        async with self.db.transaction() as session:
            lifted = await session.execute(
                delete(BlockRow).where(
                    BlockRow.blocker_id == blocker_id, BlockRow.blocked_id == blocked_id
                )
            )
            if _rowcount(lifted):
                await _emit(
                    session,
                    "user.unblocked",
                    platform,
                    blocker_id,
                    blocked_id,
                    {"blocker_id": blocker_id, "blocked_id": blocked_id},
                )

    # ── helpers ────────────────────────────────────────────────────────

    async def _page(
        self,
        platform: str,
        other: InstrumentedAttribute[int],
        at: InstrumentedAttribute[datetime],
        where: list[ColumnElement[bool]],
        after: After | None,
        limit: int,
        hide_for: int | None,
    ) -> RelatedPage:
        """One keyset page of the users at the `other` end of matching relation rows.

        Joins `users` (platform-scoped) so one statement returns whole user records.
        `hide_for`: leave out users with a block either way with that viewer.
        """
        if limit <= 0:
            return RelatedPage([], False)
        conditions = [*where, UserRow.platform == platform]
        if after is not None:
            conditions.append(tuple_(at, other) < tuple_(literal_at(after.at), after.user_id))
        if hide_for is not None:
            conditions.append(not_(other.in_(_blocked_either_way(hide_for))))
        stmt = (
            select(at, UserRow)
            .join(UserRow, UserRow.id == other)
            .where(*conditions)
            .order_by(at.desc(), other.desc())
            .limit(limit + 1)
        )
        async with self.db.session() as session:
            rows = (await session.execute(stmt)).all()
        items = [Related(at=row[0], user=to_record(row[1])) for row in rows[:limit]]
        return RelatedPage(items, has_next=len(rows) > limit)

    async def _count(self, where: list[ColumnElement[bool]]) -> int:
        async with self.db.session() as session:
            return int(await session.scalar(select(func.count()).where(*where)) or 0)


def literal_at(at: datetime) -> ColumnElement[datetime]:
    """A cursor time bound with the column's type (UTC handling on both backends)."""
    return literal(at, FollowRow.__table__.c.created_at.type)


async def lock_users(session: AsyncSession, user_ids: Iterable[int]) -> None:
    """Serialize writers that touch the same users, for the rest of the transaction.

    PostgreSQL: row locks in id order (no deadlock between two writers). SQLite has
    one writer at a time, but its driver begins the transaction only at the first
    write, so a harmless UPDATE comes first to take the write lock before any read.
    """
    ids = sorted(set(user_ids))
    if session.get_bind().dialect.name == "sqlite":
        await session.execute(
            update(UserRow).where(UserRow.id.in_(ids)).values(follower_count=UserRow.follower_count)
        )
    else:
        await session.execute(
            select(UserRow.id).where(UserRow.id.in_(ids)).order_by(UserRow.id).with_for_update()
        )


async def pending_follower_ids(session: AsyncSession, followee_id: int) -> list[int]:
    """Who asked to follow `followee_id`: the users approving them will touch."""
    rows = await session.scalars(
        select(FollowRow.follower_id).where(
            FollowRow.followee_id == followee_id, FollowRow.approved.is_(False)
        )
    )
    return list(rows)


async def approve_pending_follows(session: AsyncSession, followee_id: int) -> list[int]:
    """Approve every pending request to `followee_id` (it went public); whose.

    Call inside a transaction that holds the locks of the followee and of
    `pending_follower_ids` (see `lock_users`).
    """
    pairs = await _approve(session, FollowRow.followee_id == followee_id)
    return [follower for follower, _ in pairs]


async def _approve(session: AsyncSession, where: ColumnElement[bool]) -> list[tuple[int, int]]:
    """Approve matching pending requests, counts included; the (follower, followee) pairs."""
    result = await session.execute(
        update(FollowRow)
        .where(where, FollowRow.approved.is_(False))
        .values(approved=True)
        .returning(FollowRow.follower_id, FollowRow.followee_id)
    )
    pairs = [(row[0], row[1]) for row in result.all()]
    await _count_follows(session, pairs, +1)
    return pairs


async def _delete_follows(
    session: AsyncSession, where: ColumnElement[bool]
) -> list[tuple[int, int, bool]]:
    """Delete follow rows (approved or pending); uncount the approved ones.

    Returns the deleted (follower_id, followee_id, approved) rows."""
    result = await session.execute(
        delete(FollowRow)
        .where(where)
        .returning(FollowRow.follower_id, FollowRow.followee_id, FollowRow.approved)
    )
    rows = [(r[0], r[1], bool(r[2])) for r in result.all()]
    await _count_follows(session, [(r[0], r[1]) for r in rows if r[2]], -1)
    return rows


async def _count_follows(session: AsyncSession, pairs: list[tuple[int, int]], step: int) -> None:
    """Add `step` to following_count of each follower and follower_count of each followee.

    One UPDATE per (column, delta) group, not per user. Decrements stop at zero: a
    count never goes negative whatever happened before.
    """
    for column, index in ((UserRow.following_count, 0), (UserRow.follower_count, 1)):
        per_user: dict[int, int] = {}
        for pair in pairs:
            per_user[pair[index]] = per_user.get(pair[index], 0) + step
        by_delta: dict[int, list[int]] = {}
        for user_id, delta in per_user.items():
            by_delta.setdefault(delta, []).append(user_id)
        for delta, user_ids in sorted(by_delta.items()):
            new_value = column + delta if delta > 0 else _floor_zero(column, delta)
            await session.execute(
                update(UserRow).where(UserRow.id.in_(user_ids)).values({column.key: new_value})
            )


def _floor_zero(column: InstrumentedAttribute[int], delta: int) -> ColumnElement[int]:
    return case((column + delta > 0, column + delta), else_=0)


async def _insert_ignore(session: AsyncSession, table: type[Any], values: dict[str, Any]) -> bool:
    """INSERT … ON CONFLICT DO NOTHING; True when the row was really inserted."""
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(table).values(**values).on_conflict_do_nothing()
    first_key = next(iter(table.__table__.primary_key.columns))
    result = await session.execute(stmt.returning(first_key))
    return result.first() is not None


async def _are_friends(session: AsyncSession, user_id: int, other_id: int) -> bool:
    found = await session.scalar(
        select(FriendshipRow.user_id).where(
            FriendshipRow.user_id == user_id, FriendshipRow.friend_id == other_id
        )
    )
    return found is not None


async def _befriend(session: AsyncSession, user_id: int, other_id: int) -> None:
    now = utcnow()
    for a, b in ((user_id, other_id), (other_id, user_id)):
        await _insert_ignore(
            session, FriendshipRow, {"user_id": a, "friend_id": b, "created_at": now}
        )
    # A crossed request the other way is now moot.
    await session.execute(
        delete(FriendRequestRow).where(
            or_(
                and_(
                    FriendRequestRow.sender_id == user_id,
                    FriendRequestRow.recipient_id == other_id,
                ),
                and_(
                    FriendRequestRow.sender_id == other_id,
                    FriendRequestRow.recipient_id == user_id,
                ),
            )
        )
    )


def _pair(table: type[FriendshipRow] | type[CloseFriendRow], a: int, b: int) -> ColumnElement[bool]:
    """Rows (a, b) or (b, a) of a user_id/friend_id table."""
    return or_(
        and_(table.user_id == a, table.friend_id == b),
        and_(table.user_id == b, table.friend_id == a),
    )


def _pair_blocks(a: int, b: int) -> ColumnElement[bool]:
    """Block rows between a and b, whoever blocks whom."""
    return or_(
        and_(BlockRow.blocker_id == a, BlockRow.blocked_id == b),
        and_(BlockRow.blocker_id == b, BlockRow.blocked_id == a),
    )


def _followed_by(user_id: int) -> Select[int]:
    return select(FollowRow.followee_id).where(
        FollowRow.follower_id == user_id, FollowRow.approved.is_(True)
    )


def _friends_of(user_id: int) -> Select[int]:
    return select(FriendshipRow.friend_id).where(FriendshipRow.user_id == user_id)


def _blocked_either_way(user_id: int) -> Any:
    return union_all(
        select(BlockRow.blocked_id).where(BlockRow.blocker_id == user_id),
        select(BlockRow.blocker_id).where(BlockRow.blocked_id == user_id),
    )


@functools.cache
def _relationship_statement() -> Any:
    """(kind, target) for every relation row between the viewer and the targets, bound
    as :viewer and :targets (a list). Built once: building this nine-way union per
    batch cost more CPU than running it (every post read by id checks one)."""
    viewer_id = bindparam("viewer", type_=BigInteger())
    targets = bindparam("targets", expanding=True, type_=BigInteger())

    def kind(name: str) -> ColumnElement[str]:
        return literal(name, String).label("kind")

    follows_out = FollowRow.follower_id == viewer_id
    follows_in = FollowRow.followee_id == viewer_id
    return union_all(
        select(
            case((FollowRow.approved.is_(True), "following"), else_="requested").label("kind"),
            FollowRow.followee_id.label("target"),
        ).where(follows_out, FollowRow.followee_id.in_(targets)),
        select(kind("followed_by"), FollowRow.follower_id).where(
            follows_in, FollowRow.follower_id.in_(targets), FollowRow.approved.is_(True)
        ),
        select(kind("blocking"), BlockRow.blocked_id).where(
            BlockRow.blocker_id == viewer_id, BlockRow.blocked_id.in_(targets)
        ),
        select(kind("blocked_by"), BlockRow.blocker_id).where(
            BlockRow.blocked_id == viewer_id, BlockRow.blocker_id.in_(targets)
        ),
        select(kind("friends"), FriendshipRow.friend_id).where(
            FriendshipRow.user_id == viewer_id, FriendshipRow.friend_id.in_(targets)
        ),
        select(kind("friend_request_sent"), FriendRequestRow.recipient_id).where(
            FriendRequestRow.sender_id == viewer_id, FriendRequestRow.recipient_id.in_(targets)
        ),
        select(kind("friend_request_received"), FriendRequestRow.sender_id).where(
            FriendRequestRow.recipient_id == viewer_id, FriendRequestRow.sender_id.in_(targets)
        ),
        select(kind("is_close_friend"), CloseFriendRow.friend_id).where(
            CloseFriendRow.user_id == viewer_id, CloseFriendRow.friend_id.in_(targets)
        ),
        select(kind("close_friend_of"), CloseFriendRow.user_id).where(
            CloseFriendRow.friend_id == viewer_id, CloseFriendRow.user_id.in_(targets)
        ),
    )


# ── events ─────────────────────────────────────────────────────────────


async def _emit(
    session: AsyncSession,
    event_type: str,
    platform: str | None,
    actor_id: int,
    subject_id: int,
    data: dict[str, Any],
) -> None:
    """Stage a `user.*` event about `subject_id` done by `actor_id` in this transaction."""
    if platform is None:
        platform = await session.scalar(select(UserRow.platform).where(UserRow.id == actor_id))
        assert platform is not None, f"user {actor_id} does not exist"
    await emit(session, NewEvent(event_type, platform, actor_id, "user", subject_id, data))


async def _emit_follow_answer(
    session: AsyncSession, platform: str | None, followee_id: int, follower_id: int, accepted: bool
) -> None:
    await _emit(
        session,
        "user.follow_request_answered",
        platform,
        followee_id,
        follower_id,
        {"follower_id": follower_id, "followee_id": followee_id, "accepted": accepted},
    )


async def _emit_friend_answer(
    session: AsyncSession, platform: str | None, recipient_id: int, sender_id: int, accepted: bool
) -> None:
    await _emit(
        session,
        "user.friend_request_answered",
        platform,
        recipient_id,
        sender_id,
        {"sender_id": sender_id, "recipient_id": recipient_id, "accepted": accepted},
    )


def _rowcount(result: Any) -> int:
    return int(getattr(result, "rowcount", 0) or 0)
