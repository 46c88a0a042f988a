"""SQL for posts: reads (batched, visibility filtered in the query) and transactional writes.

Every write runs in one transaction with its outbox events (`emit`), and moves
the denormalized counters only by the rows an INSERT or DELETE really touched
(read back with RETURNING), so they stay exact under any concurrency: fifty
concurrent likes give 50, a like/unlike race never goes below zero. Each write
transaction starts with a write, so SQLite takes its write lock first and never
has to upgrade a read lock (which fails instead of waiting).

Business rules (who may do what, input limits) live in resolvers/posts; the
visibility condition of list queries is visibility.py, the SQL form of
resolvers/posts/policy.can_see.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Float, case, cast, delete, func, insert, literal, select, union_all, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from datasources.events.model import NewEvent
from datasources.events.outbox import emit
from datasources.media.store import MediaRecord
from datasources.media.store import to_record as media_record
from datasources.media.tables import MediaRow
from datasources.posts.comments import CommentStore, delete_subject_comments
from datasources.posts.records import (
    After,
    Extras,
    Gone,
    NewLocation,
    NewPost,
    PageExtras,
    PostRecord,
    Slice,
    post_record,
)
from datasources.posts.sqlutil import (
    at_literal,
    bump,
    dialect_name,
    insert_ignore,
    older_than,
    using,
    windowed,
)
from datasources.posts.tables import (
    LocationRow,
    PostHashtagRow,
    PostLikeRow,
    PostMediaRow,
    PostMentionRow,
    PostRow,
    PostSaveRow,
)
from datasources.posts.visibility import blocked_either_way, followed_by, friends_of, visible_to
from datasources.sql import Database, utcnow
from datasources.users.store import UserRecord
from datasources.users.store import to_record as user_record
from datasources.users.tables import UserRow

EXPLORE_WINDOW_HOURS = 24 * 30
"""Explore ranks posts of the last 30 days: older ones score near zero anyway."""
COUNT_CAP = 1000
"""totalCount of the feed and explore counts at most this many posts."""


class PostStore:
    def __init__(self, db: Database) -> None:
        self.db = db
        self.comments = CommentStore(db)

    # ── reads by id ─────────────────────────────────────────────────────

    async def by_ids(
        self, platform: str, ids: Sequence[int]
    ) -> dict[int, tuple[PostRecord, UserRecord]]:
        """Posts with their authors: whoever reads a post checks its author next (the
        visibility policy), so both come in one statement."""
        stmt = (
            select(PostRow, LocationRow, UserRow)
            .join(UserRow, UserRow.id == PostRow.author_id)
            .outerjoin(LocationRow, LocationRow.id == PostRow.location_id)
            .where(PostRow.platform == platform, PostRow.id.in_(ids))
        )
        async with self.db.session() as session:
            rows = (await session.execute(stmt)).all()
        return {row[0].id: (post_record(row[0], row[1]), user_record(row[2])) for row in rows}

    async def locations(self, platform: str, ids: Sequence[int]) -> dict[int, LocationRow]:
        async with self.db.session() as session:
            rows = await session.scalars(
                select(LocationRow).where(LocationRow.platform == platform, LocationRow.id.in_(ids))
            )
            return {row.id: row for row in rows}

    async def media(
        self, post_ids: Sequence[int], session: AsyncSession | None = None
    ) -> dict[int, list[MediaRecord]]:
        """Each post's media in order, whole rows in one statement."""
        stmt = (
            select(PostMediaRow.post_id, MediaRow)
            .join(MediaRow, MediaRow.id == PostMediaRow.media_id)
            .where(PostMediaRow.post_id.in_(post_ids))
            .order_by(PostMediaRow.post_id, PostMediaRow.position)
        )
        found: dict[int, list[MediaRecord]] = {}
        async with using(self.db, session) as reading:
            for post_id, row in (await reading.execute(stmt)).all():
                found.setdefault(post_id, []).append(media_record(row))
        return found

    async def mentions(self, post_ids: Sequence[int]) -> dict[int, list[int]]:
        stmt = (
            select(PostMentionRow.post_id, PostMentionRow.user_id)
            .where(PostMentionRow.post_id.in_(post_ids))
            .order_by(PostMentionRow.post_id, PostMentionRow.position)
        )
        found: dict[int, list[int]] = {}
        async with self.db.session() as session:
            for post_id, user_id in (await session.execute(stmt)).all():
                found.setdefault(post_id, []).append(user_id)
        return found

    async def marks(
        self, user_id: int, post_ids: Sequence[int], session: AsyncSession | None = None
    ) -> dict[int, frozenset[str]]:
        """Which of the posts `user_id` liked and saved: {post id: {"liked", "saved"}},
        one statement for both (a feed asks for both)."""
        stmt = union_all(
            select(PostLikeRow.post_id, literal("liked")).where(
                PostLikeRow.user_id == user_id, PostLikeRow.post_id.in_(post_ids)
            ),
            select(PostSaveRow.post_id, literal("saved")).where(
                PostSaveRow.user_id == user_id, PostSaveRow.post_id.in_(post_ids)
            ),
        )
        found: dict[int, set[str]] = {}
        async with using(self.db, session) as reading:
            for post_id, kind in (await reading.execute(stmt)).all():
                found.setdefault(post_id, set()).add(kind)
        return {post_id: frozenset(kinds) for post_id, kinds in found.items()}

    async def user_ids_by_username(self, platform: str, usernames: Sequence[str]) -> dict[str, int]:
        """Case-folded username → user id, for the names that exist on `platform`."""
        keys = sorted({name.casefold() for name in usernames})
        if not keys:
            return {}
        stmt = select(UserRow.username_key, UserRow.id).where(
            UserRow.platform == platform, UserRow.username_key.in_(keys)
        )
        async with self.db.session() as session:
            return {row[0]: row[1] for row in (await session.execute(stmt)).all()}

    # ── lists ───────────────────────────────────────────────────────────

    async def feed(
        self,
        platform: str,
        viewer_id: int,
        after: After | None,
        limit: int,
        extras: Extras | None = None,
    ) -> Slice[PostRecord]:
        """Posts of accounts the viewer follows, of friends and the viewer's own, newest
        first; visibility and blocks filtered in the query, authors joined along."""
        sources = PostRow.author_id.in_(
            followed_by(viewer_id).union(friends_of(viewer_id), select(literal(viewer_id)))
        )
        return await self._posts_page(platform, viewer_id, [sources], after, limit, extras)

    async def user_posts(
        self,
        platform: str,
        viewer_id: int | None,
        author_ids: Sequence[int],
        after: After | None,
        limit: int,
    ) -> dict[int, Slice[PostRecord]]:
        """The posts each author has that the viewer may see, newest first: one statement
        for every author of the batch (a window per author), plus one count after a cursor."""
        where: list[Any] = [
            PostRow.platform == platform,
            PostRow.author_id.in_(author_ids),
            visible_to(viewer_id),
        ]
        totals = None
        if after is not None:
            totals = await self._count_by(PostRow.author_id, where)
            where.append(older_than(PostRow.created_at, PostRow.id, after.at, after.id))
        ranked = windowed(
            PostRow.id,
            PostRow.author_id,
            [PostRow.created_at.desc(), PostRow.id.desc()],
            where,
            joins=[(UserRow, UserRow.id == PostRow.author_id)],
        )
        stmt = (
            select(PostRow, LocationRow, ranked.c.part, ranked.c.total)
            .join(ranked, ranked.c.id == PostRow.id)
            .outerjoin(LocationRow, LocationRow.id == PostRow.location_id)
            .where(ranked.c.rn <= limit + 1)
            .order_by(ranked.c.part, ranked.c.rn)
        )
        async with self.db.session() as session:
            rows = (await session.execute(stmt)).all()
        pages = {author_id: Slice[PostRecord]() for author_id in author_ids}
        for post, location, author_id, total in rows:
            pages[author_id].total = total
            pages[author_id].take(post_record(post, location), post.created_at, limit)
        if totals is not None:
            for author_id, page in pages.items():
                page.total = totals.get(author_id, 0)
        return pages

    async def saved_posts(
        self,
        platform: str,
        user_id: int,
        after: After | None,
        limit: int,
        extras: Extras | None = None,
    ) -> Slice[PostRecord]:
        """What `user_id` saved and may still see, most recently saved first."""
        where = [
            PostSaveRow.user_id == user_id,
            PostRow.platform == platform,
            visible_to(user_id),
        ]
        count = (
            select(func.count())
            .select_from(PostSaveRow)
            .join(PostRow, PostRow.id == PostSaveRow.post_id)
            .join(UserRow, UserRow.id == PostRow.author_id)
            .where(*where)
        )
        if after is not None:
            where.append(older_than(PostSaveRow.created_at, PostRow.id, after.at, after.id))
        stmt = (
            select(PostRow, LocationRow, UserRow, PostSaveRow.created_at)
            .join(PostSaveRow, PostSaveRow.post_id == PostRow.id)
            .join(UserRow, UserRow.id == PostRow.author_id)
            .outerjoin(LocationRow, LocationRow.id == PostRow.location_id)
            .where(*where)
            .order_by(PostSaveRow.created_at.desc(), PostRow.id.desc())
            .limit(limit + 1)
        )
        async with self.db.session() as session:
            total = int(await session.scalar(count) or 0)
            page = await _slice(session, stmt, limit)
            await self._read_extras(session, platform, page, extras)
        page.total = total
        return page

    async def explore(
        self,
        platform: str,
        viewer_id: int | None,
        now: datetime,
        after: tuple[float, int] | None,
        limit: int,
    ) -> tuple[list[tuple[float, PostRecord, UserRecord]], int]:
        """Public posts the viewer may see, by the score of resolvers/posts/explore.py.

        score = (likes + 2·comments + 3·shares + 1) / (age_hours + 2) ^ 1.8, with
        `now` fixed by the first page (carried in the cursor) so pages agree.
        """
        async with self.db.session() as session:
            score = _score(dialect_name(session), now)
            where = [
                PostRow.platform == platform,
                PostRow.visibility == "PUBLIC",
                PostRow.created_at >= at_literal(now - timedelta(hours=EXPLORE_WINDOW_HOURS)),
                PostRow.created_at <= at_literal(now),
                visible_to(viewer_id),
            ]
            total = await _capped_count(session, where)
            if after is not None:
                where.append((score < after[0]) | ((score == after[0]) & (PostRow.id < after[1])))
            stmt = (
                select(score.label("score"), PostRow, LocationRow, UserRow)
                .join(UserRow, UserRow.id == PostRow.author_id)
                .outerjoin(LocationRow, LocationRow.id == PostRow.location_id)
                .where(*where)
                .order_by(score.desc(), PostRow.id.desc())
                .limit(limit + 1)
            )
            rows = (await session.execute(stmt)).all()
        ranked = [(float(r[0]), post_record(r[1], r[2]), user_record(r[3])) for r in rows]
        return ranked, total

    async def likers(
        self,
        platform: str,
        viewer_id: int | None,
        post_ids: Sequence[int],
        after: After | None,
        limit: int,
    ) -> dict[int, Slice[UserRecord]]:
        """Who liked each post, newest like first; users blocked either way with the
        viewer left out. One statement for the whole batch."""
        where: list[Any] = [PostLikeRow.post_id.in_(post_ids), UserRow.platform == platform]
        if viewer_id is not None:
            where.append(PostLikeRow.user_id.not_in(blocked_either_way(viewer_id)))
        totals = None
        if after is not None:
            totals = await self._count_by(
                PostLikeRow.post_id, where, joins=[(UserRow, UserRow.id == PostLikeRow.user_id)]
            )
            where.append(
                older_than(PostLikeRow.created_at, PostLikeRow.user_id, after.at, after.id)
            )
        ranked = windowed(
            PostLikeRow.user_id,
            PostLikeRow.post_id,
            [PostLikeRow.created_at.desc(), PostLikeRow.user_id.desc()],
            where,
            joins=[(UserRow, UserRow.id == PostLikeRow.user_id)],
        )
        stmt = (
            select(UserRow, PostLikeRow.created_at, ranked.c.part, ranked.c.total)
            .join(ranked, ranked.c.id == UserRow.id)
            .join(
                PostLikeRow,
                (PostLikeRow.user_id == UserRow.id) & (PostLikeRow.post_id == ranked.c.part),
            )
            .where(ranked.c.rn <= limit + 1)
            .order_by(ranked.c.part, ranked.c.rn)
        )
        async with self.db.session() as session:
            rows = (await session.execute(stmt)).all()
        pages = {post_id: Slice[UserRecord]() for post_id in post_ids}
        for user, at, post_id, total in rows:
            pages[post_id].total = total
            pages[post_id].take(user_record(user), at, limit)
        if totals is not None:
            for post_id, page in pages.items():
                page.total = totals.get(post_id, 0)
        return pages

    # ── writes ──────────────────────────────────────────────────────────

    async def place(self, platform: str, location: NewLocation) -> int:
        """The id of the shared location row with this name and coordinates (created
        when new): posts and story location stickers at one place share it."""
        async with self.db.transaction() as session:
            location_id = await _location_id(session, platform, location)
        assert location_id is not None  # a location was given
        return location_id

    async def create(self, new: NewPost, events: Sequence[NewEvent] = ()) -> PostRecord:
        """Insert the post and what hangs off it; for a share, bump the shared post's
        shareCount (Gone when it was deleted meanwhile). Emits post.created,
        post.mentioned per mentioned user, post.shared."""
        try:
            async with self.db.transaction() as session:
                location_id = await _location_id(session, new.platform, new.location)
                shared_author = None
                if new.shared_post_id is not None:
                    shared_author = await _bump_shares(session, new.shared_post_id, +1)
                post_id = await _insert_post(session, new, location_id)
                await _attach(session, post_id, new.media_ids, new.hashtags, new.mention_ids)
                await emit(session, *_created_events(new, post_id, shared_author), *events)
                return await _read(session, post_id)
        except IntegrityError as exc:  # media or shared post deleted meanwhile
            raise Gone() from exc

    async def edit(
        self,
        post: PostRecord,
        caption: str | None,
        hashtags: tuple[str, ...],
        mention_ids: tuple[int, ...],
    ) -> PostRecord:
        """New caption, hashtags and mentions; editedAt now. post.edited, and
        post.mentioned for users not mentioned before."""
        async with self.db.transaction() as session:
            changed = await session.execute(
                update(PostRow)
                .where(PostRow.id == post.id)
                .values(caption=caption, hashtags=json.dumps(list(hashtags)), edited_at=utcnow())
                .returning(PostRow.id)
            )
            if changed.first() is None:
                raise Gone()
            before = set(
                await session.scalars(
                    select(PostMentionRow.user_id).where(PostMentionRow.post_id == post.id)
                )
            )
            await session.execute(delete(PostHashtagRow).where(PostHashtagRow.post_id == post.id))
            await session.execute(delete(PostMentionRow).where(PostMentionRow.post_id == post.id))
            await _attach(session, post.id, (), hashtags, mention_ids)
            newly = [uid for uid in mention_ids if uid not in before]
            await emit(
                session,
                _event(
                    "post.edited",
                    post,
                    post.author_id,
                    caption=caption,
                    hashtags=hashtags,
                    visibility=post.visibility,
                ),
                *_mention_events(post.platform, post.id, post.author_id, caption, newly),
            )
            return await _read(session, post.id)

    async def delete(self, post: PostRecord) -> bool:
        """Delete the post, its comments (and their likes), likes, saves, media links;
        shares of it keep existing with sharedPost null; the post it shared (if a share)
        loses one share. False when it was already gone."""
        async with self.db.transaction() as session:
            deleted = await session.execute(
                delete(PostRow)
                .where(PostRow.id == post.id)
                .returning(PostRow.id, PostRow.shared_post_id)
            )
            row = deleted.first()
            if row is None:
                return False
            await delete_subject_comments(session, "post", post.id)
            if row[1] is not None:
                await bump(session, PostRow, "share_count", row[1], -1)
            await emit(
                session,
                _event(
                    "post.deleted",
                    post,
                    post.author_id,
                    shared_post_id=row[1],
                    hashtags=post.hashtags,
                ),
            )
            return True

    async def like(self, post: PostRecord, user_id: int) -> PostRecord:
        return await self._mark(post, user_id, PostLikeRow, "like_count", "post.liked", True)

    async def unlike(self, post: PostRecord, user_id: int) -> PostRecord:
        return await self._mark(post, user_id, PostLikeRow, "like_count", "post.unliked", False)

    async def save(self, post: PostRecord, user_id: int) -> PostRecord:
        return await self._mark(post, user_id, PostSaveRow, "save_count", "post.saved", True)

    async def unsave(self, post: PostRecord, user_id: int) -> PostRecord:
        return await self._mark(post, user_id, PostSaveRow, "save_count", "post.unsaved", False)

    # ── helpers ─────────────────────────────────────────────────────────

    async def _mark(
        self,
        post: PostRecord,
        user_id: int,
        table: type[PostLikeRow] | type[PostSaveRow],
        counter: str,
        event_type: str,
        on: bool,
    ) -> PostRecord:
        """Like/save (on) or unlike/unsave: idempotent; the counter and the event only
        when a row was really inserted or deleted."""
        try:
            async with self.db.transaction() as session:
                if on:
                    values = {"post_id": post.id, "user_id": user_id, "created_at": utcnow()}
                    touched = await insert_ignore(session, table, values)
                else:
                    result = await session.execute(
                        delete(table)
                        .where(table.post_id == post.id, table.user_id == user_id)
                        .returning(table.post_id)
                    )
                    touched = result.first() is not None
                if not touched:
                    return await _read(session, post.id)
                changed = await _bump_returning_counts(session, post, counter, on)
                await emit(session, _event(event_type, post, user_id))
                return changed
        except IntegrityError as exc:  # the post was deleted meanwhile
            raise Gone() from exc

    async def _posts_page(
        self,
        platform: str,
        viewer_id: int | None,
        where: list[Any],
        after: After | None,
        limit: int,
        extras: Extras | None = None,
    ) -> Slice[PostRecord]:
        conditions = [*where, PostRow.platform == platform, visible_to(viewer_id)]
        async with self.db.session() as session:  # one connection for count and page
            total = await _capped_count(session, conditions)
            if after is not None:
                conditions.append(older_than(PostRow.created_at, PostRow.id, after.at, after.id))
            stmt = (
                select(PostRow, LocationRow, UserRow, PostRow.created_at)
                .join(UserRow, UserRow.id == PostRow.author_id)
                .outerjoin(LocationRow, LocationRow.id == PostRow.location_id)
                .where(*conditions)
                .order_by(PostRow.created_at.desc(), PostRow.id.desc())
                .limit(limit + 1)
            )
            page = await _slice(session, stmt, limit)
            await self._read_extras(session, platform, page, extras)
        page.total = total
        return page

    async def _read_extras(
        self, session: AsyncSession, platform: str, page: Slice[PostRecord], extras: Extras | None
    ) -> None:
        """What hangs off the page's posts, on the page's connection (one checkout for
        the whole page instead of one per kind), into `page.extras`."""
        if extras is None or not page.items:
            return
        ids = [post.id for post in page.items]
        found = PageExtras()
        if extras.media:
            found.media = await self.media(ids, session)
        if extras.marks_of is not None:
            found.marks = await self.marks(extras.marks_of, ids, session)
        if extras.comments is not None:
            limit, after = extras.comments
            found.comments = await self.comments.threads(
                platform, extras.viewer_id, "post", ids, after, limit, session
            )
        page.extras = found

    async def _count_by(
        self, key: Any, where: list[Any], joins: Sequence[Any] = ()
    ) -> dict[int, int]:
        stmt = select(key, func.count())
        if not joins:
            stmt = stmt.join(UserRow, UserRow.id == PostRow.author_id)
        for target, on in joins:
            stmt = stmt.join(target, on)
        stmt = stmt.where(*where).group_by(key)
        async with self.db.session() as session:
            return {row[0]: int(row[1]) for row in (await session.execute(stmt)).all()}


