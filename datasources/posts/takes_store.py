"""SQL for Takes: takes, likes, views, Behind-the-Takes, templates and trends.

Writes follow datasources/users/graph.py: one transaction per change, the
domain events emitted inside it (outbox), and denormalized counters changed
only by the rows an INSERT/UPDATE/DELETE really touched (read back with
RETURNING), with `x = x + 1` in SQL, so they stay exact under concurrency:
a repeated like inserts nothing and adds nothing; 50 concurrent likes add 50.

Lists are filtered for the viewer in SQL (`visible_takes`, the SQL form of
`resolvers.posts.take_policy.can_see_take`) so a page of 20 holds 20 visible
takes. Business rules (who may do what, limits) live in resolvers/posts.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    and_,
    case,
    delete,
    func,
    literal,
    not_,
    or_,
    select,
    tuple_,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from datasources.events.model import NewEvent
from datasources.events.outbox import emit
from datasources.posts.comments import delete_subject_comments
from datasources.posts.take_tables import (
    BehindTheTakeRow,
    BehindTheTakeStepRow,
    TakeLikeRow,
    TakeRow,
    TakeTemplateRow,
    TakeTemplateSlotRow,
    TakeTrendRow,
    TakeViewRow,
)
from datasources.posts.visibility import blocked_either_way, followed_by, friends_of
from datasources.sql import Database, utcnow
from datasources.users.tables import UserRow

VIEW_WINDOW = timedelta(hours=1)
"""A signed-in viewer's views of one take count at most once per this window."""


# ── records ──────────────────────────────────────────────────────────────


@dataclass(frozen=True)
class TakeRecord:
    id: int
    platform: str
    author_id: int
    video_media_id: int
    caption: str | None
    hashtags: tuple[str, ...]
    sound_name: str | None
    duration_ms: int
    view_count: int
    like_count: int
    comment_count: int
    share_count: int
    template_id: int | None
    trend_id: int | None
    trend_joined_at: datetime | None
    created_at: datetime


@dataclass(frozen=True)
class SlotRecord:
    position: int
    duration_ms: int
    hint: str | None


@dataclass(frozen=True)
class TemplateRecord:
    id: int
    platform: str
    creator_id: int
    name: str
    description: str | None
    source_take_id: int | None
    slots: tuple[SlotRecord, ...]
    total_duration_ms: int
    use_count: int
    created_at: datetime


@dataclass(frozen=True)
class TrendRecord:
    id: int
    platform: str
    name: str
    hashtag: str
    originator_take_id: int
    originator_author_id: int
    participant_count: int
    created_at: datetime


@dataclass(frozen=True)
class StepRecord:
    position: int
    title: str
    body: str | None
    media_id: int | None


@dataclass(frozen=True)
class BehindRecord:
    id: int
    platform: str
    take_id: int
    steps: tuple[StepRecord, ...]
    tools: tuple[str, ...]
    created_at: datetime


@dataclass(frozen=True)
class FeedCandidate:
    """What the takes feed ranks a take by (the whole row is loaded for the page only)."""

    id: int
    created_at: datetime
    like_count: int
    comment_count: int
    share_count: int
    view_count: int
    in_trend: bool


@dataclass(frozen=True)
class TrendActivity:
    """Participants a trend gained in the last window and in the one before."""

    trend: TrendRecord
    recent: int
    previous: int


@dataclass(frozen=True)
class TakePage:
    items: list[TakeRecord]
    has_next: bool


# ── inputs ───────────────────────────────────────────────────────────────


@dataclass(frozen=True)
class NewTake:
    platform: str
    author_id: int
    video_media_id: int
    caption: str | None
    hashtags: tuple[str, ...]
    sound_name: str | None
    duration_ms: int
    template_id: int | None
    trend_id: int | None


@dataclass(frozen=True)
class NewTemplate:
    platform: str
    creator_id: int
    name: str
    description: str | None
    source_take_id: int | None
    slots: tuple[tuple[int, str | None], ...]  # (duration_ms, hint), in order


@dataclass(frozen=True)
class NewTrend:
    platform: str
    name: str
    hashtag: str
    take_id: int
    author_id: int


