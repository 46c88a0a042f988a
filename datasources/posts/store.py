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

import functools
import json
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    BigInteger,
    Float,
    Integer,
    String,
    bindparam,
    case,
    cast,
    delete,
    func,
    insert,
    literal,
    select,
    union_all,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from datasources.events.model import NewEvent
from datasources.events.outbox import emit
from datasources.media.store import MediaRecord
from datasources.media.tables import MediaRow
from datasources.posts.comments import CommentStore, delete_subject_comments
from datasources.posts.records import (
    MEDIA_COLUMNS,
    POST_COLUMNS,
    USER_COLUMNS,
    After,
    Extras,
    Gone,
    LocationRecord,
    NewLocation,
    NewPost,
    PageExtras,
    PostRecord,
    Slice,
    post_of,
    post_record,
)
from datasources.posts.sqlutil import (
    among,
    bump,
    cursor_params,
    insert_ignore,
    past_cursor,
    record_columns,
    table_of,
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
from datasources.posts.visibility import (
    VIEWER,
    blocked_either_way,
    followed_by,
    friends_of,
    visible_to,
)
from datasources.sql import Database, UTCDateTime, utcnow
from datasources.users.store import UserRecord
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
        stmt = _by_ids_statement(self._dialect)
        async with self.db.session() as session:
            rows = await session.execute(stmt, {"platform": platform, "ids": list(ids)})
            return {row[0]: (post_of(row), UserRecord(*row[_AUTHOR])) for row in rows}

    async def locations(self, platform: str, ids: Sequence[int]) -> dict[int, LocationRecord]:
        async with self.db.session() as session:
            stmt = _locations_statement(self._dialect)
            rows = await session.execute(stmt, {"platform": platform, "ids": list(ids)})
            return {row[0]: LocationRecord(*row) for row in rows}

    async def media(
        self, post_ids: Sequence[int], session: AsyncSession | None = None
    ) -> dict[int, list[MediaRecord]]:
        """Each post's media in order, whole rows in one statement."""
        stmt = _media_statement(self._dialect)
        found: dict[int, list[MediaRecord]] = {}
        async with using(self.db, session) as reading:
            for row in await reading.execute(stmt, {"ids": list(post_ids)}):
                found.setdefault(row[0], []).append(MediaRecord(*row[1:]))
        return found

    async def mentions(self, post_ids: Sequence[int]) -> dict[int, list[int]]:
        found: dict[int, list[int]] = {}
        async with self.db.session() as session:
            stmt = _mentions_statement(self._dialect)
            for post_id, user_id in await session.execute(stmt, {"ids": list(post_ids)}):
                found.setdefault(post_id, []).append(user_id)
        return found

    async def marks(
        self, user_id: int, post_ids: Sequence[int], session: AsyncSession | None = None
    ) -> dict[int, frozenset[str]]:
        """Which of the posts `user_id` liked and saved: {post id: {"liked", "saved"}},
        one statement for both (a feed asks for both)."""
        stmt = _marks_statement(self._dialect)
        found: dict[int, set[str]] = {}
        async with using(self.db, session) as reading:
            for post_id, kind in await reading.execute(
                stmt, {"viewer": user_id, "ids": list(post_ids)}
            ):
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
        with_total: bool = True,
    ) -> Slice[PostRecord]:
        """Posts of accounts the viewer follows, of friends and the viewer's own, newest
        first; visibility and blocks filtered in the query, authors joined along. The
        capped count only `with_total` (else the total is 0)."""
        count, stmt = _feed_statements(after is not None)
        params = _page_params(platform, viewer_id, after, limit)
        async with self.db.session() as session:  # one connection for count and page
            total = int(await session.scalar(count, params) or 0) if with_total else 0
            page = await _slice(session, stmt, params, limit)
            await self._read_extras(session, platform, page, extras)
        page.total = total
        return page

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
        count, stmt = _user_posts_statements(self._dialect, viewer_id is None, after is not None)
        params = {**_page_params(platform, viewer_id, after, limit), "ids": list(author_ids)}
        pages = {author_id: Slice[PostRecord]() for author_id in author_ids}
        async with self.db.session() as session:
            totals = await _totals(session, count, params)
            for row in await session.execute(stmt, params):
                page = pages[row[_PART]]
                page.total = row[_PART + 1]
                post = post_of(row)
                page.take(post, post.created_at, limit)
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
        with_total: bool = True,
    ) -> Slice[PostRecord]:
        """What `user_id` saved and may still see, most recently saved first; the count
        only `with_total` (else the total is 0)."""
        count, stmt = _saved_statements(after is not None)
        params = _page_params(platform, user_id, after, limit)
        async with self.db.session() as session:
            total = int(await session.scalar(count, params) or 0) if with_total else 0
            page = await _slice(session, stmt, params, limit)
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
        count, stmt = _explore_statements(self._dialect, viewer_id is None, after is not None)
        params = {
            **_page_params(platform, viewer_id, None, limit),
            "now": now,
            "since": now - timedelta(hours=EXPLORE_WINDOW_HOURS),
        }
        if after is not None:
            params.update(after_score=after[0], after_id=after[1])
        async with self.db.session() as session:
            total = int(await session.scalar(count, params) or 0)
            rows = (await session.execute(stmt, params)).all()
        ranked = [(float(r[-1]), post_of(r), UserRecord(*r[_AUTHOR])) for r in rows]
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
        count, stmt = _likers_statements(self._dialect, viewer_id is None, after is not None)
        params = {**_page_params(platform, viewer_id, after, limit), "ids": list(post_ids)}
        pages = {post_id: Slice[UserRecord]() for post_id in post_ids}
        async with self.db.session() as session:
            totals = await _totals(session, count, params)
            for row in await session.execute(stmt, params):
                at, post_id, total = row[len(USER_COLUMNS) :]
                pages[post_id].total = total
                pages[post_id].take(UserRecord(*row[: len(USER_COLUMNS)]), at, limit)
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
        when a row was really inserted or deleted.

        The counter moves last, after the outbox row: every like of a post updates the
        post's row, whose lock the UPDATE holds until the commit, so concurrent likes
        of one post queue on it for the commit's round trip only."""
        touch, count = _mark_statements(self._dialect, table.__table__, counter, on)
        params: dict[str, Any] = {"post_id": post.id, "user_id": user_id}
        if on:
            params["created_at"] = utcnow()
        try:
            async with self.db.transaction() as session:
                if (await session.execute(touch, params)).first() is None:
                    return await _read(session, post.id)
                await emit(session, _event(event_type, post, user_id))
                row = (await session.execute(count, {"post_id": post.id})).first()
                if row is None:
                    raise Gone()
                return replace(
                    post,
                    like_count=row[0],
                    comment_count=row[1],
                    share_count=row[2],
                    save_count=row[3],
                )
        except IntegrityError as exc:  # the post was deleted meanwhile
            raise Gone() from exc

    @property
    def _dialect(self) -> str:
        return self.db.engine.dialect.name

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


