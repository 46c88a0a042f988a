"""Who may see what of a user: every kind of viewer × every part of a profile.

The rules (resolvers/users/policy.py): a block either way makes the profile
NOT_FOUND, exactly like an unknown username; a private account's followers,
following and friends are FORBIDDEN to all but the owner, approved followers and
friends, while its basic profile and counts stay visible; viewerRelationship is
null when signed out; nothing crosses platforms.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from tests.conftest import Account, GraphQLClient, create_users

ASPECTS = {
    "profile": "user(username: $n) { username isPrivate followerCount followingCount }",
    "followers": "user(username: $n) { followers { totalCount edges { node { username } } } }",
    "following": "user(username: $n) { following { totalCount edges { node { username } } } }",
    "friends": "user(username: $n) { friends { totalCount edges { node { username } } } }",
    "relationship": (
        "user(username: $n) { viewerRelationship {"
        " following followedBy requested friends blocking blockedBy } }"
    ),
}

FOLLOW = "mutation($u: ID!) { follow(userId: $u) { following } }"


@dataclass
class World:
    owner: Account
    viewers: dict[str, Account | None]


async def mutate(
    gql: GraphQLClient, actor: Account, field: str, target: Account, **args: Any
) -> None:
    extra = "".join(f", {k}: {str(v).lower()}" for k, v in args.items())
    query = f"mutation($u: ID!) {{ {field}(userId: $u{extra}) {{ following }} }}"
    (await gql(query, {"u": target.id}, token=actor.token, platform=actor.platform)).ok()


async def build(app: Any, gql: GraphQLClient, private: bool) -> World:
    """owner (private or not), and one account of each kind of viewer."""
    owner, follower, requester, friend, stranger, blocked, blocker = await create_users(
        app, ["owner", "follower", "requester", "friend", "stranger", "blocked", "blocker"]
    )
    (elsewhere,) = await create_users(app, ["elsewhere"], platform="vignette")
    if private:
        query = "mutation { updateProfile(input: {isPrivate: true}) { isPrivate } }"
        (await gql(query, token=owner.token)).ok()
    await mutate(gql, follower, "follow", owner)
    await mutate(gql, requester, "follow", owner)
    if private:
        await mutate(gql, owner, "respondToFollowRequest", follower, accept=True)
    await mutate(gql, owner, "follow", follower)
    await mutate(gql, friend, "sendFriendRequest", owner)
    await mutate(gql, owner, "respondToFriendRequest", friend, accept=True)
    await mutate(gql, owner, "block", blocked)
    await mutate(gql, blocker, "block", owner)
    return World(
        owner,
        {
            "owner": owner,
            "approved follower": follower,
            "pending requester": requester,
            "friend": friend,
            "stranger": stranger,
            "blocked": blocked,
            "blocker": blocker,
            "signed out": None,
            "other platform": elsewhere,
        },
    )


def rel(**flags: bool) -> dict[str, bool]:
    names = ("following", "followedBy", "requested", "friends", "blocking", "blockedBy")
    return {name: flags.get(name, False) for name in names}


NOT_FOUND, FORBIDDEN = "NOT_FOUND", "FORBIDDEN"
SEEN = "seen"
HIDDEN_ALL = dict.fromkeys(ASPECTS, NOT_FOUND)


def row(profile: str, lists: str, relationship: Any) -> dict[str, Any]:
    return {
        "profile": profile,
        "followers": lists,
        "following": lists,
        "friends": lists,
        "relationship": relationship,
    }


PRIVATE_OWNER = {
    "owner": row(SEEN, SEEN, rel()),
    "approved follower": row(SEEN, SEEN, rel(following=True, followedBy=True)),
    "pending requester": row(SEEN, FORBIDDEN, rel(requested=True)),
    "friend": row(SEEN, SEEN, rel(friends=True)),
    "stranger": row(SEEN, FORBIDDEN, rel()),
    "blocked": HIDDEN_ALL,
    "blocker": HIDDEN_ALL,
    "signed out": row(SEEN, FORBIDDEN, None),
    "other platform": HIDDEN_ALL,
}

PUBLIC_OWNER = {
    **PRIVATE_OWNER,
    # on a public account the request was a follow at once
    "pending requester": row(SEEN, SEEN, rel(following=True)),
    "stranger": row(SEEN, SEEN, rel()),
    "signed out": row(SEEN, SEEN, None),
}


def expected_lists(private: bool) -> dict[str, dict[str, Any]]:
    """What an allowed viewer sees in each list of the owner."""
    followers = ["follower"] if private else ["requester", "follower"]
    return {
        "profile": {
            "username": "owner",
            "isPrivate": private,
            "followerCount": len(followers),  # the pending request is not counted
            "followingCount": 1,
        },
        "followers": {"totalCount": len(followers), "edges": followers},
        "following": {"totalCount": 1, "edges": ["follower"]},
        "friends": {"totalCount": 1, "edges": ["friend"]},
    }


async def look(gql: GraphQLClient, viewer: Account | None, aspect: str) -> tuple[str | None, Any]:
    """(error code or None, what the aspect showed) for `viewer` looking at owner."""
    query = f"query($n: String!) {{ {ASPECTS[aspect]} }}"
    platform = viewer.platform if viewer else "socialink"
    result = await gql(
        query, {"n": "owner"}, token=viewer.token if viewer else None, platform=platform
    )
    if result.errors:
        assert result.data == {"user": None}, result.body
        assert len(result.errors) == 1
        return result.codes[0], None
    user = result.data["user"]
    value = user if aspect == "profile" else next(iter(user.values()))
    if aspect in ("followers", "following", "friends"):
        value = {
            "totalCount": value["totalCount"],
            "edges": [edge["node"]["username"] for edge in value["edges"]],
        }
    return None, value


@pytest.mark.parametrize("private", [True, False], ids=["private", "public"])
@pytest.mark.parametrize("kind", list(PRIVATE_OWNER))
async def test_who_sees_what(app: Any, gql: GraphQLClient, private: bool, kind: str) -> None:
    world = await build(app, gql, private)
    viewer = world.viewers[kind]
    table = PRIVATE_OWNER if private else PUBLIC_OWNER
    shown = expected_lists(private)
    for aspect, expected in table[kind].items():
        code, value = await look(gql, viewer, aspect)
        if expected in (NOT_FOUND, FORBIDDEN):
            assert (code, value) == (expected, None), (kind, aspect)
        elif aspect == "relationship":
            assert code is None, (kind, aspect, code)
            assert value == expected, (kind, aspect)
        else:
            assert code is None, (kind, aspect, code)
            assert value == shown[aspect], (kind, aspect)


async def test_other_platform_token_is_refused_here(app: Any, gql: GraphQLClient) -> None:
    world = await build(app, gql, private=True)
    elsewhere = world.viewers["other platform"]
    assert elsewhere is not None
    result = await gql('{ user(username: "owner") { username } }', token=elsewhere.token)
    assert result.status == 401 and result.codes == ["UNAUTHENTICATED"]


async def test_a_hidden_profile_looks_like_an_unknown_one(app: Any, gql: GraphQLClient) -> None:
    world = await build(app, gql, private=False)
    for kind in ("blocked", "blocker"):
        viewer = world.viewers[kind]
        assert viewer is not None
        query = "query($n: String!) { user(username: $n) { username } }"
        hidden = await gql(query, {"n": "owner"}, token=viewer.token)
        unknown = await gql(query, {"n": "no_such_user"}, token=viewer.token)
        strip = [{k: v for k, v in e.items() if k != "locations"} for e in hidden.errors]
        assert hidden.body["data"] == unknown.body["data"] == {"user": None}
        assert strip == [{k: v for k, v in e.items() if k != "locations"} for e in unknown.errors]


async def test_losing_follower_status_loses_access(app: Any, gql: GraphQLClient) -> None:
    world = await build(app, gql, private=True)
    follower = world.viewers["approved follower"]
    assert follower is not None
    assert (await look(gql, follower, "followers"))[0] is None
    await mutate(gql, follower, "unfollow", world.owner)
    assert await look(gql, follower, "followers") == (FORBIDDEN, None)
    assert (await look(gql, follower, "profile"))[1]["followerCount"] == 0


async def test_going_private_hides_lists_at_once(app: Any, gql: GraphQLClient) -> None:
    world = await build(app, gql, private=False)
    stranger = world.viewers["stranger"]
    assert (await look(gql, stranger, "following"))[0] is None
    query = "mutation { updateProfile(input: {isPrivate: true}) { isPrivate } }"
    (await gql(query, token=world.owner.token)).ok()
    assert await look(gql, stranger, "following") == (FORBIDDEN, None)
    assert (await look(gql, stranger, "profile"))[1]["followingCount"] == 1
