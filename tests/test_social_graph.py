"""The social graph through the API: follows, requests, friends, blocks, suggestions,
profiles, pagination; exact counts under concurrency; bad input changes nothing."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import select, update

from datasources.sql import utcnow
from datasources.users.tables import (
    BlockRow,
    CloseFriendRow,
    FollowRow,
    FriendRequestRow,
    FriendshipRow,
    UserRow,
)
from resolvers.ids import encode_id, split_id
from tests.conftest import Account, GraphQLClient, Result, create_users, insert_media, sign_up

RELATIONSHIP = """
following followedBy requested blocking blockedBy friends
friendRequestSent friendRequestReceived isCloseFriend
"""
NONE = {
    "following": False,
    "followedBy": False,
    "requested": False,
    "blocking": False,
    "blockedBy": False,
    "friends": False,
    "friendRequestSent": False,
    "friendRequestReceived": False,
    "isCloseFriend": False,
}


def rel(**flags: bool) -> dict[str, bool]:
    return {**NONE, **flags}


async def act(
    gql: GraphQLClient,
    field: str,
    actor: Account | None,
    target_id: str,
    accept: bool | None = None,
    platform: str | None = None,
) -> Result:
    """Run one relationship mutation (`follow`, `block`…) as `actor` (None: signed out)."""
    args, params = "userId: $u", "$u: ID!"
    variables: dict[str, Any] = {"u": target_id}
    if accept is not None:
        args, params = args + ", accept: $a", params + ", $a: Boolean!"
        variables["a"] = accept
    query = f"mutation({params}) {{ {field}({args}) {{ {RELATIONSHIP} }} }}"
    return await gql(
        query,
        variables,
        token=actor.token if actor else None,
        platform=platform or (actor.platform if actor else "socialink"),
    )


async def ok(gql: GraphQLClient, field: str, actor: Account, target: Account, **kw: Any) -> Any:
    return (await act(gql, field, actor, target.id, **kw)).ok()[field]


async def counts(gql: GraphQLClient, account: Account) -> tuple[int, int]:
    viewer = (
        await gql(
            "{ viewer { followerCount followingCount } }",
            token=account.token,
            platform=account.platform,
        )
    ).ok()["viewer"]
    return viewer["followerCount"], viewer["followingCount"]


async def names(
    gql: GraphQLClient, query: str, account: Account | None, path: list[str]
) -> list[str]:
    result = (
        await gql(
            query,
            token=account.token if account else None,
            platform=account.platform if account else "socialink",
        )
    ).ok()
    for key in path:
        result = result[key]
    return [edge["node"]["username"] for edge in result["edges"]]


async def snapshot(app: Any) -> dict[str, Any]:
    """Every row the social graph owns, to show that a refused request changed nothing."""
    tables = {
        "follows": select(FollowRow.follower_id, FollowRow.followee_id, FollowRow.approved),
        "friend_requests": select(FriendRequestRow.sender_id, FriendRequestRow.recipient_id),
        "friendships": select(FriendshipRow.user_id, FriendshipRow.friend_id),
        "blocks": select(BlockRow.blocker_id, BlockRow.blocked_id),
        "users": select(
            UserRow.id,
            UserRow.display_name,
            UserRow.bio,
            UserRow.avatar_media_id,
            UserRow.is_private,
            UserRow.follower_count,
            UserRow.following_count,
        ),
    }
    async with app.state.runtime.stores.db.session() as session:
        return {
            name: sorted(tuple(r) for r in (await session.execute(q)).all())
            for name, q in tables.items()
        }


def code_and_field(result: Result) -> tuple[str, str | None]:
    assert len(result.errors) == 1, result.errors
    extensions = result.errors[0].get("extensions", {})
    return extensions.get("code"), extensions.get("field")


# ── follows ──────────────────────────────────────────────────────────────


async def test_follow_and_unfollow_keep_counts_exact(app: Any, gql: GraphQLClient) -> None:
    alice, bob = await create_users(app, ["alice", "bob"])
    assert await ok(gql, "follow", alice, bob) == rel(following=True)
    assert await counts(gql, bob) == (1, 0)
    assert await counts(gql, alice) == (0, 1)
    # bob sees alice as a follower in his relationship to her
    seen = (
        await gql(
            '{ user(username: "alice") { viewerRelationship { followedBy following } } }',
            token=bob.token,
        )
    ).ok()
    assert seen["user"]["viewerRelationship"] == {"followedBy": True, "following": False}

    assert await ok(gql, "follow", alice, bob) == rel(following=True)  # twice: nothing more
    assert await counts(gql, bob) == (1, 0)

    assert await ok(gql, "unfollow", alice, bob) == NONE
    assert await ok(gql, "unfollow", alice, bob) == NONE  # twice: never negative
    assert await counts(gql, bob) == (0, 0)
    assert await counts(gql, alice) == (0, 0)


async def test_30_concurrent_follows_count_30(app: Any, gql: GraphQLClient) -> None:
    star, *fans = await create_users(app, ["star"] + [f"fan{i}" for i in range(30)])
    results = await asyncio.gather(*(act(gql, "follow", fan, star.id) for fan in fans))
    assert all(r.ok()["follow"]["following"] for r in results)
    assert await counts(gql, star) == (30, 0)

    # the same follow sent many times at once still counts once
    again = await asyncio.gather(*(act(gql, "follow", fans[0], star.id) for _ in range(5)))
    assert all(r.ok()["follow"]["following"] for r in again)
    assert await counts(gql, star) == (30, 0)
    assert await counts(gql, fans[0]) == (0, 1)

    # concurrent unfollows, each sent twice: back to zero, never below
    await asyncio.gather(*(act(gql, "unfollow", fan, star.id) for fan in fans + fans))
    assert await counts(gql, star) == (0, 0)
    assert await asyncio.gather(*(counts(gql, fan) for fan in fans)) == [(0, 0)] * 30


async def test_following_a_private_account_is_a_request(app: Any, gql: GraphQLClient) -> None:
    alice, bob, carol = await create_users(app, ["alice", "bob", "carol"])
    await set_private(gql, bob, True)

    assert await ok(gql, "follow", alice, bob) == rel(requested=True)
    assert await ok(gql, "follow", carol, bob) == rel(requested=True)
    assert await counts(gql, bob) == (0, 0)  # pending requests do not count
    assert await counts(gql, alice) == (0, 0)
    requests = "{ followRequests { totalCount edges { node { username } } } }"
    assert await names(gql, requests, bob, ["followRequests"]) == ["carol", "alice"]
    followers = "{ viewer { followers { totalCount edges { node { username } } } } }"
    assert await names(gql, followers, bob, ["viewer", "followers"]) == []

    accepted = await ok(gql, "respondToFollowRequest", bob, alice, accept=True)
    assert accepted == rel(followedBy=True)
    assert await counts(gql, bob) == (1, 0)
    assert await counts(gql, alice) == (0, 1)

    declined = await ok(gql, "respondToFollowRequest", bob, carol, accept=False)
    assert declined == NONE
    assert await names(gql, requests, bob, ["followRequests"]) == []
    assert await counts(gql, bob) == (1, 0)

    # no request pending: NOT_FOUND, nothing changes
    before = await snapshot(app)
    again = await act(gql, "respondToFollowRequest", bob, carol.id, accept=True)
    assert code_and_field(again) == ("NOT_FOUND", None)
    assert await snapshot(app) == before


async def test_withdrawing_a_request_and_unfollowing_a_private_account(
    app: Any, gql: GraphQLClient
) -> None:
    alice, bob = await create_users(app, ["alice", "bob"])
    await set_private(gql, bob, True)
    await ok(gql, "follow", alice, bob)
    assert await ok(gql, "unfollow", alice, bob) == NONE  # withdraws the request
    assert (await gql("{ followRequests { totalCount } }", token=bob.token)).ok() == {
        "followRequests": {"totalCount": 0}
    }
    assert await counts(gql, bob) == (0, 0)


async def test_going_public_approves_pending_requests(app: Any, gql: GraphQLClient) -> None:
    alice, bob, carol = await create_users(app, ["alice", "bob", "carol"])
    await set_private(gql, bob, True)
    await ok(gql, "follow", alice, bob)
    await ok(gql, "follow", carol, bob)

    await set_private(gql, bob, False)
    assert await counts(gql, bob) == (2, 0)
    assert await counts(gql, alice) == (0, 1)
    assert (await gql("{ followRequests { totalCount } }", token=bob.token)).ok() == {
        "followRequests": {"totalCount": 0}
    }
    assert await ok(gql, "follow", alice, bob) == rel(following=True)
    # and a new follow is immediate
    (dave,) = await create_users(app, ["dave"])
    assert await ok(gql, "follow", dave, bob) == rel(following=True)
    assert await counts(gql, bob) == (3, 0)


async def set_private(gql: GraphQLClient, account: Account, value: bool) -> None:
    query = "mutation($p: Boolean) { updateProfile(input: {isPrivate: $p}) { isPrivate } }"
    result = await gql(query, {"p": value}, token=account.token, platform=account.platform)
    assert result.ok() == {"updateProfile": {"isPrivate": value}}


# ── friends (Socialink) ──────────────────────────────────────────────────


async def test_friend_request_accept_and_remove(app: Any, gql: GraphQLClient) -> None:
    alice, bob = await create_users(app, ["alice", "bob"])
    assert await ok(gql, "sendFriendRequest", alice, bob) == rel(friendRequestSent=True)
    assert await ok(gql, "sendFriendRequest", alice, bob) == rel(friendRequestSent=True)
    received = "{ friendRequests { totalCount edges { node { username } } } }"
    assert await names(gql, received, bob, ["friendRequests"]) == ["alice"]
    assert await names(gql, received, alice, ["friendRequests"]) == []

    assert await ok(gql, "respondToFriendRequest", bob, alice, accept=True) == rel(friends=True)
    friends = '{ user(username: "%s") { friends { totalCount edges { node { username } } } } }'
    assert await names(gql, friends % "alice", bob, ["user", "friends"]) == ["bob"]
    assert await names(gql, friends % "bob", alice, ["user", "friends"]) == ["alice"]
    assert await names(gql, received, bob, ["friendRequests"]) == []
    # friendship is not following: counts untouched
    assert await counts(gql, alice) == (0, 0)

    assert await ok(gql, "removeFriend", bob, alice) == NONE
    assert await names(gql, friends % "bob", alice, ["user", "friends"]) == []
    assert await ok(gql, "removeFriend", bob, alice) == NONE  # idempotent


async def test_crossed_friend_requests_make_a_friendship(app: Any, gql: GraphQLClient) -> None:
    alice, bob = await create_users(app, ["alice", "bob"])
    await ok(gql, "sendFriendRequest", alice, bob)
    assert await ok(gql, "sendFriendRequest", bob, alice) == rel(friends=True)
    assert (await gql("{ friendRequests { totalCount } }", token=alice.token)).ok() == {
        "friendRequests": {"totalCount": 0}
    }
    assert await ok(gql, "sendFriendRequest", alice, bob) == rel(friends=True)  # already friends


async def test_declining_a_friend_request_and_answering_none(app: Any, gql: GraphQLClient) -> None:
    alice, bob = await create_users(app, ["alice", "bob"])
    await ok(gql, "sendFriendRequest", alice, bob)
    assert await ok(gql, "respondToFriendRequest", bob, alice, accept=False) == NONE
    before = await snapshot(app)
    again = await act(gql, "respondToFriendRequest", bob, alice.id, accept=True)
    assert code_and_field(again) == ("NOT_FOUND", None)
    assert await snapshot(app) == before
    # one cannot accept one's own request either
    await ok(gql, "sendFriendRequest", alice, bob)
    before = await snapshot(app)
    own = await act(gql, "respondToFriendRequest", alice, bob.id, accept=True)
    assert code_and_field(own) == ("NOT_FOUND", None)
    assert await snapshot(app) == before


async def test_removing_a_friend_withdraws_a_pending_request(app: Any, gql: GraphQLClient) -> None:
    alice, bob = await create_users(app, ["alice", "bob"])
    await ok(gql, "sendFriendRequest", alice, bob)
    assert await ok(gql, "removeFriend", alice, bob) == NONE
    assert (await gql("{ friendRequests { totalCount } }", token=bob.token)).ok() == {
        "friendRequests": {"totalCount": 0}
    }


@pytest.mark.parametrize(
    "field, accept",
    [("sendFriendRequest", None), ("respondToFriendRequest", True), ("removeFriend", None)],
)
async def test_friend_mutations_are_not_on_vignette(
    app: Any, gql: GraphQLClient, field: str, accept: bool | None
) -> None:
    alice, bob = await create_users(app, ["alice", "bob"], platform="vignette")
    before = await snapshot(app)
    result = await act(gql, field, alice, bob.id, accept=accept)
    assert code_and_field(result) == ("BAD_USER_INPUT", None)
    assert "not available on this platform" in result.errors[0]["message"]
    assert await snapshot(app) == before


async def test_vignette_has_no_friends_but_follows(app: Any, gql: GraphQLClient) -> None:
    alice, bob = await create_users(app, ["alice", "bob"], platform="vignette")
    requests = await gql(
        "{ friendRequests { totalCount } }", token=alice.token, platform="vignette"
    )
    assert code_and_field(requests) == ("BAD_USER_INPUT", None)
    assert await ok(gql, "follow", alice, bob) == rel(following=True)
    assert await counts(gql, bob) == (1, 0)
    friends = await gql(
        '{ user(username: "bob") { friends { totalCount edges { cursor } } } }',
        token=alice.token,
        platform="vignette",
    )
    assert friends.ok() == {"user": {"friends": {"totalCount": 0, "edges": []}}}


# ── blocks ───────────────────────────────────────────────────────────────


async def test_block_cuts_every_tie_both_ways(app: Any, gql: GraphQLClient) -> None:
    alice, bob, carol = await create_users(app, ["alice", "bob", "carol"])
    await ok(gql, "follow", alice, bob)
    await ok(gql, "follow", bob, alice)
    await ok(gql, "follow", carol, alice)
    await ok(gql, "sendFriendRequest", alice, bob)
    await ok(gql, "respondToFriendRequest", bob, alice, accept=True)
    assert await counts(gql, alice) == (2, 1)

    assert await ok(gql, "block", alice, bob) == rel(blocking=True)
    assert await counts(gql, alice) == (1, 0)
    assert await counts(gql, bob) == (0, 0)
    assert await names(
        gql, "{ blockedUsers { edges { node { username } } } }", alice, ["blockedUsers"]
    ) == ["bob"]
    rows = await snapshot(app)
    assert rows["friendships"] == [] and rows["friend_requests"] == []
    assert await ok(gql, "block", alice, bob) == rel(blocking=True)  # idempotent
    assert await counts(gql, alice) == (1, 0)


async def test_block_removes_pending_follow_requests(app: Any, gql: GraphQLClient) -> None:
    alice, bob = await create_users(app, ["alice", "bob"])
    await set_private(gql, alice, True)
    await ok(gql, "follow", bob, alice)
    await ok(gql, "sendFriendRequest", bob, alice)
    await ok(gql, "block", alice, bob)
    assert (
        await gql(
            "{ followRequests { totalCount } friendRequests { totalCount } }", token=alice.token
        )
    ).ok() == {
        "followRequests": {"totalCount": 0},
        "friendRequests": {"totalCount": 0},
    }


async def test_blocked_and_blocker_cannot_see_each_other(app: Any, gql: GraphQLClient) -> None:
    alice, bob = await create_users(app, ["alice", "bob"])
    await ok(gql, "block", alice, bob)

    unknown = await gql('{ user(username: "nobody") { username } }', token=bob.token)
    hidden = await gql('{ user(username: "alice") { username } }', token=bob.token)
    assert hidden.body["data"] == unknown.body["data"] == {"user": None}
    assert code_and_field(hidden) == code_and_field(unknown) == ("NOT_FOUND", None)
    assert hidden.errors[0]["message"] == unknown.errors[0]["message"]
    blocked_side = await gql('{ user(username: "bob") { username } }', token=alice.token)
    assert code_and_field(blocked_side) == ("NOT_FOUND", None)

    before = await snapshot(app)
    for field in ("follow", "sendFriendRequest", "unfollow", "removeFriend"):
        result = await act(gql, field, bob, alice.id)
        assert code_and_field(result) == ("NOT_FOUND", None), field
        result = await act(gql, field, alice, bob.id)
        assert code_and_field(result) == ("NOT_FOUND", None), field
    assert await snapshot(app) == before

    # blocking back is allowed (a refusal would reveal the block); blockedBy stays hidden
    assert await ok(gql, "block", bob, alice) == rel(blocking=True)


async def test_unblock_makes_visible_again_without_restoring_follows(
    app: Any, gql: GraphQLClient
) -> None:
    alice, bob = await create_users(app, ["alice", "bob"])
    await ok(gql, "follow", bob, alice)
    await ok(gql, "block", alice, bob)
    assert await ok(gql, "unblock", alice, bob) == NONE
    assert await ok(gql, "unblock", alice, bob) == NONE  # idempotent
    seen = await gql('{ user(username: "alice") { username followerCount } }', token=bob.token)
    assert seen.ok() == {"user": {"username": "alice", "followerCount": 0}}
    assert await ok(gql, "follow", bob, alice) == rel(following=True)


async def test_a_block_hides_users_from_third_party_lists(app: Any, gql: GraphQLClient) -> None:
    alice, bob, carol = await create_users(app, ["alice", "bob", "carol"])
    await ok(gql, "follow", alice, carol)
    await ok(gql, "follow", bob, carol)
    await ok(gql, "block", alice, bob)
    followers = '{ user(username: "carol") { followers { edges { node { username } } } } }'
    assert await names(gql, followers, bob, ["user", "followers"]) == ["bob"]
    assert await names(gql, followers, alice, ["user", "followers"]) == ["alice"]
    assert await names(gql, followers, carol, ["user", "followers"]) == ["bob", "alice"]


async def test_close_friends_show_in_the_relationship_until_a_block(
    app: Any, gql: GraphQLClient
) -> None:
    """Close-friend rows are written by a later issue's mutations; here, directly."""
    alice, bob = await create_users(app, ["alice", "bob"])
    async with app.state.runtime.stores.db.transaction() as session:
        session.add(CloseFriendRow(user_id=pk(alice), friend_id=pk(bob), created_at=utcnow()))
    query = '{ user(username: "bob") { viewerRelationship { isCloseFriend } } }'
    seen = await gql(query, token=alice.token)
    assert seen.ok() == {"user": {"viewerRelationship": {"isCloseFriend": True}}}
    reverse = await gql(
        '{ user(username: "alice") { viewerRelationship { isCloseFriend } } }', token=bob.token
    )
    assert reverse.ok() == {"user": {"viewerRelationship": {"isCloseFriend": False}}}
    await ok(gql, "block", bob, alice)
    await ok(gql, "unblock", bob, alice)
    assert (await gql(query, token=alice.token)).ok() == {
        "user": {"viewerRelationship": {"isCloseFriend": False}}
    }


