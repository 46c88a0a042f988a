"""GraphQL types of Takes: Take, BehindTheTake, TakeTemplate, TakeTrend and inputs.

Every object here wraps a record the resolvers already allowed for the viewer
(resolvers/posts/take_policy.py); fields that reach further (author, video,
template, trend, originator) load through the per-request DataLoaders, so a
page of takes costs one query per kind of field, not one per take.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, TypeVar

import strawberry
from strawberry.types import Info

from datasources.posts.takes_store import (
    BehindRecord,
    SlotRecord,
    StepRecord,
    TakeRecord,
    TemplateRecord,
    TrendRecord,
)
from resolvers.errors import NotFound
from resolvers.ids import encode_id
from resolvers.posts import takes as take_resolvers
from resolvers.posts import templates as template_resolvers
from resolvers.posts import trends as trend_resolvers
from resolvers.posts.take_cursors import Listing
from schema.common import (
    NO_CURSOR,
    Connection,
    Edge,
    Node,
    edges_connection,
    given,
    node_selection,
)
from schema.references import load_media, load_user

if TYPE_CHECKING:
    from schema.media.types import Media
    from schema.posts.types import Comment
    from schema.users.types import User

R = TypeVar("R")
N = TypeVar("N")


def listing_connection(listing: Listing[R], wrap: Callable[[R], N]) -> Connection[N]:
    """A resolver's page (cursors already encoded) as a Relay connection."""
    edges = [Edge(position=cursor, node=wrap(item)) for cursor, item in listing.items]
    return edges_connection(edges, listing.has_next, listing.has_previous, listing.total_count)


UserType = Annotated["User", strawberry.lazy("schema.users.types")]
MediaType = Annotated["Media", strawberry.lazy("schema.media.types")]


@strawberry.federation.type(keys=["id"], name="Take")
class Take(Node):
    record: strawberry.Private[TakeRecord]

    @strawberry.field
    def id(self) -> strawberry.ID:
        return strawberry.ID(encode_id("Take", self.record.id))

    @strawberry.field
    async def author(self, info: Info) -> UserType:
        return await load_user(info, self.record.author_id)

    @strawberry.field
    async def video(self, info: Info) -> MediaType:
        media = await load_media(info, self.record.video_media_id)
        if media is None:
            raise NotFound("media")
        return media

    @strawberry.field
    def caption(self) -> str | None:
        return self.record.caption

    @strawberry.field
    def hashtags(self) -> list[str]:
        return list(self.record.hashtags)

    @strawberry.field
    def sound_name(self) -> str | None:
        return self.record.sound_name

    @strawberry.field
    def duration_ms(self) -> int:
        return self.record.duration_ms

    @strawberry.field
    def view_count(self) -> int:
        return self.record.view_count

    @strawberry.field
    def like_count(self) -> int:
        return self.record.like_count

    @strawberry.field
    def comment_count(self) -> int:
        return self.record.comment_count

    @strawberry.field
    def share_count(self) -> int:
        return self.record.share_count

    @strawberry.field
    async def viewer_has_liked(self, info: Info) -> bool:
        return await take_resolvers.viewer_has_liked(info.context, self.record)

    @strawberry.field
    def created_at(self) -> datetime:
        return self.record.created_at

    @strawberry.field
    async def template(self, info: Info) -> TakeTemplate | None:
        found = await template_resolvers.template_of(info.context, self.record)
        return TakeTemplate(record=found) if found else None

    @strawberry.field
    async def trend(self, info: Info) -> TakeTrend | None:
        found = await trend_resolvers.trend_of(info.context, self.record)
        return TakeTrend(record=found) if found else None

    @strawberry.field(
        description="the take that started the trend this take joined (deep link); "
        "null outside trends"
    )
    async def originator(self, info: Info) -> Take | None:
        found = await trend_resolvers.originator_of(info.context, self.record)
        return Take(record=found) if found else None

    @strawberry.field
    async def comments(
        self, info: Info, first: int | None = 20, after: str | None = NO_CURSOR
    ) -> Connection[Annotated[Comment, strawberry.lazy("schema.posts.types")]]:
        from schema.posts.types import comments_connection

        return await comments_connection(info, "take", self.record.id, first, given(after))

    @strawberry.field
    async def behind_the_take(self, info: Info) -> BehindTheTake | None:
        found = await take_resolvers.behind_the_take(info.context, self.record)
        return BehindTheTake(record=found) if found else None

    @classmethod
    async def resolve_reference(cls, info: Info, id: strawberry.ID) -> Take | None:
        found = await take_resolvers.take_by_global_id(info.context, id)
        return cls(record=found) if found else None


def takes_connection(listing: Listing[TakeRecord]) -> Connection[Take]:
    return listing_connection(listing, lambda record: Take(record=record))


async def prefetched_takes(info: Info, listing: Listing[TakeRecord]) -> Connection[Take]:
    """`takes_connection`, after loading in one batch per kind what the selection
    asks of the nodes (author, video, template, trend, originator, likes)."""
    await take_resolvers.prefetch(
        info.context, [record for _, record in listing.items], node_selection(info)
    )
    return takes_connection(listing)


@strawberry.type
class BehindTheTakeStep:
    record: strawberry.Private[StepRecord]

    @strawberry.field
    def position(self) -> int:
        return self.record.position

    @strawberry.field
    def title(self) -> str:
        return self.record.title

    @strawberry.field
    def body(self) -> str | None:
        return self.record.body

    @strawberry.field
    async def media(self, info: Info) -> MediaType | None:
        return await load_media(info, self.record.media_id)


