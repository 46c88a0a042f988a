"""Follows, follow requests, friendships and blocks: the social graph's mutations.

Each takes the other user's global ID and answers the viewer's relationship to
that user after the change. The order of checks is the same everywhere: signed
in, platform feature, a well-formed ID, a user of this platform the viewer may
act on (policy), then one transactional write in SocialGraph.
"""

from __future__ import annotations

from datasources.users.graph import RelationshipRecord
from resolvers.context import Context
from resolvers.errors import NotFound
from resolvers.ids import decode_id
from resolvers.users import policy


async def follow(context: Context, user_id: str) -> RelationshipRecord:
    """Follow; a private account gets a pending request instead (see followRequests)."""
    facts = await target_facts(context, user_id)
    policy.require_other_user(facts)
    await context.stores.users.graph.follow(actor_id_of(facts), facts.target.id, context.platform)
    return await fresh_relationship(context, facts)


async def unfollow(context: Context, user_id: str) -> RelationshipRecord:
    """Stop following, or withdraw a pending request. Idempotent."""
    facts = await target_facts(context, user_id)
    policy.require_other_user(facts)
    await context.stores.users.graph.unfollow(actor_id_of(facts), facts.target.id, context.platform)
    return await fresh_relationship(context, facts)


async def respond_to_follow_request(
    context: Context, user_id: str, accept: bool
) -> RelationshipRecord:
    """Accept or decline `user_id`'s pending request to follow the viewer."""
    facts = await target_facts(context, user_id)
    policy.require_other_user(facts)
    graph = context.stores.users.graph
    answer = graph.approve_request if accept else graph.decline_request
    if not await answer(actor_id_of(facts), facts.target.id, context.platform):
        raise NotFound("follow request")
    return await fresh_relationship(context, facts)


async def send_friend_request(context: Context, user_id: str) -> RelationshipRecord:
    """Ask to be friends; if the other user already asked the viewer, they become friends."""
    facts = await _friend_target(context, user_id)
    await context.stores.users.graph.send_friend_request(
        actor_id_of(facts), facts.target.id, context.platform
    )
    return await fresh_relationship(context, facts)


async def respond_to_friend_request(
    context: Context, user_id: str, accept: bool
) -> RelationshipRecord:
    facts = await _friend_target(context, user_id)
    graph = context.stores.users.graph
    if not await graph.answer_friend_request(
        actor_id_of(facts), facts.target.id, accept, context.platform
    ):
        raise NotFound("friend request")
    return await fresh_relationship(context, facts)


async def remove_friend(context: Context, user_id: str) -> RelationshipRecord:
    """End the friendship; also withdraws the viewer's pending request (the contract has
    no separate cancel). Idempotent."""
    facts = await _friend_target(context, user_id)
    await context.stores.users.graph.unfriend(actor_id_of(facts), facts.target.id, context.platform)
    return await fresh_relationship(context, facts)


async def block(context: Context, user_id: str) -> RelationshipRecord:
    """Block; cuts follows, requests and friendship both ways. Idempotent."""
    facts = await target_facts(context, user_id)
    policy.require_not_self(facts)
    await context.stores.users.graph.block(actor_id_of(facts), facts.target.id, context.platform)
    return await fresh_relationship(context, facts)


async def unblock(context: Context, user_id: str) -> RelationshipRecord:
    """Lift the viewer's block. What it had cut stays cut. Idempotent."""
    facts = await target_facts(context, user_id)
    policy.require_not_self(facts)
    await context.stores.users.graph.unblock(actor_id_of(facts), facts.target.id, context.platform)
    return await fresh_relationship(context, facts)


async def target_facts(context: Context, user_id: str) -> policy.Facts:
    """The facts about the user a mutation acts on; NOT_FOUND when not of this platform."""
    context.require_viewer()
    pk = decode_id(user_id, "User", field="userId")
    target = await context.loaders.users.by_id.load(pk)
    if target is None:
        raise NotFound("user")
    return await policy.facts(context, target)


async def _friend_target(context: Context, user_id: str) -> policy.Facts:
    context.require_viewer()
    policy.require_friends(context.platform)
    facts = await target_facts(context, user_id)
    policy.require_other_user(facts)
    return facts


def actor_id_of(facts: policy.Facts) -> int:
    assert facts.viewer_id is not None  # target_facts required a viewer
    return facts.viewer_id


async def fresh_relationship(context: Context, facts: policy.Facts) -> RelationshipRecord:
    """The relationship as it is now (cached rows of both users are dropped first)."""
    context.loaders.users.forget(actor_id_of(facts), facts.target.id)
    fresh = await policy.facts(context, facts.target)
    shown = policy.shown_relationship(fresh)
    assert shown is not None  # signed in
    return shown