# ── module helpers ──────────────────────────────────────────────────────


async def _capped_count(session: AsyncSession, conditions: list[Any]) -> int:
    """How many posts match, counting at most COUNT_CAP (a feed has no useful total
    beyond that, and counting all of it would cost more than the page)."""
    matching = (
        select(PostRow.id)
        .join(UserRow, UserRow.id == PostRow.author_id)
        .where(*conditions)
        .limit(COUNT_CAP)
        .subquery()
    )
    return int(await session.scalar(select(func.count()).select_from(matching)) or 0)


async def _slice(session: AsyncSession, stmt: Any, limit: int) -> Slice[PostRecord]:
    """Rows (post, location, author, sort time) → a page; authors kept for priming."""
    if limit <= 0:
        return Slice()
    rows = (await session.execute(stmt)).all()
    page = Slice[PostRecord](has_next=len(rows) > limit)
    for post, location, author, at in rows[:limit]:
        page.items.append(post_record(post, location))
        page.times.append(at)
        page.users.append(user_record(author))
    return page


async def _bump_returning_counts(
    session: AsyncSession, post: PostRecord, counter: str, up: bool
) -> PostRecord:
    """One counter ± 1 (never below zero), and every counter as it now is: the fresh
    record without reading the post again."""
    column = getattr(PostRow, counter)
    value = column + 1 if up else case((column > 0, column - 1), else_=0)
    result = await session.execute(
        update(PostRow)
        .where(PostRow.id == post.id)
        .values({counter: value})
        .returning(
            PostRow.like_count, PostRow.comment_count, PostRow.share_count, PostRow.save_count
        )
    )
    row = result.first()
    if row is None:
        raise Gone()
    return replace(
        post, like_count=row[0], comment_count=row[1], share_count=row[2], save_count=row[3]
    )