@strawberry.federation.type(keys=["id"], name="BehindTheTake")
class BehindTheTake(Node):
    record: strawberry.Private[BehindRecord]

    @strawberry.field
    def id(self) -> strawberry.ID:
        return strawberry.ID(encode_id("BehindTheTake", self.record.id))

    @strawberry.field
    async def take(self, info: Info) -> Take:
        found = await take_resolvers.visible_take(info.context, self.record.take_id)
        if found is None:
            raise NotFound("take")
        return Take(record=found)

    @strawberry.field
    def steps(self) -> list[BehindTheTakeStep]:
        return [BehindTheTakeStep(record=step) for step in self.record.steps]

    @strawberry.field
    def tools(self) -> list[str]:
        return list(self.record.tools)

    @strawberry.field
    def created_at(self) -> datetime:
        return self.record.created_at

    @classmethod
    async def resolve_reference(cls, info: Info, id: strawberry.ID) -> BehindTheTake | None:
        found = await take_resolvers.behind_by_global_id(info.context, id)
        return cls(record=found) if found else None


@strawberry.type
class TemplateSlot:
    record: strawberry.Private[SlotRecord]

    @strawberry.field
    def position(self) -> int:
        return self.record.position

    @strawberry.field
    def duration_ms(self) -> int:
        return self.record.duration_ms

    @strawberry.field
    def hint(self) -> str | None:
        return self.record.hint


@strawberry.federation.type(keys=["id"], name="TakeTemplate")
class TakeTemplate(Node):
    record: strawberry.Private[TemplateRecord]

    @strawberry.field
    def id(self) -> strawberry.ID:
        return strawberry.ID(encode_id("TakeTemplate", self.record.id))

    @strawberry.field
    async def creator(self, info: Info) -> UserType:
        return await load_user(info, self.record.creator_id)

    @strawberry.field
    def name(self) -> str:
        return self.record.name

    @strawberry.field
    def description(self) -> str | None:
        return self.record.description

    @strawberry.field
    async def source_take(self, info: Info) -> Take | None:
        found = await template_resolvers.source_take(info.context, self.record)
        return Take(record=found) if found else None

    @strawberry.field
    def slots(self) -> list[TemplateSlot]:
        return [TemplateSlot(record=slot) for slot in self.record.slots]

    @strawberry.field
    def use_count(self) -> int:
        return self.record.use_count

    @strawberry.field
    async def takes(
        self, info: Info, first: int | None = 20, after: str | None = NO_CURSOR
    ) -> Connection[Take]:
        return takes_connection(
            await template_resolvers.template_takes(info.context, self.record, first, given(after))
        )

    @strawberry.field
    def created_at(self) -> datetime:
        return self.record.created_at

    @classmethod
    async def resolve_reference(cls, info: Info, id: strawberry.ID) -> TakeTemplate | None:
        found = await template_resolvers.template_by_global_id(info.context, id)
        return cls(record=found) if found else None


@strawberry.federation.type(keys=["id"], name="TakeTrend")
class TakeTrend(Node):
    record: strawberry.Private[TrendRecord]

    @strawberry.field
    def id(self) -> strawberry.ID:
        return strawberry.ID(encode_id("TakeTrend", self.record.id))

    @strawberry.field
    def name(self) -> str:
        return self.record.name

    @strawberry.field
    def hashtag(self) -> str:
        return self.record.hashtag

    @strawberry.field
    async def originator(self, info: Info) -> Take:
        return Take(record=await trend_resolvers.trend_originator(info.context, self.record))

    @strawberry.field
    async def originator_author(self, info: Info) -> UserType:
        return await load_user(info, self.record.originator_author_id)

    @strawberry.field
    def participant_count(self) -> int:
        return self.record.participant_count

    @strawberry.field
    async def participants(
        self, info: Info, first: int | None = 20, after: str | None = NO_CURSOR
    ) -> Connection[Take]:
        listing = await trend_resolvers.participants(info.context, self.record, first, given(after))
        return await prefetched_takes(info, listing)

    @strawberry.field
    def created_at(self) -> datetime:
        return self.record.created_at

    @classmethod
    async def resolve_reference(cls, info: Info, id: strawberry.ID) -> TakeTrend | None:
        found = await trend_resolvers.trend_by_global_id(info.context, id)
        return cls(record=found) if found else None


# ── inputs ───────────────────────────────────────────────────────────────


@strawberry.input
class CreateTakeInput:
    video_media_id: strawberry.ID
    caption: str | None = strawberry.UNSET
    sound_name: str | None = strawberry.UNSET
    template_id: strawberry.ID | None = strawberry.UNSET
    trend_id: strawberry.ID | None = strawberry.UNSET


@strawberry.input
class BehindTheTakeStepInput:
    title: str
    body: str | None = strawberry.UNSET
    media_id: strawberry.ID | None = strawberry.UNSET


@strawberry.input
class AddBehindTheTakeInput:
    take_id: strawberry.ID
    steps: list[BehindTheTakeStepInput]
    tools: list[str] | None = strawberry.field(default_factory=list)


@strawberry.input
class TemplateSlotInput:
    duration_ms: int
    hint: str | None = strawberry.UNSET


@strawberry.input
class CreateTakeTemplateInput:
    name: str
    description: str | None = strawberry.UNSET
    source_take_id: strawberry.ID | None = strawberry.UNSET
    slots: list[TemplateSlotInput]


@strawberry.input
class StartTrendInput:
    take_id: strawberry.ID
    name: str
    hashtag: str
