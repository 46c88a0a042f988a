"""SQL of conversations: the member's list, membership reads, read states, timers.

Visibility (members only) is decided in resolvers/messaging/policy.py; these
reads return what exists, scoped to a platform. Counters live on the member
row (`unread_count`), kept on write by the relay, so a list of conversations
reads its unread counts with its members in one batched statement
(datasources/messaging/loaders.py).
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Sequence
from datetime import datetime
from typing import cast

from sqlalchemy import (
    Integer,
    Table,
    Update,
    and_,
    bindparam,
    column,
    exists,
    func,
    select,
    tuple_,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from datasources.messaging.queue import FEW, bound_list, bound_values, connection_of
from datasources.messaging.records import (
    ConversationRecord,
    MemberRecord,
    conversation_record,
    member_record,
)
from datasources.messaging.tables import ConversationMemberRow, ConversationRow, MessageRow
from datasources.posts.sqlutil import among, insert_ignore, older_than, unnested, unnested_params
from datasources.sql import Database
from datasources.users.tables import BlockRow

C = ConversationRow
M = ConversationMemberRow


def direct_key(user_a: int, user_b: int) -> str:
    """The key of the one DIRECT conversation of a pair, whichever way round."""
    low, high = sorted((user_a, user_b))
    return f"{low}:{high}"


class ConversationStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    # ── reads ───────────────────────────────────────────────────────────

    async def by_ids(self, platform: str, ids: Sequence[int]) -> dict[int, ConversationRecord]:
        stmt = select(C).where(C.platform == platform, C.id.in_(list(ids)))
        async with self.db.session() as session:
            rows = (await session.scalars(stmt)).all()
        return {row.id: conversation_record(row) for row in rows}

    async def members_of(self, conversation_ids: Sequence[int]) -> dict[int, list[MemberRecord]]:
        """Every member row of each conversation, one statement, oldest member first."""
        found: dict[int, list[MemberRecord]] = {pk: [] for pk in conversation_ids}
        stmt = (
            select(M)
            .where(M.conversation_id.in_(list(conversation_ids)))
            .order_by(M.conversation_id, M.joined_at, M.user_id)
        )
        async with self.db.session() as session:
            for row in (await session.scalars(stmt)).all():
                found[row.conversation_id].append(member_record(row))
        return found

    async def page_of_member(
        self,
        platform: str,
        user_id: int,
        limit: int,
        after: tuple[datetime, int] | None,
    ) -> tuple[list[ConversationRecord], bool]:
        """The member's conversations, latest activity first, after the cursor."""
        stmt = (
            select(C)
            .join(M, and_(M.conversation_id == C.id, M.user_id == user_id))
            .where(C.platform == platform)
        )
        if after is not None:
            stmt = stmt.where(older_than(C.last_activity_at, C.id, after[0], after[1]))
        stmt = stmt.order_by(C.last_activity_at.desc(), C.id.desc()).limit(limit + 1)
        async with self.db.session() as session:
            rows = (await session.scalars(stmt)).all()
        records = [conversation_record(row) for row in rows]
        return records[:limit], len(records) > limit

    async def count_of_member(self, platform: str, user_id: int) -> int:
        stmt = (
            select(func.count())
            .select_from(M)
            .join(C, C.id == M.conversation_id)
            .where(M.user_id == user_id, C.platform == platform)
        )
        async with self.db.session() as session:
            return int(await session.scalar(stmt) or 0)

    # ── writes ──────────────────────────────────────────────────────────

    async def mark_read(
        self, conversation_id: int, user_id: int, up_to: datetime
    ) -> MemberRecord | None:
        """Move the member's read mark forward to `up_to` (never back) and recount
        what they have not read: others' messages after the mark, leaving out
        senders the member blocks (their messages were never delivered)."""
        async with self.db.transaction() as session:
            member = await session.scalar(
                select(M)
                .where(M.conversation_id == conversation_id, M.user_id == user_id)
                .with_for_update()
            )
            if member is None:
                return None
            if member.read_up_to is None or member.read_up_to < up_to:
                member.read_up_to = up_to
            member.unread_count = await _unread_after(
                session, conversation_id, user_id, member.read_up_to
            )
            await session.flush()
            return member_record(member)

    async def set_disappearing(
        self, conversation_id: int, seconds: int | None
    ) -> ConversationRecord | None:
        async with self.db.transaction() as session:
            await session.execute(
                update(C).where(C.id == conversation_id).values(disappearing_after_seconds=seconds)
            )
            row = await session.get(C, conversation_id)
            return conversation_record(row) if row is not None else None


async def _unread_after(
    session: AsyncSession, conversation_id: int, user_id: int, read_up_to: datetime | None
) -> int:
    blocked = exists().where(
        BlockRow.blocker_id == user_id, BlockRow.blocked_id == MessageRow.sender_id
    )
    stmt = (
        select(func.count())
        .select_from(MessageRow)
        .where(
            MessageRow.conversation_id == conversation_id,
            MessageRow.sender_id != user_id,
            ~blocked,
        )
    )
    if read_up_to is not None:
        stmt = stmt.where(MessageRow.sent_at > read_up_to)
    return int(await session.scalar(stmt) or 0)


# ── inside the relay's send transaction ─────────────────────────────────


