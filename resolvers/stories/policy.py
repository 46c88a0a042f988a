"""Who may see and do what with a story: every such decision of the stories domain.

The rules (`can_see` states them once; tests/test_stories_policy.py enumerates
viewer kinds × audiences through the API):

- The author always sees their own stories, active or expired.
- Another platform's story does not exist here (loaders are platform-scoped).
- A block, either way, hides every story of each user from the other; hidden
  reads as NOT_FOUND, exactly like a story that does not exist.
- EVERYONE: whoever may see the author's posts — anyone (signed out included)
  for a public account; approved followers and, on Socialink, friends for a
  private one (resolvers/posts/policy.py `can_see` with PUBLIC visibility).
- CLOSE_FRIENDS: only the people on the author's close-friends list, everywhere
  a story can surface (tray, User.stories, node, highlights).
- An expired story is gone from every read except its author's highlights, where
  each story still shows only to the viewers its audience allows.
- Views, viewers, replies, insights and question answers are the author's only:
  FORBIDDEN for anyone who can see the story, NOT_FOUND for anyone who cannot.
"""

from __future__ import annotations

from datetime import datetime

from datasources.stories.records import StoryRecord
from datasources.users.graph import RelationshipRecord
from datasources.users.store import UserRecord
from resolvers.context import Context
from resolvers.errors import Forbidden, NotFound
from resolvers.posts.policy import can_see as can_see_post
from resolvers.posts.policy import relationship

AUDIENCES = ("EVERYONE", "CLOSE_FRIENDS")


def can_see(
    viewer_id: int | None, author: UserRecord, audience: str, rel: RelationshipRecord
) -> bool:
    """Whether `viewer_id` may see a story of `author` for `audience` (see the module)."""
    if viewer_id is not None and viewer_id == author.id:
        return True
    if rel.blocking or rel.blocked_by:
        return False
    if audience == "CLOSE_FRIENDS":
        return rel.close_friend_of
    return can_see_post(viewer_id, author, "PUBLIC", rel)


async def allows(context: Context, story: StoryRecord | None) -> bool:
    """Whether the viewer may see this story, expired or not (highlights)."""
    if story is None:
        return False
    author = await context.loaders.users.by_id.load(story.author_id)
    if author is None:
        return False
    rel = await relationship(context, author.id)
    return can_see(context.viewer_id, author, story.audience, rel)


def now(context: Context) -> datetime:
    """The request's clock (Stores.clock: tests move it to expire stories)."""
    return context.stores.clock()


async def visible_story(context: Context, story_id: int) -> StoryRecord | None:
    """The active story, when it exists on this platform and the viewer may see it."""
    story = await context.loaders.stories.by_id.load(story_id)
    if story is None or not story.active(now(context)):
        return None
    return story if await allows(context, story) else None


async def require_story(context: Context, story_id: int) -> StoryRecord:
    story = await visible_story(context, story_id)
    if story is None:
        raise NotFound("story")
    return story


async def require_own_story(context: Context, story_id: int, action: str) -> StoryRecord:
    """The viewer's own story (active or expired): NOT_FOUND when hidden or missing,
    FORBIDDEN when someone else's."""
    story = await context.loaders.stories.by_id.load(story_id)
    if story is None or not (story.active(now(context)) or story.author_id == context.viewer_id):
        raise NotFound("story")
    if not await allows(context, story):
        raise NotFound("story")
    require_author(context, story, action)
    return story


def require_author(context: Context, story: StoryRecord, what: str) -> None:
    """Author-only data and actions: FORBIDDEN for anyone else (who can see the story)."""
    if context.viewer_id != story.author_id:
        raise Forbidden(f"only the story's author can {what}")
