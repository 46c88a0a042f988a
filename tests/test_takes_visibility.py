"""Who sees a take, on every surface: take(id), takesFeed, User.takes, node(id).

A take is seen like a PUBLIC post of its author (resolvers/posts/take_policy.py):
everyone, unless the account is private (then the author, approved followers
and friends); nobody across a block either way; nothing from another platform.
The table runs each viewer kind through the policy (take, node) and through the
SQL filter (takesFeed) and the User.takes rule (FORBIDDEN for a private
account's other viewers, NOT_FOUND across a block).
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Account, GraphQLClient, create_users
from tests.test_takes import create_take

TAKE = "query($id: ID!) { take(id: $id) { id } }"
NODE = "query($id: ID!) { node(id: $id) { ... on Take { id } } }"
FEED = "{ takesFeed(first: 50) { totalCount edges { node { id } } } }"
USER_TAKES = (
    "query($name: String!) { user(username: $name) { takes { totalCount edges { node { id } } } } }"
)

# viewer kind → (sees the public account's take, sees the private account's take,
#                User.takes of the private account: None = listed, else the error code)
TABLE: dict[str, tuple[bool, bool, str | None]] = {
    "author": (True, True, None),
    "follower": (True, True, None),
    "friend": (True, True, None),
    "stranger": (True, False, "FORBIDDEN"),
    "requested": (True, False, "FORBIDDEN"),  # a follow request not yet approved
    "blocked": (False, False, "NOT_FOUND"),  # the authors blocked this viewer
    "blocker": (False, False, "NOT_FOUND"),  # this viewer blocked the authors
    "signed_out": (True, False, "FORBIDDEN"),
    "other_platform": (False, False, "NOT_FOUND"),
}

FOLLOW = "mutation($u: ID!) { follow(userId: $u) { following } }"
APPROVE = "mutation($u: ID!) { respondToFollowRequest(userId: $u, accept: true) { followedBy } }"
FRIEND = "mutation($u: ID!) { sendFriendRequest(userId: $u) { friendRequestSent } }"
ACCEPT_FRIEND = "mutation($u: ID!) { respondToFriendRequest(userId: $u, accept: true) { friends } }"
BLOCK = "mutation($u: ID!) { block(userId: $u) { blocking } }"
PRIVATE = "mutation { updateProfile(input: {isPrivate: true}) { isPrivate } }"


async def world(app: Any, gql: GraphQLClient) -> dict[str, Any]:
    pub, priv, follower, friend, stranger, requested, blocked, blocker = await create_users(
        app, ["pub", "priv", "follower", "friend", "stranger", "requested", "blocked", "blocker"]
    )
    (other,) = await create_users(app, ["outsider"], platform="vignette")
    (await gql(PRIVATE, token=priv.token)).ok()
    for author in (pub, priv):
        (await gql(FOLLOW, {"u": author.id}, token=follower.token)).ok()
        (await gql(FRIEND, {"u": author.id}, token=friend.token)).ok()
        (await gql(ACCEPT_FRIEND, {"u": friend.id}, token=author.token)).ok()
        (await gql(BLOCK, {"u": blocked.id}, token=author.token)).ok()
        (await gql(BLOCK, {"u": author.id}, token=blocker.token)).ok()
    (await gql(APPROVE, {"u": follower.id}, token=priv.token)).ok()
    (await gql(FOLLOW, {"u": priv.id}, token=requested.token)).ok()
    takes = {
        "pub": (await create_take(app, gql, pub, caption="public"))["id"],
        "priv": (await create_take(app, gql, priv, caption="private"))["id"],
    }
    viewers: dict[str, Account | None] = {
        "follower": follower,
        "friend": friend,
        "stranger": stranger,
        "requested": requested,
        "blocked": blocked,
        "blocker": blocker,
        "signed_out": None,
        "other_platform": other,
    }
    return {"pub": pub, "priv": priv, "takes": takes, "viewers": viewers}


async def ask(
    gql: GraphQLClient, viewer: Account | None, query: str, variables: dict[str, Any] | None = None
) -> Any:
    platform = viewer.platform if viewer else "socialink"
    return await gql(query, variables, token=viewer.token if viewer else None, platform=platform)


@pytest.mark.parametrize("kind", list(TABLE))
async def test_who_sees_a_take(app: Any, gql: GraphQLClient, kind: str) -> None:
    w = await world(app, gql)
    sees_public, sees_private, user_takes_error = TABLE[kind]
    for author_key, expected in (("pub", sees_public), ("priv", sees_private)):
        take_id = w["takes"][author_key]
        viewer = w[author_key] if kind == "author" else w["viewers"][kind]

        single = await ask(gql, viewer, TAKE, {"id": take_id})
        if expected:
            assert single.ok()["take"] == {"id": take_id}, (kind, author_key)
        else:
            assert single.codes == ["NOT_FOUND"], (kind, author_key, single.errors)

        node = (await ask(gql, viewer, NODE, {"id": take_id})).ok()["node"]
        assert node == ({"id": take_id} if expected else None), (kind, author_key)

        feed = (await ask(gql, viewer, FEED)).ok()["takesFeed"]
        listed = [e["node"]["id"] for e in feed["edges"]]
        assert (take_id in listed) is expected, (kind, author_key, listed)
        assert feed["totalCount"] == len(listed)

    viewer = w["priv"] if kind == "author" else w["viewers"][kind]
    result = await ask(gql, viewer, USER_TAKES, {"name": "priv"})
    if user_takes_error is None:
        takes = result.ok()["user"]["takes"]
        assert [e["node"]["id"] for e in takes["edges"]] == [w["takes"]["priv"]]
        assert takes["totalCount"] == 1
    else:
        assert result.codes == [user_takes_error], (kind, result.errors)
    if sees_public:
        public = (
            await ask(gql, w["pub"] if kind == "author" else viewer, USER_TAKES, {"name": "pub"})
        ).ok()
        assert [e["node"]["id"] for e in public["user"]["takes"]["edges"]] == [w["takes"]["pub"]]
