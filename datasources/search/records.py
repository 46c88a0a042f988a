"""Plain records of the search index: the documents callers index, the query they
ask and the hits they get back. No engine type leaks out of the index modules."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import ClassVar


class SearchType(StrEnum):
    USER = "USER"
    POST = "POST"
    TAKE = "TAKE"
    HASHTAG = "HASHTAG"
    LOCATION = "LOCATION"


ALL_TYPES = frozenset(SearchType)
# What autocomplete suggests when the caller names no types: things with a name.
SUGGEST_TYPES = frozenset({SearchType.USER, SearchType.HASHTAG, SearchType.LOCATION})
PUBLIC = "PUBLIC"


@dataclass(frozen=True, slots=True)
class UserDoc:
    type: ClassVar[SearchType] = SearchType.USER
    id: int
    platform: str
    username: str
    display_name: str | None = None
    bio: str | None = None
    is_private: bool = False
    follower_count: int = 0

    @property
    def doc_id(self) -> str:
        return str(self.id)


@dataclass(frozen=True, slots=True)
class _ContentDoc:
    """A post or a take: what its author wrote, where and when, and who may see it."""

    id: int
    platform: str
    author_id: int
    caption: str | None
    created_at: datetime
    hashtags: tuple[str, ...] = ()
    location_name: str | None = None
    latitude: float | None = None
    longitude: float | None = None
    like_count: int = 0
    visibility: str = PUBLIC  # PUBLIC | FOLLOWERS | FRIENDS | PRIVATE

    @property
    def doc_id(self) -> str:
        return str(self.id)


@dataclass(frozen=True, slots=True)
class PostDoc(_ContentDoc):
    type: ClassVar[SearchType] = SearchType.POST


@dataclass(frozen=True, slots=True)
class TakeDoc(_ContentDoc):
    type: ClassVar[SearchType] = SearchType.TAKE


@dataclass(frozen=True, slots=True)
class HashtagDoc:
    """A hashtag is named, not numbered: its id in hits is its name, case-folded and
    without '#', as posts carry it."""

    type: ClassVar[SearchType] = SearchType.HASHTAG
    name: str
    platform: str
    usage_count: int = 0

    @property
    def doc_id(self) -> str:
        return self.name


@dataclass(frozen=True, slots=True)
class LocationDoc:
    type: ClassVar[SearchType] = SearchType.LOCATION
    id: int
    platform: str
    name: str
    latitude: float
    longitude: float

    @property
    def doc_id(self) -> str:
        return str(self.id)


SearchDoc = UserDoc | PostDoc | TakeDoc | HashtagDoc | LocationDoc


def doc_key(platform: str, type_: SearchType, doc_id: str) -> str:
    """The index-wide identity of a document. Hashtag names repeat across platforms,
    so the platform is part of every key."""
    return f"{platform}:{type_.value}:{doc_id}"


@dataclass(frozen=True, slots=True)
class GeoFilter:
    latitude: float
    longitude: float
    radius_km: float


@dataclass(frozen=True, slots=True)
class SearchQuery:
    """One search. Filters on a field exclude the documents that lack it: `since`,
    `until`, `min_likes` and `author_id` keep only posts and takes; `near` keeps only
    documents with coordinates (locations, and posts and takes that have them).

    Privacy is decided by the caller, who knows the social graph; the index only
    applies it: posts and takes are returned when PUBLIC, or when their visibility
    is a key of `grants` and their author is in its set (e.g. {"FOLLOWERS":
    followed ids, "FRIENDS": friend ids, "PRIVATE": {viewer}}). Content by
    `excluded_author_ids` (blocked either way, private accounts the viewer cannot
    see) and accounts in `excluded_user_ids` (blocked either way) never come back.
    """

    platform: str
    text: str = ""
    types: frozenset[SearchType] | None = None
    since: datetime | None = None
    until: datetime | None = None
    near: GeoFilter | None = None
    min_likes: int | None = None
    author_id: int | None = None
    excluded_author_ids: frozenset[int] = frozenset()
    excluded_user_ids: frozenset[int] = frozenset()
    grants: dict[str, frozenset[int]] = field(default_factory=dict)
    # Accounts the viewer follows: their profiles and their content rank higher.
    boost_author_ids: frozenset[int] = frozenset()
    first: int = 20
    after: str | None = None
    # The clock of the recency decay; None = now. A cursor pins it for later pages.
    now: datetime | None = None


@dataclass(frozen=True, slots=True)
class SearchHit:
    type: SearchType
    id: str
    score: float
    highlight: str | None
    cursor: str
    doc: SearchDoc


@dataclass(frozen=True, slots=True)
class SearchPage:
    hits: list[SearchHit]
    total: int
    took_ms: float
    has_next_page: bool

    @property
    def end_cursor(self) -> str | None:
        return self.hits[-1].cursor if self.hits else None


@dataclass(frozen=True, slots=True)
class Suggestion:
    type: SearchType
    id: str
    text: str
    doc: SearchDoc


def utc(moment: datetime) -> datetime:
    """Naive datetimes are taken as UTC (SQLite gives them back naive)."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