async def direct_conversation(
    session: AsyncSession, platform: str, sender_id: int, recipient_id: int, now: datetime
) -> tuple[int, int | None]:
    """The pair's DIRECT conversation (id, disappearing timer), created with both
    members on first use.

    Concurrent first messages of the pair (either way round) meet on the unique
    `(platform, direct_key)`: one inserts, the other finds it.
    """
    key = direct_key(sender_id, recipient_id)
    found = (
        await session.execute(
            select(C.id, C.disappearing_after_seconds).where(
                C.platform == platform, C.direct_key == key
            )
        )
    ).first()
    if found is not None:
        return int(found[0]), found[1]
    await insert_ignore(
        session,
        C,
        {
            "platform": platform,
            "kind": "DIRECT",
            "direct_key": key,
            "created_by": sender_id,
            "created_at": now,
            "last_activity_at": now,
        },
    )
    conversation_id = await session.scalar(
        select(C.id).where(C.platform == platform, C.direct_key == key)
    )
    assert conversation_id is not None
    for user_id in sorted({sender_id, recipient_id}):
        await insert_ignore(
            session,
            M,
            {
                "conversation_id": conversation_id,
                "user_id": user_id,
                "joined_at": now,
                "unread_count": 0,
            },
        )
    return int(conversation_id), await disappearing_seconds(session, int(conversation_id))


async def disappearing_seconds(session: AsyncSession, conversation_id: int) -> int | None:
    return await session.scalar(select(C.disappearing_after_seconds).where(C.id == conversation_id))


_CONVERSATIONS = ConversationRow.__table__.c
_MEMBERS = ConversationMemberRow.__table__.c
# Built once (bind parameters): every message runs these.
MOVE_UP = (
    update(cast(Table, ConversationRow.__table__))
    .where(
        _CONVERSATIONS.id == bindparam("conversation"),
        _CONVERSATIONS.last_activity_at < bindparam("now"),
    )
    .values(last_activity_at=bindparam("now"))
)


@functools.lru_cache(maxsize=FEW)
def _one_more_unread(users: int) -> Update:
    """Every message runs this; one statement per number of users (queue.FEW)."""
    return (
        update(cast(Table, ConversationMemberRow.__table__))
        .where(
            _MEMBERS.conversation_id == bindparam("conversation"),
            _MEMBERS.user_id.in_(bound_list("user", users)),
        )
        .values(unread_count=_MEMBERS.unread_count + 1)
    )


async def record_activity(
    unit: AsyncSession | AsyncConnection,
    conversation_id: int,
    unread_for: Sequence[int],
    now: datetime,
) -> None:
    """A message arrived: the conversation moves up and its recipients have one more
    unread (`unread_for`: the members it was really delivered to)."""
    conn = await connection_of(unit)
    await conn.execute(MOVE_UP, {"conversation": conversation_id, "now": now})
    if unread_for:
        await conn.execute(
            _one_more_unread(len(unread_for)),
            {"conversation": conversation_id, **bound_values("user", unread_for)},
        )


# Many conversations at once (a group commit of sends, datasources/messaging/envelopes.py).
@functools.lru_cache(maxsize=2)
def _move_up_many(dialect: str) -> Update:
    """MOVE_UP for the conversations bound as one list (`among`: an array on PostgreSQL)."""
    return (
        update(cast(Table, ConversationRow.__table__))
        .where(
            among(_CONVERSATIONS.id, "conversations", dialect),
            _CONVERSATIONS.last_activity_at < bindparam("now"),
        )
        .values(last_activity_at=bindparam("now"))
    )


MORE_UNREAD = (
    update(cast(Table, ConversationMemberRow.__table__))
    .where(
        tuple_(_MEMBERS.conversation_id, _MEMBERS.user_id).in_(bindparam("members", expanding=True))
    )
    .values(unread_count=_MEMBERS.unread_count + bindparam("count"))
)
# PostgreSQL's: one SQL text for any number of members (arrays).
_UNREAD_COLUMNS = ("conversation_id", "user_id", "count")
_MORE = unnested("members", _MEMBERS.conversation_id, _MEMBERS.user_id, column("count", Integer()))
MORE_UNREAD_PG = (
    update(cast(Table, ConversationMemberRow.__table__))
    .where(_MEMBERS.conversation_id == _MORE.c.conversation_id, _MEMBERS.user_id == _MORE.c.user_id)
    .values(unread_count=_MEMBERS.unread_count + _MORE.c.count)
)


async def record_activities(
    conn: AsyncConnection, activity: Sequence[tuple[int, Sequence[int]]], now: datetime
) -> None:
    """`record_activity` for several messages, (conversation id, unread_for) each, at
    `now`: one statement for the conversations and, for the members, one on PostgreSQL
    (arrays) or one per number of messages a member got elsewhere, whatever the
    number of conversations (one conversation: `record_activity`'s)."""
    conversations = sorted({conversation_id for conversation_id, _ in activity})
    if len(conversations) == 1:
        unread = Counter(user_id for _, users in activity for user_id in users)
        if set(unread.values()) <= {1}:
            await record_activity(conn, conversations[0], list(unread), now)
            return
    members = Counter((c, user_id) for c, users in activity for user_id in users)
    dialect = conn.dialect.name
    await conn.execute(_move_up_many(dialect), {"conversations": conversations, "now": now})
    if dialect == "postgresql":
        counts = [(*member, count) for member, count in sorted(members.items())]
        await conn.execute(MORE_UNREAD_PG, unnested_params("members", _UNREAD_COLUMNS, counts))
        return
    by_count: dict[int, list[tuple[int, int]]] = {}
    for member, count in sorted(members.items()):
        by_count.setdefault(count, []).append(member)
    for count, group in sorted(by_count.items()):
        await conn.execute(MORE_UNREAD, {"members": group, "count": count})