def pk(account: Account) -> int:
    parts = split_id(account.id)
    assert parts is not None
    return int(parts[1])


# ── mutations: who and what they act on ──────────────────────────────────

MUTATIONS = [
    ("follow", None),
    ("unfollow", None),
    ("respondToFollowRequest", True),
    ("sendFriendRequest", None),
    ("respondToFriendRequest", True),
    ("removeFriend", None),
    ("block", None),
    ("unblock", None),
]


@pytest.mark.parametrize("field, accept", MUTATIONS)
async def test_mutation_targets_are_checked(
    app: Any, gql: GraphQLClient, field: str, accept: bool | None
) -> None:
    alice, bob = await create_users(app, ["alice", "bob"])
    (elsewhere,) = await create_users(app, ["carol"], platform="vignette")
    await ok(gql, "follow", bob, alice)
    before = await snapshot(app)

    cases = {
        "malformed": (alice, "not-an-id", ("BAD_USER_INPUT", "userId")),
        "wrong type": (alice, encode_id("Media", 1), ("BAD_USER_INPUT", "userId")),
        "unknown": (alice, encode_id("User", 999_999), ("NOT_FOUND", None)),
        "other platform": (alice, elsewhere.id, ("NOT_FOUND", None)),
        "yourself": (alice, alice.id, ("BAD_USER_INPUT", "userId")),
        "signed out": (None, bob.id, ("UNAUTHENTICATED", None)),
    }
    for case, (actor, target, expected) in cases.items():
        result = await act(gql, field, actor, target, accept=accept)
        assert result.body["data"] is None, case
        assert code_and_field(result) == expected, case
    assert await snapshot(app) == before


