"""StoryStore on SQLAlchemy: SQLite (the embedded default) or PostgreSQL.

Stickers are a JSON column. Exactness never depends on read-modify-write:
- a view, a sticker response and a highlight item are unique by primary key and
  written with INSERT … ON CONFLICT DO NOTHING, so concurrent duplicates store one
  row, and counts and tallies are COUNT/SUM … GROUP BY over the stored rows;
- counters are INSERT … ON CONFLICT DO UPDATE SET value = value + 1, evaluated by
  the database on the latest row version;
- a countdown is claimed by one UPDATE … WHERE claimed_at IS NULL … RETURNING
  (its candidates locked FOR UPDATE SKIP LOCKED on PostgreSQL; SQLite has one
  writer), so two sweepers never both announce it.
Dependents (views, responses, counters, replies, highlight items, countdowns)
cascade from their story, so deleting or purging stories is one DELETE, and a
write to a story that is gone fails its foreign key (reported as False/None).

Each write transaction starts with a write, so SQLite takes its write lock first
and never has to upgrade a read lock (which fails instead of waiting). Batch
methods take sequences and use IN: one statement per table, never one per id.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    CompoundSelect,
    and_,
    case,
    delete,
    exists,
    func,
    literal,
    or_,
    select,
    tuple_,
    union,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from datasources.sql import Database
from datasources.stories.records import (
    Cursor,
    DueCountdown,
    HighlightRecord,
    NewHighlight,
    NewReply,
    NewStory,
    ReplyRecord,
    ResponseRecord,
    Sticker,
    StoryRecord,
    Tally,
    ViewRecord,
    to_millis,
)
from datasources.stories.tables import (
    StoryCountdownRow,
    StoryCounterRow,
    StoryHighlightItemRow,
    StoryHighlightRow,
    StoryReplyRow,
    StoryResponseRow,
    StoryRow,
    StoryViewRow,
)

_NO_SYNC = {"synchronize_session": False}


def _record(row: StoryRow) -> StoryRecord:
    return StoryRecord(
        id=row.id,
        author_id=row.author_id,
        platform=row.platform,
        media_id=row.media_id,
        audience=row.audience,
        created_at=row.created_at,
        expires_at=row.expires_at,
        stickers=tuple(row.stickers),
        caption=row.caption,
    )


def _view(row: StoryViewRow) -> ViewRecord:
    return ViewRecord(row.story_id, row.viewer_id, row.viewed_at, row.reaction)


def _response(row: StoryResponseRow) -> ResponseRecord:
    return ResponseRecord(
        story_id=row.story_id,
        sticker_index=row.sticker_index,
        user_id=row.user_id,
        kind=row.kind,
        created_at=row.created_at,
        option=row.option,
        value=row.value,
        text=row.text,
    )


def _reply(row: StoryReplyRow) -> ReplyRecord:
    return ReplyRecord(row.id, row.story_id, row.author_id, row.body, row.created_at)


def _highlight(row: StoryHighlightRow, story_ids: Iterable[int]) -> HighlightRecord:
    return HighlightRecord(
        id=row.id,
        owner_id=row.owner_id,
        platform=row.platform,
        title=row.title,
        story_ids=tuple(story_ids),
        created_at=row.created_at,
        cover_media_id=row.cover_media_id,
    )


def _after(at: Any, key: Any, cursor: Cursor | None) -> ColumnElement[bool]:
    """Keyset condition of a newest-first page: strictly after (at, key) of the cursor."""
    if cursor is None:
        return literal(True)
    return or_(at < cursor.at, and_(at == cursor.at, key < cursor.id))


def _ends_at(sticker: Sticker) -> datetime | None:
    """A COUNTDOWN sticker's end (ISO-8601 text; naive means UTC), None if unreadable."""
    raw = sticker.get("endsAt")
    if not isinstance(raw, str):
        return None
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        return None
    return to_millis(moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment)


