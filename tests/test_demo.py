"""The demo world is something to look at: users, and posts with photos, likes,
saves and comments, all made through the public API (so counts agree with rows)."""

from __future__ import annotations

from typing import Any

from server.demo import DEMO_PASSWORD, load_demo
from server.settings import Settings
from tests.conftest import GraphQLClient

SIGN_IN = """mutation($input: SignInInput!) { signIn(input: $input) { accessToken } }"""
FEED = """{ feed(first: 50) { edges { node {
  caption hashtags likeCount commentCount media { url }
  likers(first: 100) { totalCount } comments(first: 100) { totalCount }
} } } }"""
EXPLORE = "{ explore(first: 5) { edges { node { id visibility } } } }"
TRAY = """{ storyTray { user { username } stories {
  stickers { ... on PollSticker { options { voteCount } } } } } }"""
HIGHLIGHTS = """{ user(username: "ada") { highlights { title stories { id } } } }"""


async def test_the_demo_world_has_posts_to_look_at(
    settings: Settings, app: Any, gql: GraphQLClient
) -> None:
    await load_demo(settings)
    for platform in ("socialink", "vignette"):
        await looks_lived_in(gql, platform)


async def looks_lived_in(gql: GraphQLClient, platform: str) -> None:
    token = (
        await gql(
            SIGN_IN, {"input": {"login": "ada", "password": DEMO_PASSWORD}}, platform=platform
        )
    ).ok()["signIn"]["accessToken"]

    feed = [
        e["node"] for e in (await gql(FEED, token=token, platform=platform)).ok()["feed"]["edges"]
    ]
    assert len(feed) >= 10
    assert any(post["media"] for post in feed) and any(post["hashtags"] for post in feed)
    assert sum(post["likeCount"] for post in feed) > 0
    assert sum(post["commentCount"] for post in feed) > 0
    for post in feed:  # denormalized counters equal what they count
        assert post["likeCount"] == post["likers"]["totalCount"]
        assert post["commentCount"] == post["comments"]["totalCount"]

    tray = (await gql(TRAY, token=token, platform=platform)).ok()["storyTray"]
    assert tray[0]["user"]["username"] == "ada" and len(tray) > 2
    polls = [s["stickers"][0] for item in tray for s in item["stories"] if s["stickers"]]
    assert polls and sum(o["voteCount"] for poll in polls for o in poll["options"]) > 0
    me = (await gql(HIGHLIGHTS, token=token, platform=platform)).ok()["user"]
    assert me["highlights"][0]["stories"]

    explore = (await gql(EXPLORE, platform=platform)).ok()["explore"]["edges"]
    assert explore and all(edge["node"]["visibility"] == "PUBLIC" for edge in explore)