# ── pagination ───────────────────────────────────────────────────────────

PAGE = """
query($first: Int, $after: String) { viewer { followers(first: $first, after: $after) {
  totalCount pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
  edges { cursor node { username } }
} } }
"""


async def test_followers_pages_newest_first(app: Any, gql: GraphQLClient) -> None:
    star, *fans = await create_users(app, ["star"] + [f"fan{i:02}" for i in range(25)])
    for fan in fans:
        await ok(gql, "follow", fan, star)

    seen: list[str] = []
    after = None
    pages = []
    while True:
        data = (await gql(PAGE, {"first": 10, "after": after}, token=star.token)).ok()
        conn = data["viewer"]["followers"]
        assert conn["totalCount"] == 25
        assert conn["pageInfo"]["hasPreviousPage"] is (after is not None)
        seen += [edge["node"]["username"] for edge in conn["edges"]]
        pages.append(len(conn["edges"]))
        if conn["edges"]:
            assert conn["pageInfo"]["endCursor"] == conn["edges"][-1]["cursor"]
        if not conn["pageInfo"]["hasNextPage"]:
            break
        after = conn["pageInfo"]["endCursor"]
    assert pages == [10, 10, 5]
    assert seen == [f"fan{i:02}" for i in reversed(range(25))]

    empty = (await gql(PAGE, {"first": 0}, token=star.token)).ok()["viewer"]["followers"]
    assert empty["edges"] == [] and empty["totalCount"] == 25


