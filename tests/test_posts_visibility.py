"""Who sees which post, everywhere a post can surface: one table of viewer kinds ×
visibility, for a public and a private account.

Each viewer kind is checked on every path: `post(id)` and `node(id)` (the policy
function), the author's `posts`, the viewer's `feed` and `explore` (the SQL
filter), a comment on the post (`comment(id)`), a share of it (`sharedPost`),
and `likers`, which is reachable only through a visible post.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Account, GraphQLClient, create_users
from tests.posts_helpers import SHARE, add_comment, create_post, mark

VISIBILITIES = ("PUBLIC", "FOLLOWERS", "FRIENDS", "PRIVATE")
KINDS = ("author", "follower", "friend", "stranger", "blocked", "blocker", "signed_out", "other")

# What each kind of viewer sees of a public account's posts, by visibility.
PUBLIC_ACCOUNT = {
    "author": {"PUBLIC", "FOLLOWERS", "FRIENDS", "PRIVATE"},
    "follower": {"PUBLIC", "FOLLOWERS"},
    "friend": {"PUBLIC", "FRIENDS"},
    "stranger": {"PUBLIC"},
    "blocked": set(),  # the author blocked this viewer
    "blocker": set(),  # this viewer blocked the author
    "signed_out": {"PUBLIC"},
    "other": set(),  # signed in on the other platform
}
# A private account: only approved followers (and friends) get past the account.
PRIVATE_ACCOUNT = {
    **PUBLIC_ACCOUNT,
    "stranger": set(),
    "signed_out": set(),
}

SURFACES = """
query($id: ID!, $comment: ID!, $share: ID!) {
  post(id: $id) { id likers { totalCount } }
  node(id: $id) { id }
  comment(id: $comment) { id }
  share: post(id: $share) { sharedPost { id } }
  user(username: "author") { posts(first: 50) { edges { node { id } } } }
  feed(first: 50) { edges { node { id } } }
  explore(first: 50) { edges { node { id } } }
}
"""
SURFACES_SIGNED_OUT = """
query($id: ID!, $comment: ID!, $share: ID!) {
  post(id: $id) { id likers { totalCount } }
  node(id: $id) { id }
  comment(id: $comment) { id }
  share: post(id: $share) { sharedPost { id } }
  user(username: "author") { posts(first: 50) { edges { node { id } } } }
  explore(first: 50) { edges { node { id } } }
}
"""


async def world(app: Any, gql: GraphQLClient, private: bool) -> dict[str, Any]:
    names = ["author", "follower", "friend", "stranger", "blocked", "blocker", "liker"]
    accounts = dict(zip(names, await create_users(app, names), strict=True))
    (accounts["other"],) = await create_users(app, ["author"], platform="vignette")
    author = accounts["author"]

    async def run(query: str, actor: Account, **variables: Any) -> None:
        (await gql(query, variables, token=actor.token)).ok()

    await run(
        "mutation($u: ID!) { follow(userId: $u) { following } }", accounts["follower"], u=author.id
    )
    await run(
        "mutation($u: ID!) { follow(userId: $u) { following } }", accounts["liker"], u=author.id
    )
    await run(
        "mutation($u: ID!) { sendFriendRequest(userId: $u) { friends } }",
        accounts["friend"],
        u=author.id,
    )
    await run(
        "mutation($u: ID!) { respondToFriendRequest(userId: $u, accept: true) { friends } }",
        author,
        u=accounts["friend"].id,
    )
    if private:
        await run("mutation { updateProfile(input: {isPrivate: true}) { id } }", author)
    posts = {v: await create_post(gql, author, f"{v} post", visibility=v) for v in VISIBILITIES}
    comments, shares = {}, {}
    for visibility, post in posts.items():
        # The author comments and shares (publicly) each of their own posts.
        comments[visibility] = await add_comment(gql, author, "by me", postId=post["id"])
        shares[visibility] = (
            await gql(SHARE, {"input": {"postId": post["id"]}}, token=author.token)
        ).ok()["sharePost"]
        await run(mark("likePost"), author, id=post["id"])
    await run(
        "mutation($u: ID!) { block(userId: $u) { blocking } }", author, u=accounts["blocked"].id
    )
    await run(
        "mutation($u: ID!) { block(userId: $u) { blocking } }", accounts["blocker"], u=author.id
    )
    return {"accounts": accounts, "posts": posts, "comments": comments, "shares": shares}


async def surfaces(
    gql: GraphQLClient, setup: dict[str, Any], kind: str, visibility: str
) -> dict[str, bool]:
    """On which surfaces `kind` finds the author's post of `visibility`."""
    post_id = setup["posts"][visibility]["id"]
    variables = {
        "id": post_id,
        "comment": setup["comments"][visibility]["id"],
        "share": setup["shares"][visibility]["id"],
    }
    viewer = None if kind == "signed_out" else setup["accounts"][kind]
    query = SURFACES_SIGNED_OUT if viewer is None else SURFACES
    result = await gql(
        query,
        variables,
        token=viewer.token if viewer else None,
        platform=viewer.platform if viewer else "socialink",
    )
    data = result.data or {}

    def ids(connection: Any) -> set[str]:
        return {e["node"]["id"] for e in connection["edges"]} if connection else set()

    user = data.get("user")
    found = {
        "post": bool(data.get("post")),
        "node": bool(data.get("node")),
        "comment": bool(data.get("comment")),
        "sharedPost": bool((data.get("share") or {}).get("sharedPost")),
        "likers": bool(data.get("post")) and data["post"]["likers"]["totalCount"] == 1,
        "user posts": post_id in ids(user["posts"]) if user and user.get("posts") else False,
        "explore": post_id in ids(data.get("explore")),
    }
    if viewer is not None:
        found["feed"] = post_id in ids(data.get("feed"))
    if not found["post"]:
        assert "NOT_FOUND" in result.codes, result.errors
    return found


@pytest.mark.parametrize("private", [False, True], ids=["public_account", "private_account"])
async def test_visibility_table(app: Any, gql: GraphQLClient, private: bool) -> None:
    setup = await world(app, gql, private)
    expected_table = PRIVATE_ACCOUNT if private else PUBLIC_ACCOUNT
    failures = []
    for kind in KINDS:
        for visibility in VISIBILITIES:
            sees = visibility in expected_table[kind]
            found = await surfaces(gql, setup, kind, visibility)
            expected = {surface: sees for surface in found}
            # Discovery shows PUBLIC posts only; the feed holds followed accounts,
            # friends and the viewer's own posts only.
            expected["explore"] = sees and visibility == "PUBLIC"
            if "feed" in expected:
                expected["feed"] = sees and kind in ("author", "follower", "friend")
            # A private account's posts list is FORBIDDEN to non-followers: same outcome.
            if found != expected:
                failures.append((kind, visibility, found, expected))
    assert failures == []


async def test_other_platform_gets_not_found(app: Any, gql: GraphQLClient) -> None:
    (author,) = await create_users(app, ["author"])
    (vera,) = await create_users(app, ["vera"], platform="vignette")
    post = await create_post(gql, author, "socialink only")
    result = await gql(
        "query($id: ID!) { post(id: $id) { id } }",
        {"id": post["id"]},
        token=vera.token,
        platform="vignette",
    )
    assert result.codes == ["NOT_FOUND"]
    like = await gql(mark("likePost"), {"id": post["id"]}, token=vera.token, platform="vignette")
    assert like.codes == ["NOT_FOUND"]
