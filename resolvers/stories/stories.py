"""Stories: create, delete, see, navigate, reply; the tray and a user's stories.

Every story that reaches the schema passed resolvers/stories/policy.py first.
Author-only reads (viewers, replies) check `policy.require_author` themselves.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

import emoji

from datasources.events.model import NewEvent
from datasources.posts.records import NewLocation
from datasources.stories.records import (
    BACK_TAPS,
    EXITS,
    FORWARD_TAPS,
    IMPRESSIONS,
    MAX_ACTIVE_STORIES,
    Cursor,
    NewReply,
    NewStory,
    ReplyRecord,
    Sticker,
    StoryRecord,
    ViewRecord,
)
from datasources.users.circle import followed_and_friends
from datasources.users.graph import RelationshipRecord
from datasources.users.store import UserRecord
from resolvers.context import Context
from resolvers.errors import BadUserInput, Conflict, NotFound
from resolvers.ids import decode_id
from resolvers.pagination import Keyset, Page
from resolvers.posts import paging
from resolvers.posts.text import optional_text
from resolvers.stories import policy
from resolvers.stories.events import publish, story_event
from resolvers.stories.media import release_media
from resolvers.stories.stickers import stored_stickers

if TYPE_CHECKING:
    from schema.stories.inputs import PlacedStickerInput

MAX_CAPTION = 2200
MAX_REPLY = 1000
MAX_VIDEO_MS = 60_000
NAVIGATION_COUNTERS = {"FORWARD": FORWARD_TAPS, "BACK": BACK_TAPS, "EXIT": EXITS}


# ── create and delete ──────────────────────────────────────────────────


async def create_story(
    context: Context,
    media: str,
    caption: str | None,
    audience: str,
    placed: Sequence[PlacedStickerInput],
) -> StoryRecord:
    viewer = context.require_viewer()
    now = policy.now(context)
    media_id = decode_id(media, "Media", "mediaId")
    await _require_story_media(context, media_id, viewer.user_id)
    caption = optional_text(caption, MAX_CAPTION, "caption")
    stickers = await stored_stickers(context, placed, now)
    stickers = await _resolve_places(context, stickers)
    stickers = await _resolve_add_yours(context, stickers)
    if await context.stores.stories.active_count(viewer.user_id, now) >= MAX_ACTIVE_STORIES:
        raise Conflict(f"at most {MAX_ACTIVE_STORIES} stories can be active at once")
    created = await context.stores.stories.add_story(
        NewStory(
            author_id=viewer.user_id,
            platform=context.platform,
            media_id=media_id,
            audience=audience,
            created_at=now,
            stickers=stickers,
            caption=caption,
        )
    )
    context.loaders.stories.prime([created])
    context.loaders.stories.forget_owner(viewer.user_id)
    await publish(context.stores.db, *await _created_events(context, created))
    return created


async def _require_story_media(context: Context, media_id: int, author_id: int) -> None:
    media = await context.loaders.media.by_id.load(media_id)
    if media is None or media.owner_id != author_id:
        raise BadUserInput("mediaId must be an image or video you uploaded", field="mediaId")
    if media.kind not in ("IMAGE", "VIDEO"):
        raise BadUserInput("a story is an image or a video", field="mediaId")
    if media.kind == "VIDEO" and (media.duration_ms or 0) > MAX_VIDEO_MS:
        raise BadUserInput("a story video is at most 60 seconds long", field="mediaId")


async def _resolve_places(context: Context, stickers: tuple[Sticker, ...]) -> tuple[Sticker, ...]:
    """Location stickers point at the shared Location rows (one per name and place)."""
    resolved = []
    for sticker in stickers:
        if sticker["type"] == "LOCATION":
            place = NewLocation(sticker["name"], sticker["latitude"], sticker["longitude"])
            location_id = await context.stores.posts.place(context.platform, place)
            sticker = {**sticker, "locationId": location_id}
        resolved.append(sticker)
    return tuple(resolved)


async def _resolve_add_yours(
    context: Context, stickers: tuple[Sticker, ...]
) -> tuple[Sticker, ...]:
    """An Add Yours answer must point at a story the viewer can see; answers to an
    answer count for the prompt's first story (the origin the chain started from)."""
    resolved = []
    for index, sticker in enumerate(stickers):
        origin_id = sticker.get("originStoryId") if sticker["type"] == "ADD_YOURS" else None
        if origin_id is not None:
            origin = await context.loaders.stories.by_id.load(origin_id)
            if origin is None or not await policy.allows(context, origin):
                raise BadUserInput(
                    f"stickers[{index}]: the Add Yours story was not found", f"stickers[{index}]"
                )
            root = origin.add_yours_origin_id or origin.id
            sticker = {**sticker, "originStoryId": root}
        resolved.append(sticker)
    return tuple(resolved)


