"""Comments on posts and takes: threads, replies, deletion rights, likes, counts, events."""

from __future__ import annotations

from typing import Any

from sqlalchemy import insert, select

from datasources.posts.take_tables import TakeRow
from datasources.sql import utcnow
from resolvers.ids import encode_id, split_id
from tests.conftest import GraphQLClient, create_users, insert_media
from tests.posts_helpers import (
    ADD_COMMENT,
    DELETE_COMMENT,
    add_comment,
    create_post,
    events,
    mark,
    see_post,
    snapshot,
)

THREAD = """
query($id: ID!, $after: String) { post(id: $id) { commentCount
  comments(first: 2, after: $after) { totalCount pageInfo { hasNextPage endCursor }
    edges { node { body author { username }
      replies(first: 5) { totalCount edges { node { body parent { body } } } } } } } } }
"""
COMMENT = "query($id: ID!) { comment(id: $id) { body subject { __typename } } }"
BLOCK = "mutation($u: ID!) { block(userId: $u) { blocking } }"


def pk(global_id: str) -> int:
    parts = split_id(global_id)
    assert parts is not None
    return int(parts[1])


async def test_threads_with_replies_oldest_first(app: Any, gql: GraphQLClient) -> None:
    alice, bob, carol = await create_users(app, ["alice", "bob", "carol"])
    post = await create_post(gql, alice, "talk to me")
    first = await add_comment(gql, bob, "first", postId=post["id"])
    await add_comment(gql, carol, "second", postId=post["id"])
    await add_comment(gql, alice, "third", postId=post["id"])
    reply = await add_comment(gql, alice, "thanks", postId=post["id"], parentId=first["id"])
    await add_comment(gql, bob, "welcome", postId=post["id"], parentId=reply["id"])
    assert reply["parent"] == {"id": first["id"]}
    assert reply["subject"] == {"__typename": "Post", "id": post["id"], "commentCount": 4}

    page = (await gql(THREAD, {"id": post["id"]}, token=carol.token)).ok()["post"]
    assert page["commentCount"] == 5
    comments = page["comments"]
    assert comments["totalCount"] == 3
    assert [e["node"]["body"] for e in comments["edges"]] == ["first", "second"]
    replies = comments["edges"][0]["node"]["replies"]
    assert replies["totalCount"] == 1
    assert replies["edges"][0]["node"] == {"body": "thanks", "parent": {"body": "first"}}
    after = comments["pageInfo"]["endCursor"]
    rest = (await gql(THREAD, {"id": post["id"], "after": after}, token=carol.token)).ok()
    assert [e["node"]["body"] for e in rest["post"]["comments"]["edges"]] == ["third"]
    assert rest["post"]["comments"]["pageInfo"]["hasNextPage"] is False

    created = await events(app, "comment.created")
    assert len(created) == 5
    last = created[-1]
    assert last["data"]["post_id"] == pk(post["id"])
    assert last["data"]["subject_author_id"] == pk(alice.id)
    assert last["data"]["author_id"] == pk(bob.id)
    assert last["data"]["parent_author_id"] == pk(alice.id)
    assert last["data"]["parent_id"] == pk(reply["id"])


async def test_who_may_delete_a_comment(app: Any, gql: GraphQLClient) -> None:
    alice, bob, carol = await create_users(app, ["alice", "bob", "carol"])
    post = await create_post(gql, alice, "mine")
    by_bob = await add_comment(gql, bob, "bob's", postId=post["id"])
    reply = await add_comment(gql, carol, "carol's reply", postId=post["id"], parentId=by_bob["id"])
    await add_comment(gql, bob, "deeper", postId=post["id"], parentId=reply["id"])
    by_carol = await add_comment(gql, carol, "carol's", postId=post["id"])
    await gql(mark("likeComment"), {"id": by_bob["id"]}, token=carol.token)
    before = await snapshot(app)

    refused = await gql(DELETE_COMMENT, {"id": by_bob["id"]}, token=carol.token)
    assert refused.codes == ["FORBIDDEN"]
    assert await snapshot(app) == before

    # The comment's author deletes it, with its whole thread and likes.
    assert (await gql(DELETE_COMMENT, {"id": by_bob["id"]}, token=bob.token)).ok()
    assert (await see_post(gql, alice, post["id"])).ok()["post"]["commentCount"] == 1
    after = await snapshot(app)
    assert (after["comments"], after["comment_likes"]) == (1, 0)
    # The post's author deletes anyone's comment.
    assert (await gql(DELETE_COMMENT, {"id": by_carol["id"]}, token=alice.token)).ok()
    assert (await see_post(gql, alice, post["id"])).ok()["post"]["commentCount"] == 0
    again = await gql(DELETE_COMMENT, {"id": by_carol["id"]}, token=alice.token)
    assert again.codes == ["NOT_FOUND"]

    deleted = await events(app, "comment.deleted")
    assert [(e["subject"]["id"], e["data"]["deleted_count"]) for e in deleted] == [
        (pk(by_bob["id"]), 3),
        (pk(by_carol["id"]), 1),
    ]
    assert deleted[1]["actor"] == {"id": pk(alice.id)}


