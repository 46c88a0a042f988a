"""Who may see and do what with takes, templates, trends and Behind-the-Takes.

One rule underlies all of them: a take is seen exactly like a PUBLIC post of
its author (resolvers/posts/policy.py `can_see(..., "PUBLIC", ...)`, called
here, not restated): everyone, unless the account is private (then the author,
approved followers and, on Socialink, friends); nobody across a block either
way; nothing of another platform (loaders are platform-scoped, so such a take
is simply not found). Hidden reads as
NOT_FOUND, never FORBIDDEN, so a hidden take cannot be told from a missing one.

Derived rules:
- a Behind-the-Take is seen with its take; only the take's author may add one;
- a trend is seen when its originator take is (its `originator` is non-null);
  only the originator take's author may start it;
- a template is a public format: seen by everyone on the platform except across
  a block with its creator; its `sourceTake` is null when that take is hidden.

`datasources.posts.takes_store.visible_takes` is the SQL form of `can_see_take`
(lists are filtered in the query); tests/test_takes_visibility.py runs the same
table of viewer kinds through both.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from datasources.posts.takes_store import TakeRecord, TemplateRecord, TrendRecord
from datasources.users.store import UserRecord
from resolvers.context import Context
from resolvers.errors import Forbidden, NotFound
from resolvers.posts import policy as posts_policy
from resolvers.users import policy as users_policy


async def can_see_author(context: Context, author_id: int) -> bool:
    """Whether the viewer may see takes by `author_id` (one batched load each)."""
    author: UserRecord | None = await context.loaders.users.by_id.load(author_id)
    if author is None:
        return False
    rel = await posts_policy.relationship(context, author_id)
    return posts_policy.can_see(context.viewer_id, author, "PUBLIC", rel)


async def can_see_take(context: Context, take: TakeRecord | None) -> bool:
    return take is not None and await can_see_author(context, take.author_id)


async def visible(context: Context, takes: Sequence[TakeRecord | None]) -> list[TakeRecord]:
    """The takes the viewer may see, in order (authors and relationships batched)."""
    present = [take for take in takes if take is not None]
    allowed = await asyncio.gather(*(can_see_author(context, t.author_id) for t in present))
    return [take for take, ok in zip(present, allowed, strict=True) if ok]


async def require_take(context: Context, take: TakeRecord | None) -> TakeRecord:
    if take is None or not await can_see_take(context, take):
        raise NotFound("take")
    return take


async def require_own_take(context: Context, take: TakeRecord | None, action: str) -> TakeRecord:
    """The viewer's own take: NOT_FOUND when hidden, FORBIDDEN when someone else's."""
    found = await require_take(context, take)
    if found.author_id != context.viewer_id:
        raise Forbidden(f"only the take's author can {action}")
    return found


async def can_see_trend(context: Context, trend: TrendRecord | None) -> bool:
    return trend is not None and await can_see_author(context, trend.originator_author_id)


async def require_trend(context: Context, trend: TrendRecord | None) -> TrendRecord:
    if trend is None or not await can_see_trend(context, trend):
        raise NotFound("trend")
    return trend


async def can_see_template(context: Context, template: TemplateRecord | None) -> bool:
    if template is None:
        return False
    creator = await context.loaders.users.by_id.load(template.creator_id)
    if creator is None:
        return False
    return users_policy.can_see_profile(await users_policy.facts(context, creator))


async def require_template(context: Context, template: TemplateRecord | None) -> TemplateRecord:
    if template is None or not await can_see_template(context, template):
        raise NotFound("template")
    return template