async def _created_events(context: Context, story: StoryRecord) -> list[NewEvent]:
    mentioned = sorted(
        {int(s["userId"]) for s in story.stickers if s["type"] == "MENTION"} - {story.author_id}
    )
    hashtags = sorted({s["hashtag"] for s in story.stickers if s["type"] == "HASHTAG"})
    events = [
        story_event(
            context,
            "story.created",
            story.id,
            {
                "author_id": story.author_id,
                "audience": story.audience,
                "media_id": story.media_id,
                "hashtags": hashtags,
                "mentioned_user_ids": mentioned,
                "add_yours_origin_id": story.add_yours_origin_id,
                "expires_at": story.expires_at.isoformat(),
            },
        )
    ]
    author = await context.loaders.users.by_id.load(story.author_id)
    for user_id in mentioned:  # only those the story reaches hear of it
        rel = await context.loaders.users.relationship(story.author_id).load(user_id)
        if author is not None and policy.can_see(user_id, author, story.audience, mirrored(rel)):
            events.append(
                story_event(
                    context,
                    "story.mentioned",
                    story.id,
                    {"author_id": story.author_id, "mentioned_user_id": user_id},
                )
            )
    return events


def mirrored(rel: RelationshipRecord) -> RelationshipRecord:
    """The author's relationship to someone, seen from that someone's side."""
    return RelationshipRecord(
        following=rel.followed_by,
        followed_by=rel.following,
        blocking=rel.blocked_by,
        blocked_by=rel.blocking,
        friends=rel.friends,
        is_close_friend=rel.close_friend_of,
        close_friend_of=rel.is_close_friend,
    )


async def delete_story(context: Context, global_id: str) -> bool:
    """deleteStory: the author only; the story leaves its highlights, its media goes
    unless something else uses it."""
    context.require_viewer()
    story = await policy.require_own_story(context, decode_id(global_id, "Story"), "delete")
    if not await context.stores.stories.delete_story(story.id):
        raise NotFound("story")  # deleted meanwhile
    context.loaders.stories.forget_story(story.id)
    context.loaders.stories.forget_owner(story.author_id)
    await release_media(context.stores, [story.media_id])
    await publish(
        context.stores.db,
        story_event(context, "story.deleted", story.id, {"author_id": story.author_id}),
    )
    return True


# ── seeing ─────────────────────────────────────────────────────────────


async def mark_seen(context: Context, global_id: str, reaction: str | None) -> StoryRecord:
    """markStorySeen: the first view is recorded with its time (and reaction); every
    call counts an impression. The author's own views are not recorded."""
    viewer = context.require_viewer()
    if reaction is not None and not emoji.is_emoji(reaction):
        raise BadUserInput("reaction must be a single emoji", field="reaction")
    story = await policy.require_story(context, decode_id(global_id, "Story", "storyId"))
    if story.author_id == viewer.user_id:
        return story
    stories = context.stores.stories
    await stories.add_viewer(story.id, viewer.user_id, policy.now(context), reaction)
    await stories.bump(story.id, IMPRESSIONS)
    context.loaders.stories.forget_story(story.id)
    return story


async def record_navigation(context: Context, global_id: str, navigation: str) -> bool:
    """recordStoryNavigation: a viewer's tap forward/back or exit, for the insights."""
    viewer = context.require_viewer()
    story = await policy.require_story(context, decode_id(global_id, "Story", "storyId"))
    if story.author_id == viewer.user_id:
        return False  # the author's own navigation is no audience signal
    await context.stores.stories.bump(story.id, NAVIGATION_COUNTERS[navigation])
    return True


async def viewer_has_seen(context: Context, story: StoryRecord) -> bool:
    viewer_id = context.viewer_id
    if viewer_id is None:
        return False
    if viewer_id == story.author_id:
        return True
    return await context.loaders.stories.seen_by(viewer_id).load(story.id)


async def viewers(
    context: Context, story: StoryRecord, first: int | None, after: str | None
) -> Page[ViewRecord]:
    policy.require_author(context, story, "see its viewers")
    limit, position = paging.arguments(context, first, after)
    cursor = Cursor(position.at, position.id) if position else None
    found = await context.stores.stories.viewers(story.id, limit + 1, cursor)
    total = await context.loaders.stories.viewer_count.load(story.id)
    return Page.from_fetched(
        found, limit, position is not None, total, lambda v: Keyset(v.viewed_at, v.viewer_id)
    )


