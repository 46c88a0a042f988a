"""Who sees which story, everywhere a story can surface: one table of viewer kinds ×
audiences, for a public and a private account, on every story store.

Surfaces: `story(id)`, `node(id)`, the author's `User.stories`, the viewer's
`storyTray`, and the author's highlight (`User.highlights`, which keeps showing
the story after it expired, to the same viewers). Then the author-only fields
(viewCount, viewers, replies, insights) for every kind that can see the story.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import GraphQLClient, create_users
from tests.stories_support import (
    ADD_CLOSE,
    BLOCK,
    FOLLOW,
    STORE_BACKENDS,
    Clock,
    clock,
    create_story,
    run,
    settings,
)

pytestmark = STORE_BACKENDS
__all__ = ["clock", "settings"]

AUDIENCES = ("EVERYONE", "CLOSE_FRIENDS")
KINDS = (
    "author", "follower", "friend", "close_friend", "stranger",
    "blocked", "blocker", "signed_out", "other",
)  # fmt: skip

# What each kind of viewer sees of a public account's stories, by audience.
PUBLIC_ACCOUNT = {
    "author": {"EVERYONE", "CLOSE_FRIENDS"},
    "follower": {"EVERYONE"},
    "friend": {"EVERYONE"},
    "close_friend": {"EVERYONE", "CLOSE_FRIENDS"},  # listed, though not following
    "stranger": {"EVERYONE"},
    "blocked": set(),  # the author blocked this viewer (after listing them)
    "blocker": set(),  # this viewer blocked the author
    "signed_out": {"EVERYONE"},
    "other": set(),  # signed in on the other platform
}
# A private account: EVERYONE means its approved followers and friends.
PRIVATE_ACCOUNT = {
    **PUBLIC_ACCOUNT,
    "close_friend": {"CLOSE_FRIENDS"},
    "stranger": set(),
    "signed_out": set(),
}

SURFACES = """
query($id: ID!) {
  story(id: $id) { id }
  node(id: $id) { id }
  user(username: "author") { stories { id } highlights { stories { id } } }
  storyTray { stories { id } }
}
"""
SURFACES_SIGNED_OUT = SURFACES.replace("storyTray { stories { id } }", "")
AUTHOR_ONLY = (
    "viewCount",
    "viewers { totalCount }",
    "replies { totalCount }",
    "insights { reach }",
)


async def world(app: Any, gql: GraphQLClient, private: bool) -> dict[str, Any]:
    names = ["author", "follower", "friend", "close_friend", "stranger", "blocked", "blocker"]
    accounts = dict(zip(names, await create_users(app, names), strict=True))
    (accounts["other"],) = await create_users(app, ["author"], platform="vignette")
    author = accounts["author"]
    for kind in ("follower", "blocked"):
        await run(gql, FOLLOW, accounts[kind], u=author.id)
    befriend = "mutation($u: ID!) { sendFriendRequest(userId: $u) { friends } }"
    accept = "mutation($u: ID!) { respondToFriendRequest(userId: $u, accept: true) { friends } }"
    await run(gql, befriend, accounts["friend"], u=author.id)
    await run(gql, accept, author, u=accounts["friend"].id)
    for kind in ("close_friend", "blocked"):
        await run(gql, ADD_CLOSE, author, u=accounts[kind].id)
    if private:
        await run(gql, "mutation { updateProfile(input: {isPrivate: true}) { id } }", author)
    stories = {a: await create_story(app, gql, author, audience=a) for a in AUDIENCES}
    highlight = (
        'mutation($s: [ID!]!) { createHighlight(input: {title: "all", storyIds: $s}) { id } }'
    )
    await run(gql, highlight, author, s=[s["id"] for s in stories.values()])
    await run(gql, BLOCK, author, u=accounts["blocked"].id)
    await run(gql, BLOCK, accounts["blocker"], u=author.id)
    return {"accounts": accounts, "stories": stories}


async def surfaces(
    gql: GraphQLClient, setup: dict[str, Any], kind: str, audience: str
) -> dict[str, bool]:
    story_id = setup["stories"][audience]["id"]
    viewer = None if kind == "signed_out" else setup["accounts"][kind]
    result = await gql(
        SURFACES if viewer else SURFACES_SIGNED_OUT,
        {"id": story_id},
        token=viewer.token if viewer else None,
        platform=viewer.platform if viewer else "socialink",
    )
    data = result.data or {}
    user = data.get("user") or {}
    highlighted = {s["id"] for h in user.get("highlights") or [] for s in h["stories"]}
    found = {
        "story": bool(data.get("story")),
        "node": bool(data.get("node")),
        "user stories": story_id in {s["id"] for s in user.get("stories") or []},
        "highlight": story_id in highlighted,
    }
    if viewer is not None:
        tray = {s["id"] for item in data.get("storyTray") or [] for s in item["stories"]}
        found["tray"] = story_id in tray
    if not found["story"]:
        assert "NOT_FOUND" in result.codes, result.errors
    return found


@pytest.mark.parametrize("private", [False, True], ids=["public_account", "private_account"])
async def test_visibility_table(app: Any, gql: GraphQLClient, clock: Clock, private: bool) -> None:
    setup = await world(app, gql, private)
    expected = PRIVATE_ACCOUNT if private else PUBLIC_ACCOUNT
    in_tray = {"author", "follower", "friend"}  # whose tray holds the author at all
    mismatches = []
    for kind in KINDS:
        for audience in AUDIENCES:
            allowed = audience in expected[kind]
            found = await surfaces(gql, setup, kind, audience)
            want = {
                "story": allowed,
                "node": allowed,
                "user stories": allowed,
                "highlight": allowed,
            }
            if kind != "signed_out":
                want["tray"] = allowed and kind in in_tray
            if found != want:
                mismatches.append((kind, audience, found, want))
    assert not mismatches, mismatches

    # Expired: gone everywhere but the highlight, which shows the same viewers.
    clock.move(hours=25)
    for kind in KINDS:
        for audience in AUDIENCES:
            found = await surfaces(gql, setup, kind, audience)
            allowed = audience in expected[kind]
            assert found["story"] is found["node"] is found["user stories"] is False
            assert found["highlight"] is allowed, (kind, audience)


async def test_author_only_fields(app: Any, gql: GraphQLClient) -> None:
    setup = await world(app, gql, private=False)
    story_id = setup["stories"]["EVERYONE"]["id"]
    for kind in KINDS:
        viewer = None if kind == "signed_out" else setup["accounts"][kind]
        can_see = "EVERYONE" in PUBLIC_ACCOUNT[kind]
        for field in AUTHOR_ONLY:
            result = await gql(
                f"query($id: ID!) {{ story(id: $id) {{ {field} }} }}",
                {"id": story_id},
                token=viewer.token if viewer else None,
                platform=viewer.platform if viewer else "socialink",
            )
            if kind == "author":
                assert not result.errors, (field, result.errors)
            else:
                assert result.codes == (["FORBIDDEN"] if can_see else ["NOT_FOUND"]), (kind, field)