class RelationalStoryStore:
    """The StoryStore protocol on the relational database."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def _insert(self, table: type[Any]) -> Any:
        dialect = sqlite if self.db.is_sqlite else postgresql
        return dialect.insert(table)

    # ── stories ────────────────────────────────────────────────────────
    async def add_story(self, new: NewStory) -> StoryRecord:
        row = StoryRow(
            author_id=new.author_id,
            platform=new.platform,
            media_id=new.media_id,
            audience=new.audience,
            caption=new.caption,
            stickers=[dict(sticker) for sticker in new.stickers],
            add_yours_origin_id=new.add_yours_origin_id,
            created_at=to_millis(new.created_at),
            expires_at=new.expires_at,
        )
        countdowns = [
            (index, ends_at)
            for index, sticker in enumerate(new.stickers)
            if sticker.get("type") == "COUNTDOWN" and (ends_at := _ends_at(sticker)) is not None
        ]
        async with self.db.transaction() as session:
            session.add(row)
            await session.flush()
            if countdowns:
                await session.execute(
                    self._insert(StoryCountdownRow).values(
                        [
                            {"story_id": row.id, "sticker_index": index, "ends_at": ends_at}
                            for index, ends_at in countdowns
                        ]
                    )
                )
            return _record(row)

    async def story(self, story_id: int, now: datetime | None) -> StoryRecord | None:
        found = await self.stories([story_id], now)
        return found.get(story_id)

    async def stories(
        self, story_ids: Sequence[int], now: datetime | None
    ) -> dict[int, StoryRecord]:
        if not story_ids:
            return {}
        query = select(StoryRow).where(StoryRow.id.in_(set(story_ids)))
        if now is not None:
            query = query.where(StoryRow.expires_at > now)
        async with self.db.session() as session:
            rows = (await session.scalars(query)).all()
        return {row.id: _record(row) for row in rows}

    async def active_stories(self, author_ids: Sequence[int], now: datetime) -> list[StoryRecord]:
        if not author_ids:
            return []
        query = (
            select(StoryRow)
            .where(StoryRow.author_id.in_(set(author_ids)), StoryRow.expires_at > now)
            .order_by(StoryRow.created_at, StoryRow.id)
        )
        async with self.db.session() as session:
            rows = (await session.scalars(query)).all()
        return [_record(row) for row in rows]

    async def active_count(self, author_id: int, now: datetime) -> int:
        query = select(func.count()).where(
            StoryRow.author_id == author_id, StoryRow.expires_at > now
        )
        async with self.db.session() as session:
            return int(await session.scalar(query) or 0)

    async def delete_story(self, story_id: int) -> bool:
        # Views, responses, counters, replies, highlight items and countdowns cascade.
        async with self.db.transaction() as session:
            deleted = await session.execute(
                delete(StoryRow).where(StoryRow.id == story_id).returning(StoryRow.id),
                execution_options=_NO_SYNC,
            )
            return deleted.first() is not None

    async def add_yours_counts(self, origin_ids: Sequence[int]) -> dict[int, int]:
        if not origin_ids:
            return {}
        origin = StoryRow.add_yours_origin_id
        query = select(origin, func.count()).where(origin.in_(set(origin_ids))).group_by(origin)
        async with self.db.session() as session:
            rows = (await session.execute(query)).all()
        return {int(origin): int(count) for origin, count in rows if origin is not None}

    # ── views ──────────────────────────────────────────────────────────
    async def add_viewer(
        self, story_id: int, viewer_id: int, viewed_at: datetime, reaction: str | None
    ) -> bool:
        return await self._insert_once(
            StoryViewRow,
            {
                "story_id": story_id,
                "viewer_id": viewer_id,
                "viewed_at": to_millis(viewed_at),
                "reaction": reaction,
            },
        )

    async def _insert_once(self, table: type[Any], values: dict[str, Any]) -> bool:
        """INSERT … ON CONFLICT DO NOTHING: True only when this call stored the row;
        False too when the story is gone (its foreign key fails)."""
        stmt = (
            self._insert(table).values(**values).on_conflict_do_nothing().returning(table.story_id)
        )
        try:
            async with self.db.transaction() as session:
                inserted = (await session.execute(stmt)).first()
        except IntegrityError:  # the story does not exist (or was just deleted)
            return False
        return inserted is not None

    async def viewer(self, story_id: int, viewer_id: int) -> ViewRecord | None:
        async with self.db.session() as session:
            row = await session.get(StoryViewRow, (story_id, viewer_id))
        return None if row is None else _view(row)

    async def viewer_count(self, story_id: int) -> int:
        return (await self.viewer_counts([story_id])).get(story_id, 0)

    async def viewer_counts(self, story_ids: Sequence[int]) -> dict[int, int]:
        return await self._counts(StoryViewRow, story_ids)

    async def _counts(self, table: type[Any], story_ids: Sequence[int]) -> dict[int, int]:
        """Rows of `table` per story, counted (stories without rows are absent)."""
        if not story_ids:
            return {}
        query = (
            select(table.story_id, func.count())
            .where(table.story_id.in_(set(story_ids)))
            .group_by(table.story_id)
        )
        async with self.db.session() as session:
            rows = (await session.execute(query)).all()
        return {int(story_id): int(count) for story_id, count in rows}

    async def viewers(self, story_id: int, first: int, after: Cursor | None) -> list[ViewRecord]:
        if first <= 0:
            return []
        query = (
            select(StoryViewRow)
            .where(
                StoryViewRow.story_id == story_id,
                _after(StoryViewRow.viewed_at, StoryViewRow.viewer_id, after),
            )
            .order_by(StoryViewRow.viewed_at.desc(), StoryViewRow.viewer_id.desc())
            .limit(first)
        )
        async with self.db.session() as session:
            rows = (await session.scalars(query)).all()
        return [_view(row) for row in rows]

    async def seen(self, viewer_id: int, story_ids: Sequence[int]) -> set[int]:
        if not story_ids:
            return set()
        query = select(StoryViewRow.story_id).where(
            StoryViewRow.viewer_id == viewer_id, StoryViewRow.story_id.in_(set(story_ids))
        )
        async with self.db.session() as session:
            return {int(story_id) for story_id in (await session.scalars(query)).all()}

    # ── counters (insights, link taps) ─────────────────────────────────
    async def bump(self, story_id: int, counter: str) -> None:
        stmt = self._insert(StoryCounterRow).values(story_id=story_id, name=counter, value=1)
        stmt = stmt.on_conflict_do_update(
            index_elements=[StoryCounterRow.story_id, StoryCounterRow.name],
            set_={"value": StoryCounterRow.value + 1},
        )
        try:
            async with self.db.transaction() as session:
                await session.execute(stmt)
        except IntegrityError:  # the story is gone: nothing to count
            return

    async def counters(self, story_ids: Sequence[int]) -> dict[int, dict[str, int]]:
        if not story_ids:
            return {}
        query = select(StoryCounterRow).where(
            StoryCounterRow.story_id.in_(set(story_ids)), StoryCounterRow.value > 0
        )
        found: dict[int, dict[str, int]] = defaultdict(dict)
        async with self.db.session() as session:
            for row in (await session.scalars(query)).all():
                found[row.story_id][row.name] = row.value
        return dict(found)

    # ── sticker responses ──────────────────────────────────────────────
    async def add_response(self, response: ResponseRecord) -> bool:
        return await self._insert_once(
            StoryResponseRow,
            {
                "story_id": response.story_id,
                "sticker_index": response.sticker_index,
                "user_id": response.user_id,
                "kind": response.kind,
                "option": response.option,
                "value": response.value,
                "text": response.text,
                "created_at": to_millis(response.created_at),
            },
        )

    async def remove_response(self, story_id: int, sticker_index: int, user_id: int) -> bool:
        stmt = (
            delete(StoryResponseRow)
            .where(
                StoryResponseRow.story_id == story_id,
                StoryResponseRow.sticker_index == sticker_index,
                StoryResponseRow.user_id == user_id,
            )
            .returning(StoryResponseRow.user_id)
        )
        async with self.db.transaction() as session:
            return (await session.execute(stmt, execution_options=_NO_SYNC)).first() is not None

    async def tallies(self, story_ids: Sequence[int]) -> dict[int, dict[int, Tally]]:
        if not story_ids:
            return {}
        r = StoryResponseRow
        query = (
            select(r.story_id, r.sticker_index, r.option, func.count(), func.sum(r.value))
            .where(r.story_id.in_(set(story_ids)))
            .group_by(r.story_id, r.sticker_index, r.option)
        )
        async with self.db.session() as session:
            rows = (await session.execute(query)).all()
        options: dict[tuple[int, int], dict[int, int]] = defaultdict(dict)
        counts: dict[tuple[int, int], int] = defaultdict(int)
        sums: dict[tuple[int, int], float] = defaultdict(float)
        for story_id, sticker_index, option, count, value_sum in rows:
            key = (int(story_id), int(sticker_index))
            if option is not None:
                options[key][int(option)] = int(count)
            counts[key] += int(count)
            sums[key] += float(value_sum or 0.0)
        found: dict[int, dict[int, Tally]] = defaultdict(dict)
        for (story_id, sticker_index), count in counts.items():
            key = (story_id, sticker_index)
            found[story_id][sticker_index] = Tally(
                option_counts=dict(sorted(options[key].items())),
                count=count,
                value_sum=sums[key],
            )
        return dict(found)

    async def responses_of(
        self, user_id: int, story_ids: Sequence[int]
    ) -> dict[tuple[int, int], ResponseRecord]:
        if not story_ids:
            return {}
        query = select(StoryResponseRow).where(
            StoryResponseRow.user_id == user_id, StoryResponseRow.story_id.in_(set(story_ids))
        )
        async with self.db.session() as session:
            rows = (await session.scalars(query)).all()
        return {(row.story_id, row.sticker_index): _response(row) for row in rows}

    async def responses(
        self, story_id: int, sticker_index: int, first: int, after: Cursor | None
    ) -> list[ResponseRecord]:
        if first <= 0:
            return []
        r = StoryResponseRow
        query = (
            select(r)
            .where(
                r.story_id == story_id,
                r.sticker_index == sticker_index,
                _after(r.created_at, r.user_id, after),
            )
            .order_by(r.created_at.desc(), r.user_id.desc())
            .limit(first)
        )
        async with self.db.session() as session:
            rows = (await session.scalars(query)).all()
        return [_response(row) for row in rows]

    async def claim_due_countdowns(self, now: datetime, limit: int = 100) -> list[DueCountdown]:
        if limit <= 0:
            return []
        c = StoryCountdownRow
        due = (
            select(c.story_id, c.sticker_index)
            .where(c.claimed_at.is_(None), c.ends_at <= now)
            .order_by(c.ends_at, c.story_id, c.sticker_index)
            .limit(limit)
        )
        if not self.db.is_sqlite:  # concurrent sweepers take disjoint batches
            due = due.with_for_update(skip_locked=True)
        claim = (
            update(c)
            .where(tuple_(c.story_id, c.sticker_index).in_(due), c.claimed_at.is_(None))
            .values(claimed_at=now)
            .returning(c.story_id, c.sticker_index, c.ends_at)
        )
        async with self.db.transaction() as session:
            claimed = (await session.execute(claim, execution_options=_NO_SYNC)).all()
            if not claimed:
                return []
            story_ids = {int(story_id) for story_id, _, _ in claimed}
            stories = {
                row.id: row
                for row in (
                    await session.scalars(select(StoryRow).where(StoryRow.id.in_(story_ids)))
                ).all()
            }
            subscribers = (
                await session.execute(
                    select(
                        StoryResponseRow.story_id,
                        StoryResponseRow.sticker_index,
                        StoryResponseRow.user_id,
                    )
                    .where(
                        StoryResponseRow.story_id.in_(story_ids),
                        StoryResponseRow.kind == "COUNTDOWN",
                    )
                    .order_by(StoryResponseRow.created_at, StoryResponseRow.user_id)
                )
            ).all()
        by_sticker: dict[tuple[int, int], list[int]] = defaultdict(list)
        for story_id, sticker_index, user_id in subscribers:
            by_sticker[(int(story_id), int(sticker_index))].append(int(user_id))
        due_countdowns = []
        for story_id, sticker_index, ends_at in sorted(claimed, key=lambda r: (r[2], r[0], r[1])):
            story = stories.get(story_id)
            if story is None:  # deleted between the claim and the read
                continue
            stickers = story.stickers
            sticker = stickers[sticker_index] if sticker_index < len(stickers) else {}
            due_countdowns.append(
                DueCountdown(
                    story_id=story_id,
                    sticker_index=sticker_index,
                    author_id=story.author_id,
                    platform=story.platform,
                    title=str(sticker.get("title") or ""),
                    ends_at=ends_at,
                    subscriber_ids=tuple(by_sticker[(story_id, sticker_index)]),
                )
            )
        return due_countdowns

    # ── replies ────────────────────────────────────────────────────────
    async def add_reply(self, new: NewReply) -> ReplyRecord | None:
        row = StoryReplyRow(
            story_id=new.story_id,
            author_id=new.author_id,
            body=new.body,
            created_at=to_millis(new.created_at),
        )
        try:
            async with self.db.transaction() as session:
                session.add(row)
                await session.flush()
                return _reply(row)
        except IntegrityError:  # the story does not exist
            return None

    async def reply(self, reply_id: int) -> ReplyRecord | None:
        async with self.db.session() as session:
            row = await session.get(StoryReplyRow, reply_id)
        return None if row is None else _reply(row)

    async def replies(self, story_id: int, first: int, after: Cursor | None) -> list[ReplyRecord]:
        if first <= 0:
            return []
        query = (
            select(StoryReplyRow)
            .where(
                StoryReplyRow.story_id == story_id,
                _after(StoryReplyRow.created_at, StoryReplyRow.id, after),
            )
            .order_by(StoryReplyRow.created_at.desc(), StoryReplyRow.id.desc())
            .limit(first)
        )
        async with self.db.session() as session:
            rows = (await session.scalars(query)).all()
        return [_reply(row) for row in rows]

    async def reply_counts(self, story_ids: Sequence[int]) -> dict[int, int]:
        return await self._counts(StoryReplyRow, story_ids)

    # ── highlights ─────────────────────────────────────────────────────
    async def create_highlight(self, new: NewHighlight) -> HighlightRecord:
        row = StoryHighlightRow(
            owner_id=new.owner_id,
            platform=new.platform,
            title=new.title,
            cover_media_id=new.cover_media_id,
            created_at=to_millis(new.created_at),
        )
        async with self.db.transaction() as session:
            session.add(row)
            await session.flush()
            await self._append(session, row.id, new.story_ids)
            items = await self._items(session, [row.id])
            return _highlight(row, items.get(row.id, ()))

    async def _append(
        self, session: AsyncSession, highlight_id: int, story_ids: Sequence[int]
    ) -> None:
        """Add the stories that exist and are not in the highlight yet, after its last
        item, in the given order: one INSERT … SELECT (nothing if the highlight is gone)."""
        wanted = list(dict.fromkeys(story_ids))
        if not wanted:
            return
        item = StoryHighlightItemRow
        after_last = (
            select(func.coalesce(func.max(item.position), -1) + 1)
            .where(item.highlight_id == highlight_id)
            .scalar_subquery()
        )
        offset = case({story_id: i for i, story_id in enumerate(wanted)}, value=StoryRow.id)
        rows = (
            select(StoryHighlightRow.id, StoryRow.id, after_last + offset)
            .select_from(StoryRow)
            .join(StoryHighlightRow, StoryHighlightRow.id == highlight_id)
            .where(StoryRow.id.in_(wanted))
        )
        stmt = (
            self._insert(item)
            .from_select([item.highlight_id, item.story_id, item.position], rows)
            .on_conflict_do_nothing()
        )
        await session.execute(stmt)

    async def _items(
        self, session: AsyncSession, highlight_ids: Sequence[int]
    ) -> dict[int, list[int]]:
        """The story ids of these highlights, in the order they were added."""
        if not highlight_ids:
            return {}
        item = StoryHighlightItemRow
        query = (
            select(item.highlight_id, item.story_id)
            .where(item.highlight_id.in_(set(highlight_ids)))
            .order_by(item.highlight_id, item.position, item.story_id)
        )
        found: dict[int, list[int]] = defaultdict(list)
        for highlight_id, story_id in (await session.execute(query)).all():
            found[int(highlight_id)].append(int(story_id))
        return dict(found)

    async def _highlight_in(
        self, session: AsyncSession, highlight_id: int
    ) -> HighlightRecord | None:
        row = await session.get(StoryHighlightRow, highlight_id, populate_existing=True)
        if row is None:
            return None
        items = await self._items(session, [highlight_id])
        return _highlight(row, items.get(highlight_id, ()))

    async def highlight(self, highlight_id: int) -> HighlightRecord | None:
        async with self.db.session() as session:
            return await self._highlight_in(session, highlight_id)

    async def highlights_of(self, owner_ids: Sequence[int]) -> dict[int, list[HighlightRecord]]:
        if not owner_ids:
            return {}
        query = (
            select(StoryHighlightRow)
            .where(StoryHighlightRow.owner_id.in_(set(owner_ids)))
            .order_by(StoryHighlightRow.created_at.desc(), StoryHighlightRow.id.desc())
        )
        async with self.db.session() as session:
            rows = (await session.scalars(query)).all()
            items = await self._items(session, [row.id for row in rows])
        found: dict[int, list[HighlightRecord]] = defaultdict(list)
        for row in rows:
            found[row.owner_id].append(_highlight(row, items.get(row.id, ())))
        return dict(found)

    async def add_to_highlight(
        self, highlight_id: int, story_ids: Sequence[int]
    ) -> HighlightRecord | None:
        async with self.db.transaction() as session:
            if not self.db.is_sqlite:  # concurrent appends to one highlight queue here
                await session.execute(
                    select(StoryHighlightRow.id)
                    .where(StoryHighlightRow.id == highlight_id)
                    .with_for_update()
                )
            await self._append(session, highlight_id, story_ids)
            return await self._highlight_in(session, highlight_id)

    async def remove_from_highlight(
        self, highlight_id: int, story_ids: Sequence[int]
    ) -> HighlightRecord | None:
        async with self.db.transaction() as session:
            if story_ids:
                await session.execute(
                    delete(StoryHighlightItemRow).where(
                        StoryHighlightItemRow.highlight_id == highlight_id,
                        StoryHighlightItemRow.story_id.in_(set(story_ids)),
                    ),
                    execution_options=_NO_SYNC,
                )
            return await self._highlight_in(session, highlight_id)

    async def delete_highlight(self, highlight_id: int) -> bool:
        async with self.db.transaction() as session:  # its items cascade
            deleted = await session.execute(
                delete(StoryHighlightRow)
                .where(StoryHighlightRow.id == highlight_id)
                .returning(StoryHighlightRow.id),
                execution_options=_NO_SYNC,
            )
            return deleted.first() is not None

    # ── expiry ─────────────────────────────────────────────────────────
    async def purge_expired(self, now: datetime, limit: int = 500) -> list[StoryRecord]:
        if limit <= 0:
            return []
        # An alias, so the victims' subquery does not correlate with the DELETE's table.
        story = aliased(StoryRow)
        in_highlight = exists().where(StoryHighlightItemRow.story_id == story.id)
        victims = (
            select(story.id)
            .where(story.expires_at <= now, ~in_highlight)
            .order_by(story.expires_at, story.id)
            .limit(limit)
        )
        if not self.db.is_sqlite:  # concurrent sweepers take disjoint batches
            victims = victims.with_for_update(skip_locked=True)
        stmt = delete(StoryRow).where(StoryRow.id.in_(victims)).returning(StoryRow)
        async with self.db.transaction() as session:  # dependents cascade
            rows = (await session.scalars(stmt, execution_options=_NO_SYNC)).all()
            purged = [_record(row) for row in rows]
        return sorted(purged, key=lambda record: (record.expires_at, record.id))

    async def media_in_use(self, media_ids: Sequence[int]) -> set[int]:
        if not media_ids:
            return set()
        wanted = set(media_ids)
        query: CompoundSelect[Any] = union(
            select(StoryRow.media_id).where(StoryRow.media_id.in_(wanted)),
            select(StoryHighlightRow.cover_media_id).where(
                StoryHighlightRow.cover_media_id.in_(wanted)
            ),
        )
        async with self.db.session() as session:
            return {int(media_id) for media_id in (await session.scalars(query)).all()}