async def _read(session: AsyncSession, post_id: int) -> PostRecord:
    row = (
        await session.execute(
            select(PostRow, LocationRow)
            .outerjoin(LocationRow, LocationRow.id == PostRow.location_id)
            .where(PostRow.id == post_id)
            .execution_options(populate_existing=True)
        )
    ).first()
    if row is None:
        raise Gone()
    return post_record(row[0], row[1])


async def _location_id(
    session: AsyncSession, platform: str, place: NewLocation | None
) -> int | None:
    """The id of the location with this name and coordinates, created when new."""
    if place is None:
        return None
    values = {
        "platform": platform,
        "name": place.name,
        "latitude": place.latitude,
        "longitude": place.longitude,
    }
    await insert_ignore(session, LocationRow, values)
    return await session.scalar(
        select(LocationRow.id).where(*(getattr(LocationRow, k) == v for k, v in values.items()))
    )


async def _bump_shares(session: AsyncSession, post_id: int, step: int) -> int:
    """shareCount of the shared post ± 1 (row-locked); its author id. Gone when deleted."""
    result = await session.execute(
        update(PostRow)
        .where(PostRow.id == post_id)
        .values(share_count=PostRow.share_count + step)
        .returning(PostRow.author_id)
    )
    author_id = result.scalar()
    if author_id is None:
        raise Gone()
    return int(author_id)


