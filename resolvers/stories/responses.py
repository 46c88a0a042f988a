"""respondToSticker and what a viewer sees of sticker results.

One response per viewer per sticker (the store's unique key): a second poll vote,
quiz answer, slider value or question answer is CONFLICT. Countdown subscribing
toggles; link taps are counted, not stored per viewer. The author cannot respond
to their own stickers. Every accepted interaction counts as a sticker tap in the
story's insights.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from datasources.events.model import NewEvent
from datasources.stories.records import (
    STICKER_TAPS,
    Cursor,
    ResponseRecord,
    StoryRecord,
    link_taps_counter,
)
from resolvers.context import Context
from resolvers.errors import BadUserInput, Conflict, Forbidden
from resolvers.ids import decode_id, encode_id, split_id
from resolvers.pagination import Keyset, Page
from resolvers.posts import paging
from resolvers.stories import policy
from resolvers.stories.events import publish, story_event
from resolvers.stories.stickers import parse_response

if TYPE_CHECKING:
    from schema.stories.inputs import RespondToStickerInput

STORED_KINDS = ("POLL", "QUIZ", "QUESTION", "SLIDER")


def sticker_id(story_id: int, index: int) -> str:
    return encode_id("Sticker", f"{story_id}.{index}")


def sticker_index(global_id: str, story: StoryRecord) -> int:
    """The index of a sticker id on `story`; BAD_USER_INPUT when not one of its stickers."""
    parts = split_id(global_id)
    if parts is not None and parts[0] == "Sticker":
        story_part, _, index_part = parts[1].partition(".")
        if story_part == str(story.id) and index_part.isdigit():
            index = int(index_part)
            if index < len(story.stickers):
                return index
    raise BadUserInput("stickerId is not a sticker of this story", field="stickerId")


async def respond(context: Context, data: RespondToStickerInput) -> tuple[StoryRecord, int]:
    """Record the viewer's response; the story and sticker index to answer with."""
    viewer = context.require_viewer()
    story = await policy.require_story(context, decode_id(data.story_id, "Story", "storyId"))
    index = sticker_index(data.sticker_id, story)
    if story.author_id == viewer.user_id:
        raise Forbidden("you cannot respond to your own story's stickers")
    parsed = parse_response(story.stickers[index], data.response)
    stories = context.stores.stories
    now = policy.now(context)
    if parsed.kind == "LINK":
        await stories.bump(story.id, link_taps_counter(index))
    elif parsed.kind == "COUNTDOWN" and not parsed.subscribe:
        await stories.remove_response(story.id, index, viewer.user_id)
    else:
        response = ResponseRecord(
            story_id=story.id,
            sticker_index=index,
            user_id=viewer.user_id,
            kind=parsed.kind,
            created_at=now,
            option=parsed.option,
            value=parsed.value,
            text=parsed.text,
        )
        added = await stories.add_response(response)
        if not added and parsed.kind in STORED_KINDS:
            raise Conflict("you already responded to this sticker", field="stickerId")
        if added:
            await publish(context.stores.db, _responded(context, story, response))
    await stories.bump(story.id, STICKER_TAPS)
    context.loaders.stories.forget_story(story.id)
    return story, index


def _responded(context: Context, story: StoryRecord, response: ResponseRecord) -> NewEvent:
    return story_event(
        context,
        "story.sticker_responded",
        story.id,
        {
            "author_id": story.author_id,
            "sticker_index": response.sticker_index,
            "kind": response.kind,
            "option": response.option,
            "value": response.value,
            "text": response.text,
        },
    )


async def question_responses(
    context: Context, story: StoryRecord, index: int, first: int | None, after: str | None
) -> Page[ResponseRecord]:
    """A question sticker's answers, newest first: the author's only."""
    policy.require_author(context, story, "read the answers to its questions")
    limit, position = paging.arguments(context, first, after)
    cursor = Cursor(position.at, position.id) if position else None
    found = await context.stores.stories.responses(story.id, index, limit + 1, cursor)
    tallies = await context.loaders.stories.tallies.load(story.id)
    total = tallies[index].count if index in tallies else 0
    return Page.from_fetched(
        found, limit, position is not None, total, lambda r: Keyset(r.created_at, r.user_id)
    )


async def own_response(context: Context, story: StoryRecord, index: int) -> ResponseRecord | None:
    """The viewer's response to one sticker, if any (batched per story)."""
    if context.viewer_id is None:
        return None
    mine = await context.loaders.stories.responses_of(context.viewer_id).load(story.id)
    return mine.get(index)