# ── module helpers ──────────────────────────────────────────────────────


# ── read statements, built once per shape ───────────────────────────────
#
# Building a statement (visibility subqueries, joins, cache key) cost more CPU
# than running it, so each shape (with or without a cursor, a viewer, per
# dialect) is built once and run with bound parameters: :platform, :viewer,
# :rows (limit + 1), :ids (a list, see sqlutil.among) and the cursor's. They
# select Core columns, built into records directly (no ORM entity loading).

_posts = table_of(PostRow)
_users = table_of(UserRow)
_locations = table_of(LocationRow)
_saves = table_of(PostSaveRow)
_likes = table_of(PostLikeRow)
_post_media = table_of(PostMediaRow)
_media = table_of(MediaRow)
PLATFORM = bindparam("platform", type_=String())
ROWS = bindparam("rows", type_=Integer())
_NOW = bindparam("now", type_=UTCDateTime())
_AUTHOR = slice(len(POST_COLUMNS), len(POST_COLUMNS) + len(USER_COLUMNS))
"""Where the author's columns sit in a row of POST_COLUMNS + USER_COLUMNS."""
_PART = len(POST_COLUMNS)
"""Where a windowed row's partition key (then its total) sits after the post."""
_WITH_AUTHOR = _posts.join(_users, _users.c.id == _posts.c.author_id)
_PAGE_FROM = _WITH_AUTHOR.outerjoin(_locations, _locations.c.id == _posts.c.location_id)


def _page_params(
    platform: str, viewer_id: int | None, after: After | None, limit: int
) -> dict[str, Any]:
    params: dict[str, Any] = {"platform": platform, "viewer": viewer_id, "rows": limit + 1}
    if after is not None:
        params.update(cursor_params(after.at, after.id))
    return params


@functools.cache
def _by_ids_statement(dialect: str) -> Any:
    return (
        select(*POST_COLUMNS, *USER_COLUMNS)
        .select_from(_PAGE_FROM)
        .where(_posts.c.platform == PLATFORM, among(_posts.c.id, "ids", dialect))
    )


@functools.cache
def _locations_statement(dialect: str) -> Any:
    return select(*record_columns(_locations, LocationRecord)).where(
        _locations.c.platform == PLATFORM, among(_locations.c.id, "ids", dialect)
    )


@functools.cache
def _media_statement(dialect: str) -> Any:
    return (
        select(_post_media.c.post_id, *MEDIA_COLUMNS)
        .select_from(_post_media.join(_media, _media.c.id == _post_media.c.media_id))
        .where(among(_post_media.c.post_id, "ids", dialect))
        .order_by(_post_media.c.post_id, _post_media.c.position)
    )