async def test_following_pages_with_same_timestamps_are_complete(
    app: Any, gql: GraphQLClient
) -> None:
    """Rows created in one instant still page without loss or repeat (id breaks ties)."""
    fan, *stars = await create_users(app, ["fan"] + [f"star{i}" for i in range(7)])
    for star in stars:
        await ok(gql, "follow", fan, star)
    async with app.state.runtime.stores.db.transaction() as session:
        await session.execute(update(FollowRow).values(created_at=utcnow()))
    query = """query($after: String) { viewer { following(first: 3, after: $after) {
        pageInfo { hasNextPage endCursor } edges { node { username } } } } }"""
    seen: list[str] = []
    after = None
    while True:
        conn = (await gql(query, {"after": after}, token=fan.token)).ok()["viewer"]["following"]
        seen += [edge["node"]["username"] for edge in conn["edges"]]
        if not conn["pageInfo"]["hasNextPage"]:
            break
        after = conn["pageInfo"]["endCursor"]
    assert sorted(seen) == sorted(s.username for s in stars) and len(seen) == 7


@pytest.mark.parametrize(
    "variables, field",
    [
        ({"first": -1}, "first"),
        ({"first": 101}, "first"),
        ({"after": "garbage!"}, "after"),
        ({"after": "WyJub3QgYSBkYXRlIiwxXQ"}, "after"),  # ["not a date",1]
        ({"after": "WyIyMDI2LTAxLTAxVDAwOjAwOjAwIiwxXQ"}, "after"),  # no UTC offset
    ],
)
async def test_bad_page_arguments(
    app: Any, gql: GraphQLClient, variables: dict[str, Any], field: str
) -> None:
    (star,) = await create_users(app, ["star"])
    for query in (PAGE, PAGE.replace("viewer { followers", "viewer { following")):
        result = await gql(query, variables, token=star.token)
        assert code_and_field(result) == ("BAD_USER_INPUT", field)
    for root in ("followRequests", "blockedUsers", "friendRequests"):
        query = (
            f"query($first: Int, $after: String) "
            f"{{ {root}(first: $first, after: $after) {{ totalCount }} }}"
        )
        result = await gql(query, variables, token=star.token)
        assert code_and_field(result) == ("BAD_USER_INPUT", field), root


