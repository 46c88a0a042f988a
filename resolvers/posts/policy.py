"""Who may see and do what with a post or a comment: every such decision of posts.

The rules (`can_see` states them once; `datasources/posts/visibility.py` is the
same rules as a SQL condition for lists, and tests/test_posts_visibility.py runs
one table of viewer kinds × visibilities through both):

- The author always sees their own posts.
- A block, either way, hides every post of each user from the other, and
  hidden reads as NOT_FOUND, exactly like a post that does not exist.
- PRIVATE: the author only. PUBLIC: anyone, signed out included.
  FOLLOWERS: approved followers. FRIENDS: friends (Socialink only: a FRIENDS
  post cannot be created on Vignette).
- A private account's posts, whatever their visibility, only reach approved
  followers and, on Socialink, friends (as its followers lists do, see
  resolvers/users/policy.py `can_see_connections`).
- Another platform's post does not exist here (loaders are platform-scoped).
- Only the author edits or deletes a post (others: FORBIDDEN when they can see
  it, NOT_FOUND otherwise). A comment is deleted by its author or by the author
  of what it is on.

Invariant kept by every resolver of this domain: a `PostRecord` reaches the
schema only after this module (or the SQL filter) allowed it for the viewer, so
the fields of a post (comments, likers, counts) need no second check.
"""

from __future__ import annotations

from datasources.posts.records import CommentRecord, PostRecord, Subject
from datasources.users.graph import NO_RELATIONSHIP, RelationshipRecord
from datasources.users.store import UserRecord
from resolvers.context import Context
from resolvers.errors import BadUserInput, Forbidden, NotFound

VISIBILITIES = ("PUBLIC", "FOLLOWERS", "FRIENDS", "PRIVATE")
FRIENDS_PLATFORMS = frozenset({"socialink"})


def can_see(
    viewer_id: int | None, author: UserRecord, visibility: str, rel: RelationshipRecord
) -> bool:
    """Whether `viewer_id` may see a post of `author` with `visibility` (see the module)."""
    if viewer_id is not None and viewer_id == author.id:
        return True
    if rel.blocking or rel.blocked_by or visibility == "PRIVATE":
        return False
    if author.is_private and not (rel.following or rel.friends):
        return False
    if visibility == "PUBLIC":
        return True
    if visibility == "FOLLOWERS":
        return rel.following
    if visibility == "FRIENDS":
        return rel.friends
    return False


async def relationship(context: Context, user_id: int) -> RelationshipRecord:
    """The viewer's stored relationship to `user_id` (batched per request)."""
    viewer_id = context.viewer_id
    if viewer_id is None or viewer_id == user_id:
        return NO_RELATIONSHIP
    return await context.loaders.users.relationship(viewer_id).load(user_id)


async def allows(context: Context, post: PostRecord | None) -> bool:
    if post is None:
        return False
    author = await context.loaders.users.by_id.load(post.author_id)
    if author is None:
        return False
    rel = await relationship(context, author.id)
    return can_see(context.viewer_id, author, post.visibility, rel)


async def visible_post(context: Context, post_id: int) -> PostRecord | None:
    """The post, when it exists on this platform and the viewer may see it."""
    post = await context.loaders.posts.by_id.load(post_id)
    return post if await allows(context, post) else None


async def require_post(context: Context, post_id: int) -> PostRecord:
    post = await visible_post(context, post_id)
    if post is None:
        raise NotFound("post")
    return post


async def require_own_post(context: Context, post_id: int, action: str) -> PostRecord:
    """The viewer's own post: NOT_FOUND when hidden, FORBIDDEN when someone else's."""
    post = await require_post(context, post_id)
    if post.author_id != context.viewer_id:
        raise Forbidden(f"only the post's author can {action} it")
    return post


def require_visibility(platform: str, visibility: str) -> None:
    """FRIENDS exists only where friendships do (Socialink)."""
    if visibility not in VISIBILITIES:
        raise BadUserInput("unknown visibility", field="visibility")
    if visibility == "FRIENDS" and platform not in FRIENDS_PLATFORMS:
        raise BadUserInput(f"FRIENDS visibility is not available on {platform}", field="visibility")


async def can_see_comment_author(context: Context, comment: CommentRecord) -> bool:
    """Comments by a user with a block either way with the viewer are hidden."""
    rel = await relationship(context, comment.author_id)
    return not (rel.blocking or rel.blocked_by)


def require_comment_deleter(context: Context, comment: CommentRecord, subject: Subject) -> None:
    if context.viewer_id not in (comment.author_id, subject.author_id):
        raise Forbidden("only the comment's author or the author of what it is on can delete it")
