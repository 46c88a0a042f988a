"""SQL of hashtags: counts, trending, related tags, and the posts and takes of a tag.

Where each answer comes from, and why:

- Counts, trending and related tags read `hashtag_uses` (tables.py): one row per
  (post or take, tag) with the platform and the time of use, kept by the search
  indexer from the domain events. Its (platform, tag, used_at) and (platform,
  used_at) indexes answer all three with index range scans, over posts and takes
  alike (takes keep their tags only as JSON on the take row). These are aggregate
  figures, like the "N posts" under a tag on Instagram: they count every use,
  including posts the viewer cannot open, and never show the content. They follow
  the events, so they lag a write by the indexer's delay.
- The posts of a tag read the posts domain's own `post_hashtags` (written in the
  post's transaction) and filter with its visibility condition
  (datasources/posts/visibility.py): a page of 20 holds 20 posts the viewer may
  see. The takes of a tag read `hashtag_uses` for the tag and the take policy's SQL
  form (`visible_takes`).

Trending (`trending`): Mastodon's trending-tags score (app/models/trends/tags.rb,
https://github.com/mastodon/mastodon/blob/main/app/models/trends/tags.rb):

    expected = max(uses in the window before, 1)
    observed = uses in the window
    score    = (observed − expected)² / expected   when observed ≥ max(expected, MIN_USES)
             = 0                                  otherwise

It is the Pearson chi-square term of the observation against the previous window as
the expectation: it grows with the square of the surprise and shrinks with the
baseline, so 0 → 10 uses (81) beats 1,000 → 1,050 (2.5), and a steady tag scores 0
however big it is. MIN_USES (Mastodon's `threshold`, 5 by default there) keeps
two or three uses of a brand-new tag from topping the list. Mastodon counts
distinct accounts per day; the contract counts uses per window, so we do too. Ties
(zero scores included: tags used in the window but not growing come after the
growing ones rather than being dropped) go to the larger count, then the name.

Related tags (`related`): Jaccard similarity of the sets of posts and takes
carrying each tag, |A ∩ B| / |A ∪ B| = c / (n_a + n_b − c) (Jaccard 1912; Manning,
Raghavan & Schütze, Introduction to Information Retrieval, 2008, §3.3.4). Raw
co-occurrence counts would rank the tags that appear everywhere (#love, #instagood)
first for every tag; Jaccard divides by the union, so such a tag, sharing a small
part of its uses with any one tag, scores low. Pointwise mutual information,
log(c·N / (n_a·n_b)), normalises too, but overrates rare pairs: two tags used once,
together, get the maximum score (Manning & Schütze, Foundations of Statistical
Natural Language Processing, 1999, §5.4: "PMI is a bad measure of dependence for
sparse data"), and most tags are rare. Jaccard is bounded, needs no smoothing and
is symmetric. For a big tag only its SAMPLE most recent uses are scanned; the
co-occurrence count is then scaled by n_a / sample (the sample's share of the tag).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import Float, and_, case, cast, func, literal, select, tuple_

from datasources.loading import DataLoader
from datasources.posts.records import After, Slice, post_record
from datasources.posts.store import COUNT_CAP
from datasources.posts.tables import LocationRow, PostHashtagRow, PostRow
from datasources.posts.take_tables import TakeRow
from datasources.posts.takes_store import TakePage, to_take, visible_takes
from datasources.posts.visibility import visible_to
from datasources.search.tables import HashtagUseRow
from datasources.sql import Database, UTCDateTime, utcnow
from datasources.users.store import to_record as user_record
from datasources.users.tables import UserRow

MIN_USES = 5
"""A tag needs this many uses in the window to score (Mastodon's default threshold)."""
SAMPLE = 5000
"""Related tags look at the tag's most recent uses, at most this many."""
MAX_BATCH = 100


class Window(StrEnum):
    HOUR = "HOUR"
    DAY = "DAY"
    WEEK = "WEEK"

    @property
    def length(self) -> timedelta:
        return {"HOUR": timedelta(hours=1), "DAY": timedelta(days=1)}.get(
            self.value, timedelta(days=7)
        )


@dataclass(frozen=True)
class TagCounts:
    name: str
    posts: int = 0
    takes: int = 0

    @property
    def used(self) -> bool:
        return self.posts + self.takes > 0


@dataclass(frozen=True)
class Trending:
    name: str
    count: int
    previous_count: int
    score: float

    @property
    def growth_rate(self) -> float:
        """The contract's (count − previousCount) / max(previousCount, 1)."""
        return (self.count - self.previous_count) / max(self.previous_count, 1)


@dataclass(frozen=True)
class Related:
    name: str
    co_uses: int  # in the scanned sample
    similarity: float


def _at(moment: datetime) -> Any:
    return literal(moment, UTCDateTime())


class HashtagStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def counts(self, platform: str, names: Sequence[str]) -> dict[str, TagCounts]:
        """Uses by posts and by takes of each name (every name answered; 0 when unused)."""
        found = {name: TagCounts(name) for name in names}
        if not names:
            return found
        kind = HashtagUseRow.subject_type
        stmt = (
            select(HashtagUseRow.tag, kind, func.count())
            .where(HashtagUseRow.platform == platform, HashtagUseRow.tag.in_(sorted(set(names))))
            .group_by(HashtagUseRow.tag, kind)
        )
        async with self.db.session() as session:
            rows = (await session.execute(stmt)).all()
        posts: dict[str, int] = {}
        takes: dict[str, int] = {}
        for tag, subject_type, count in rows:
            (posts if subject_type == "post" else takes)[tag] = int(count)
        return {name: TagCounts(name, posts.get(name, 0), takes.get(name, 0)) for name in found}

    async def trending(
        self, platform: str, window: Window, limit: int, now: datetime | None = None
    ) -> list[Trending]:
        """Tags used in the window ending at `now`, by the score of the module docstring."""
        now = now or utcnow()
        start, before = now - window.length, now - 2 * window.length
        recent = HashtagUseRow.used_at >= _at(start)
        observed = func.sum(case((recent, 1), else_=0))
        previous = func.sum(case((recent, 0), else_=1))
        expected = case((previous < 1, 1), else_=previous)
        surprise = cast(observed - expected, Float)
        score = case(
            ((observed < MIN_USES) | (observed < expected), 0.0),
            else_=surprise * surprise / cast(expected, Float),
        )
        stmt = (
            select(HashtagUseRow.tag, observed, previous, score.label("score"))
            .where(
                HashtagUseRow.platform == platform,
                HashtagUseRow.used_at >= _at(before),
                HashtagUseRow.used_at < _at(now),
            )
            .group_by(HashtagUseRow.tag)
            .having(observed > 0)
            .order_by(score.desc(), observed.desc(), HashtagUseRow.tag)
            .limit(limit)
        )
        async with self.db.session() as session:
            rows = (await session.execute(stmt)).all()
        return [Trending(tag, int(count), int(prev), float(s)) for tag, count, prev, s in rows]

    async def related(self, platform: str, name: str, limit: int) -> list[Related]:
        """Tags used on the same posts and takes as `name`, by Jaccard similarity."""
        if limit <= 0:
            return []
        this = HashtagUseRow.__table__.alias("this")
        other = HashtagUseRow.__table__.alias("other")
        total = HashtagUseRow.__table__.alias("total")
        async with self.db.session() as session:
            n_a = int(
                await session.scalar(
                    select(func.count()).where(
                        HashtagUseRow.platform == platform, HashtagUseRow.tag == name
                    )
                )
                or 0
            )
            if n_a == 0:
                return []
            sample = (
                select(this.c.subject_type, this.c.subject_id)
                .where(this.c.platform == platform, this.c.tag == name)
                .order_by(this.c.used_at.desc())
                .limit(SAMPLE)
                .subquery("sample")
            )
            co = (
                select(other.c.tag.label("tag"), func.count().label("c"))
                .join(
                    sample,
                    and_(
                        other.c.subject_type == sample.c.subject_type,
                        other.c.subject_id == sample.c.subject_id,
                    ),
                )
                .where(other.c.platform == platform, other.c.tag != name)
                .group_by(other.c.tag)
                .subquery("co")
            )
            uses = (
                select(total.c.tag.label("tag"), func.count().label("n"))
                .where(total.c.platform == platform, total.c.tag.in_(select(co.c.tag)))
                .group_by(total.c.tag)
                .subquery("uses")
            )
            scale = n_a / min(n_a, SAMPLE)
            shared = cast(co.c.c, Float) * scale
            similarity = shared / (literal(float(n_a)) + cast(uses.c.n, Float) - shared)
            stmt = (
                select(co.c.tag, co.c.c, similarity.label("similarity"))
                .join(uses, uses.c.tag == co.c.tag)
                .order_by(similarity.desc(), co.c.c.desc(), co.c.tag)
                .limit(limit)
            )
            rows = (await session.execute(stmt)).all()
        return [Related(tag, int(c), float(s)) for tag, c, s in rows]

    async def posts(
        self, platform: str, name: str, viewer_id: int | None, after: After | None, limit: int
    ) -> Slice[Any]:
        """Posts carrying the tag that the viewer may see, newest first; authors joined
        along (for the user loader). `total` counts at most COUNT_CAP of them."""
        where: list[Any] = [
            PostHashtagRow.tag == name,
            PostRow.platform == platform,
            visible_to(viewer_id),
        ]
        counted = (
            select(PostRow.id)
            .join(PostHashtagRow, PostHashtagRow.post_id == PostRow.id)
            .join(UserRow, UserRow.id == PostRow.author_id)
            .where(*where)
            .limit(COUNT_CAP)
            .subquery()
        )
        if after is not None:
            where.append(
                tuple_(PostRow.created_at, PostRow.id) < tuple_(_at(after.at), literal(after.id))
            )
        stmt = (
            select(PostRow, LocationRow, UserRow)
            .join(PostHashtagRow, PostHashtagRow.post_id == PostRow.id)
            .join(UserRow, UserRow.id == PostRow.author_id)
            .outerjoin(LocationRow, LocationRow.id == PostRow.location_id)
            .where(*where)
            .order_by(PostRow.created_at.desc(), PostRow.id.desc())
            .limit(limit + 1)
        )
        page: Slice[Any] = Slice()
        async with self.db.session() as session:
            page.total = int(await session.scalar(select(func.count()).select_from(counted)) or 0)
            rows = (await session.execute(stmt)).all() if limit > 0 else []
        page.has_next = len(rows) > limit
        for post, location, author in rows[:limit]:
            page.items.append(post_record(post, location))
            page.times.append(post.created_at)
            page.users.append(user_record(author))
        return page

    async def takes(
        self,
        platform: str,
        name: str,
        viewer_id: int | None,
        after: tuple[datetime, int] | None,
        limit: int,
    ) -> tuple[TakePage, int]:
        """Takes carrying the tag that the viewer may see, newest first, and how many
        (at most COUNT_CAP counted)."""
        where: list[Any] = [
            HashtagUseRow.platform == platform,
            HashtagUseRow.subject_type == "take",
            HashtagUseRow.tag == name,
            TakeRow.platform == platform,
            visible_takes(viewer_id),
        ]

        def base(*columns: Any) -> Any:
            return (
                select(*columns)
                .join(HashtagUseRow, HashtagUseRow.subject_id == TakeRow.id)
                .join(UserRow, UserRow.id == TakeRow.author_id)
            )

        counted = base(TakeRow.id).where(*where).limit(COUNT_CAP).subquery()
        if after is not None:
            where.append(
                tuple_(TakeRow.created_at, TakeRow.id) < tuple_(_at(after[0]), literal(after[1]))
            )
        stmt = (
            base(TakeRow)
            .where(*where)
            .order_by(TakeRow.created_at.desc(), TakeRow.id.desc())
            .limit(limit + 1)
        )
        async with self.db.session() as session:
            total = int(await session.scalar(select(func.count()).select_from(counted)) or 0)
            rows = [to_take(r) for r in await session.scalars(stmt)] if limit > 0 else []
        return TakePage(rows[:limit], len(rows) > limit), total


class HashtagLoaders:
    """Per-request loader of tag counts: a page of hashtags (trending, related, search
    hits) reads its counts in one statement."""

    def __init__(self, store: HashtagStore, platform: str) -> None:
        self.store = store
        self.platform = platform
        self.counts = DataLoader[str, TagCounts](self._counts, max_batch_size=MAX_BATCH)

    async def _counts(self, names: Sequence[str]) -> list[TagCounts]:
        found = await self.store.counts(self.platform, names)
        return [found[name] for name in names]
