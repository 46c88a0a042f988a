"""Input types and enums of the stories domain, as the contract writes them.

Shapes only: the rules (how many options, which URLs, which emoji) are checked in
resolvers/stories/stickers.py, where a client gets an error naming the sticker.
`StickerInput` and `StickerResponseInput` are `@oneOf`: graphql-core refuses,
before any resolver runs, a value that sets none or more than one member.
"""

from __future__ import annotations

from datetime import datetime
from enum import Enum

import strawberry

from schema.posts.types import LocationInput


@strawberry.enum
class StoryAudience(Enum):
    EVERYONE = "EVERYONE"
    CLOSE_FRIENDS = "CLOSE_FRIENDS"


@strawberry.enum
class StoryNavigation(Enum):
    FORWARD = "FORWARD"
    BACK = "BACK"
    EXIT = "EXIT"


@strawberry.input
class StickerPlacementInput:
    # Position and size, each 0..1 of the frame; rotation in degrees.
    x: float
    y: float
    width: float | None = 0.3
    height: float | None = 0.1
    rotation: float | None = 0.0


@strawberry.input
class PollStickerInput:
    question: str
    options: list[str]


@strawberry.input
class QuizStickerInput:
    question: str
    options: list[str]
    correct_option: int


@strawberry.input
class QuestionStickerInput:
    prompt: str


@strawberry.input
class CountdownStickerInput:
    title: str
    ends_at: datetime


@strawberry.input
class SliderStickerInput:
    question: str
    emoji: str


@strawberry.input
class MentionStickerInput:
    user_id: strawberry.ID


@strawberry.input
class LinkStickerInput:
    url: str
    label: str | None = strawberry.UNSET


@strawberry.input
class LocationStickerInput:
    location: LocationInput


@strawberry.input
class HashtagStickerInput:
    hashtag: str


@strawberry.input
class AddYoursStickerInput:
    prompt: str
    origin_story_id: strawberry.ID | None = strawberry.UNSET


@strawberry.input(one_of=True)
class StickerInput:
    poll: PollStickerInput | None = strawberry.UNSET
    quiz: QuizStickerInput | None = strawberry.UNSET
    question: QuestionStickerInput | None = strawberry.UNSET
    countdown: CountdownStickerInput | None = strawberry.UNSET
    slider: SliderStickerInput | None = strawberry.UNSET
    mention: MentionStickerInput | None = strawberry.UNSET
    link: LinkStickerInput | None = strawberry.UNSET
    location: LocationStickerInput | None = strawberry.UNSET
    hashtag: HashtagStickerInput | None = strawberry.UNSET
    add_yours: AddYoursStickerInput | None = strawberry.UNSET


@strawberry.input
class PlacedStickerInput:
    sticker: StickerInput
    placement: StickerPlacementInput


@strawberry.input
class CreateStoryInput:
    media_id: strawberry.ID
    caption: str | None = strawberry.UNSET
    audience: StoryAudience | None = StoryAudience.EVERYONE
    stickers: list[PlacedStickerInput] = strawberry.field(default_factory=list)


@strawberry.input(one_of=True)
class StickerResponseInput:
    poll_option: int | None = strawberry.UNSET
    quiz_answer: int | None = strawberry.UNSET
    question_text: str | None = strawberry.UNSET
    slider_value: float | None = strawberry.UNSET
    countdown_subscribe: bool | None = strawberry.UNSET
    link_tap: bool | None = strawberry.UNSET


@strawberry.input
class RespondToStickerInput:
    story_id: strawberry.ID
    sticker_id: strawberry.ID
    response: StickerResponseInput


@strawberry.input
class CreateHighlightInput:
    title: str
    story_ids: list[strawberry.ID]
    cover_media_id: strawberry.ID | None = strawberry.UNSET