@functools.cache
def _marks_statement(dialect: str) -> Any:
    return union_all(
        select(_likes.c.post_id, literal("liked")).where(
            _likes.c.user_id == VIEWER, among(_likes.c.post_id, "ids", dialect)
        ),
        select(_saves.c.post_id, literal("saved")).where(
            _saves.c.user_id == VIEWER, among(_saves.c.post_id, "ids", dialect)
        ),
    )


@functools.cache
def _mentions_statement(dialect: str) -> Any:
    mentions = table_of(PostMentionRow)
    return (
        select(mentions.c.post_id, mentions.c.user_id)
        .where(among(mentions.c.post_id, "ids", dialect))
        .order_by(mentions.c.post_id, mentions.c.position)
    )


@functools.cache
def _likers_statements(dialect: str, public: bool, after: bool) -> tuple[Any, Any]:
    """Who liked each post (but users blocked either way with the viewer): per-post
    totals (only after a cursor) and the windowed pages, newest like first."""
    where = [among(_likes.c.post_id, "ids", dialect), _users.c.platform == PLATFORM]
    if not public:
        where.append(_likes.c.user_id.not_in(blocked_either_way(VIEWER)))
    liked_by = _likes.join(_users, _users.c.id == _likes.c.user_id)
    count = None
    if after:
        count = (
            select(_likes.c.post_id, func.count())
            .select_from(liked_by)
            .where(*where)
            .group_by(_likes.c.post_id)
        )
        where.append(past_cursor(_likes.c.created_at, _likes.c.user_id))
    ranked = windowed(
        _likes.c.user_id,
        _likes.c.post_id,
        [_likes.c.created_at.desc(), _likes.c.user_id.desc()],
        where,
        joins=[(_users, _users.c.id == _likes.c.user_id)],
    )
    like = (_likes.c.user_id == _users.c.id) & (_likes.c.post_id == ranked.c.part)
    stmt = (
        select(*USER_COLUMNS, _likes.c.created_at, ranked.c.part, ranked.c.total)
        .select_from(_users.join(ranked, ranked.c.id == _users.c.id).join(_likes, like))
        .where(ranked.c.rn <= ROWS)
        .order_by(ranked.c.part, ranked.c.rn)
    )
    return count, stmt


@functools.cache
def _feed_statements(after: bool) -> tuple[Any, Any]:
    """Posts of the accounts the viewer follows, of friends and the viewer's own."""
    sources = _posts.c.author_id.in_(followed_by(VIEWER).union(friends_of(VIEWER), select(VIEWER)))
    where = [sources, _posts.c.platform == PLATFORM, visible_to(VIEWER)]
    count = _capped_count(_WITH_AUTHOR, where)
    if after:
        where.append(past_cursor(_posts.c.created_at, _posts.c.id))
    stmt = (
        select(*POST_COLUMNS, *USER_COLUMNS, _posts.c.created_at)
        .select_from(_PAGE_FROM)
        .where(*where)
        .order_by(_posts.c.created_at.desc(), _posts.c.id.desc())
        .limit(ROWS)
    )
    return count, stmt


@functools.cache
def _saved_statements(after: bool) -> tuple[Any, Any]:
    """What the viewer saved and may still see, by the time they saved it."""
    where = [_saves.c.user_id == VIEWER, _posts.c.platform == PLATFORM, visible_to(VIEWER)]
    saved = _saves.join(_posts, _posts.c.id == _saves.c.post_id).join(
        _users, _users.c.id == _posts.c.author_id
    )
    count = select(func.count()).select_from(saved).where(*where)
    if after:
        where.append(past_cursor(_saves.c.created_at, _posts.c.id))
    stmt = (
        select(*POST_COLUMNS, *USER_COLUMNS, _saves.c.created_at)
        .select_from(_PAGE_FROM.join(_saves, _saves.c.post_id == _posts.c.id))
        .where(*where)
        .order_by(_saves.c.created_at.desc(), _posts.c.id.desc())
        .limit(ROWS)
    )
    return count, stmt


