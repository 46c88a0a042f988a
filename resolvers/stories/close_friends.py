"""Close friends: the viewer's private list of who sees their CLOSE_FRIENDS stories.

The list lives in the users domain's graph store (a relation between two users,
cut both ways by a block); stories own the API, since stories are what it is for.

Rules, in the order of every social mutation (resolvers/users/social.py): signed
in (UNAUTHENTICATED), a well-formed User id (BAD_USER_INPUT), a user of this
platform (NOT_FOUND), not yourself (BAD_USER_INPUT), no block either way
(NOT_FOUND, as everywhere a block hides a user). Adding and removing are
idempotent and silent: no event, so nobody learns they were listed or dropped.
Both platforms have close friends; the listed user need not follow the viewer
(the viewer may list anyone they could follow).
"""

from __future__ import annotations

from datasources.users.graph import RelationshipRecord
from datasources.users.store import UserRecord
from resolvers.context import Context
from resolvers.errors import NotFound
from resolvers.pagination import Page
from resolvers.users import policy
from resolvers.users.queries import viewer_list
from resolvers.users.social import actor_id_of, fresh_relationship, target_facts


async def close_friends(context: Context, first: int | None, after: str | None) -> Page[UserRecord]:
    """The viewer's close friends, newest entry first, with their number."""
    return await viewer_list(context, context.stores.users.graph.close_friends, first, after)


async def add_close_friend(context: Context, user_id: str) -> RelationshipRecord:
    facts = await target_facts(context, user_id)
    policy.require_other_user(facts)
    # The store re-checks the block under the users' locks (a concurrent block wins).
    if not await context.stores.users.graph.add_close_friend(actor_id_of(facts), facts.target.id):
        raise NotFound("user")
    return await fresh_relationship(context, facts)


async def remove_close_friend(context: Context, user_id: str) -> RelationshipRecord:
    facts = await target_facts(context, user_id)
    policy.require_other_user(facts)
    await context.stores.users.graph.remove_close_friend(actor_id_of(facts), facts.target.id)
    return await fresh_relationship(context, facts)