async def test_viewer_lists_need_a_signed_in_viewer(gql: GraphQLClient) -> None:
    for query in (
        "{ followRequests { totalCount } }",
        "{ friendRequests { totalCount } }",
        "{ blockedUsers { totalCount } }",
        "{ suggestedUsers { username } }",
    ):
        assert code_and_field(await gql(query)) == ("UNAUTHENTICATED", None), query


# ── suggestions ──────────────────────────────────────────────────────────

SUGGESTED = "query($limit: Int) { suggestedUsers(limit: $limit) { username } }"


async def suggested(gql: GraphQLClient, account: Account, limit: int = 10) -> list[str]:
    data = (
        await gql(SUGGESTED, {"limit": limit}, token=account.token, platform=account.platform)
    ).ok()
    return [user["username"] for user in data["suggestedUsers"]]


async def test_suggestions_rank_by_mutual_connections(app: Any, gql: GraphQLClient) -> None:
    me, f1, f2, f3, pop, mid, lone, friend, fof, blocked, blocker, asked = await create_users(
        app,
        [
            "me",
            "f1",
            "f2",
            "f3",
            "pop",
            "mid",
            "lone",
            "friend",
            "fof",
            "blocked",
            "blocker",
            "asked",
        ],
    )
    for followed in (f1, f2, f3):
        await ok(gql, "follow", me, followed)
    for via in (f1, f2, f3):
        await ok(gql, "follow", via, pop)  # 3 mutual
    await ok(gql, "follow", f2, mid)  # 1 mutual, 1 follower
    await ok(gql, "follow", f1, lone)  # 1 mutual so far
    await ok(gql, "follow", f1, me)  # never self
    await ok(gql, "follow", f1, f2)  # already followed
    for excluded in (blocked, blocker, asked):
        await ok(gql, "follow", f1, excluded)
    await ok(gql, "block", me, blocked)
    await ok(gql, "block", blocker, me)
    await set_private(gql, asked, True)
    await ok(gql, "follow", me, asked)  # requested
    # Socialink: friends of friends count too
    await ok(gql, "sendFriendRequest", me, friend)
    await ok(gql, "respondToFriendRequest", friend, me, accept=True)
    await ok(gql, "sendFriendRequest", friend, fof)
    await ok(gql, "respondToFriendRequest", fof, friend, accept=True)
    await ok(gql, "sendFriendRequest", friend, lone)
    await ok(gql, "respondToFriendRequest", lone, friend, accept=True)  # lone: 2 mutual now
    # fof: 1 mutual like mid, but fewer followers: ties go to the more followed

    assert await suggested(gql, me) == ["pop", "lone", "mid", "fof"]
    assert await suggested(gql, me, limit=2) == ["pop", "lone"]
    assert await suggested(gql, me, limit=0) == []
    bad = await gql(SUGGESTED, {"limit": 101}, token=me.token)
    assert code_and_field(bad) == ("BAD_USER_INPUT", "limit")


