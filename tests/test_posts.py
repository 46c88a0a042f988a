"""Posts through the API: create, edit, delete, share, like, save, hashtags, mentions,
locations; exact counters under concurrency; bad input changes nothing; events."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from resolvers.ids import encode_id
from tests.conftest import Account, GraphQLClient, create_users, insert_media, sign_up
from tests.posts_helpers import (
    CREATE,
    DELETE,
    EDIT,
    SHARE,
    add_comment,
    create_post,
    events,
    mark,
    see_post,
    snapshot,
)

FOLLOW = "mutation($u: ID!) { follow(userId: $u) { following } }"
BLOCK = "mutation($u: ID!) { block(userId: $u) { blocking } }"
SAVED = "{ savedPosts(first: 10) { totalCount edges { node { id } } } }"


def pk(global_id: str) -> int:
    from resolvers.ids import split_id

    parts = split_id(global_id)
    assert parts is not None
    return int(parts[1])


# ── create ───────────────────────────────────────────────────────────────────


async def test_create_post_with_media_tags_mentions_and_location(
    app: Any, gql: GraphQLClient
) -> None:
    alice, bob, _carol = await create_users(app, ["alice", "bob", "carol"])
    media = [await insert_media(app, alice) for _ in range(2)]
    caption = (
        "Sunset at #Beach with @Bob and @nobody_here, #beach again, #Café_2! "
        "mail alice@example.com, not #1st#x"
    )
    post = await create_post(
        gql,
        alice,
        caption,
        mediaIds=media,
        visibility="FOLLOWERS",
        location={"name": "Lisbon", "latitude": 38.72, "longitude": -9.14},
    )
    assert post["caption"] == caption
    assert post["hashtags"] == ["beach", "café_2", "1st"]
    assert [m["username"] for m in post["mentions"]] == ["bob"]
    assert [m["id"] for m in post["media"]] == media
    assert post["visibility"] == "FOLLOWERS"
    assert post["location"]["name"] == "Lisbon"
    assert post["location"]["latitude"] == pytest.approx(38.72)
    assert post["author"]["username"] == "alice"
    assert post["editedAt"] is None
    assert (post["likeCount"], post["commentCount"], post["shareCount"], post["saveCount"]) == (
        0,
        0,
        0,
        0,
    )

    created = await events(app, "post.created", "post.mentioned")
    assert [e["type"] for e in created] == ["post.created", "post.mentioned"]
    assert created[0]["subject"] == {"type": "post", "id": pk(post["id"])}
    assert created[0]["actor"] == {"id": pk(alice.id)}
    assert created[0]["data"]["hashtags"] == ["beach", "café_2", "1st"]
    assert created[0]["data"]["caption"] == caption
    assert created[0]["data"]["author_id"] == pk(alice.id)
    assert created[1]["data"]["mentioned_user_id"] == pk(bob.id)

    # The same place again is the same Location.
    again = await create_post(
        gql,
        alice,
        "again",
        location={"name": "Lisbon", "latitude": 38.72, "longitude": -9.14},
    )
    assert again["location"]["id"] == post["location"]["id"]


async def test_mentions_resolve_on_the_same_platform_only(app: Any, gql: GraphQLClient) -> None:
    (alice,) = await create_users(app, ["alice"])
    await create_users(app, ["bob"], platform="vignette")
    post = await create_post(gql, alice, "hi @bob")
    assert post["mentions"] == []
    assert await events(app, "post.mentioned") == []


async def test_bad_input_is_refused_and_stores_nothing(app: Any, gql: GraphQLClient) -> None:
    alice, bob = await create_users(app, ["alice", "bob"])
    (vera,) = await create_users(app, ["vera"], platform="vignette")
    own = await insert_media(app, alice)
    theirs = await insert_media(app, bob)
    post = await create_post(gql, alice, "keep me")
    before = await snapshot(app)

    cases: list[tuple[Account, str, dict[str, Any], str]] = [
        (alice, CREATE, {"input": {"caption": "x" * 2201}}, "BAD_USER_INPUT"),
        (alice, CREATE, {"input": {"caption": "x", "mediaIds": [own, theirs]}}, "FORBIDDEN"),
        (alice, CREATE, {"input": {"caption": "x", "mediaIds": [own] * 2}}, "BAD_USER_INPUT"),
        (
            alice,
            CREATE,
            {"input": {"caption": "x", "mediaIds": [encode_id("Media", 999)]}},
            "NOT_FOUND",
        ),
        (vera, CREATE, {"input": {"caption": "x", "visibility": "FRIENDS"}}, "BAD_USER_INPUT"),
        (alice, CREATE, {"input": {"caption": "  "}}, "BAD_USER_INPUT"),
        (
            alice,
            CREATE,
            {"input": {"caption": "x", "location": {"name": "N", "latitude": 91, "longitude": 0}}},
            "BAD_USER_INPUT",
        ),
        (
            alice,
            CREATE,
            {
                "input": {
                    "caption": "x",
                    "location": {"name": "N", "latitude": 0, "longitude": -180.5},
                }
            },
            "BAD_USER_INPUT",
        ),
        (alice, EDIT, {"id": post["id"], "c": "y" * 2201}, "BAD_USER_INPUT"),
        (bob, EDIT, {"id": post["id"], "c": "mine now"}, "FORBIDDEN"),
        (alice, EDIT, {"id": encode_id("Post", 999), "c": "x"}, "NOT_FOUND"),
        (bob, DELETE, {"id": post["id"]}, "FORBIDDEN"),
        (alice, DELETE, {"id": encode_id("Post", 999)}, "NOT_FOUND"),
        (alice, DELETE, {"id": "not-an-id"}, "BAD_USER_INPUT"),
        (alice, mark("likePost"), {"id": encode_id("Post", 999)}, "NOT_FOUND"),
        (alice, SHARE, {"input": {"postId": encode_id("Post", 999)}}, "NOT_FOUND"),
        (alice, SHARE, {"input": {"postId": post["id"], "caption": "z" * 2201}}, "BAD_USER_INPUT"),
    ]
    for actor, query, variables, code in cases:
        result = await gql(query, variables, token=actor.token, platform=actor.platform)
        assert result.codes == [code], (variables, result.errors)
    eleven = [await insert_media(app, alice) for _ in range(11)]
    before = await snapshot(app)
    result = await gql(CREATE, {"input": {"caption": "x", "mediaIds": eleven}}, token=alice.token)
    assert result.codes == ["BAD_USER_INPUT"]
    assert await snapshot(app) == before

    signed_out = await gql(CREATE, {"input": {"caption": "x"}})
    assert signed_out.codes == ["UNAUTHENTICATED"]
    assert await snapshot(app) == before


# ── edit and delete ──────────────────────────────────────────────────────────


async def test_edit_post_sets_edited_at_and_reparses(app: Any, gql: GraphQLClient) -> None:
    alice, bob, carol = await create_users(app, ["alice", "bob", "carol"])
    post = await create_post(gql, alice, "#one with @bob")
    edited = (
        await gql(EDIT, {"id": post["id"], "c": "#Two with @bob and @carol"}, token=alice.token)
    ).ok()["editPost"]
    assert edited["caption"] == "#Two with @bob and @carol"
    assert edited["hashtags"] == ["two"]
    assert [u["username"] for u in edited["mentions"]] == ["bob", "carol"]
    assert edited["editedAt"] is not None and edited["editedAt"] >= post["createdAt"]

    edits = await events(app, "post.edited")
    assert len(edits) == 1 and edits[0]["data"]["hashtags"] == ["two"]
    assert edits[0]["data"]["caption"] == "#Two with @bob and @carol"
    mentioned = [e["data"]["mentioned_user_id"] for e in await events(app, "post.mentioned")]
    assert mentioned == [pk(bob.id), pk(carol.id)]  # bob once (at creation), carol new


async def test_delete_post_removes_it_everywhere_and_adjusts_counts(
    app: Any, gql: GraphQLClient
) -> None:
    alice, bob, carol = await create_users(app, ["alice", "bob", "carol"])
    original = await create_post(gql, alice, "original")
    share = (await gql(SHARE, {"input": {"postId": original["id"]}}, token=bob.token)).ok()[
        "sharePost"
    ]
    reshare = (await gql(SHARE, {"input": {"postId": share["id"]}}, token=carol.token)).ok()[
        "sharePost"
    ]
    assert reshare["sharedPost"]["id"] == share["id"]
    for actor in (bob, carol):
        (await gql(mark("likePost"), {"id": original["id"]}, token=actor.token)).ok()
        (await gql(mark("savePost"), {"id": original["id"]}, token=actor.token)).ok()
    comment = await add_comment(gql, bob, "first", postId=original["id"])
    await add_comment(gql, carol, "reply", postId=original["id"], parentId=comment["id"])
    await gql(mark("likeComment"), {"id": comment["id"]}, token=carol.token)

    # Deleting the share lowers the original's shareCount; the reshare stays, pointing nowhere.
    assert (await gql(DELETE, {"id": share["id"]}, token=bob.token)).ok()["deletePost"] is True
    assert (await see_post(gql, carol, original["id"])).ok()["post"]["shareCount"] == 0
    left = (await see_post(gql, carol, reshare["id"])).ok()["post"]
    assert left["sharedPost"] is None

    assert (await gql(DELETE, {"id": original["id"]}, token=alice.token)).ok()["deletePost"]
    for viewer in (alice, bob, carol):
        assert (await see_post(gql, viewer, original["id"])).codes == ["NOT_FOUND"]
    gone = await gql(
        "query($id: ID!) { node(id: $id) { id } comment: node(id: $c) { id } }".replace(
            "query($id: ID!)", "query($id: ID!, $c: ID!)"
        ),
        {"id": original["id"], "c": comment["id"]},
        token=bob.token,
    )
    assert gone.ok() == {"node": None, "comment": None}
    saved = (await gql(SAVED, token=bob.token)).ok()["savedPosts"]
    assert saved == {"totalCount": 0, "edges": []}
    after = await snapshot(app)
    assert after["posts"] == 1  # the reshare
    for table in ("post_likes", "post_saves", "comments", "comment_likes"):
        assert after[table] == 0, table
    assert (await gql(DELETE, {"id": original["id"]}, token=alice.token)).codes == ["NOT_FOUND"]

    deleted = await events(app, "post.deleted")
    assert [e["subject"]["id"] for e in deleted] == [pk(share["id"]), pk(original["id"])]
    assert deleted[0]["data"]["shared_post_id"] == pk(original["id"])


# ── likes, saves, shares ─────────────────────────────────────────────────────


async def test_likes_and_saves_are_idempotent(app: Any, gql: GraphQLClient) -> None:
    alice, bob = await create_users(app, ["alice", "bob"])
    post = await create_post(gql, alice, "like me")
    steps = [
        ("likePost", 1, True),
        ("likePost", 1, True),
        ("unlikePost", 0, False),
        ("unlikePost", 0, False),
    ]
    for field, count, flag in steps:
        got = (await gql(mark(field), {"id": post["id"]}, token=bob.token)).ok()[field]
        assert (got["likeCount"], got["viewerHasLiked"]) == (count, flag), field
    for field, count, flag in [
        ("savePost", 1, True),
        ("savePost", 1, True),
        ("unsavePost", 0, False),
    ]:
        got = (await gql(mark(field), {"id": post["id"]}, token=bob.token)).ok()[field]
        assert (got["saveCount"], got["viewerHasSaved"]) == (count, flag), field

    types = [e["type"] for e in await events(app) if e["subject"]["type"] == "post"]
    assert types == ["post.created", "post.liked", "post.unliked", "post.saved", "post.unsaved"]
    liked = (await events(app, "post.liked"))[0]
    assert liked["actor"] == {"id": pk(bob.id)}
    assert liked["data"]["author_id"] == pk(alice.id)


async def test_saved_posts_belong_to_their_owner(app: Any, gql: GraphQLClient) -> None:
    alice, bob, carol = await create_users(app, ["alice", "bob", "carol"])
    first = await create_post(gql, alice, "one")
    second = await create_post(gql, alice, "two")
    for post in (first, second):
        (await gql(mark("savePost"), {"id": post["id"]}, token=bob.token)).ok()
    saved = (await gql(SAVED, token=bob.token)).ok()["savedPosts"]
    assert [e["node"]["id"] for e in saved["edges"]] == [second["id"], first["id"]]
    assert saved["totalCount"] == 2
    assert (await gql(SAVED, token=carol.token)).ok()["savedPosts"]["totalCount"] == 0
    assert (await gql(SAVED)).codes == ["UNAUTHENTICATED"]

    # A saved post the saver can no longer see leaves the list.
    await gql(BLOCK, {"u": bob.id}, token=alice.token)
    assert (await gql(SAVED, token=bob.token)).ok()["savedPosts"] == {"totalCount": 0, "edges": []}


async def test_share_links_the_original_and_counts(app: Any, gql: GraphQLClient) -> None:
    alice, bob, carol = await create_users(app, ["alice", "bob", "carol"])
    post = await create_post(gql, alice, "share me")
    hidden = await create_post(gql, alice, "only me", visibility="PRIVATE")
    share = (
        await gql(SHARE, {"input": {"postId": post["id"], "caption": "look #wow"}}, token=bob.token)
    ).ok()["sharePost"]
    assert share["sharedPost"] == {"id": post["id"], "caption": "share me"}
    assert share["hashtags"] == ["wow"]
    assert (await see_post(gql, carol, post["id"])).ok()["post"]["shareCount"] == 1
    refused = await gql(SHARE, {"input": {"postId": hidden["id"]}}, token=bob.token)
    assert refused.codes == ["NOT_FOUND"]
    shared = await events(app, "post.shared")
    assert len(shared) == 1
    assert shared[0]["subject"] == {"type": "post", "id": pk(post["id"])}
    assert shared[0]["data"] == {"author_id": pk(alice.id), "share_id": pk(share["id"])}


# ── concurrency ──────────────────────────────────────────────────────────────


async def test_50_concurrent_likes_count_50(app: Any, gql: GraphQLClient) -> None:
    author, *fans = await create_users(app, ["author"] + [f"fan{i}" for i in range(50)])
    post = await create_post(gql, author, "popular")
    results = await asyncio.gather(
        *(gql(mark("likePost"), {"id": post["id"]}, token=fan.token) for fan in fans)
    )
    assert all(not r.errors for r in results), [r.errors for r in results if r.errors][:3]
    seen = (await see_post(gql, author, post["id"])).ok()["post"]
    assert seen["likeCount"] == 50
    assert len(await events(app, "post.liked")) == 50
    assert (await snapshot(app))["post_likes"] == 50


async def test_like_unlike_races_never_go_negative(app: Any, gql: GraphQLClient) -> None:
    author, *fans = await create_users(app, ["author"] + [f"fan{i}" for i in range(10)])
    post = await create_post(gql, author, "racy")
    calls = []
    for round_ in range(4):
        for fan in fans:
            field = "likePost" if round_ % 2 == 0 else "unlikePost"
            calls.append(gql(mark(field), {"id": post["id"]}, token=fan.token))
            calls.append(gql(mark("unlikePost"), {"id": post["id"]}, token=fan.token))
    results = await asyncio.gather(*calls)
    assert all(not r.errors for r in results)
    assert all(r.data[next(iter(r.data))]["likeCount"] >= 0 for r in results)
    state = await snapshot(app)
    seen = (await see_post(gql, author, post["id"])).ok()["post"]
    assert seen["likeCount"] == state["post_likes"] >= 0
    liked = len(await events(app, "post.liked"))
    unliked = len(await events(app, "post.unliked"))
    assert liked - unliked == state["post_likes"]


# ── node, user posts ─────────────────────────────────────────────────────────

NODE = """
query($id: ID!) { node(id: $id) { __typename id
  ... on Post { caption }
  ... on Comment { body subject { ... on Post { id } } }
  ... on Location { name }
} }
"""


async def test_node_resolves_posts_comments_and_locations(app: Any, gql: GraphQLClient) -> None:
    alice, bob = await create_users(app, ["alice", "bob"])
    post = await create_post(
        gql, alice, "hi", location={"name": "Porto", "latitude": 41.15, "longitude": -8.61}
    )
    comment = await add_comment(gql, bob, "hey", postId=post["id"])
    found = (await gql(NODE, {"id": post["id"]}, token=bob.token)).ok()["node"]
    assert found == {"__typename": "Post", "id": post["id"], "caption": "hi"}
    found = (await gql(NODE, {"id": comment["id"]}, token=bob.token)).ok()["node"]
    assert found["__typename"] == "Comment" and found["subject"] == {"id": post["id"]}
    found = (await gql(NODE, {"id": post["location"]["id"]})).ok()["node"]
    assert found == {"__typename": "Location", "id": post["location"]["id"], "name": "Porto"}
    (vera,) = await create_users(app, ["vera"], platform="vignette")
    other = await gql(NODE, {"id": post["id"]}, token=vera.token, platform="vignette")
    assert other.ok()["node"] is None


USER_POSTS = """
query($name: String!, $after: String) { user(username: $name) {
  posts(first: 2, after: $after) { totalCount pageInfo { hasNextPage endCursor }
    edges { node { caption } } } } }
"""


async def test_user_posts_page_newest_first(app: Any, gql: GraphQLClient) -> None:
    alice, bob = await create_users(app, ["alice", "bob"])
    for i in range(5):
        await create_post(gql, alice, f"p{i}")
    await create_post(gql, alice, "secret", visibility="PRIVATE")
    captions, after = [], None
    while True:
        page = (await gql(USER_POSTS, {"name": "alice", "after": after}, token=bob.token)).ok()[
            "user"
        ]["posts"]
        assert page["totalCount"] == 5
        captions += [e["node"]["caption"] for e in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert captions == ["p4", "p3", "p2", "p1", "p0"]
    own = (await gql(USER_POSTS, {"name": "alice"}, token=alice.token)).ok()["user"]["posts"]
    assert own["totalCount"] == 6 and own["edges"][0]["node"]["caption"] == "secret"


async def test_signed_up_users_can_post(gql: GraphQLClient) -> None:
    """Through the whole stack with real accounts (argon2, tokens)."""
    alice = await sign_up(gql, "alice")
    post = await create_post(gql, alice, "first!")
    assert (await see_post(gql, None, post["id"])).ok()["post"]["caption"] == "first!"