@dataclass(frozen=True)
class NewStep:
    title: str
    body: str | None
    media_id: int | None


class Gone(Exception):
    """A row the write needs is not there (deleted meanwhile, or never was); `what` says which."""

    def __init__(self, what: str) -> None:
        super().__init__(what)
        self.what = what


class HashtagTaken(Exception):
    """Another trend of the platform already has this hashtag."""


class AlreadyInTrend(Exception):
    """The take already belongs to a trend (a take joins at most one)."""


# ── conversions ──────────────────────────────────────────────────────────


def to_take(row: TakeRow) -> TakeRecord:
    return TakeRecord(
        id=row.id,
        platform=row.platform,
        author_id=row.author_id,
        video_media_id=row.video_media_id,
        caption=row.caption,
        hashtags=tuple(json.loads(row.hashtags or "[]")),
        sound_name=row.sound_name,
        duration_ms=row.duration_ms,
        view_count=row.view_count,
        like_count=row.like_count,
        comment_count=row.comment_count,
        share_count=row.share_count,
        template_id=row.template_id,
        trend_id=row.trend_id,
        trend_joined_at=row.trend_joined_at,
        created_at=row.created_at,
    )


def to_trend(row: TakeTrendRow) -> TrendRecord:
    return TrendRecord(
        id=row.id,
        platform=row.platform,
        name=row.name,
        hashtag=row.hashtag,
        originator_take_id=row.originator_take_id,
        originator_author_id=row.originator_author_id,
        participant_count=row.participant_count,
        created_at=row.created_at,
    )


def to_template(row: TakeTemplateRow, slots: Sequence[TakeTemplateSlotRow]) -> TemplateRecord:
    return TemplateRecord(
        id=row.id,
        platform=row.platform,
        creator_id=row.creator_id,
        name=row.name,
        description=row.description,
        source_take_id=row.source_take_id,
        slots=tuple(
            SlotRecord(s.position, s.duration_ms, s.hint)
            for s in sorted(slots, key=lambda s: s.position)
        ),
        total_duration_ms=row.total_duration_ms,
        use_count=row.use_count,
        created_at=row.created_at,
    )


def visible_takes(viewer_id: int | None, author: Any = UserRow) -> ColumnElement[bool]:
    """Takes (`TakeRow` joined with its `author` users row) the viewer may see.

    A take is seen like a PUBLIC post of its author: anyone, unless the author's
    account is private (then the author, approved followers and friends), and
    never across a block either way. The caller scopes the platform.
    """
    return visible_author(viewer_id, TakeRow.author_id, author)


def visible_author(
    viewer_id: int | None, author_id: Any, author: Any = UserRow
) -> ColumnElement[bool]:
    """Whether the viewer may see takes of the user whose id is `author_id` and whose
    users row (joined by the caller) is `author`."""
    if viewer_id is None:
        return author.is_private.is_(False)
    account = or_(
        author.is_private.is_(False),
        author_id.in_(followed_by(viewer_id)),
        author_id.in_(friends_of(viewer_id)),
    )
    return or_(
        author_id == viewer_id,
        and_(not_(author_id.in_(blocked_either_way(viewer_id))), account),
    )


def _at(value: datetime) -> ColumnElement[datetime]:
    """A bound time with the column's type (UTC handling on both backends)."""
    return literal(value, TakeRow.__table__.c.created_at.type)


def _floor_zero(column: Any, delta: int) -> ColumnElement[int]:
    return case((column + delta > 0, column + delta), else_=0)


def _insert(session: AsyncSession, table: type[Any]) -> Any:
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    return dialect.insert(table)


async def _insert_ignore(session: AsyncSession, table: type[Any], values: dict[str, Any]) -> bool:
    """INSERT … ON CONFLICT DO NOTHING; True when the row was really inserted."""
    first_key = next(iter(table.__table__.primary_key.columns))
    stmt = _insert(session, table).values(**values).on_conflict_do_nothing()
    result = await session.execute(stmt.returning(first_key))
    return result.first() is not None


