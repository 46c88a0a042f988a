"""Who may see and do what with a user: every such decision of the users domain.

Decisions are pure functions of `Facts` (viewer, target, their stored
relationship), so a table of viewer kinds can test them and every resolver asks
the same questions. `facts()` gathers them through the per-request loaders.

The rules:
- A block, either way, hides each user from the other: the profile is NOT_FOUND,
  exactly like a username that does not exist, so a block cannot be detected.
  For the same reason `blockedBy` is never reported true (see `shown_relationship`).
- A private account's followers, following and friends (and, in other domains,
  its posts) are FORBIDDEN to anyone but the owner, approved followers and, on
  Socialink, friends. Counts and the basic profile stay visible to everyone.
- Friends and friend requests exist on Socialink only.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from datasources.loading import MaybeAwaitable, loaded, resolved, then
from datasources.users.graph import NO_RELATIONSHIP, RelationshipRecord
from datasources.users.store import UserRecord
from resolvers.context import Context
from resolvers.errors import BadUserInput, Forbidden, NotFound, not_on_platform

FRIENDS_PLATFORMS = frozenset({"socialink"})


@dataclass(frozen=True)
class Facts:
    viewer_id: int | None
    target: UserRecord
    relationship: RelationshipRecord

    @property
    def is_self(self) -> bool:
        return self.viewer_id == self.target.id


async def facts(context: Context, target: UserRecord) -> Facts:
    """The facts about the request's viewer and `target` (one batched load at most)."""
    return await resolved(facts_now(context, target))


def facts_now(context: Context, target: UserRecord) -> MaybeAwaitable[Facts]:
    """`facts()`, as a plain value when the relationship is already loaded (see
    datasources/loading.py: fields of many nodes then resolve without a task each)."""
    viewer_id = context.viewer_id
    if viewer_id is None or viewer_id == target.id:
        return Facts(viewer_id, target, NO_RELATIONSHIP)
    relationship = loaded(context.loaders.users.relationship(viewer_id), target.id)
    return then(relationship, lambda found: Facts(viewer_id, target, found))


def is_blocked(facts: Facts) -> bool:
    """A block in either direction."""
    return facts.relationship.blocking or facts.relationship.blocked_by


def can_see_profile(facts: Facts) -> bool:
    return facts.is_self or not is_blocked(facts)


def can_see_connections(facts: Facts) -> bool:
    """Followers, following and friends lists (and whatever else a private account hides)."""
    if facts.is_self:
        return True
    if is_blocked(facts):
        return False
    rel = facts.relationship
    return not facts.target.is_private or rel.following or rel.friends


def can_interact(facts: Facts) -> bool:
    """Follow, ask to be friends: anyone the viewer can see."""
    return can_see_profile(facts)


def shown_relationship(facts: Facts) -> RelationshipRecord | None:
    """`viewerRelationship` as the client sees it: null when signed out.

    `blocked_by` is always reported false: telling the blocked user would undo the
    NOT_FOUND that hides the blocker (the flag still drives every decision here).
    """
    if facts.viewer_id is None:
        return None
    return replace(facts.relationship, blocked_by=False)


def has_friends(platform: str) -> bool:
    return platform in FRIENDS_PLATFORMS


# ── the same decisions, as errors ────────────────────────────────────────


def require_profile(facts: Facts) -> None:
    if not can_see_profile(facts):
        raise NotFound("user")


def require_connections(facts: Facts) -> None:
    require_profile(facts)
    if not can_see_connections(facts):
        raise Forbidden("this account is private")


def require_not_self(facts: Facts, field: str = "userId") -> None:
    """Block and unblock: any user of the platform but yourself, whoever blocks whom
    (refusing to block someone who blocked you would tell you that they did)."""
    if facts.is_self:
        raise BadUserInput("you cannot do this to yourself", field=field)


def require_other_user(facts: Facts, field: str = "userId") -> None:
    """Follow, friend and the like: not on yourself, and only on someone you can see."""
    require_not_self(facts, field)
    if not can_interact(facts):
        raise NotFound("user")


def require_friends(platform: str) -> None:
    if not has_friends(platform):
        raise not_on_platform(platform)