async def test_vignette_suggestions_follow_only_follows(app: Any, gql: GraphQLClient) -> None:
    me, via, target = await create_users(app, ["me", "via", "target"], platform="vignette")
    await ok(gql, "follow", me, via)
    await ok(gql, "follow", via, target)
    assert await suggested(gql, me) == ["target"]
    await ok(gql, "follow", me, target)
    assert await suggested(gql, me) == []


# ── profile ──────────────────────────────────────────────────────────────

UPDATE = """mutation($input: UpdateProfileInput!) { updateProfile(input: $input) {
  displayName bio isPrivate avatar { id kind }
} }"""


async def test_update_profile(app: Any, gql: GraphQLClient) -> None:
    alice = await sign_up(gql, "alice")
    image = await insert_media(app, alice)
    result = await gql(
        UPDATE,
        {
            "input": {
                "displayName": "  Alice A.  ",
                "bio": "hello",
                "avatarMediaId": image,
                "isPrivate": True,
            }
        },
        token=alice.token,
    )
    assert result.ok()["updateProfile"] == {
        "displayName": "Alice A.",
        "bio": "hello",
        "isPrivate": True,
        "avatar": {"id": image, "kind": "IMAGE"},
    }
    # fields left out stay; null clears bio and avatar
    result = await gql(UPDATE, {"input": {"bio": None, "avatarMediaId": None}}, token=alice.token)
    assert result.ok()["updateProfile"] == {
        "displayName": "Alice A.",
        "bio": None,
        "isPrivate": True,
        "avatar": None,
    }
    seen = await gql('{ user(username: "alice") { displayName isPrivate } }')
    assert seen.ok() == {"user": {"displayName": "Alice A.", "isPrivate": True}}