# ── replies ────────────────────────────────────────────────────────────


async def reply_to_story(context: Context, global_id: str, body: str) -> ReplyRecord:
    """replyToStory: private to the story's author; blocked users cannot see the story,
    so they cannot reply (NOT_FOUND)."""
    viewer = context.require_viewer()
    story = await policy.require_story(context, decode_id(global_id, "Story", "storyId"))
    if story.author_id == viewer.user_id:
        raise BadUserInput("you cannot reply to your own story", field="storyId")
    text = optional_text(body, MAX_REPLY, "body")
    if text is None:
        raise BadUserInput("body must not be empty", field="body")
    reply = await context.stores.stories.add_reply(
        NewReply(story.id, viewer.user_id, text, policy.now(context))
    )
    if reply is None:
        raise NotFound("story")
    context.loaders.stories.forget_story(story.id)
    await publish(
        context.stores.db,
        story_event(
            context,
            "story.replied",
            story.id,
            {"author_id": story.author_id, "reply_id": reply.id, "body": reply.body},
        ),
    )
    return reply


async def visible_reply(context: Context, reply_id: int) -> ReplyRecord | None:
    """A reply is seen by the story's author and by whoever wrote it, nobody else."""
    reply = await context.stores.stories.reply(reply_id)
    if reply is None:
        return None
    story = await context.loaders.stories.by_id.load(reply.story_id)
    if story is None or context.viewer_id not in (story.author_id, reply.author_id):
        return None
    return reply


async def replies(
    context: Context, story: StoryRecord, first: int | None, after: str | None
) -> Page[ReplyRecord]:
    policy.require_author(context, story, "read its replies")
    limit, position = paging.arguments(context, first, after)
    cursor = Cursor(position.at, position.id) if position else None
    found = await context.stores.stories.replies(story.id, limit + 1, cursor)
    total = await context.loaders.stories.reply_count.load(story.id)
    return Page.from_fetched(
        found, limit, position is not None, total, lambda r: Keyset(r.created_at, r.id)
    )


# ── the tray and a user's stories ──────────────────────────────────────


@dataclass(frozen=True)
class TrayItem:
    user: UserRecord
    stories: list[StoryRecord]
    has_unseen: bool
    latest_at: datetime


async def story_tray(context: Context) -> list[TrayItem]:
    """The viewer's own active stories first, then each followed account or friend
    with active stories the viewer may see: unseen first, then most recent."""
    viewer = context.require_viewer()
    circle = await followed_and_friends(context.stores.db, viewer.user_id)
    author_ids = [viewer.user_id, *[pk for pk in circle if pk != viewer.user_id]]
    loaders = context.loaders.stories
    by_author = await loaders.active_of_author.load_many(author_ids)
    # Concurrently, so each per-author load of users and relationships is one batch.
    shown_lists = await asyncio.gather(
        *(
            visible_among(context, pk, stories)
            for pk, stories in zip(author_ids, by_author, strict=True)
        )
    )
    story_ids = [story.id for shown in shown_lists for story in shown]
    seen_flags = await loaders.seen_by(viewer.user_id).load_many(story_ids)
    seen = dict(zip(story_ids, seen_flags, strict=True))
    authors = await context.loaders.users.by_id.load_many(author_ids)
    items: list[TrayItem] = []
    for author, shown in zip(authors, shown_lists, strict=True):
        if author is None or not shown:
            continue
        unseen = author.id != viewer.user_id and not all(seen[s.id] for s in shown)
        items.append(TrayItem(author, shown, unseen, max(s.created_at for s in shown)))
    own = [item for item in items if item.user.id == viewer.user_id]
    others = sorted(
        (item for item in items if item.user.id != viewer.user_id),
        key=lambda item: (not item.has_unseen, -item.latest_at.timestamp(), item.user.id),
    )
    return own + others


async def visible_among(
    context: Context, author_id: int, stories: list[StoryRecord]
) -> list[StoryRecord]:
    """The stories (all by `author_id`) the viewer may see, order kept."""
    if not stories:
        return []
    author = await context.loaders.users.by_id.load(author_id)
    if author is None:
        return []
    rel = await policy.relationship(context, author_id)
    return [s for s in stories if policy.can_see(context.viewer_id, author, s.audience, rel)]


async def user_stories(context: Context, user: UserRecord) -> list[StoryRecord]:
    """User.stories: the user's active stories the viewer may see, oldest first."""
    stories = await context.loaders.stories.active_of_author.load(user.id)
    return await visible_among(context, user.id, stories)