class TakeStore:
    """Reads and writes of the takes tables; see the module docstring for the rules."""

    def __init__(self, db: Database) -> None:
        self.db = db

    # ── batched reads (DataLoaders) ────────────────────────────────────

    async def takes_by_ids(self, platform: str, ids: Sequence[int]) -> dict[int, TakeRecord]:
        async with self.db.session() as session:
            rows = await session.scalars(
                select(TakeRow).where(TakeRow.platform == platform, TakeRow.id.in_(ids))
            )
            return {row.id: to_take(row) for row in rows}

    async def liked(self, user_id: int, take_ids: Sequence[int]) -> set[int]:
        """Which of `take_ids` `user_id` has liked."""
        async with self.db.session() as session:
            rows = await session.scalars(
                select(TakeLikeRow.take_id).where(
                    TakeLikeRow.user_id == user_id, TakeLikeRow.take_id.in_(take_ids)
                )
            )
            return set(rows)

    async def templates_by_ids(
        self, platform: str, ids: Sequence[int]
    ) -> dict[int, TemplateRecord]:
        """Templates with their slots: two statements per batch."""
        async with self.db.session() as session:
            rows = list(
                await session.scalars(
                    select(TakeTemplateRow).where(
                        TakeTemplateRow.platform == platform, TakeTemplateRow.id.in_(ids)
                    )
                )
            )
            slots = await self._slots(session, [row.id for row in rows])
        return {row.id: to_template(row, slots.get(row.id, [])) for row in rows}

    async def trends_by_ids(self, platform: str, ids: Sequence[int]) -> dict[int, TrendRecord]:
        async with self.db.session() as session:
            rows = await session.scalars(
                select(TakeTrendRow).where(
                    TakeTrendRow.platform == platform, TakeTrendRow.id.in_(ids)
                )
            )
            return {row.id: to_trend(row) for row in rows}

    async def behind_by_take_ids(
        self, platform: str, take_ids: Sequence[int]
    ) -> dict[int, BehindRecord]:
        found = await self._behind(
            platform, BehindTheTakeRow.take_id.in_(take_ids), key=lambda r: r.take_id
        )
        return found

    async def behind_by_ids(self, platform: str, ids: Sequence[int]) -> dict[int, BehindRecord]:
        return await self._behind(platform, BehindTheTakeRow.id.in_(ids), key=lambda r: r.id)

    async def _behind(
        self, platform: str, where: ColumnElement[bool], key: Any
    ) -> dict[int, BehindRecord]:
        async with self.db.session() as session:
            rows = list(
                await session.scalars(
                    select(BehindTheTakeRow).where(BehindTheTakeRow.platform == platform, where)
                )
            )
            steps: dict[int, list[StepRecord]] = {}
            if rows:
                step_rows = await session.scalars(
                    select(BehindTheTakeStepRow)
                    .where(BehindTheTakeStepRow.behind_the_take_id.in_([r.id for r in rows]))
                    .order_by(BehindTheTakeStepRow.position)
                )
                for s in step_rows:
                    steps.setdefault(s.behind_the_take_id, []).append(
                        StepRecord(s.position, s.title, s.body, s.media_id)
                    )
        return {
            key(r): BehindRecord(
                id=r.id,
                platform=r.platform,
                take_id=r.take_id,
                steps=tuple(steps.get(r.id, [])),
                tools=tuple(json.loads(r.tools or "[]")),
                created_at=r.created_at,
            )
            for r in rows
        }

    async def _slots(
        self, session: AsyncSession, template_ids: Sequence[int]
    ) -> dict[int, list[TakeTemplateSlotRow]]:
        if not template_ids:
            return {}
        rows = await session.scalars(
            select(TakeTemplateSlotRow).where(TakeTemplateSlotRow.template_id.in_(template_ids))
        )
        found: dict[int, list[TakeTemplateSlotRow]] = {}
        for row in rows:
            found.setdefault(row.template_id, []).append(row)
        return found

    # ── lists ──────────────────────────────────────────────────────────

    async def author_takes(
        self, platform: str, author_id: int, after: tuple[datetime, int] | None, limit: int
    ) -> tuple[TakePage, int]:
        """One author's takes, newest first, and how many there are (visibility: resolver)."""
        where = [TakeRow.platform == platform, TakeRow.author_id == author_id]
        return await self._page(where, TakeRow.created_at, after, limit, newest_first=True)

    async def template_takes(
        self,
        platform: str,
        template_id: int,
        viewer_id: int | None,
        after: tuple[datetime, int] | None,
        limit: int,
    ) -> tuple[TakePage, int]:
        """Visible takes made from a template, newest first, and how many are visible."""
        where = [
            TakeRow.platform == platform,
            TakeRow.template_id == template_id,
            visible_takes(viewer_id),
        ]
        return await self._page(where, TakeRow.created_at, after, limit, newest_first=True)

    async def trend_participants(
        self,
        platform: str,
        trend_id: int,
        viewer_id: int | None,
        after: tuple[datetime, int] | None,
        limit: int,
    ) -> tuple[TakePage, int]:
        """Visible takes of a trend in the order they joined (the originator first)."""
        where = [
            TakeRow.platform == platform,
            TakeRow.trend_id == trend_id,
            visible_takes(viewer_id),
        ]
        return await self._page(where, TakeRow.trend_joined_at, after, limit, newest_first=False)

    async def _page(
        self,
        where: list[ColumnElement[bool]],
        at: Any,
        after: tuple[datetime, int] | None,
        limit: int,
        newest_first: bool,
    ) -> tuple[TakePage, int]:
        """One keyset page of takes ordered by (`at`, id), and how many match `where`.

        Takes are joined with their author (`UserRow`), which `visible_takes` reads.
        """
        conditions = list(where)
        if after is not None:
            key, bound = tuple_(at, TakeRow.id), tuple_(_at(after[0]), literal(after[1]))
            conditions.append(key < bound if newest_first else key > bound)
        order = (at.desc(), TakeRow.id.desc()) if newest_first else (at, TakeRow.id)
        stmt = (
            select(TakeRow)
            .join(UserRow, UserRow.id == TakeRow.author_id)
            .where(*conditions)
            .order_by(*order)
            .limit(limit + 1)
        )
        count = (
            select(func.count())
            .select_from(TakeRow)
            .join(UserRow, UserRow.id == TakeRow.author_id)
            .where(*where)
        )
        async with self.db.session() as session:
            rows = [to_take(r) for r in await session.scalars(stmt)] if limit > 0 else []
            total = int(await session.scalar(count) or 0)
        return TakePage(rows[:limit], len(rows) > limit), total

    async def feed_candidates(
        self, platform: str, viewer_id: int | None, until: datetime, limit: int
    ) -> list[FeedCandidate]:
        """The newest `limit` takes created up to `until` that the viewer may see, with
        what ranking needs (one statement; see resolvers/posts/takes.py for the score)."""
        stmt = (
            select(
                TakeRow.id,
                TakeRow.created_at,
                TakeRow.like_count,
                TakeRow.comment_count,
                TakeRow.share_count,
                TakeRow.view_count,
                TakeRow.trend_id,
            )
            .join(UserRow, UserRow.id == TakeRow.author_id)
            .where(
                TakeRow.platform == platform,
                TakeRow.created_at <= _at(until),
                visible_takes(viewer_id),
            )
            .order_by(TakeRow.created_at.desc(), TakeRow.id.desc())
            .limit(limit)
        )
        async with self.db.session() as session:
            rows = (await session.execute(stmt)).all()
        return [FeedCandidate(r[0], r[1], r[2], r[3], r[4], r[5], r[6] is not None) for r in rows]

    async def templates_page(
        self,
        platform: str,
        viewer_id: int | None,
        after: tuple[int, int] | None,
        limit: int,
    ) -> tuple[list[TemplateRecord], bool, int]:
        """Templates by use (most used first, then newest), hiding blocked creators."""
        where: list[ColumnElement[bool]] = [TakeTemplateRow.platform == platform]
        if viewer_id is not None:
            where.append(not_(TakeTemplateRow.creator_id.in_(blocked_either_way(viewer_id))))
        conditions = list(where)
        if after is not None:
            conditions.append(
                tuple_(TakeTemplateRow.use_count, TakeTemplateRow.id)
                < tuple_(literal(after[0]), literal(after[1]))
            )
        stmt = (
            select(TakeTemplateRow)
            .where(*conditions)
            .order_by(TakeTemplateRow.use_count.desc(), TakeTemplateRow.id.desc())
            .limit(limit + 1)
        )
        async with self.db.session() as session:
            rows = list(await session.scalars(stmt)) if limit > 0 else []
            total = int(
                await session.scalar(
                    select(func.count()).select_from(TakeTemplateRow).where(*where)
                )
                or 0
            )
            slots = await self._slots(session, [r.id for r in rows[:limit]])
        items = [to_template(r, slots.get(r.id, [])) for r in rows[:limit]]
        return items, len(rows) > limit, total

    async def trend_activity(
        self, platform: str, viewer_id: int | None, now: datetime, window: timedelta
    ) -> list[TrendActivity]:
        """Every trend whose originator take the viewer may see, with the participants
        it gained in (now − window, now] and in (now − 2·window, now − window].

        One statement: the trends joined to their originator's author (visibility)
        and left-joined to per-trend counts over the takes' `trend_joined_at`.
        """
        start, middle = now - 2 * window, now - window
        recent = func.sum(case((TakeRow.trend_joined_at > _at(middle), 1), else_=0))
        counts = (
            select(
                TakeRow.trend_id.label("trend_id"),
                recent.label("recent"),
                func.count().label("both"),
            )
            .where(
                TakeRow.platform == platform,
                TakeRow.trend_id.is_not(None),
                TakeRow.trend_joined_at > _at(start),
                TakeRow.trend_joined_at <= _at(now),
            )
            .group_by(TakeRow.trend_id)
            .subquery("counts")
        )
        visible = and_(
            TakeTrendRow.originator_author_id == UserRow.id,
            visible_author(viewer_id, TakeTrendRow.originator_author_id),
        )
        stmt = (
            select(TakeTrendRow, counts.c.recent, counts.c.both)
            .select_from(TakeTrendRow)
            .join(UserRow, visible)
            .outerjoin(counts, counts.c.trend_id == TakeTrendRow.id)
            .where(TakeTrendRow.platform == platform)
        )
        async with self.db.session() as session:
            rows = (await session.execute(stmt)).all()
        return [
            TrendActivity(to_trend(r[0]), int(r[1] or 0), int(r[2] or 0) - int(r[1] or 0))
            for r in rows
        ]

    # ── writes ─────────────────────────────────────────────────────────

    async def create_take(self, new: NewTake) -> TakeRecord:
        """Insert a take; with a template, count a use; with a trend, join it.

        Raises Gone('template'/'trend') when either is missing: nothing is stored.
        """
        now = utcnow()
        async with self.db.transaction() as session:
            events: list[NewEvent] = []
            template_creator = await self._use_template(session, new) if new.template_id else None
            trend = await self._join_trend(session, new) if new.trend_id else None
            row = TakeRow(
                platform=new.platform,
                author_id=new.author_id,
                video_media_id=new.video_media_id,
                caption=new.caption,
                hashtags=json.dumps(list(new.hashtags)),
                sound_name=new.sound_name,
                duration_ms=new.duration_ms,
                template_id=new.template_id,
                trend_id=new.trend_id,
                trend_joined_at=now if new.trend_id else None,
                created_at=now,
                view_count=0,
                like_count=0,
                comment_count=0,
                share_count=0,
            )
            session.add(row)
            await session.flush()
            events.append(
                self._event(
                    new.platform,
                    "take.created",
                    new.author_id,
                    row.id,
                    {
                        "author_id": new.author_id,
                        "caption": new.caption,
                        "hashtags": list(new.hashtags),
                        "sound_name": new.sound_name,
                        "template_id": new.template_id,
                        "trend_id": new.trend_id,
                    },
                )
            )
            if template_creator is not None:
                events.append(
                    NewEvent(
                        "template.used",
                        new.platform,
                        new.author_id,
                        "template",
                        new.template_id or 0,
                        {
                            "template_creator_id": template_creator,
                            "take_id": row.id,
                            "take_author_id": new.author_id,
                        },
                    )
                )
            if trend is not None:
                events.append(
                    NewEvent(
                        "trend.joined",
                        new.platform,
                        new.author_id,
                        "trend",
                        trend.id,
                        {
                            "trend_originator_author_id": trend.originator_author_id,
                            "originator_take_id": trend.originator_take_id,
                            "take_id": row.id,
                            "take_author_id": new.author_id,
                            "hashtag": trend.hashtag,
                        },
                    )
                )
            await emit(session, *events)
            return to_take(row)

    async def _use_template(self, session: AsyncSession, new: NewTake) -> int:
        result = await session.execute(
            update(TakeTemplateRow)
            .where(TakeTemplateRow.id == new.template_id, TakeTemplateRow.platform == new.platform)
            .values(use_count=TakeTemplateRow.use_count + 1)
            .returning(TakeTemplateRow.creator_id)
        )
        creator = result.scalar()
        if creator is None:
            raise Gone("template")
        return int(creator)

    async def _join_trend(self, session: AsyncSession, new: NewTake) -> TrendRecord:
        result = await session.execute(
            update(TakeTrendRow)
            .where(TakeTrendRow.id == new.trend_id, TakeTrendRow.platform == new.platform)
            .values(participant_count=TakeTrendRow.participant_count + 1)
            .returning(TakeTrendRow)
        )
        row = result.scalar()
        if row is None:
            raise Gone("trend")
        return to_trend(row)

    async def delete_take(self, platform: str, take_id: int, author_id: int) -> TakeRecord | None:
        """Delete an author's take; uncount its template use and trend participation.

        A trend whose originator this take was is deleted with it (a trend cannot
        exist without its originator; its other takes simply leave it). Comments on
        the take go in the same transaction. None when there was nothing to delete.
        """
        async with self.db.transaction() as session:
            result = await session.execute(
                delete(TakeRow)
                .where(
                    TakeRow.id == take_id,
                    TakeRow.platform == platform,
                    TakeRow.author_id == author_id,
                )
                .returning(TakeRow)
            )
            row = result.scalar()
            if row is None:
                return None
            take = to_take(row)
            ended = await self._end_trend_of(session, take_id)
            if take.template_id is not None:
                await session.execute(
                    update(TakeTemplateRow)
                    .where(TakeTemplateRow.id == take.template_id)
                    .values(use_count=_floor_zero(TakeTemplateRow.use_count, -1))
                )
            if take.trend_id is not None and take.trend_id != ended:
                await session.execute(
                    update(TakeTrendRow)
                    .where(TakeTrendRow.id == take.trend_id)
                    .values(participant_count=_floor_zero(TakeTrendRow.participant_count, -1))
                )
            await delete_subject_comments(session, "take", take_id)
            await emit(
                session,
                self._event(
                    platform,
                    "take.deleted",
                    author_id,
                    take_id,
                    {
                        "author_id": author_id,
                        "template_id": take.template_id,
                        "trend_id": take.trend_id,
                        "ended_trend_id": ended,
                        "hashtags": list(take.hashtags),
                    },
                ),
            )
            return take

    async def _end_trend_of(self, session: AsyncSession, take_id: int) -> int | None:
        """Delete the trend `take_id` originated (its takes leave it); its id or None."""
        result = await session.execute(
            delete(TakeTrendRow)
            .where(TakeTrendRow.originator_take_id == take_id)
            .returning(TakeTrendRow.id)
        )
        ended = result.scalar()
        if ended is not None:
            await session.execute(
                update(TakeRow)
                .where(TakeRow.trend_id == ended)
                .values(trend_id=None, trend_joined_at=None)
            )
        return int(ended) if ended is not None else None

    async def like(self, platform: str, take_id: int, user_id: int) -> bool:
        """Like once; True when this call added the like. Raises Gone('take')."""
        async with self.db.transaction() as session:
            try:
                inserted = await _insert_ignore(
                    session,
                    TakeLikeRow,
                    {"take_id": take_id, "user_id": user_id, "created_at": utcnow()},
                )
            except IntegrityError as exc:  # the take was deleted meanwhile
                raise Gone("take") from exc
            if not inserted:
                return False
            author_id = await self._count(session, take_id, TakeRow.like_count, +1)
            await emit(
                session,
                self._event(
                    platform,
                    "take.liked",
                    user_id,
                    take_id,
                    {"author_id": author_id, "take_id": take_id},
                ),
            )
            return True

    async def unlike(self, platform: str, take_id: int, user_id: int) -> bool:
        """Remove a like; True when this call removed one."""
        async with self.db.transaction() as session:
            result = await session.execute(
                delete(TakeLikeRow)
                .where(TakeLikeRow.take_id == take_id, TakeLikeRow.user_id == user_id)
                .returning(TakeLikeRow.take_id)
            )
            if result.first() is None:
                return False
            author_id = await self._count(session, take_id, TakeRow.like_count, -1)
            await emit(
                session,
                self._event(
                    platform,
                    "take.unliked",
                    user_id,
                    take_id,
                    {"author_id": author_id, "take_id": take_id},
                ),
            )
            return True

    async def record_view(self, take_id: int, viewer_id: int, now: datetime) -> bool:
        """Count a view unless this viewer's last counted view is under an hour old.

        Exact under concurrency: the first view inserts the viewer's row (only one
        concurrent insert wins); later ones move `last_counted_at` only when the
        window has passed, in one conditional UPDATE (only one concurrent update
        matches). No event: views are a counter, not a fact consumers act on.
        """
        async with self.db.transaction() as session:
            try:
                counted = await _insert_ignore(
                    session,
                    TakeViewRow,
                    {
                        "take_id": take_id,
                        "viewer_id": viewer_id,
                        "last_counted_at": now,
                        "counted_views": 1,
                    },
                )
            except IntegrityError as exc:
                raise Gone("take") from exc
            if not counted:
                result = await session.execute(
                    update(TakeViewRow)
                    .where(
                        TakeViewRow.take_id == take_id,
                        TakeViewRow.viewer_id == viewer_id,
                        TakeViewRow.last_counted_at <= _at(now - VIEW_WINDOW),
                    )
                    .values(last_counted_at=now, counted_views=TakeViewRow.counted_views + 1)
                    .returning(TakeViewRow.take_id)
                )
                counted = result.first() is not None
            if counted:
                await self._count(session, take_id, TakeRow.view_count, +1)
            return counted

    async def _count(self, session: AsyncSession, take_id: int, column: Any, step: int) -> int:
        """Add `step` to a take's counter (never below zero); the take's author id."""
        value = column + step if step > 0 else _floor_zero(column, step)
        result = await session.execute(
            update(TakeRow)
            .where(TakeRow.id == take_id)
            .values({column.key: value})
            .returning(TakeRow.author_id)
        )
        author_id = result.scalar()
        if author_id is None:
            raise Gone("take")
        return int(author_id)

    async def add_behind(
        self,
        platform: str,
        take_id: int,
        author_id: int,
        steps: Sequence[NewStep],
        tools: Sequence[str],
    ) -> BehindRecord:
        """Create or replace the take's Behind-the-Take (one per take; same id kept)."""
        now = utcnow()
        async with self.db.transaction() as session:
            stmt = _insert(session, BehindTheTakeRow).values(
                platform=platform, take_id=take_id, tools=json.dumps(list(tools)), created_at=now
            )
            stmt = stmt.on_conflict_do_update(
                index_elements=[BehindTheTakeRow.take_id],
                set_={"tools": stmt.excluded.tools, "created_at": stmt.excluded.created_at},
            ).returning(BehindTheTakeRow.id)
            try:
                behind_id = int((await session.execute(stmt)).scalar_one())
            except IntegrityError as exc:
                raise Gone("take") from exc
            await session.execute(
                delete(BehindTheTakeStepRow).where(
                    BehindTheTakeStepRow.behind_the_take_id == behind_id
                )
            )
            step_rows = [
                {
                    "behind_the_take_id": behind_id,
                    "position": index,
                    "title": step.title,
                    "body": step.body,
                    "media_id": step.media_id,
                }
                for index, step in enumerate(steps, start=1)
            ]
            await session.execute(_insert(session, BehindTheTakeStepRow), step_rows)
            await emit(
                session,
                NewEvent(
                    "take.behind_added",
                    platform,
                    author_id,
                    "take",
                    take_id,
                    {
                        "author_id": author_id,
                        "behind_the_take_id": behind_id,
                        "step_count": len(steps),
                        "tools": list(tools),
                    },
                ),
            )
        return BehindRecord(
            id=behind_id,
            platform=platform,
            take_id=take_id,
            steps=tuple(
                StepRecord(i, s.title, s.body, s.media_id) for i, s in enumerate(steps, start=1)
            ),
            tools=tuple(tools),
            created_at=now,
        )

    async def create_template(self, new: NewTemplate) -> TemplateRecord:
        async with self.db.transaction() as session:
            row = TakeTemplateRow(
                platform=new.platform,
                creator_id=new.creator_id,
                name=new.name,
                description=new.description,
                source_take_id=new.source_take_id,
                total_duration_ms=sum(d for d, _ in new.slots),
                use_count=0,
                created_at=utcnow(),
            )
            session.add(row)
            await session.flush()
            slots = [
                TakeTemplateSlotRow(template_id=row.id, position=i, duration_ms=duration, hint=hint)
                for i, (duration, hint) in enumerate(new.slots, start=1)
            ]
            session.add_all(slots)
            await session.flush()
            await emit(
                session,
                NewEvent(
                    "template.created",
                    new.platform,
                    new.creator_id,
                    "template",
                    row.id,
                    {
                        "creator_id": new.creator_id,
                        "name": new.name,
                        "description": new.description,
                        "source_take_id": new.source_take_id,
                    },
                ),
            )
            return to_template(row, slots)

    async def start_trend(self, new: NewTrend) -> TrendRecord:
        """Create a trend with its originator take as first participant.

        Raises AlreadyInTrend when the take is in a trend, HashtagTaken when the
        platform has a trend with this hashtag, Gone('take') when the take is gone.
        """
        now = utcnow()
        async with self.db.transaction() as session:
            # The first statement writes: it takes the write lock on SQLite and the
            # take's row lock on PostgreSQL before anything is read.
            current = await session.execute(
                update(TakeRow)
                .where(TakeRow.id == new.take_id, TakeRow.author_id == new.author_id)
                .values(trend_joined_at=now)
                .returning(TakeRow.trend_id)
            )
            found = current.first()
            if found is None:
                raise Gone("take")
            if found[0] is not None:
                raise AlreadyInTrend()
            inserted = await session.execute(
                _insert(session, TakeTrendRow)
                .values(
                    platform=new.platform,
                    name=new.name,
                    hashtag=new.hashtag,
                    originator_take_id=new.take_id,
                    originator_author_id=new.author_id,
                    participant_count=1,
                    created_at=now,
                )
                .on_conflict_do_nothing()
                .returning(TakeTrendRow)
            )
            trend_row = inserted.scalar()
            if trend_row is None:
                raise HashtagTaken()
            trend = to_trend(trend_row)
            await session.execute(
                update(TakeRow).where(TakeRow.id == new.take_id).values(trend_id=trend.id)
            )
            await emit(
                session,
                NewEvent(
                    "trend.started",
                    new.platform,
                    new.author_id,
                    "trend",
                    trend.id,
                    {
                        "originator_author_id": new.author_id,
                        "originator_take_id": new.take_id,
                        "hashtag": new.hashtag,
                        "name": new.name,
                    },
                ),
            )
            return trend

    @staticmethod
    def _event(
        platform: str, type_: str, actor_id: int, take_id: int, data: dict[str, Any]
    ) -> NewEvent:
        return NewEvent(type_, platform, actor_id, "take", take_id, data)