async def _insert_post(session: AsyncSession, new: NewPost, location_id: int | None) -> int:
    result = await session.execute(
        insert(PostRow)
        .values(
            platform=new.platform,
            author_id=new.author_id,
            caption=new.caption,
            hashtags=json.dumps(list(new.hashtags)),
            visibility=new.visibility,
            location_id=location_id,
            shared_post_id=new.shared_post_id,
            like_count=0,
            comment_count=0,
            share_count=0,
            save_count=0,
            created_at=utcnow(),
        )
        .returning(PostRow.id)
    )
    return int(result.scalar_one())


async def _attach(
    session: AsyncSession,
    post_id: int,
    media_ids: Sequence[int],
    hashtags: Sequence[str],
    mention_ids: Sequence[int],
) -> None:
    rows: list[tuple[Any, list[dict[str, Any]]]] = [
        (
            PostMediaRow,
            [{"post_id": post_id, "position": i, "media_id": m} for i, m in enumerate(media_ids)],
        ),
        (PostHashtagRow, [{"post_id": post_id, "tag": tag} for tag in hashtags]),
        (
            PostMentionRow,
            [{"post_id": post_id, "user_id": u, "position": i} for i, u in enumerate(mention_ids)],
        ),
    ]
    for table, values in rows:
        if values:
            await session.execute(insert(table), values)


