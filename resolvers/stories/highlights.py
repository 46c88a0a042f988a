"""Highlights: an owner's named collections of their own stories, expired or not.

A highlighted story outlives its 24 hours (the store stops purging it), and a
highlight shows each of its stories only to the viewers that story's audience
allows (resolvers/stories/policy.py). Anyone who can see the owner sees their
highlights (a block hides the owner altogether); a highlight with no story the
viewer may see is left out for them. Only the owner changes a highlight
(FORBIDDEN for others, NOT_FOUND when hidden or missing).
"""

from __future__ import annotations

from collections.abc import Sequence

from datasources.stories.records import HighlightRecord, NewHighlight, StoryRecord
from datasources.users.store import UserRecord
from resolvers.context import Context
from resolvers.errors import BadUserInput, Forbidden, NotFound
from resolvers.ids import decode_id
from resolvers.stories import policy

MAX_TITLE = 50
MAX_STORIES = 100


async def create_highlight(
    context: Context, title: str, global_story_ids: Sequence[str], cover_media_id: str | None
) -> HighlightRecord:
    viewer = context.require_viewer()
    title = _title(title)
    story_ids = await _own_story_ids(context, global_story_ids)
    if not story_ids:
        raise BadUserInput("a highlight needs at least one story", field="storyIds")
    cover = await _cover(context, cover_media_id)
    created = await context.stores.stories.create_highlight(
        NewHighlight(
            owner_id=viewer.user_id,
            platform=context.platform,
            title=title,
            story_ids=story_ids,
            created_at=policy.now(context),
            cover_media_id=cover,
        )
    )
    context.loaders.stories.forget_owner(viewer.user_id)
    return created


async def add_to_highlight(
    context: Context, global_id: str, story_ids: Sequence[str]
) -> HighlightRecord:
    highlight = await _own_highlight(context, global_id)
    ids = await _own_story_ids(context, story_ids)
    if len(set(highlight.story_ids) | set(ids)) > MAX_STORIES:
        raise BadUserInput(f"a highlight holds at most {MAX_STORIES} stories", field="storyIds")
    updated = await context.stores.stories.add_to_highlight(highlight.id, ids)
    return _changed(context, updated)


async def remove_from_highlight(
    context: Context, global_id: str, story_ids: Sequence[str]
) -> HighlightRecord:
    highlight = await _own_highlight(context, global_id)
    ids = [decode_id(pk, "Story", "storyIds") for pk in story_ids]
    updated = await context.stores.stories.remove_from_highlight(highlight.id, ids)
    return _changed(context, updated)


async def delete_highlight(context: Context, global_id: str) -> bool:
    highlight = await _own_highlight(context, global_id)
    if not await context.stores.stories.delete_highlight(highlight.id):
        raise NotFound("highlight")
    context.loaders.stories.forget_owner(highlight.owner_id)
    return True


async def visible_highlight(context: Context, highlight_id: int) -> HighlightRecord | None:
    """The highlight, when its owner is on this platform and visible to the viewer."""
    highlight = await context.stores.stories.highlight(highlight_id)
    if highlight is None or highlight.platform != context.platform:
        return None
    owner = await context.loaders.users.by_id.load(highlight.owner_id)
    if owner is None:
        return None
    rel = await policy.relationship(context, owner.id)
    return None if rel.blocking or rel.blocked_by else highlight


async def highlight_stories(context: Context, highlight: HighlightRecord) -> list[StoryRecord]:
    """The highlight's stories the viewer may see, in the highlight's order."""
    loaded = await context.loaders.stories.by_id.load_many(list(highlight.story_ids))
    stories = [story for story in loaded if story is not None]
    owner = await context.loaders.users.by_id.load(highlight.owner_id)
    if owner is None:
        return []
    rel = await policy.relationship(context, owner.id)
    return [s for s in stories if policy.can_see(context.viewer_id, owner, s.audience, rel)]


async def user_highlights(context: Context, user: UserRecord) -> list[HighlightRecord]:
    """User.highlights, newest first: all of them for the owner, otherwise those with
    at least one story the viewer may see."""
    highlights = await context.loaders.stories.highlights_of.load(user.id)
    if context.viewer_id == user.id:
        return highlights
    shown = []
    for highlight in highlights:
        if await highlight_stories(context, highlight):
            shown.append(highlight)
    return shown


async def _own_highlight(context: Context, global_id: str) -> HighlightRecord:
    viewer = context.require_viewer()
    highlight = await visible_highlight(
        context, decode_id(global_id, "StoryHighlight", "highlightId")
    )
    if highlight is None:
        raise NotFound("highlight")
    if highlight.owner_id != viewer.user_id:
        raise Forbidden("only the highlight's owner can change it")
    return highlight


async def _own_story_ids(context: Context, global_ids: Sequence[str]) -> tuple[int, ...]:
    """The viewer's own stories (active or expired), duplicates dropped, order kept."""
    viewer = context.require_viewer()
    ids = list(dict.fromkeys(decode_id(pk, "Story", "storyIds") for pk in global_ids))
    if len(ids) > MAX_STORIES:
        raise BadUserInput(f"a highlight holds at most {MAX_STORIES} stories", field="storyIds")
    stories = await context.loaders.stories.by_id.load_many(ids)
    for story in stories:
        if story is None or story.author_id != viewer.user_id:
            raise NotFound("story")
    return tuple(ids)


async def _cover(context: Context, global_id: str | None) -> int | None:
    if global_id is None:
        return None
    media_id = decode_id(global_id, "Media", "coverMediaId")
    media = await context.loaders.media.by_id.load(media_id)
    if media is None or media.owner_id != context.viewer_id or media.kind != "IMAGE":
        raise BadUserInput("coverMediaId must be an image you uploaded", field="coverMediaId")
    return media_id


def _title(title: str) -> str:
    title = title.strip()
    if not title or len(title) > MAX_TITLE:
        raise BadUserInput(f"title must be 1 to {MAX_TITLE} characters", field="title")
    return title


def _changed(context: Context, updated: HighlightRecord | None) -> HighlightRecord:
    if updated is None:
        raise NotFound("highlight")  # deleted meanwhile
    context.loaders.stories.forget_owner(updated.owner_id)
    return updated