@functools.cache
def _user_posts_statements(dialect: str, public: bool, after: bool) -> tuple[Any, Any]:
    """Each author's posts the viewer may see: the per-author totals (only after a
    cursor, when the window no longer counts them all) and the windowed pages."""
    where = [
        _posts.c.platform == PLATFORM,
        among(_posts.c.author_id, "ids", dialect),
        visible_to(None if public else VIEWER),
    ]
    count = None
    if after:
        count = (
            select(_posts.c.author_id, func.count())
            .select_from(_WITH_AUTHOR)
            .where(*where)
            .group_by(_posts.c.author_id)
        )
        where.append(past_cursor(_posts.c.created_at, _posts.c.id))
    ranked = windowed(
        _posts.c.id,
        _posts.c.author_id,
        [_posts.c.created_at.desc(), _posts.c.id.desc()],
        where,
        joins=[(_users, _users.c.id == _posts.c.author_id)],
    )
    stmt = (
        select(*POST_COLUMNS, ranked.c.part, ranked.c.total)
        .select_from(
            _posts.join(ranked, ranked.c.id == _posts.c.id).outerjoin(
                _locations, _locations.c.id == _posts.c.location_id
            )
        )
        .where(ranked.c.rn <= ROWS)
        .order_by(ranked.c.part, ranked.c.rn)
    )
    return count, stmt


@functools.cache
def _explore_statements(dialect: str, public: bool, after: bool) -> tuple[Any, Any]:
    """Public posts of the window (:since, :now] the viewer may see, by score."""
    score = _score(dialect)
    where = [
        _posts.c.platform == PLATFORM,
        _posts.c.visibility == "PUBLIC",
        _posts.c.created_at >= bindparam("since", type_=UTCDateTime()),
        _posts.c.created_at <= _NOW,
        visible_to(None if public else VIEWER),
    ]
    count = _capped_count(_WITH_AUTHOR, where)
    if after:
        at = bindparam("after_score", type_=Float())
        pk = bindparam("after_id", type_=BigInteger())
        where.append((score < at) | ((score == at) & (_posts.c.id < pk)))
    stmt = (
        select(*POST_COLUMNS, *USER_COLUMNS, score.label("score"))
        .select_from(_PAGE_FROM)
        .where(*where)
        .order_by(score.desc(), _posts.c.id.desc())
        .limit(ROWS)
    )
    return count, stmt


def _capped_count(source: Any, where: list[Any]) -> Any:
    """How many posts match, counting at most COUNT_CAP (a feed has no useful total
    beyond that, and counting all of it would cost more than the page)."""
    matching = select(_posts.c.id).select_from(source).where(*where).limit(COUNT_CAP).subquery()
    return select(func.count()).select_from(matching)


async def _totals(
    session: AsyncSession, count: Any, params: dict[str, Any]
) -> dict[int, int] | None:
    """Per-key totals of a `count` statement (None: the window counts them)."""
    if count is None:
        return None
    return {row[0]: int(row[1]) for row in await session.execute(count, params)}


async def _slice(
    session: AsyncSession, stmt: Any, params: dict[str, Any], limit: int
) -> Slice[PostRecord]:
    """Rows (post, location, author, sort time) → a page; authors kept for priming."""
    if limit <= 0:
        return Slice()
    rows = (await session.execute(stmt, params)).all()
    page = Slice[PostRecord](has_next=len(rows) > limit)
    for row in rows[:limit]:
        page.items.append(post_of(row))
        page.times.append(row[-1])
        page.users.append(UserRecord(*row[_AUTHOR]))
    return page


@functools.cache
def _mark_statements(dialect: str, marks: Any, counter: str, on: bool) -> tuple[Any, Any]:
    """A like's/save's statements, built once: (touch, count). touch inserts the mark
    (ignoring a repeat) or deletes it, returning a row only when it touched one;
    count moves the counter by one (never below zero) and returns every counter, the
    fresh record without reading the post again. Core tables: no ORM bulk path."""
    if on:
        dialect_insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        touch: Any = dialect_insert(marks).on_conflict_do_nothing()
    else:
        touch = delete(marks).where(
            marks.c.post_id == bindparam("post_id"), marks.c.user_id == bindparam("user_id")
        )
    column = _posts.c[counter]
    value = column + 1 if on else case((column > 0, column - 1), else_=0)
    count = (
        update(_posts)
        .where(_posts.c.id == bindparam("post_id"))
        .values({counter: value})
        .returning(
            _posts.c.like_count, _posts.c.comment_count, _posts.c.share_count, _posts.c.save_count
        )
    )
    return touch.returning(marks.c.post_id), count


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


def _score(dialect: str) -> Any:
    """The explore score as SQL at :now (see resolvers/posts/explore.py for the
    formula's source)."""
    if dialect == "postgresql":
        age_seconds = func.extract("epoch", _NOW - _posts.c.created_at)
        age_hours = cast(age_seconds, Float) / 3600.0
        bounded = func.greatest(age_hours, 0.0)
    else:
        age_hours = (func.julianday(_NOW) - func.julianday(_posts.c.created_at)) * 24.0
        bounded = func.max(age_hours, 0.0)
    p = _posts.c
    engagement = cast(p.like_count + 2 * p.comment_count + 3 * p.share_count + 1, Float)
    return engagement / func.power(bounded + 2.0, 1.8)