async def test_bad_profile_input_changes_nothing(app: Any, gql: GraphQLClient) -> None:
    alice, bob = await create_users(app, ["alice", "bob"])
    (carol,) = await create_users(app, ["carol"], platform="vignette")
    video = await insert_media(app, alice, kind="VIDEO", mime_type="video/mp4")
    bobs_image = await insert_media(app, bob)
    other_platform_image = await insert_media(app, carol)
    good = {"bio": "changed", "isPrivate": True}
    cases: list[tuple[dict[str, Any], tuple[str, str | None]]] = [
        ({"displayName": ""}, ("BAD_USER_INPUT", "displayName")),
        ({"displayName": "   "}, ("BAD_USER_INPUT", "displayName")),
        ({"displayName": "x" * 101}, ("BAD_USER_INPUT", "displayName")),
        ({"displayName": None}, ("BAD_USER_INPUT", "displayName")),
        ({"bio": "x" * 151}, ("BAD_USER_INPUT", "bio")),
        ({"isPrivate": None}, ("BAD_USER_INPUT", "isPrivate")),
        ({"avatarMediaId": "nope"}, ("BAD_USER_INPUT", "avatarMediaId")),
        ({"avatarMediaId": video}, ("BAD_USER_INPUT", "avatarMediaId")),
        ({"avatarMediaId": bobs_image}, ("FORBIDDEN", None)),
        ({"avatarMediaId": other_platform_image}, ("NOT_FOUND", None)),
        ({"avatarMediaId": encode_id("Media", 999_999)}, ("NOT_FOUND", None)),
    ]
    before = await snapshot(app)
    for bad, expected in cases:
        result = await gql(UPDATE, {"input": {**good, **bad}}, token=alice.token)
        assert result.body["data"] is None, bad
        assert code_and_field(result) == expected, bad
    signed_out = await gql(UPDATE, {"input": good})
    assert code_and_field(signed_out) == ("UNAUTHENTICATED", None)
    assert await snapshot(app) == before

    ok_at_limits = {"displayName": "x" * 100, "bio": "y" * 150}
    assert (await gql(UPDATE, {"input": ok_at_limits}, token=alice.token)).ok()
