"""No N+1 in the users domain: a list of users costs the same statements at any size."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.conftest import Account, GraphQLClient, create_users, insert_media
from tests.events_support import consumers_settled

OWN_FOLLOWERS = """
{ viewer { followers(first: 50) { edges { node {
    username followerCount avatar { url } viewerRelationship { following }
} } } } }
"""

THEIR_FOLLOWERS = """
query($name: String!) { user(username: $name) { followers(first: 50) { edges { node {
    username followerCount avatar { url } viewerRelationship { following }
} } } } }
"""

SET_AVATAR = "mutation($m: ID!) { updateProfile(input: {avatarMediaId: $m}) { id } }"
FOLLOW = "mutation($u: ID!) { follow(userId: $u) { following } }"

# The viewer (users by id) + the followers page (one keyset query joined on users,
# which primes the user loader) + every avatar (media by ids) + every
# relationship (one UNION ALL). followerCount is a column. Nothing per follower.
OWN_FOLLOWERS_STATEMENTS = 4
# The user by username + the viewer's relationship to them (the privacy policy
# needs it) + the page + avatars + relationships to every follower.
THEIR_FOLLOWERS_STATEMENTS = 5


async def owner_with_followers(app: Any, gql: GraphQLClient, name: str, count: int) -> Account:
    """`name` with `count` followers, each with an avatar; every other one followed back."""
    owner, *followers = await create_users(app, [name] + [f"{name}_fan{i}" for i in range(count)])
    for i, fan in enumerate(followers):
        (await gql(FOLLOW, {"u": owner.id}, token=fan.token)).ok()
        (await gql(SET_AVATAR, {"m": await insert_media(app, fan)}, token=fan.token)).ok()
        if i % 2 == 0:
            (await gql(FOLLOW, {"u": fan.id}, token=owner.token)).ok()
    return owner


async def counted(
    gql: GraphQLClient, sql_counter: list[str], query: str, **kwargs: Any
) -> tuple[int, Any]:
    sql_counter.clear()
    data = (await gql(query, **kwargs)).ok()
    return len(sql_counter), data


async def test_followers_page_costs_the_same_statements_for_10_and_50(
    app: Any, gql: GraphQLClient, sql_counter: list[str]
) -> None:
    small = await owner_with_followers(app, gql, "small", 10)
    large = await owner_with_followers(app, gql, "large", 50)

    small_count, small_data = await counted(gql, sql_counter, OWN_FOLLOWERS, token=small.token)
    large_count, large_data = await counted(gql, sql_counter, OWN_FOLLOWERS, token=large.token)

    assert len(small_data["viewer"]["followers"]["edges"]) == 10
    edges = large_data["viewer"]["followers"]["edges"]
    assert len(edges) == 50
    assert all(edge["node"]["avatar"]["url"] for edge in edges)
    followed_back = {
        e["node"]["username"] for e in edges if e["node"]["viewerRelationship"]["following"]
    }
    assert followed_back == {f"large_fan{i}" for i in range(0, 50, 2)}
    assert small_count == large_count == OWN_FOLLOWERS_STATEMENTS, sql_counter


async def test_someone_elses_followers_cost_the_same_statements_for_10_and_50(
    app: Any, gql: GraphQLClient, sql_counter: list[str]
) -> None:
    await owner_with_followers(app, gql, "small", 10)
    await owner_with_followers(app, gql, "large", 50)
    (stranger,) = await create_users(app, ["stranger"])

    counts = []
    for name, size in (("small", 10), ("large", 50)):
        count, data = await counted(
            gql, sql_counter, THEIR_FOLLOWERS, variables={"name": name}, token=stranger.token
        )
        assert len(data["user"]["followers"]["edges"]) == size
        counts.append(count)
    assert counts == [THEIR_FOLLOWERS_STATEMENTS] * 2, sql_counter


async def test_a_page_loads_only_what_its_selection_asks_for(
    app: Any, gql: GraphQLClient, sql_counter: list[str]
) -> None:
    """Connections prefetch their nodes' avatars and relationships in one batch each,
    and only when the query selects them (also through fragments)."""
    owner = await owner_with_followers(app, gql, "owner", 6)
    names_only = "{ viewer { followers(first: 50) { edges { node { username } } } } }"
    through_fragments = """
    query { viewer { followers(first: 50) { ...Page } } }
    fragment Page on UserConnection { edges { node { ... on User { ...Fan } } } }
    fragment Fan on User { username followerCount avatar { url } viewerRelationship { following } }
    """

    count, data = await counted(gql, sql_counter, names_only, token=owner.token)
    assert len(data["viewer"]["followers"]["edges"]) == 6
    assert count == 2, sql_counter  # the viewer and the page: no avatars, no relationships

    direct_count, direct = await counted(gql, sql_counter, OWN_FOLLOWERS, token=owner.token)
    fragment_count, fragments = await counted(
        gql, sql_counter, through_fragments, token=owner.token
    )
    assert fragments == direct
    assert fragment_count == direct_count == OWN_FOLLOWERS_STATEMENTS, sql_counter


async def test_prefetched_nodes_resolve_without_a_task_each(app: Any, gql: GraphQLClient) -> None:
    """graphql-core runs each awaitable field as an asyncio task; prefetched avatars and
    relationships resolve as plain values, so a page of 50 costs the tasks of 10."""
    small = await owner_with_followers(app, gql, "small", 10)
    large = await owner_with_followers(app, gql, "large", 50)
    fragments = """
    query { viewer { followers(first: 50) {
        ... on UserConnection { edges { node { ...Fan } } }
    } } }
    fragment Fan on User { username avatar { url } viewerRelationship { following } }
    """
    await consumers_settled(app)  # the events of the setup: their consumers' tasks would count
    for query in (OWN_FOLLOWERS, fragments):
        tasks = [await tasks_created(gql, query, owner.token) for owner in (small, large)]
        assert tasks[0] == tasks[1], tasks


async def tasks_created(gql: GraphQLClient, query: str, token: str) -> int:
    loop = asyncio.get_running_loop()
    created = 0

    def counting_factory(loop: asyncio.AbstractEventLoop, coro: Any, **kwargs: Any) -> Any:
        nonlocal created
        created += 1
        return asyncio.Task(coro, loop=loop, **kwargs)

    previous = loop.get_task_factory()
    loop.set_task_factory(counting_factory)
    try:
        (await gql(query, token=token)).ok()
    finally:
        loop.set_task_factory(previous)
    return created
