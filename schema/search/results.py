"""Search results, suggestions and history, and the root fields `search`,
`autocomplete`, `searchHistory` and `clearSearchHistory`.

Rules (privacy, ranking, validation): resolvers/search/search.py and history.py.
A hit's node is the current record, loaded and checked per request, never the
indexed copy.
"""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Annotated, Any

import strawberry
from strawberry.types import Info

from datasources.posts.records import LocationRecord, PostRecord
from datasources.posts.takes_store import TakeRecord
from datasources.search import records
from datasources.search.history import HistoryEntry
from resolvers.ids import encode_id
from resolvers.search import history as history_resolvers
from resolvers.search import search as resolvers
from schema.common import NO_CURSOR, PageInfo, given
from schema.posts.takes import Take
from schema.posts.types import Location, Post
from schema.search.hashtags import Hashtag
from schema.users.types import User


@strawberry.enum
class SearchType(Enum):
    USER = "USER"
    POST = "POST"
    TAKE = "TAKE"
    HASHTAG = "HASHTAG"
    LOCATION = "LOCATION"


SearchHit = Annotated[User | Post | Take | Hashtag | Location, strawberry.union("SearchHit")]


@strawberry.type
class SearchResult:
    score: float
    highlight: str | None = strawberry.field(
        description="the matched text with <em>…</em> around the hits"
    )
    node: SearchHit


@strawberry.type
class SearchResultEdge:
    cursor: str
    node: SearchResult


@strawberry.type
class SearchResultConnection:
    edges: list[SearchResultEdge]
    page_info: PageInfo
    total_count: int
    took_ms: float


@strawberry.type
class Suggestion:
    text: str
    type: SearchType
    node: SearchHit


@strawberry.type
class SearchHistoryEntry:
    entry: strawberry.Private[HistoryEntry]

    @strawberry.field
    def id(self) -> strawberry.ID:
        return strawberry.ID(encode_id("SearchHistoryEntry", self.entry.id))

    @strawberry.field
    def query(self) -> str:
        return self.entry.query

    @strawberry.field
    def type(self) -> SearchType | None:
        kind = self.entry.search_type
        return SearchType(kind) if kind in SearchType.__members__ else None

    @strawberry.field
    def searched_at(self) -> datetime:
        return self.entry.searched_at


@strawberry.input
class GeoInput:
    latitude: float
    longitude: float
    radius_km: float


@strawberry.input
class SearchFilter:
    types: list[SearchType] | None = strawberry.UNSET
    since: datetime | None = strawberry.UNSET
    until: datetime | None = strawberry.UNSET
    near: GeoInput | None = strawberry.UNSET
    min_likes: int | None = strawberry.UNSET
    author_id: strawberry.ID | None = strawberry.UNSET


def _types(chosen: list[SearchType] | None) -> frozenset[records.SearchType] | None:
    return None if chosen is None else frozenset(records.SearchType(t.value) for t in chosen)


def _filter(given_filter: SearchFilter | None) -> resolvers.Filter | None:
    if given_filter is None:
        return None
    near = given(given_filter.near)
    return resolvers.Filter(
        types=_types(given(given_filter.types)),
        since=given(given_filter.since),
        until=given(given_filter.until),
        near=None
        if near is None
        else records.GeoFilter(near.latitude, near.longitude, near.radius_km),
        min_likes=given(given_filter.min_likes),
        author_id=given(given_filter.author_id),
    )


def node_of(type_: records.SearchType, node: Any) -> Any:
    """The schema object of a checked hit's record."""
    if type_ is records.SearchType.USER:
        return User(record=node)
    if type_ is records.SearchType.POST:
        assert isinstance(node, PostRecord)
        return Post(record=node)
    if type_ is records.SearchType.TAKE:
        assert isinstance(node, TakeRecord)
        return Take(record=node)
    if type_ is records.SearchType.LOCATION:
        assert isinstance(node, LocationRecord)
        return Location(record=node)
    return Hashtag(name=str(node))


@strawberry.type
class SearchQuery:
    @strawberry.field(
        description="users, posts, takes, hashtags and places the viewer may see, in "
        "one ranked list (relevance, popularity, recency, accounts followed), typo tolerant"
    )
    async def search(
        self,
        info: Info,
        query: str,
        filter: SearchFilter | None = strawberry.UNSET,
        first: int | None = 20,
        after: str | None = NO_CURSOR,
    ) -> SearchResultConnection:
        found = await resolvers.search(
            info.context, query, _filter(given(filter)), first, given(after)
        )
        edges = [
            SearchResultEdge(
                cursor=item.hit.cursor,
                node=SearchResult(
                    score=item.hit.score,
                    highlight=item.hit.highlight,
                    node=node_of(item.hit.type, item.node),
                ),
            )
            for item in found.found
        ]
        return SearchResultConnection(
            edges=edges,
            page_info=PageInfo(
                has_next_page=found.has_next_page,
                has_previous_page=given(after) is not None,
                start=edges[0].cursor if edges else None,
                end=found.end_cursor,
            ),
            total_count=found.total,
            took_ms=found.took_ms,
        )

    @strawberry.field(
        description="usernames, display names, hashtags and places starting with the "
        "prefix; accounts the viewer follows first"
    )
    async def autocomplete(
        self,
        info: Info,
        prefix: str,
        types: list[SearchType] | None = strawberry.UNSET,
        limit: int | None = 8,
    ) -> list[Suggestion]:
        found = await resolvers.autocomplete(info.context, prefix, _types(given(types)), limit)
        return [
            Suggestion(
                text=suggestion.text,
                type=SearchType(suggestion.type.value),
                node=node_of(suggestion.type, node),
            )
            for suggestion, node in found
        ]

    @strawberry.field(description="the signed-in viewer's latest searches, newest first")
    async def search_history(self, info: Info, limit: int | None = 20) -> list[SearchHistoryEntry]:
        entries = await history_resolvers.history(info.context, limit)
        return [SearchHistoryEntry(entry=entry) for entry in entries]


@strawberry.type
class SearchMutation:
    @strawberry.mutation(description="forget the signed-in viewer's search history")
    async def clear_search_history(self, info: Info) -> bool:
        return await history_resolvers.clear(info.context)
