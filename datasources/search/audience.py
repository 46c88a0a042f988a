"""What the index needs to know of the viewer to filter by privacy, in one query.

The rules are resolvers/posts/policy.py `can_see` (and, for takes, its PUBLIC
case); this is their input for a whole index: the accounts the viewer follows
(approved) and is friends with, the accounts blocking or blocked by the viewer,
and the private accounts on the platform whose content the viewer may not see.
resolvers/search/audience.py turns them into a SearchQuery's grants and exclusions.

The private accounts are listed, not joined: the index has no social graph. On a
platform with very many private accounts this list grows with them; a
`author_is_private` field in the documents, kept up to date on
user.profile_updated, would bound it by the viewer's follows instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import literal, select, union_all

from datasources.sql import Database
from datasources.users.tables import BlockRow, FollowRow, FriendshipRow, UserRow


@dataclass(frozen=True)
class Audience:
    followed: frozenset[int] = frozenset()
    friends: frozenset[int] = frozenset()
    blocked: frozenset[int] = frozenset()  # either way
    private: frozenset[int] = frozenset()  # private accounts of the platform (not the viewer)


async def audience(db: Database, platform: str, viewer_id: int | None) -> Audience:
    private = select(literal("p").label("kind"), UserRow.id.label("uid")).where(
        UserRow.platform == platform, UserRow.is_private.is_(True)
    )
    statement: Any = private  # a SELECT, or a UNION ALL of them
    if viewer_id is not None:
        statement = union_all(
            private.where(UserRow.id != viewer_id),
            select(literal("f"), FollowRow.followee_id).where(
                FollowRow.follower_id == viewer_id, FollowRow.approved.is_(True)
            ),
            select(literal("r"), FriendshipRow.friend_id).where(FriendshipRow.user_id == viewer_id),
            select(literal("b"), BlockRow.blocked_id).where(BlockRow.blocker_id == viewer_id),
            select(literal("b"), BlockRow.blocker_id).where(BlockRow.blocked_id == viewer_id),
        )
    found: dict[str, set[int]] = {"p": set(), "f": set(), "r": set(), "b": set()}
    async with db.session() as session:
        for kind, uid in await session.execute(statement):
            found[kind].add(int(uid))
    return Audience(
        followed=frozenset(found["f"]),
        friends=frozenset(found["r"]),
        blocked=frozenset(found["b"]),
        private=frozenset(found["p"]),
    )
