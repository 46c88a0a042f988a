"""SQL for comments on posts and takes (polymorphic: `subject_type`, `subject_id`).

What differs by subject is one mapping, `SUBJECT_TABLES`: the table whose
`comment_count` a comment moves. Everything else (threads, likes, pages) is
the same for every subject. Counters move in the transaction of the comment
rows, by the rows really inserted or deleted (a deleted comment takes its
replies with it, all counted).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

from sqlalchemy import bindparam, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from datasources.events.model import NewEvent
from datasources.events.outbox import emit
from datasources.posts.records import (
    COMMENT_COLUMNS,
    USER_COLUMNS,
    After,
    CommentRecord,
    Gone,
    Slice,
    Subject,
    comment_record,
)
from datasources.posts.sqlutil import (
    among,
    bump,
    cursor_params,
    insert_ignore,
    past_cursor,
    table_of,
    using,
    windowed,
)
from datasources.posts.tables import CommentLikeRow, CommentRow, PostRow
from datasources.posts.visibility import VIEWER, blocked_either_way
from datasources.sql import Database, utcnow
from datasources.users.store import UserRecord
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
        stmt = _by_ids_statement(self.db.engine.dialect.name)
        async with self.db.session() as session:
            rows = await session.execute(stmt, {"platform": platform, "ids": list(ids)})
            return {row[0]: CommentRecord(*row) for row in rows}

    async def liked(self, user_id: int, comment_ids: Sequence[int]) -> set[int]:
        stmt = _liked_statement(self.db.engine.dialect.name)
        async with self.db.session() as session:
            rows = await session.execute(stmt, {"viewer": user_id, "ids": list(comment_ids)})
            return {row[0] for row in rows}

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
        count, stmt = _thread_statements(
            self.db.engine.dialect.name, kind == REPLIES, viewer_id is None, after is not None
        )
        params: dict[str, Any] = {
            "platform": platform,
            "viewer": viewer_id,
            "kind": kind,
            "ids": list(ids),
            "rows": limit + 1,
        }
        if after is not None:
            params.update(cursor_params(after.at, after.id))
        pages = {pk: Slice[CommentRecord]() for pk in ids}
        async with using(self.db, session) as reading:
            totals = None
            if count is not None:
                totals = {row[0]: int(row[1]) for row in await reading.execute(count, params)}
            for row in await reading.execute(stmt, params):
                comment = CommentRecord(*row[: _AUTHOR.start])
                page = pages[row[_AUTHOR.stop]]
                page.total = row[_AUTHOR.stop + 1]
                page.take(comment, comment.created_at, limit, UserRecord(*row[_AUTHOR]))
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


_comments = table_of(CommentRow)
_users = table_of(UserRow)
_AUTHOR = slice(len(COMMENT_COLUMNS), len(COMMENT_COLUMNS) + len(USER_COLUMNS))
"""Where the author's columns sit in a thread row; the thread key and total follow."""


@functools.cache
def _by_ids_statement(dialect: str) -> Any:
    c = _comments.c
    return select(*COMMENT_COLUMNS).where(
        c.platform == bindparam("platform"), among(c.id, "ids", dialect)
    )


@functools.cache
def _liked_statement(dialect: str) -> Any:
    likes = table_of(CommentLikeRow).c
    return select(likes.comment_id).where(
        likes.user_id == VIEWER, among(likes.comment_id, "ids", dialect)
    )


@functools.cache
def _thread_statements(
    dialect: str, replies: bool, public: bool, after: bool
) -> tuple[Any | None, Any]:
    """The statements of `CommentStore.threads` for one shape, built once and run
    with parameters (:platform, :viewer, :kind, :ids, :rows and the cursor's): the
    per-thread totals (only after a cursor, when the window no longer counts them
    all) and the windowed pages with their authors."""
    c = _comments.c
    if replies:
        part = c.parent_id
        where: list[Any] = [among(c.parent_id, "ids", dialect)]
    else:
        part = c.subject_id
        where = [
            c.subject_type == bindparam("kind"),
            among(c.subject_id, "ids", dialect),
            c.parent_id.is_(None),
        ]
    where.append(c.platform == bindparam("platform"))
    if not public:
        where.append(c.author_id.not_in(blocked_either_way(VIEWER)))
    count = None
    if after:
        count = select(part, func.count()).where(*where).group_by(part)
        where.append(past_cursor(c.created_at, c.id, newest_first=False))
    ranked = windowed(c.id, part, [c.created_at, c.id], where)
    stmt = (
        select(*COMMENT_COLUMNS, *USER_COLUMNS, ranked.c.part, ranked.c.total)
        .select_from(
            _comments.join(ranked, ranked.c.id == c.id).join(_users, _users.c.id == c.author_id)
        )
        .where(ranked.c.rn <= bindparam("rows"))
        .order_by(ranked.c.part, ranked.c.rn)
    )
    return count, stmt


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
