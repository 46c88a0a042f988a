"""Search documents read from the relational store: the one place that knows how a
row becomes a SearchDoc, shared by the event indexer and `entativa search reindex`.

Everything is re-read from the rows rather than taken from event data: events
carry what changed, not the whole document (a post.created has no coordinates, a
like event no count), and reading the current row makes a late or repeated event
converge on the current state instead of an old one.

Hashtag usage is `hashtag_uses` (tables.py): one row per (post or take, tag),
kept in step with the subjects' `hashtags` columns by `sync_hashtag_uses`.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from datasources.posts.tables import LocationRow, PostRow
from datasources.posts.take_tables import TakeRow
from datasources.search.records import (
    HashtagDoc,
    LocationDoc,
    PostDoc,
    SearchDoc,
    SearchType,
    TakeDoc,
    UserDoc,
    utc,
)
from datasources.search.tables import HashtagUseRow
from datasources.sql import Database
from datasources.users.tables import UserRow

POST, TAKE = "post", "take"
INSERT_CHUNK = 500


def _tags(raw: str | None) -> tuple[str, ...]:
    try:
        tags = json.loads(raw or "[]")
    except ValueError:
        return ()
    return tuple(dict.fromkeys(str(tag)[:100] for tag in tags if tag))


def user_doc(row: UserRow) -> UserDoc:
    return UserDoc(
        id=row.id,
        platform=row.platform,
        username=row.username,
        display_name=row.display_name,
        bio=row.bio,
        is_private=row.is_private,
        follower_count=row.follower_count,
    )


def post_doc(row: PostRow, location: LocationRow | None) -> PostDoc:
    return PostDoc(
        id=row.id,
        platform=row.platform,
        author_id=row.author_id,
        caption=row.caption,
        created_at=utc(row.created_at),
        hashtags=_tags(row.hashtags),
        location_name=location.name if location else None,
        latitude=location.latitude if location else None,
        longitude=location.longitude if location else None,
        like_count=row.like_count,
        visibility=row.visibility,
    )


def take_doc(row: TakeRow) -> TakeDoc:
    # A take is seen like a PUBLIC post of its author (resolvers/posts/take_policy.py).
    return TakeDoc(
        id=row.id,
        platform=row.platform,
        author_id=row.author_id,
        caption=row.caption,
        created_at=utc(row.created_at),
        hashtags=_tags(row.hashtags),
        like_count=row.like_count,
    )


def location_doc(row: LocationRow) -> LocationDoc:
    return LocationDoc(
        id=row.id,
        platform=row.platform,
        name=row.name,
        latitude=row.latitude,
        longitude=row.longitude,
    )


async def users(session: AsyncSession, ids: Sequence[int]) -> dict[int, UserDoc]:
    rows = await session.scalars(select(UserRow).where(UserRow.id.in_(ids)))
    return {row.id: user_doc(row) for row in rows}


async def posts(session: AsyncSession, ids: Sequence[int]) -> dict[int, PostDoc]:
    statement = (
        select(PostRow, LocationRow)
        .outerjoin(LocationRow, LocationRow.id == PostRow.location_id)
        .where(PostRow.id.in_(ids))
    )
    return {post.id: post_doc(post, place) for post, place in await session.execute(statement)}


async def post_location(session: AsyncSession, post_id: int) -> LocationDoc | None:
    statement = select(LocationRow).join(PostRow, PostRow.location_id == LocationRow.id)
    row = await session.scalar(statement.where(PostRow.id == post_id))
    return location_doc(row) if row is not None else None


async def takes(session: AsyncSession, ids: Sequence[int]) -> dict[int, TakeDoc]:
    rows = await session.scalars(select(TakeRow).where(TakeRow.id.in_(ids)))
    return {row.id: take_doc(row) for row in rows}


async def hashtags(session: AsyncSession, platform: str, names: Iterable[str]) -> dict[str, int]:
    """Uses (posts and takes) of each named tag; tags without uses are left out."""
    wanted = sorted(set(names))
    if not wanted:
        return {}
    statement = (
        select(HashtagUseRow.tag, func.count())
        .where(HashtagUseRow.platform == platform, HashtagUseRow.tag.in_(wanted))
        .group_by(HashtagUseRow.tag)
    )
    return {tag: count for tag, count in await session.execute(statement)}


def _insert(session: AsyncSession) -> Any:
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    return dialect.insert(HashtagUseRow)


async def sync_hashtag_uses(
    session: AsyncSession,
    platform: str,
    subject_type: str,
    subject_id: int,
    tags: Sequence[str],
    used_at: datetime,
) -> set[str]:
    """Make the subject's `hashtag_uses` rows exactly `tags` (none: a deleted subject).
    Tags it keeps keep their first `used_at`. Returns every tag whose count changed."""
    where = (HashtagUseRow.subject_type == subject_type, HashtagUseRow.subject_id == subject_id)
    before = set(await session.scalars(select(HashtagUseRow.tag).where(*where)))
    after = set(tags)
    gone = before - after
    if gone:
        await session.execute(delete(HashtagUseRow).where(*where, HashtagUseRow.tag.in_(gone)))
    added = after - before
    if added:
        values = [
            {
                "platform": platform,
                "tag": tag,
                "subject_type": subject_type,
                "subject_id": subject_id,
                "used_at": used_at,
            }
            for tag in sorted(added)
        ]
        await session.execute(_insert(session).values(values).on_conflict_do_nothing())
    return gone | added


# ── whole-store reads, for the rebuild ─────────────────────────────────────────
KINDS: tuple[SearchType, ...] = (
    SearchType.USER,
    SearchType.POST,
    SearchType.TAKE,
    SearchType.LOCATION,
    SearchType.HASHTAG,
)


async def count(db: Database, kind: SearchType) -> int:
    async with db.session() as session:
        if kind is SearchType.HASHTAG:
            tags = select(HashtagUseRow.platform, HashtagUseRow.tag).distinct().subquery()
            return int(await session.scalar(select(func.count()).select_from(tags)) or 0)
        table = _TABLES[kind]
        return int(await session.scalar(select(func.count()).select_from(table)) or 0)


_TABLES: dict[SearchType, Any] = {
    SearchType.USER: UserRow,
    SearchType.POST: PostRow,
    SearchType.TAKE: TakeRow,
    SearchType.LOCATION: LocationRow,
}


async def batches(
    db: Database, kind: SearchType, size: int = 1000
) -> AsyncIterator[list[SearchDoc]]:
    """Every document of a kind, `size` at a time, in key order (keyset reads: a
    long rebuild holds no transaction open)."""
    if kind is SearchType.HASHTAG:
        async for page in _hashtag_batches(db, size):
            yield page
        return
    table = _TABLES[kind]
    last = 0
    while True:
        async with db.session() as session:
            if kind is SearchType.POST:
                found = await session.execute(
                    select(PostRow, LocationRow)
                    .outerjoin(LocationRow, LocationRow.id == PostRow.location_id)
                    .where(PostRow.id > last)
                    .order_by(PostRow.id)
                    .limit(size)
                )
                pairs = list(found)
                docs: list[SearchDoc] = [post_doc(post, place) for post, place in pairs]
                ids = [post.id for post, _ in pairs]
            else:
                rows = list(
                    await session.scalars(
                        select(table).where(table.id > last).order_by(table.id).limit(size)
                    )
                )
                ids = [row.id for row in rows]
                docs = [_DOC_OF[kind](row) for row in rows]
        if not docs:
            return
        yield docs
        last = ids[-1]
        if len(docs) < size:
            return


_DOC_OF: dict[SearchType, Any] = {
    SearchType.USER: user_doc,
    SearchType.TAKE: take_doc,
    SearchType.LOCATION: location_doc,
}


async def _hashtag_batches(db: Database, size: int) -> AsyncIterator[list[SearchDoc]]:
    last: tuple[str, str] = ("", "")
    while True:
        async with db.session() as session:
            statement = (
                select(HashtagUseRow.platform, HashtagUseRow.tag, func.count())
                .group_by(HashtagUseRow.platform, HashtagUseRow.tag)
                .having(
                    (HashtagUseRow.platform > last[0])
                    | ((HashtagUseRow.platform == last[0]) & (HashtagUseRow.tag > last[1]))
                )
                .order_by(HashtagUseRow.platform, HashtagUseRow.tag)
                .limit(size)
            )
            rows = list(await session.execute(statement))
        if not rows:
            return
        yield [HashtagDoc(name=tag, platform=platform, usage_count=n) for platform, tag, n in rows]
        last = (rows[-1][0], rows[-1][1])
        if len(rows) < size:
            return


async def backfill_hashtag_uses(db: Database, size: int = 1000) -> int:
    """Bring `hashtag_uses` in line with every post's and take's `hashtags` (rows that
    predate the indexer, or a subject deleted while no indexer ran). Returns the
    number of subjects whose rows changed."""
    changed = 0
    for subject_type, table in ((POST, PostRow), (TAKE, TakeRow)):
        async with db.transaction() as session:
            orphans = select(table.id)  # subjects deleted while no indexer ran
            await session.execute(
                delete(HashtagUseRow).where(
                    HashtagUseRow.subject_type == subject_type,
                    HashtagUseRow.subject_id.not_in(orphans),
                )
            )
        last = 0
        while True:
            async with db.transaction() as session:
                rows = list(
                    await session.execute(
                        select(table.id, table.platform, table.hashtags, table.created_at)
                        .where(table.id > last)
                        .order_by(table.id)
                        .limit(size)
                    )
                )
                changed += await _sync_many(session, subject_type, rows)
            if len(rows) < size:
                break
            last = rows[-1][0]
    return changed


async def _sync_many(session: AsyncSession, subject_type: str, rows: Sequence[Any]) -> int:
    """sync_hashtag_uses for a batch of subjects in three statements."""
    if not rows:
        return 0
    ids = [row[0] for row in rows]
    stored: dict[int, set[str]] = {}
    found = await session.execute(
        select(HashtagUseRow.subject_id, HashtagUseRow.tag).where(
            HashtagUseRow.subject_type == subject_type, HashtagUseRow.subject_id.in_(ids)
        )
    )
    for pk, tag in found:
        stored.setdefault(pk, set()).add(tag)
    inserts: list[dict[str, Any]] = []
    stale: list[int] = []
    for pk, platform, raw, created_at in rows:
        wanted = set(_tags(raw))
        have = stored.get(pk, set())
        if wanted == have:
            continue
        if have - wanted:
            stale.append(pk)
            have = set()
        inserts += [
            {
                "platform": platform,
                "tag": tag,
                "subject_type": subject_type,
                "subject_id": pk,
                "used_at": created_at,
            }
            for tag in sorted(wanted - have)
        ]
    if stale:
        await session.execute(
            delete(HashtagUseRow).where(
                HashtagUseRow.subject_type == subject_type, HashtagUseRow.subject_id.in_(stale)
            )
        )
    for start in range(0, len(inserts), INSERT_CHUNK):  # bound the bind parameters
        chunk = inserts[start : start + INSERT_CHUNK]
        await session.execute(_insert(session).values(chunk).on_conflict_do_nothing())
    return len({row["subject_id"] for row in inserts} | set(stale))
