"""The viewer's notifications: the list, the unread count, marking read, summaries.

Notifications are the recipient's only: every field here reads the signed-in
viewer's own groups (UNAUTHENTICATED when signed out), so there is nothing of
anyone else to hide. What a group is about may have become hidden since (a
post made private, a block): that is settled per subject by its owner's policy
when the subject is resolved (schema/notifications/types.py), and a hidden
subject reads as null.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from datasources.notifications.consumer import announce
from datasources.notifications.loaders import MAX_ACTORS
from datasources.notifications.records import Change, GroupRecord
from datasources.sql import utcnow
from resolvers.context import Context
from resolvers.errors import BadUserInput
from resolvers.pagination import Keyset, Page, decode_cursor, page_size

VERBS: dict[str, str] = {
    "FOLLOW": "started following you",
    "FOLLOW_REQUEST": "asked to follow you",
    "FOLLOW_ACCEPTED": "accepted your follow request",
    "FRIEND_REQUEST": "sent you a friend request",
    "FRIEND_ACCEPTED": "accepted your friend request",
    "POST_LIKE": "liked your post",
    "POST_COMMENT": "commented on your post",
    "COMMENT_REPLY": "replied to your comment",
    "COMMENT_LIKE": "liked your comment",
    "MENTION": "mentioned you in a post",
    "POST_SHARE": "shared your post",
    "TAKE_LIKE": "liked your take",
    "TAKE_COMMENT": "commented on your take",
    "TREND_JOINED": "joined your trend",
    "TEMPLATE_USED": "used your template",
    "STORY_MENTION": "mentioned you in their story",
    "STORY_REPLY": "replied to your story",
    "STICKER_RESPONSE": "responded to your story",
    "COUNTDOWN_ENDED": "'s countdown ended",
}


def summary(type_: str, names: Sequence[str], actor_count: int) -> str:
    """ "ada liked your post", "ada and grace …", "ada and 5 others …".

    `names`: the most recent actors' usernames, latest first (two are enough).
    """
    verb = VERBS[type_]
    if not names:
        who = "someone" if actor_count <= 1 else f"{actor_count} people"
    elif actor_count <= 1 or len(names) == 1:
        who = names[0] if actor_count <= 1 else f"{names[0]} and {_others(actor_count - 1)}"
    elif actor_count == 2:
        who = f"{names[0]} and {names[1]}"
    else:
        who = f"{names[0]} and {_others(actor_count - 1)}"
    if verb.startswith("'"):  # a possessive: "ada's countdown ended"
        return f"{who}{verb}"
    return f"{who} {verb}"


def _others(count: int) -> str:
    return "1 other" if count == 1 else f"{count} others"


def require_types(types: Sequence[str] | None) -> list[str] | None:
    """The type filter; an empty list filters nothing out (as if not given)."""
    return list(dict.fromkeys(types)) if types else None


async def notifications(
    context: Context, first: int | None, after: str | None, types: Sequence[str] | None
) -> Page[GroupRecord]:
    viewer = context.require_viewer()
    limit = page_size(first, context.settings.max_page_size)
    key = decode_cursor(after)
    if key is not None and key.at.tzinfo is None:
        raise BadUserInput("after is not a valid cursor", field="after")
    wanted = require_types(types)
    store = context.stores.notifications
    groups, has_next = await store.page(
        viewer.user_id, wanted, limit, (key.at, key.id) if key else None
    )
    total = await store.count(viewer.user_id, wanted)
    context.loaders.notifications.group.prime_many({group.id: group for group in groups})
    return Page(
        items=[(Keyset(group.latest_at, group.id), group) for group in groups],
        has_next=has_next,
        has_previous=key is not None,
        total_count=total,
    )


async def unread_count(context: Context) -> int:
    viewer = context.require_viewer()
    return await context.stores.notifications.unread_count(viewer.user_id)


async def mark_read(context: Context, up_to: datetime | None) -> int:
    """Mark the viewer's groups up to `up_to` (all when null) read; how many were."""
    viewer = context.require_viewer()
    if up_to is not None and up_to.tzinfo is None:
        raise BadUserInput("upTo needs a time zone", field="upTo")
    marked = await context.stores.notifications.mark_read(viewer.user_id, up_to, utcnow())
    if marked:  # no domain event: the viewer's own state, told to their live counters
        await announce(context.stores.broker, [Change(context.platform, viewer.user_id)])
    return marked


def actor_limit(limit: int | None) -> int:
    if limit is None:
        return 3
    if limit < 0 or limit > MAX_ACTORS:
        raise BadUserInput(f"limit must be between 0 and {MAX_ACTORS}", field="limit")
    return limit


async def group_of_viewer(context: Context, group_id: int) -> GroupRecord | None:
    """A group by id when it is the viewer's (live fields load them this way)."""
    viewer_id = context.viewer_id
    group = await context.loaders.notifications.group.load(group_id)
    if group is None or group.recipient_id != viewer_id:
        return None
    return group
