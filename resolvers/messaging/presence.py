"""Typing and presence: who may see them, and setting them. Nothing here is durable.

Both live in the cache only (subscriptions/presence.py keeps the marks: online,
last seen, typing; subscriptions/statuses.py the chosen status) and travel on the
realtime broker; no table ever holds them.

Presence policy, in one function (`can_see_presence`): a user's presence (their
status, `isOnline`, `lastSeenAt`, their `presence` events) is visible to
themselves, to their mutual followers (each follows the other, approved) and,
on Socialink, to their friends; never to anyone with a block either way, never
across platforms, never signed out. Everyone else reads `isOnline: false` and
`lastSeenAt: null`, exactly what a user who never came online shows, so hidden
presence cannot be told apart from absence.

Typing: members of the conversation only (NOT_FOUND otherwise, like the
conversation itself: resolvers/messaging/policy.py). `setTyping(true)` shows the
viewer typing for 6 seconds (`TYPING_SECONDS`) unless repeated; `false` ends it
at once. Subscribers are told both ways: when it starts, when it is stopped, and
when it expires (a timer of the process that took the last `setTyping(true)`
checks the mark after 6 s and announces `isTyping: false` unless it was renewed
meanwhile, possibly through another process, whose own timer then takes over).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime

from datasources.users.graph import NO_RELATIONSHIP, RelationshipRecord
from datasources.users.store import UserRecord
from resolvers.context import Context
from resolvers.errors import BadUserInput
from resolvers.ids import decode_id
from resolvers.messaging import policy
from resolvers.users.policy import FRIENDS_PLATFORMS
from subscriptions.presence import TYPING_SECONDS, Presence
from subscriptions.statuses import OFFLINE, STATUSES, Shown, Statuses
from subscriptions.typing_presence import announce_typing

MAX_PRESENCE_USERS = 200  # user ids one `presence` subscription may watch
TYPING_EXPIRY_SECONDS = TYPING_SECONDS + 0.05  # when the expiry check runs (timers: loop time)


@dataclass(frozen=True)
class PresenceViewer:
    """Who is asking, as the presence policy needs it."""

    user_id: int | None
    platform: str | None  # the platform of the viewer's session


def can_see_presence(
    viewer: PresenceViewer, target: UserRecord, relationship: RelationshipRecord
) -> bool:
    """THE presence rule: self, mutual followers and friends; never blocked, never
    across platforms, never signed out. `relationship` is the viewer's to `target`."""
    if viewer.user_id is None or viewer.platform != target.platform:
        return False
    if viewer.user_id == target.id:
        return True
    if relationship.blocking or relationship.blocked_by:
        return False
    mutual = relationship.following and relationship.followed_by
    friends = relationship.friends and target.platform in FRIENDS_PLATFORMS
    return mutual or friends


def presence_viewer(context: Context) -> PresenceViewer:
    viewer = context.viewer
    return PresenceViewer(viewer.user_id, viewer.platform) if viewer else PresenceViewer(None, None)


async def may_see_presence(context: Context, target: UserRecord) -> bool:
    viewer = presence_viewer(context)
    if viewer.user_id is None or viewer.platform != context.platform:
        return False
    relationship = NO_RELATIONSHIP
    if viewer.user_id != target.id:
        relationship = await context.loaders.users.relationship(viewer.user_id).load(target.id)
    return can_see_presence(viewer, target, relationship)


def presence(context: Context) -> Presence:
    """The cache-backed presence marks, on the request's clock (Stores.clock)."""
    stores = context.stores
    return Presence(stores.cache, stores.broker, clock=lambda: stores.clock().timestamp())


def typing_marks(context: Context) -> Presence:
    """The typing marks without their own broker message: `announce_typing` sends one
    that names the conversation (the live field's root needs it)."""
    stores = context.stores
    return Presence(stores.cache, None, clock=lambda: stores.clock().timestamp())


def statuses(context: Context) -> Statuses:
    return Statuses(presence(context))


# ── presence ────────────────────────────────────────────────────────────


async def set_presence(context: Context, status: str) -> bool:
    viewer = context.require_viewer()
    if status not in STATUSES:
        raise BadUserInput(f"status must be one of {', '.join(STATUSES)}", "status")
    await statuses(context).set(context.platform, viewer.user_id, status)
    return True


async def shown_presence(context: Context, target: UserRecord) -> Shown:
    """What the viewer may know of `target`'s presence: hidden reads as offline,
    never seen."""
    if not await may_see_presence(context, target):
        return Shown(OFFLINE, None)
    return await statuses(context).shown(context.platform, target.id)


async def is_online(context: Context, target: UserRecord) -> bool:
    return (await shown_presence(context, target)).status != OFFLINE


async def last_seen_at(context: Context, target: UserRecord) -> datetime | None:
    return (await shown_presence(context, target)).last_seen_at


async def watchable_users(context: Context, user_ids: list[str]) -> list[int]:
    """Of the users a `presence` subscription names, those whose presence the viewer
    may see now (the others are silently left out: no event ever comes for them)."""
    context.require_viewer()
    if len(user_ids) > MAX_PRESENCE_USERS:
        raise BadUserInput(f"watch at most {MAX_PRESENCE_USERS} users at once", "userIds")
    ids = list(dict.fromkeys(decode_id(uid, "User", field="userIds") for uid in user_ids))
    users = [user for user in await context.loaders.users.by_id.load_many(ids) if user]
    # Together, so the relationship loader batches them into one query.
    allowed = await asyncio.gather(*(may_see_presence(context, user) for user in users))
    return [user.id for user, ok in zip(users, allowed, strict=True) if ok]


# ── typing ──────────────────────────────────────────────────────────────


async def set_typing(context: Context, conversation_global_id: str, is_typing: bool) -> bool:
    viewer = context.require_viewer()
    conversation_id = decode_id(conversation_global_id, "Conversation", field="conversationId")
    await policy.require_member(context, conversation_id)
    platform, stores, user_id = context.platform, context.stores, viewer.user_id
    marks = typing_marks(context)
    key = ("typing", platform, conversation_id, user_id)
    if is_typing:
        await marks.typing(platform, str(conversation_id), user_id)

        async def expire() -> None:
            if user_id not in await marks.typists(platform, str(conversation_id)):
                await announce_typing(stores.broker, platform, conversation_id, user_id, False)

        stores.timers.arm(key, TYPING_EXPIRY_SECONDS, expire)
    else:
        stores.timers.disarm(key)
        await marks.stopped_typing(platform, str(conversation_id), user_id)
    await announce_typing(stores.broker, platform, conversation_id, user_id, is_typing)
    return True


async def typists(context: Context, conversation_id: int) -> list[int]:
    """Members typing in the conversation now (marks older than 6 s have expired)."""
    return await typing_marks(context).typists(context.platform, str(conversation_id))
