"""Mutations of stories, stickers and highlights (close friends: close_friends.py)."""

from __future__ import annotations

import strawberry
from strawberry.types import Info

from resolvers.stories import highlights as highlight_resolvers
from resolvers.stories import responses as response_resolvers
from resolvers.stories import stories as story_resolvers
from schema.common import given
from schema.stories.inputs import (
    CreateHighlightInput,
    CreateStoryInput,
    RespondToStickerInput,
    StoryAudience,
    StoryNavigation,
)
from schema.stories.types import Sticker, Story, StoryHighlight, StoryReply, sticker_object


@strawberry.type
class StoriesMutation:
    @strawberry.mutation
    async def create_story(self, info: Info, input: CreateStoryInput) -> Story:
        audience = given(input.audience) or StoryAudience.EVERYONE
        record = await story_resolvers.create_story(
            info.context, input.media_id, given(input.caption), audience.value, input.stickers
        )
        return Story(record=record)

    @strawberry.mutation
    async def delete_story(self, info: Info, id: strawberry.ID) -> bool:
        return await story_resolvers.delete_story(info.context, id)

    @strawberry.mutation
    async def mark_story_seen(
        self, info: Info, story_id: strawberry.ID, reaction: str | None = None
    ) -> Story:
        return Story(record=await story_resolvers.mark_seen(info.context, story_id, reaction))

    @strawberry.mutation
    async def record_story_navigation(
        self, info: Info, story_id: strawberry.ID, navigation: StoryNavigation
    ) -> bool:
        return await story_resolvers.record_navigation(info.context, story_id, navigation.value)

    @strawberry.mutation
    async def respond_to_sticker(self, info: Info, input: RespondToStickerInput) -> Sticker:
        story, index = await response_resolvers.respond(info.context, input)
        return sticker_object(story, index)

    @strawberry.mutation
    async def reply_to_story(self, info: Info, story_id: strawberry.ID, body: str) -> StoryReply:
        return StoryReply(record=await story_resolvers.reply_to_story(info.context, story_id, body))

    @strawberry.mutation
    async def create_highlight(self, info: Info, input: CreateHighlightInput) -> StoryHighlight:
        record = await highlight_resolvers.create_highlight(
            info.context, input.title, input.story_ids, given(input.cover_media_id)
        )
        return StoryHighlight(record=record)

    @strawberry.mutation
    async def add_to_highlight(
        self, info: Info, highlight_id: strawberry.ID, story_ids: list[strawberry.ID]
    ) -> StoryHighlight:
        record = await highlight_resolvers.add_to_highlight(info.context, highlight_id, story_ids)
        return StoryHighlight(record=record)

    @strawberry.mutation
    async def remove_from_highlight(
        self, info: Info, highlight_id: strawberry.ID, story_ids: list[strawberry.ID]
    ) -> StoryHighlight:
        record = await highlight_resolvers.remove_from_highlight(
            info.context, highlight_id, story_ids
        )
        return StoryHighlight(record=record)

    @strawberry.mutation
    async def delete_highlight(self, info: Info, id: strawberry.ID) -> bool:
        return await highlight_resolvers.delete_highlight(info.context, id)
