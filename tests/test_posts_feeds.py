"""feed (followed accounts, friends, own; newest first; keyset pages) and explore
(public posts ranked by engagement and age; resolvers/posts/explore.py)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import update

from datasources.posts.tables import PostRow
from datasources.sql import utcnow
from resolvers.ids import split_id
from tests.conftest import Account, GraphQLClient, create_users
from tests.posts_helpers import create_post, mark

FEED = """
query($first: Int, $after: String) { feed(first: $first, after: $after) {
  totalCount pageInfo { hasNextPage endCursor } edges { node { caption } } } }
"""
EXPLORE = """
query($first: Int, $after: String) { explore(first: $first, after: $after) {
  totalCount pageInfo { hasNextPage endCursor } edges { node { caption likeCount } } } }
"""
FOLLOW = "mutation($u: ID!) { follow(userId: $u) { following } }"


async def pages(gql: GraphQLClient, query: str, viewer: Account | None, first: int) -> list[str]:
    """Every caption of a connection, page after page."""
    captions: list[str] = []
    after = None
    token = viewer.token if viewer else None
    while True:
        result = (await gql(query, {"first": first, "after": after}, token=token)).ok()
        page = next(iter(result.values()))
        assert len(page["edges"]) == first or not page["pageInfo"]["hasNextPage"]
        captions += [e["node"]["caption"] for e in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            return captions
        after = page["pageInfo"]["endCursor"]


async def test_feed_holds_followed_friends_and_own_posts(app: Any, gql: GraphQLClient) -> None:
    me, followed, friend, stranger, blocked = await create_users(
        app, ["me", "followed", "friend", "stranger", "blocked"]
    )
    (await gql(FOLLOW, {"u": followed.id}, token=me.token)).ok()
    (await gql(FOLLOW, {"u": blocked.id}, token=me.token)).ok()
    (
        await gql(
            "mutation($u: ID!) { sendFriendRequest(userId: $u) { friends } }",
            {"u": friend.id},
            token=me.token,
        )
    ).ok()
    (
        await gql(
            "mutation($u: ID!) { respondToFriendRequest(userId: $u, accept: true) { friends } }",
            {"u": me.id},
            token=friend.token,
        )
    ).ok()
    expected = []
    for i in range(4):
        for author in (me, followed, friend, stranger, blocked):
            await create_post(gql, author, f"{author.username} {i}")
            if author is not stranger and author is not blocked:
                expected.append(f"{author.username} {i}")
        await create_post(gql, followed, f"followed friends-only {i}", visibility="FRIENDS")
        await create_post(gql, friend, f"friend friends-only {i}", visibility="FRIENDS")
        expected.append(f"friend friends-only {i}")
        await create_post(gql, followed, f"followed private {i}", visibility="PRIVATE")
    await gql(
        "mutation($u: ID!) { block(userId: $u) { blocking } }", {"u": me.id}, token=blocked.token
    )
    expected.reverse()  # newest first

    for first in (1, 3, 5, 50):
        assert await pages(gql, FEED, me, first) == expected
    total = (await gql(FEED, {"first": 1}, token=me.token)).ok()["feed"]["totalCount"]
    assert total == len(expected)
    assert (await gql(FEED, {"first": 1})).codes == ["UNAUTHENTICATED"]
    bad = await gql(FEED, {"first": 1, "after": "nonsense"}, token=me.token)
    assert bad.codes == ["BAD_USER_INPUT"]


async def test_feed_pages_survive_equal_timestamps(app: Any, gql: GraphQLClient) -> None:
    (me,) = await create_users(app, ["me"])
    for i in range(7):
        await create_post(gql, me, f"p{i}")
    async with app.state.runtime.stores.db.transaction() as session:
        await session.execute(update(PostRow).values(created_at=utcnow()))
    captions = await pages(gql, FEED, me, 2)
    assert sorted(captions) == [f"p{i}" for i in range(7)]
    assert captions == [f"p{i}" for i in reversed(range(7))]  # ties by id, newest first


async def set_age(app: Any, post: dict[str, Any], hours: float) -> None:
    parts = split_id(post["id"])
    assert parts is not None
    async with app.state.runtime.stores.db.transaction() as session:
        await session.execute(
            update(PostRow)
            .where(PostRow.id == int(parts[1]))
            .values(created_at=utcnow() - timedelta(hours=hours))
        )


async def test_explore_ranks_by_engagement_and_age(app: Any, gql: GraphQLClient) -> None:
    alice, bob, *fans = await create_users(app, ["alice", "bob"] + [f"fan{i}" for i in range(6)])
    fresh = await create_post(gql, alice, "fresh")  # 0 h, no likes: 1 / 2^1.8 = 0.287
    old_hit = await create_post(gql, alice, "old hit")  # 10 h, 6 likes: 7 / 12^1.8 = 0.078
    day_old = await create_post(gql, alice, "day old")  # 3 h, 2 likes: 3 / 5^1.8 = 0.165
    ancient = await create_post(gql, alice, "ancient")  # 40 days: outside the window
    await create_post(gql, alice, "friends only", visibility="FOLLOWERS")
    await create_post(gql, bob, "blocked author")
    for fan in fans:
        (await gql(mark("likePost"), {"id": old_hit["id"]}, token=fan.token)).ok()
    for fan in fans[:2]:
        (await gql(mark("likePost"), {"id": day_old["id"]}, token=fan.token)).ok()
    await set_age(app, old_hit, 10)
    await set_age(app, day_old, 3)
    await set_age(app, ancient, 24 * 40)
    await gql(
        "mutation($u: ID!) { block(userId: $u) { blocking } }", {"u": bob.id}, token=fans[0].token
    )
    assert fresh["caption"] == "fresh"

    assert await pages(gql, EXPLORE, fans[0], 1) == ["fresh", "day old", "old hit"]
    # Signed out: bob's post too (newest, so first among the unliked ones).
    assert await pages(gql, EXPLORE, None, 2) == ["blocked author", "fresh", "day old", "old hit"]
    # More engagement lifts a post: 30 more likes put "old hit" first (37 / 12^1.8 = 0.42).
    more = await create_users(app, [f"more{i}" for i in range(30)])
    for fan in more:
        (await gql(mark("likePost"), {"id": old_hit["id"]}, token=fan.token)).ok()
    assert (await pages(gql, EXPLORE, fans[0], 10))[0] == "old hit"
