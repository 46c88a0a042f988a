"""Plain records of the posts store: what resolvers get back, never ORM rows."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, TypeVar

from datasources.media.store import MediaRecord
from datasources.media.tables import MediaRow
from datasources.posts.sqlutil import record_columns, table_of
from datasources.posts.tables import CommentRow, LocationRow, PostRow
from datasources.users.store import UserRecord
from datasources.users.tables import UserRow

T = TypeVar("T")


class Gone(Exception):
    """A row a write depends on disappeared meanwhile (e.g. deleted concurrently)."""


@dataclass(frozen=True)
class LocationRecord:
    id: int
    name: str
    latitude: float
    longitude: float


@dataclass(frozen=True)
class NewLocation:
    name: str
    latitude: float
    longitude: float


@dataclass(frozen=True)
class PostRecord:
    id: int
    platform: str
    author_id: int
    caption: str | None
    hashtags: tuple[str, ...]
    visibility: str
    location: LocationRecord | None
    shared_post_id: int | None
    like_count: int
    comment_count: int
    share_count: int
    save_count: int
    created_at: datetime
    edited_at: datetime | None


@dataclass(frozen=True)
class NewPost:
    """A post as validated by the resolver; media and mentions already resolved to ids."""

    platform: str
    author_id: int
    caption: str | None
    hashtags: tuple[str, ...]
    visibility: str
    media_ids: tuple[int, ...] = ()
    mention_ids: tuple[int, ...] = ()
    location: NewLocation | None = None
    shared_post_id: int | None = None


@dataclass(frozen=True)
class CommentRecord:
    id: int
    platform: str
    subject_type: str
    subject_id: int
    parent_id: int | None
    author_id: int
    body: str
    like_count: int
    created_at: datetime


@dataclass(frozen=True)
class Subject:
    """What a comment is on: its kind, row id and author (for events and deletion rights)."""

    type: str  # post | take
    id: int
    author_id: int


@dataclass(frozen=True)
class After:
    """Keyset position: items strictly past (at, id) in the list's order come next."""

    at: datetime
    id: int


@dataclass
class Slice(Generic[T]):
    """One page of a list: the items, their sort times, whether more follow, the total."""

    items: list[T] = field(default_factory=list)
    times: list[datetime] = field(default_factory=list)
    has_next: bool = False
    total: int = 0
    users: list[UserRecord] = field(default_factory=list)  # rows joined along (to prime)
    extras: PageExtras | None = None  # what hangs off a page of posts, read along

    def take(self, item: T, at: datetime, limit: int, user: UserRecord | None = None) -> None:
        """One row of a per-key page read with `limit + 1` rows per key: the extra
        row only says that more follow."""
        if len(self.items) < limit:
            self.items.append(item)
            self.times.append(at)
            if user is not None:
                self.users.append(user)
        else:
            self.has_next = True


@dataclass(frozen=True)
class Extras:
    """What to read along with a page of posts, on the page's own connection: each
    post's media, the viewer's likes and saves, the first page of comments."""

    media: bool = False
    marks_of: int | None = None  # the viewer whose likes and saves to read
    comments: tuple[int, After | None] | None = None  # (limit, after) of each post's comments
    viewer_id: int | None = None  # whose blocks hide comments


@dataclass
class PageExtras:
    media: dict[int, list[MediaRecord]] | None = None
    marks: dict[int, frozenset[str]] | None = None
    comments: dict[int, Slice[CommentRecord]] | None = None


_POSTS = table_of(PostRow).c
POST_COLUMNS: tuple[Any, ...] = (
    _POSTS.id,
    _POSTS.platform,
    _POSTS.author_id,
    _POSTS.caption,
    _POSTS.hashtags,
    _POSTS.visibility,
    _POSTS.shared_post_id,
    _POSTS.like_count,
    _POSTS.comment_count,
    _POSTS.share_count,
    _POSTS.save_count,
    _POSTS.created_at,
    _POSTS.edited_at,
    *record_columns(table_of(LocationRow), LocationRecord),
)
"""A post and its location (outer joined) as Core columns: `post_of` builds the record."""
USER_COLUMNS = record_columns(table_of(UserRow), UserRecord)
MEDIA_COLUMNS = record_columns(table_of(MediaRow), MediaRecord)
COMMENT_COLUMNS = record_columns(table_of(CommentRow), CommentRecord)


def post_of(row: Sequence[Any]) -> PostRecord:
    """The record of the POST_COLUMNS at the start of `row`."""
    (pk, platform, author_id, caption, tags, visibility, shared, likes, comments, shares) = row[:10]
    saves, created_at, edited_at, location_id, name, latitude, longitude = row[10:17]
    location = None
    if location_id is not None:
        location = LocationRecord(location_id, name, latitude, longitude)
    return PostRecord(
        pk,
        platform,
        author_id,
        caption,
        tuple(json.loads(tags or "[]")),
        visibility,
        location,
        shared,
        likes,
        comments,
        shares,
        saves,
        created_at,
        edited_at,
    )


def location_record(row: LocationRow | None) -> LocationRecord | None:
    if row is None:
        return None
    return LocationRecord(row.id, row.name, row.latitude, row.longitude)


def post_record(row: PostRow, location: LocationRow | None) -> PostRecord:
    return PostRecord(
        id=row.id,
        platform=row.platform,
        author_id=row.author_id,
        caption=row.caption,
        hashtags=tuple(json.loads(row.hashtags or "[]")),
        visibility=row.visibility,
        location=location_record(location),
        shared_post_id=row.shared_post_id,
        like_count=row.like_count,
        comment_count=row.comment_count,
        share_count=row.share_count,
        save_count=row.save_count,
        created_at=row.created_at,
        edited_at=row.edited_at,
    )


def comment_record(row: CommentRow) -> CommentRecord:
    return CommentRecord(
        id=row.id,
        platform=row.platform,
        subject_type=row.subject_type,
        subject_id=row.subject_id,
        parent_id=row.parent_id,
        author_id=row.author_id,
        body=row.body,
        like_count=row.like_count,
        created_at=row.created_at,
    )
