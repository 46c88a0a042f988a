"""Who may see a post, as a SQL condition, so list pages are filtered in the query.

This is the SQL form of `resolvers.posts.policy.can_see` (the one statement of
the rules; read them there). Lists (feed, explore, a user's posts, saved posts)
filter here so that a page of 20 holds 20 visible posts; single posts are
checked by the policy function. tests/test_posts_visibility.py runs the same
table of viewer kinds × visibilities through both paths.

Conditions are written on the tables' Core columns (the SQL is the same as with
the ORM attributes), so statements built from them alone skip the ORM's
compile and load steps. `viewer_id` is an id, or a bound parameter in
statements built once and run for any viewer (datasources/posts/store.py).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    and_,
    bindparam,
    false,
    not_,
    or_,
    select,
    union_all,
)

from datasources.posts.sqlutil import table_of
from datasources.posts.tables import PostRow
from datasources.users.tables import BlockRow, FollowRow, FriendshipRow, UserRow

ViewerId = int | ColumnElement[int]
"""A user id, or a bound parameter that carries one."""
VIEWER = bindparam("viewer", type_=BigInteger())
"""The viewer's id as the parameter `viewer`, for statements built once."""

POSTS = table_of(PostRow).c
USERS = table_of(UserRow).c
_FOLLOWS = table_of(FollowRow).c
_FRIENDS = table_of(FriendshipRow).c
_BLOCKS = table_of(BlockRow).c


def followed_by(viewer_id: ViewerId) -> Any:
    """Ids of the accounts `viewer_id` follows (approved)."""
    return select(_FOLLOWS.followee_id).where(
        _FOLLOWS.follower_id == viewer_id, _FOLLOWS.approved.is_(True)
    )


def friends_of(viewer_id: ViewerId) -> Any:
    return select(_FRIENDS.friend_id).where(_FRIENDS.user_id == viewer_id)


def blocked_either_way(viewer_id: ViewerId) -> Any:
    return union_all(
        select(_BLOCKS.blocked_id).where(_BLOCKS.blocker_id == viewer_id),
        select(_BLOCKS.blocker_id).where(_BLOCKS.blocked_id == viewer_id),
    )


def visible_to(viewer_id: ViewerId | None, author: Any = USERS) -> ColumnElement[bool]:
    """Posts (the posts table, joined with their `author` row) that `viewer_id` may see.

    The caller scopes the platform; `author` is the users columns (or an alias's)
    joined on the post's author_id.
    """
    if viewer_id is None:
        return and_(POSTS.visibility == "PUBLIC", author.is_private.is_(False))
    follows = POSTS.author_id.in_(followed_by(viewer_id))
    friends = POSTS.author_id.in_(friends_of(viewer_id))
    audience = or_(
        POSTS.visibility == "PUBLIC",
        and_(POSTS.visibility == "FOLLOWERS", follows),
        and_(POSTS.visibility == "FRIENDS", friends),
        and_(POSTS.visibility == "PRIVATE", false()),
    )
    account = or_(author.is_private.is_(False), follows, friends)
    return or_(
        POSTS.author_id == viewer_id,
        and_(not_(POSTS.author_id.in_(blocked_either_way(viewer_id))), account, audience),
    )