async def test_comment_likes_are_idempotent(app: Any, gql: GraphQLClient) -> None:
    alice, bob = await create_users(app, ["alice", "bob"])
    post = await create_post(gql, alice, "p")
    comment = await add_comment(gql, alice, "c", postId=post["id"])
    for field, count, flag in [
        ("likeComment", 1, True),
        ("likeComment", 1, True),
        ("unlikeComment", 0, False),
        ("unlikeComment", 0, False),
    ]:
        got = (await gql(mark(field), {"id": comment["id"]}, token=bob.token)).ok()[field]
        assert (got["likeCount"], got["viewerHasLiked"]) == (count, flag)
    types = [e["type"] for e in await events(app, "comment.liked", "comment.unliked")]
    assert types == ["comment.liked", "comment.unliked"]
    liked = (await events(app, "comment.liked"))[0]
    assert liked["data"]["author_id"] == pk(alice.id)
    assert liked["data"]["post_id"] == pk(post["id"])


async def test_bad_comments_store_nothing(app: Any, gql: GraphQLClient) -> None:
    alice, bob = await create_users(app, ["alice", "bob"])
    post = await create_post(gql, alice, "p")
    other = await create_post(gql, alice, "q")
    hidden = await create_post(gql, alice, "secret", visibility="PRIVATE")
    on_other = await add_comment(gql, alice, "elsewhere", postId=other["id"])
    before = await snapshot(app)
    cases = [
        ({"body": "x"}, "BAD_USER_INPUT"),
        ({"body": "x", "postId": post["id"], "takeId": encode_id("Take", 1)}, "BAD_USER_INPUT"),
        ({"body": "   ", "postId": post["id"]}, "BAD_USER_INPUT"),
        ({"body": "x" * 2201, "postId": post["id"]}, "BAD_USER_INPUT"),
        ({"body": "x", "postId": encode_id("Post", 999)}, "NOT_FOUND"),
        ({"body": "x", "postId": hidden["id"]}, "NOT_FOUND"),
        ({"body": "x", "postId": post["id"], "parentId": on_other["id"]}, "BAD_USER_INPUT"),
        ({"body": "x", "postId": post["id"], "parentId": encode_id("Comment", 999)}, "NOT_FOUND"),
        ({"body": "x", "takeId": encode_id("Take", 999)}, "NOT_FOUND"),
    ]
    for fields, code in cases:
        result = await gql(ADD_COMMENT, {"input": fields}, token=bob.token)
        assert result.codes == [code], (fields, result.errors)
    assert (await gql(ADD_COMMENT, {"input": {"body": "x", "postId": post["id"]}})).codes == [
        "UNAUTHENTICATED"
    ]
    assert await snapshot(app) == before


async def test_blocked_users_comments_are_hidden(app: Any, gql: GraphQLClient) -> None:
    alice, bob, carol = await create_users(app, ["alice", "bob", "carol"])
    post = await create_post(gql, alice, "p")
    by_bob = await add_comment(gql, bob, "from bob", postId=post["id"])
    await add_comment(gql, carol, "from carol", postId=post["id"])
    await gql(BLOCK, {"u": bob.id}, token=carol.token)
    seen = (await gql(THREAD, {"id": post["id"]}, token=carol.token)).ok()["post"]["comments"]
    assert [e["node"]["body"] for e in seen["edges"]] == ["from carol"]
    assert seen["totalCount"] == 1
    assert (await gql(COMMENT, {"id": by_bob["id"]}, token=carol.token)).codes == ["NOT_FOUND"]
    assert (await gql(COMMENT, {"id": by_bob["id"]}, token=alice.token)).ok()["comment"]["body"]


TAKE_COMMENTS = """
mutation($input: AddCommentInput!) { addComment(input: $input) {
  body subject { __typename ... on Take { id commentCount } } } }
"""


async def insert_take(app: Any, author_id: str, platform: str = "socialink") -> str:
    """A take row inserted directly (the comments tests need no video pipeline)."""
    from tests.conftest import Account

    owner = Account(author_id, "x", "", "", platform)
    video = pk(await insert_media(app, owner, kind="VIDEO", mime_type="video/mp4"))
    async with app.state.runtime.stores.db.transaction() as session:
        result = await session.execute(
            insert(TakeRow)
            .values(
                platform=platform,
                author_id=pk(author_id),
                video_media_id=video,
                caption="take",
                hashtags="[]",
                duration_ms=1000,
                view_count=0,
                like_count=0,
                comment_count=0,
                share_count=0,
                created_at=utcnow(),
            )
            .returning(TakeRow.id)
        )
        return encode_id("Take", result.scalar_one())


async def test_comments_on_takes(app: Any, gql: GraphQLClient) -> None:
    alice, bob = await create_users(app, ["alice", "bob"])
    take_id = await insert_take(app, alice.id)
    made = (
        await gql(TAKE_COMMENTS, {"input": {"takeId": take_id, "body": "cool"}}, token=bob.token)
    ).ok()["addComment"]
    assert made == {
        "body": "cool",
        "subject": {"__typename": "Take", "id": take_id, "commentCount": 1},
    }
    created = (await events(app, "comment.created"))[0]
    assert created["data"]["take_id"] == pk(take_id)
    assert created["data"]["subject_author_id"] == pk(alice.id)
    comment_id = encode_id("Comment", created["subject"]["id"])
    # The take's author may delete it; the take's commentCount follows.
    assert (await gql(DELETE_COMMENT, {"id": comment_id}, token=alice.token)).ok()
    async with app.state.runtime.stores.db.session() as session:
        count = await session.scalar(select(TakeRow.comment_count).where(TakeRow.id == pk(take_id)))
    assert count == 0

    # A take hidden from the viewer (a block) cannot be commented on.
    await gql(BLOCK, {"u": bob.id}, token=alice.token)
    hidden = await gql(TAKE_COMMENTS, {"input": {"takeId": take_id, "body": "x"}}, token=bob.token)
    assert hidden.codes == ["NOT_FOUND"]
