"""Who may see a post, as a SQL condition, so list pages are filtered in the query.

This is the SQL form of `resolvers.posts.policy.can_see` (the one statement of
the rules; read them there). Lists (feed, explore, a user's posts, saved posts)
filter here so that a page of 20 holds 20 visible posts; single posts are
checked by the policy function. tests/test_posts_visibility.py runs the same
table of viewer kinds × visibilities through both paths.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, and_, false, not_, or_, select, union_all

from datasources.posts.tables import PostRow
from datasources.users.tables import BlockRow, FollowRow, FriendshipRow, UserRow


def followed_by(viewer_id: int) -> Any:
    """Ids of the accounts `viewer_id` follows (approved)."""
    return select(FollowRow.followee_id).where(
        FollowRow.follower_id == viewer_id, FollowRow.approved.is_(True)
    )


def friends_of(viewer_id: int) -> Any:
    return select(FriendshipRow.friend_id).where(FriendshipRow.user_id == viewer_id)


def blocked_either_way(viewer_id: int) -> Any:
    return union_all(
        select(BlockRow.blocked_id).where(BlockRow.blocker_id == viewer_id),
        select(BlockRow.blocker_id).where(BlockRow.blocked_id == viewer_id),
    )


def visible_to(viewer_id: int | None, author: Any = UserRow) -> ColumnElement[bool]:
    """Posts (`PostRow`, joined with their `author` row) that `viewer_id` may see.

    The caller scopes the platform; `author` is the users entity (or alias)
    joined on `PostRow.author_id`.
    """
    if viewer_id is None:
        return and_(PostRow.visibility == "PUBLIC", author.is_private.is_(False))
    follows = PostRow.author_id.in_(followed_by(viewer_id))
    friends = PostRow.author_id.in_(friends_of(viewer_id))
    audience = or_(
        PostRow.visibility == "PUBLIC",
        and_(PostRow.visibility == "FOLLOWERS", follows),
        and_(PostRow.visibility == "FRIENDS", friends),
        and_(PostRow.visibility == "PRIVATE", false()),
    )
    account = or_(author.is_private.is_(False), follows, friends)
    return or_(
        PostRow.author_id == viewer_id,
        and_(not_(PostRow.author_id.in_(blocked_either_way(viewer_id))), account, audience),
    )