def _event(type_: str, post: PostRecord, actor_id: int, **data: Any) -> NewEvent:
    """An event about `post`; data always names the post's author (for notifications)."""
    payload = {"author_id": post.author_id, **data}
    if "hashtags" in payload:
        payload["hashtags"] = list(payload["hashtags"])
    return NewEvent(type_, post.platform, actor_id, "post", post.id, payload)


def _created_events(new: NewPost, post_id: int, shared_author: int | None) -> list[NewEvent]:
    created = NewEvent(
        "post.created",
        new.platform,
        new.author_id,
        "post",
        post_id,
        {
            "author_id": new.author_id,
            "caption": new.caption,
            "hashtags": list(new.hashtags),
            "visibility": new.visibility,
            "media_ids": list(new.media_ids),
            "mentioned_user_ids": list(new.mention_ids),
            "shared_post_id": new.shared_post_id,
        },
    )
    events = [created]
    if new.shared_post_id is not None:
        events.append(
            NewEvent(
                "post.shared",
                new.platform,
                new.author_id,
                "post",
                new.shared_post_id,
                {"author_id": shared_author, "share_id": post_id},
            )
        )
    events += _mention_events(new.platform, post_id, new.author_id, new.caption, new.mention_ids)
    return events


def _mention_events(
    platform: str, post_id: int, author_id: int, caption: str | None, user_ids: Sequence[int]
) -> list[NewEvent]:
    return [
        NewEvent(
            "post.mentioned",
            platform,
            author_id,
            "post",
            post_id,
            {"author_id": author_id, "mentioned_user_id": user_id, "caption": caption},
        )
        for user_id in user_ids
        if user_id != author_id
    ]


def _score(dialect: str, now: datetime) -> Any:
    """The explore score as SQL (see resolvers/posts/explore.py for the formula's source)."""
    if dialect == "postgresql":
        age_seconds = func.extract("epoch", at_literal(now) - PostRow.created_at)
        age_hours = cast(age_seconds, Float) / 3600.0
        bounded = func.greatest(age_hours, 0.0)
    else:
        age_hours = (func.julianday(at_literal(now)) - func.julianday(PostRow.created_at)) * 24.0
        bounded = func.max(age_hours, 0.0)
    engagement = cast(
        PostRow.like_count + 2 * PostRow.comment_count + 3 * PostRow.share_count + 1, Float
    )
    return engagement / func.power(bounded + 2.0, 1.8)
