"""SQL for comments on posts and takes (polymorphic: `subject_type`, `subject_id`).

What differs by subject is one mapping, `SUBJECT_TABLES`: the table whose
`comment_count` a comment moves. Everything else (threads, likes, pages) is
the same for every subject. Counters move in the transaction of the comment
rows, by the rows really inserted or deleted (a deleted comment takes its
replies with it, all counted).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from datasources.events.model import NewEvent
from datasources.events.outbox import emit
from datasources.posts.records import (
    After,
    CommentRecord,
    Gone,
    Slice,
    Subject,
    comment_record,
)
from datasources.posts.sqlutil import bump, insert_ignore, newer_than, using, windowed
from datasources.posts.tables import CommentLikeRow, CommentRow, PostRow
from datasources.posts.visibility import blocked_either_way
from datasources.sql import Database, utcnow
from datasources.users.store import to_record as user_record
from datasources.users.tables import UserRow

REPLIES = "reply"
"""Thread kind of a comment's replies; the other kinds are subject types."""


def subject_table(subject_type: str) -> Any:
    """The table of a commentable subject (whose rows have `comment_count`)."""
    if subject_type == "post":
        return PostRow
    if subject_type == "take":
        from datasources.posts.take_tables import TakeRow

        return TakeRow
    raise ValueError(f"not a commentable subject: {subject_type!r}")


class CommentStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def by_ids(self, platform: str, ids: Sequence[int]) -> dict[int, CommentRecord]:
        stmt = select(CommentRow).where(CommentRow.platform == platform, CommentRow.id.in_(ids))
        async with self.db.session() as session:
            return {row.id: comment_record(row) for row in await session.scalars(stmt)}

    async def liked(self, user_id: int, comment_ids: Sequence[int]) -> set[int]:
        stmt = select(CommentLikeRow.comment_id).where(
            CommentLikeRow.user_id == user_id, CommentLikeRow.comment_id.in_(comment_ids)
        )
        async with self.db.session() as session:
            return set(await session.scalars(stmt))

    async def threads(
        self,
        platform: str,
        viewer_id: int | None,
        kind: str,
        ids: Sequence[int],
        after: After | None,
        limit: int,
        session: AsyncSession | None = None,
    ) -> dict[int, Slice[CommentRecord]]:
        """Oldest-first pages of many threads in one statement: the top-level comments
        of subjects (`kind` 'post' or 'take'), or the replies of comments (`kind`
        'reply'). Comments by users blocked either way with the viewer are left out.
        Authors come joined along (`Slice.users`) to prime the user loader."""
        if kind == REPLIES:
            part = CommentRow.parent_id
            where: list[Any] = [CommentRow.parent_id.in_(ids)]
        else:
            part = CommentRow.subject_id
            where = [
                CommentRow.subject_type == kind,
                CommentRow.subject_id.in_(ids),
                CommentRow.parent_id.is_(None),
            ]
        where.append(CommentRow.platform == platform)
        if viewer_id is not None:
            where.append(CommentRow.author_id.not_in(blocked_either_way(viewer_id)))
        totals = None
        if after is not None:
            totals = await self._count_by(part, where, session)
            where.append(newer_than(CommentRow.created_at, CommentRow.id, after.at, after.id))
        ranked = windowed(CommentRow.id, part, [CommentRow.created_at, CommentRow.id], where)
        stmt = (
            select(CommentRow, UserRow, ranked.c.part, ranked.c.total)
            .join(ranked, ranked.c.id == CommentRow.id)
            .join(UserRow, UserRow.id == CommentRow.author_id)
            .where(ranked.c.rn <= limit + 1)
            .order_by(ranked.c.part, ranked.c.rn)
        )
        async with using(self.db, session) as reading:
            rows = (await reading.execute(stmt)).all()
        pages = {pk: Slice[CommentRecord]() for pk in ids}
        for comment, author, key, total in rows:
            pages[key].total = total
            pages[key].take(comment_record(comment), comment.created_at, limit, user_record(author))
        if totals is not None:
            for key, page in pages.items():
                page.total = totals.get(key, 0)
        return pages

    # ── writes ──────────────────────────────────────────────────────────

    async def add(
        self,
        platform: str,
        subject: Subject,
        author_id: int,
        body: str,
        parent: CommentRecord | None,
    ) -> CommentRecord:
        """Insert the comment and bump the subject's commentCount; comment.created.
        Gone when the subject or the parent was deleted meanwhile."""
        try:
            async with self.db.transaction() as session:
                result = await session.execute(
                    insert(CommentRow)
                    .values(
                        platform=platform,
                        subject_type=subject.type,
                        subject_id=subject.id,
                        parent_id=parent.id if parent else None,
                        author_id=author_id,
                        body=body,
                        like_count=0,
                        created_at=utcnow(),
                    )
                    .returning(CommentRow)
                )
                row = result.scalar_one()
                record = comment_record(row)
                if not await bump(
                    session, subject_table(subject.type), "comment_count", subject.id, +1
                ):
                    raise Gone()
                await emit(session, _created_event(record, subject, parent))
                return record
        except IntegrityError as exc:  # the parent comment was deleted meanwhile
            raise Gone() from exc

    async def delete(self, comment: CommentRecord, subject: Subject, actor_id: int) -> int:
        """Delete the comment and its replies (all levels); the subject's commentCount
        drops by the rows deleted. comment.deleted. How many rows went (0: already gone)."""
        async with self.db.transaction() as session:
            thread = (
                select(CommentRow.id)
                .where(CommentRow.id == comment.id)
                .cte("thread", recursive=True)
            )
            thread = thread.union_all(
                select(CommentRow.id).join(thread, CommentRow.parent_id == thread.c.id)
            )
            # Lock the whole thread first (a concurrent reply to a locked comment waits,
            # then fails on its parent): the rows locked are exactly the rows deleted,
            # whether by this DELETE or by its ON DELETE CASCADE.
            await session.execute(
                update(CommentRow)
                .where(CommentRow.id == comment.id)
                .values(like_count=CommentRow.like_count)
            )  # a write first: SQLite's write lock before any read
            ids = list(
                await session.scalars(
                    select(CommentRow.id)
                    .where(CommentRow.id.in_(select(thread.c.id)))
                    .with_for_update()
                )
            )
            await session.execute(delete(CommentRow).where(CommentRow.id.in_(ids)))
            deleted = len(ids)
            if deleted:
                await bump(
                    session, subject_table(subject.type), "comment_count", subject.id, -deleted
                )
                await emit(
                    session,
                    NewEvent(
                        "comment.deleted",
                        comment.platform,
                        actor_id,
                        "comment",
                        comment.id,
                        {
                            **_subject_data(subject),
                            "author_id": comment.author_id,
                            "deleted_count": deleted,
                        },
                    ),
                )
            return deleted

    async def like(self, comment: CommentRecord, user_id: int, subject: Subject) -> CommentRecord:
        return await self._like(comment, user_id, subject, True)

    async def unlike(self, comment: CommentRecord, user_id: int, subject: Subject) -> CommentRecord:
        return await self._like(comment, user_id, subject, False)

    async def _like(
        self, comment: CommentRecord, user_id: int, subject: Subject, on: bool
    ) -> CommentRecord:
        try:
            async with self.db.transaction() as session:
                if on:
                    values = {"comment_id": comment.id, "user_id": user_id, "created_at": utcnow()}
                    touched = await insert_ignore(session, CommentLikeRow, values)
                else:
                    result = await session.execute(
                        delete(CommentLikeRow)
                        .where(
                            CommentLikeRow.comment_id == comment.id,
                            CommentLikeRow.user_id == user_id,
                        )
                        .returning(CommentLikeRow.comment_id)
                    )
                    touched = result.first() is not None
                if touched:
                    if not await bump(
                        session, CommentRow, "like_count", comment.id, 1 if on else -1
                    ):
                        raise Gone()
                    await emit(
                        session,
                        NewEvent(
                            "comment.liked" if on else "comment.unliked",
                            comment.platform,
                            user_id,
                            "comment",
                            comment.id,
                            {**_subject_data(subject), "author_id": comment.author_id},
                        ),
                    )
                row = await session.scalar(
                    select(CommentRow)
                    .where(CommentRow.id == comment.id)
                    .execution_options(populate_existing=True)
                )
                if row is None:
                    raise Gone()
                return comment_record(row)
        except IntegrityError as exc:
            raise Gone() from exc

    async def _count_by(
        self, key: Any, where: list[Any], session: AsyncSession | None = None
    ) -> dict[int, int]:
        stmt = select(key, func.count()).where(*where).group_by(key)
        async with using(self.db, session) as reading:
            return {row[0]: int(row[1]) for row in (await reading.execute(stmt)).all()}


async def delete_subject_comments(session: AsyncSession, subject_type: str, subject_id: int) -> int:
    """Delete every comment on a subject (their likes cascade), inside the caller's
    transaction that deletes the subject. For PostStore.delete and the takes store."""
    result = await session.execute(
        delete(CommentRow)
        .where(CommentRow.subject_type == subject_type, CommentRow.subject_id == subject_id)
        .returning(CommentRow.id)
    )
    return len(result.all())


def _subject_data(subject: Subject) -> dict[str, Any]:
    return {
        "subject_type": subject.type,
        "subject_id": subject.id,
        f"{subject.type}_id": subject.id,
        "subject_author_id": subject.author_id,
    }


def _created_event(
    record: CommentRecord, subject: Subject, parent: CommentRecord | None
) -> NewEvent:
    return NewEvent(
        "comment.created",
        record.platform,
        record.author_id,
        "comment",
        record.id,
        {
            **_subject_data(subject),
            "author_id": record.author_id,
            "parent_id": parent.id if parent else None,
            "parent_author_id": parent.author_id if parent else None,
            "body": record.body,
        },
    )
