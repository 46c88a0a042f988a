"""GraphQL types of stories: Story, the ten stickers, viewers, replies, insights,
the tray and highlights.

Every Story object wraps a record resolvers/stories/policy.py allowed for the
viewer. Author-only fields (viewCount, viewers, replies, insights, a question's
responses) raise FORBIDDEN for anyone else. Counts and aggregates load through
the per-request DataLoaders (datasources/stories/loaders.py): a tray of many
stories costs one store call per kind of field, not one per story.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

import strawberry
from strawberry.types import Info

from datasources.stories.records import (
    BACK_TAPS,
    EXITS,
    FORWARD_TAPS,
    IMPRESSIONS,
    STICKER_TAPS,
    HighlightRecord,
    ReplyRecord,
    ResponseRecord,
    StoryRecord,
    Tally,
    ViewRecord,
    link_taps_counter,
)
from resolvers.errors import NotFound
from resolvers.ids import encode_id, key_of
from resolvers.stories import highlights as highlight_resolvers
from resolvers.stories import policy
from resolvers.stories import responses as response_resolvers
from resolvers.stories import stories as story_resolvers
from resolvers.stories.stories import TrayItem
from schema.common import NO_CURSOR, Connection, Node, connection, given
from schema.references import load_media, load_user
from schema.stories.inputs import StoryAudience

if TYPE_CHECKING:
    from schema.media.types import Media
    from schema.posts.types import Location
    from schema.users.types import User

UserType = Annotated["User", strawberry.lazy("schema.users.types")]
MediaType = Annotated["Media", strawberry.lazy("schema.media.types")]
LocationType = Annotated["Location", strawberry.lazy("schema.posts.types")]


def _percent(part: int, whole: int) -> float:
    return round(100.0 * part / whole, 2) if whole else 0.0


# ── stickers ───────────────────────────────────────────────────────────


@strawberry.interface(name="Sticker")
class Sticker:
    story: strawberry.Private[StoryRecord]
    index: strawberry.Private[int]

    @strawberry.field
    def id(self) -> strawberry.ID:
        return strawberry.ID(response_resolvers.sticker_id(self.story.id, self.index))

    @property
    def data(self) -> dict[str, Any]:
        return self.story.stickers[self.index]

    @strawberry.field(description="position and size on the story, each 0..1 of the frame")
    def x(self) -> float:
        return float(self.data["x"])

    @strawberry.field
    def y(self) -> float:
        return float(self.data["y"])

    @strawberry.field
    def width(self) -> float:
        return float(self.data["width"])

    @strawberry.field
    def height(self) -> float:
        return float(self.data["height"])

    @strawberry.field
    def rotation(self) -> float:
        return float(self.data["rotation"])

    async def tally(self, info: Info) -> Tally:
        tallies = await info.context.loaders.stories.tallies.load(self.story.id)
        return tallies.get(self.index, Tally())

    async def mine(self, info: Info) -> ResponseRecord | None:
        return await response_resolvers.own_response(info.context, self.story, self.index)


@strawberry.type
class PollOption:
    text: str
    vote_count: int
    percent: float


@strawberry.type(name="PollSticker")
class PollSticker(Sticker):
    @strawberry.field
    def question(self) -> str:
        return str(self.data["question"])

    @strawberry.field
    async def options(self, info: Info) -> list[PollOption]:
        tally = await self.tally(info)
        total = sum(tally.option_counts.values())
        return [
            PollOption(
                text=text,
                vote_count=tally.option_counts.get(i, 0),
                percent=_percent(tally.option_counts.get(i, 0), total),
            )
            for i, text in enumerate(self.data["options"])
        ]

    @strawberry.field
    async def viewer_vote(self, info: Info) -> int | None:
        mine = await self.mine(info)
        return mine.option if mine else None


@strawberry.type(name="QuizSticker")
class QuizSticker(Sticker):
    @strawberry.field
    def question(self) -> str:
        return str(self.data["question"])

    @strawberry.field
    def options(self) -> list[str]:
        return list(self.data["options"])

    @strawberry.field(description="null until the viewer answered (always visible to the author)")
    async def correct_option(self, info: Info) -> int | None:
        if info.context.viewer_id == self.story.author_id or await self.mine(info):
            return int(self.data["correctOption"])
        return None

    @strawberry.field
    async def viewer_answer(self, info: Info) -> int | None:
        mine = await self.mine(info)
        return mine.option if mine else None

    @strawberry.field
    async def answer_counts(self, info: Info) -> list[int]:
        tally = await self.tally(info)
        return [tally.option_counts.get(i, 0) for i in range(len(self.data["options"]))]


@strawberry.type
class StickerResponse:
    record: strawberry.Private[ResponseRecord]

    @strawberry.field
    async def user(self, info: Info) -> UserType:
        return await load_user(info, self.record.user_id)

    @strawberry.field
    def text(self) -> str | None:
        return self.record.text

    @strawberry.field
    def created_at(self) -> datetime:
        return self.record.created_at


@strawberry.type(name="QuestionSticker")
class QuestionSticker(Sticker):
    @strawberry.field
    def prompt(self) -> str:
        return str(self.data["prompt"])

    @strawberry.field
    async def viewer_response(self, info: Info) -> str | None:
        mine = await self.mine(info)
        return mine.text if mine else None

    @strawberry.field(description="author only")
    async def responses(
        self, info: Info, first: int | None = 20, after: str | None = NO_CURSOR
    ) -> Connection[StickerResponse]:
        page = await response_resolvers.question_responses(
            info.context, self.story, self.index, first, given(after)
        )
        return connection(page.map(lambda r: StickerResponse(record=r)))


@strawberry.type(name="CountdownSticker")
class CountdownSticker(Sticker):
    @strawberry.field
    def title(self) -> str:
        return str(self.data["title"])

    @strawberry.field
    def ends_at(self) -> datetime:
        return datetime.fromisoformat(self.data["endsAt"])

    @strawberry.field
    async def subscriber_count(self, info: Info) -> int:
        return (await self.tally(info)).count

    @strawberry.field
    async def viewer_is_subscribed(self, info: Info) -> bool:
        return await self.mine(info) is not None


@strawberry.type(name="SliderSticker")
class SliderSticker(Sticker):
    @strawberry.field
    def question(self) -> str:
        return str(self.data["question"])

    @strawberry.field
    def emoji(self) -> str:
        return str(self.data["emoji"])

    @strawberry.field(description="mean of responses, 0..1; null with no responses")
    async def average_value(self, info: Info) -> float | None:
        tally = await self.tally(info)
        return tally.value_sum / tally.count if tally.count else None

    @strawberry.field
    async def response_count(self, info: Info) -> int:
        return (await self.tally(info)).count

    @strawberry.field
    async def viewer_value(self, info: Info) -> float | None:
        mine = await self.mine(info)
        return mine.value if mine else None


@strawberry.type(name="MentionSticker")
class MentionSticker(Sticker):
    @strawberry.field
    async def user(self, info: Info) -> UserType:
        return await load_user(info, int(self.data["userId"]))


@strawberry.type(name="LinkSticker")
class LinkSticker(Sticker):
    @strawberry.field
    def url(self) -> str:
        return str(self.data["url"])

    @strawberry.field
    def label(self) -> str | None:
        return self.data.get("label")

    @strawberry.field
    async def tap_count(self, info: Info) -> int:
        counters = await info.context.loaders.stories.counters.load(self.story.id)
        return counters.get(link_taps_counter(self.index), 0)


@strawberry.type(name="LocationSticker")
class LocationSticker(Sticker):
    @strawberry.field
    async def location(self, info: Info) -> LocationType:
        from schema.posts.types import Location

        record = await info.context.loaders.posts.location.load(int(self.data["locationId"]))
        if record is None:
            raise NotFound("location")
        return Location(record=record)


@strawberry.type(name="HashtagSticker")
class HashtagSticker(Sticker):
    @strawberry.field
    def hashtag(self) -> str:
        return str(self.data["hashtag"])


@strawberry.type(name="AddYoursSticker")
class AddYoursSticker(Sticker):
    @strawberry.field
    def prompt(self) -> str:
        return str(self.data["prompt"])

    @property
    def origin_id(self) -> int:
        origin = self.data.get("originStoryId")
        return int(origin) if origin is not None else self.story.id

    @strawberry.field(description="stories that answered this prompt")
    async def participant_count(self, info: Info) -> int:
        return await info.context.loaders.stories.add_yours_count.load(self.origin_id)

    @strawberry.field
    async def origin_story(self, info: Info) -> Story | None:
        origin = await info.context.loaders.stories.by_id.load(self.origin_id)
        if origin is None or not await policy.allows(info.context, origin):
            return None
        return Story(record=origin)


STICKER_TYPES: dict[str, type[Sticker]] = {
    "POLL": PollSticker,
    "QUIZ": QuizSticker,
    "QUESTION": QuestionSticker,
    "COUNTDOWN": CountdownSticker,
    "SLIDER": SliderSticker,
    "MENTION": MentionSticker,
    "LINK": LinkSticker,
    "LOCATION": LocationSticker,
    "HASHTAG": HashtagSticker,
    "ADD_YOURS": AddYoursSticker,
}


def sticker_object(story: StoryRecord, index: int) -> Sticker:
    kind = STICKER_TYPES[story.stickers[index]["type"]]
    return kind(story=story, index=index)  # type: ignore[call-arg]


async def shown_stickers(info: Info, story: StoryRecord) -> list[Sticker]:
    """The story's stickers, leaving out mentions of users the viewer cannot see
    (deleted accounts, a block either way with the viewer)."""
    shown: list[Sticker] = []
    for index, data in enumerate(story.stickers):
        if data["type"] == "MENTION" and not await _mention_visible(info, int(data["userId"])):
            continue
        shown.append(sticker_object(story, index))
    return shown


async def _mention_visible(info: Info, user_id: int) -> bool:
    user = await info.context.loaders.users.by_id.load(user_id)
    if user is None:
        return False
    rel = await policy.relationship(info.context, user_id)
    return not (rel.blocking or rel.blocked_by)


# ── Story ──────────────────────────────────────────────────────────────


@strawberry.type
class StoryViewer:
    record: strawberry.Private[ViewRecord]

    @strawberry.field
    async def user(self, info: Info) -> UserType:
        return await load_user(info, self.record.viewer_id)

    @strawberry.field
    def viewed_at(self) -> datetime:
        return self.record.viewed_at

    @strawberry.field
    def reaction(self) -> str | None:
        return self.record.reaction


@strawberry.type
class StoryInsights:
    reach: int
    impressions: int
    replies: int
    sticker_taps: int
    link_taps: int
    exits: int
    forward_taps: int
    back_taps: int


@strawberry.federation.type(keys=["id"], name="Story")
class Story(Node):
    record: strawberry.Private[StoryRecord]

    @strawberry.field
    def id(self) -> strawberry.ID:
        return strawberry.ID(encode_id("Story", self.record.id))

    @strawberry.field
    async def author(self, info: Info) -> UserType:
        return await load_user(info, self.record.author_id)

    @strawberry.field
    async def media(self, info: Info) -> MediaType:
        media = await load_media(info, self.record.media_id)
        if media is None:
            raise NotFound("media")
        return media

    @strawberry.field
    def caption(self) -> str | None:
        return self.record.caption

    @strawberry.field
    def audience(self) -> StoryAudience:
        return StoryAudience(self.record.audience)

    @strawberry.field
    def created_at(self) -> datetime:
        return self.record.created_at

    @strawberry.field
    def expires_at(self) -> datetime:
        return self.record.expires_at

    @strawberry.field
    async def stickers(self, info: Info) -> list[Sticker]:
        return await shown_stickers(info, self.record)

    @strawberry.field
    async def viewer_has_seen(self, info: Info) -> bool:
        return await story_resolvers.viewer_has_seen(info.context, self.record)

    @strawberry.field(description="author only (FORBIDDEN for others)")
    async def view_count(self, info: Info) -> int:
        policy.require_author(info.context, self.record, "see its views")
        return await info.context.loaders.stories.viewer_count.load(self.record.id)

    @strawberry.field
    async def viewers(
        self, info: Info, first: int | None = 50, after: str | None = NO_CURSOR
    ) -> Connection[StoryViewer]:
        page = await story_resolvers.viewers(info.context, self.record, first, given(after))
        return connection(page.map(lambda v: StoryViewer(record=v)))

    @strawberry.field
    async def replies(
        self, info: Info, first: int | None = 20, after: str | None = NO_CURSOR
    ) -> Connection[StoryReply]:
        page = await story_resolvers.replies(info.context, self.record, first, given(after))
        return connection(page.map(lambda r: StoryReply(record=r)))

    @strawberry.field
    async def insights(self, info: Info) -> StoryInsights:
        policy.require_author(info.context, self.record, "see its insights")
        loaders = info.context.loaders.stories
        counters = await loaders.counters.load(self.record.id)
        link_taps = sum(
            counters.get(link_taps_counter(i), 0)
            for i, data in enumerate(self.record.stickers)
            if data["type"] == "LINK"
        )
        return StoryInsights(
            reach=await loaders.viewer_count.load(self.record.id),
            impressions=counters.get(IMPRESSIONS, 0),
            replies=await loaders.reply_count.load(self.record.id),
            sticker_taps=counters.get(STICKER_TAPS, 0),
            link_taps=link_taps,
            exits=counters.get(EXITS, 0),
            forward_taps=counters.get(FORWARD_TAPS, 0),
            back_taps=counters.get(BACK_TAPS, 0),
        )

    @classmethod
    async def resolve_reference(cls, info: Info, id: strawberry.ID) -> Story | None:
        pk = key_of(id, "Story")
        record = await policy.visible_story(info.context, pk) if pk is not None else None
        return cls(record=record) if record else None


@strawberry.federation.type(keys=["id"], name="StoryReply")
class StoryReply(Node):
    record: strawberry.Private[ReplyRecord]

    @strawberry.field
    def id(self) -> strawberry.ID:
        return strawberry.ID(encode_id("StoryReply", self.record.id))

    @strawberry.field
    async def story(self, info: Info) -> Story:
        record = await info.context.loaders.stories.by_id.load(self.record.story_id)
        if record is None or not await policy.allows(info.context, record):
            raise NotFound("story")
        return Story(record=record)

    @strawberry.field
    async def author(self, info: Info) -> UserType:
        return await load_user(info, self.record.author_id)

    @strawberry.field
    def body(self) -> str:
        return self.record.body

    @strawberry.field
    def created_at(self) -> datetime:
        return self.record.created_at

    @classmethod
    async def resolve_reference(cls, info: Info, id: strawberry.ID) -> StoryReply | None:
        pk = key_of(id, "StoryReply")
        record = await story_resolvers.visible_reply(info.context, pk) if pk is not None else None
        return cls(record=record) if record else None


@strawberry.type
class StoryTrayItem:
    item: strawberry.Private[TrayItem]

    @strawberry.field
    def user(self) -> UserType:
        from schema.users.types import User

        return User(record=self.item.user)

    @strawberry.field
    def stories(self) -> list[Story]:
        return [Story(record=story) for story in self.item.stories]

    @strawberry.field
    def has_unseen(self) -> bool:
        return self.item.has_unseen

    @strawberry.field
    def latest_at(self) -> datetime:
        return self.item.latest_at


@strawberry.federation.type(keys=["id"], name="StoryHighlight")
class StoryHighlight(Node):
    record: strawberry.Private[HighlightRecord]

    @strawberry.field
    def id(self) -> strawberry.ID:
        return strawberry.ID(encode_id("StoryHighlight", self.record.id))

    @strawberry.field
    async def owner(self, info: Info) -> UserType:
        return await load_user(info, self.record.owner_id)

    @strawberry.field
    def title(self) -> str:
        return self.record.title

    @strawberry.field
    async def cover(self, info: Info) -> MediaType | None:
        if self.record.cover_media_id is not None:
            return await load_media(info, self.record.cover_media_id)
        stories = await highlight_resolvers.highlight_stories(info.context, self.record)
        return await load_media(info, stories[0].media_id) if stories else None

    @strawberry.field
    async def stories(self, info: Info) -> list[Story]:
        stories = await highlight_resolvers.highlight_stories(info.context, self.record)
        return [Story(record=story) for story in stories]

    @strawberry.field
    def created_at(self) -> datetime:
        return self.record.created_at

    @classmethod
    async def resolve_reference(cls, info: Info, id: strawberry.ID) -> StoryHighlight | None:
        pk = key_of(id, "StoryHighlight")
        found = (
            await highlight_resolvers.visible_highlight(info.context, pk)
            if pk is not None
            else None
        )
        return cls(record=found) if found else None
