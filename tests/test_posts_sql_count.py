"""No N+1 in posts: a feed page costs the same statements for 5 posts as for 20."""

from __future__ import annotations

from typing import Any

from tests.conftest import GraphQLClient, create_users, insert_media
from tests.posts_helpers import add_comment, create_post, mark
from tests.test_users_sql_count import counted

FEED = """
query($first: Int!) { feed(first: $first) { totalCount edges { node {
  id caption createdAt
  author { username displayName }
  media { url mimeType }
  likeCount commentCount shareCount saveCount
  viewerHasLiked viewerHasSaved
  comments(first: 2) { totalCount edges { node { body author { username } } } }
} } } }
"""
FOLLOW = "mutation($u: ID!) { follow(userId: $u) { following } }"

# The capped totalCount and the feed page (joined with authors and locations, which
# primes the user loader) + every post's media (one join) + the viewer's likes and
# saves (one UNION ALL) + the first two comments of every post (one windowed
# statement, joined with their authors). Nothing per post or per comment.
FEED_STATEMENTS = 5


async def test_feed_page_costs_the_same_statements_for_5_and_20(
    app: Any, gql: GraphQLClient, sql_counter: list[str]
) -> None:
    viewer, *authors = await create_users(app, ["viewer", "a1", "a2", "a3"])
    commenters = await create_users(app, [f"c{i}" for i in range(4)])
    for author in authors:
        (await gql(FOLLOW, {"u": author.id}, token=viewer.token)).ok()
    for i in range(24):
        author = authors[i % 3]
        post = await create_post(
            gql, author, f"post {i}", mediaIds=[await insert_media(app, author)]
        )
        for j in range(3):
            await add_comment(gql, commenters[(i + j) % 4], f"c{j} on {i}", postId=post["id"])
        if i % 2:
            (await gql(mark("likePost"), {"id": post["id"]}, token=viewer.token)).ok()
        if i % 3 == 0:
            (await gql(mark("savePost"), {"id": post["id"]}, token=viewer.token)).ok()

    counts = []
    for first in (5, 20):
        count, data = await counted(
            gql, sql_counter, FEED, variables={"first": first}, token=viewer.token
        )
        edges = data["feed"]["edges"]
        assert len(edges) == first
        node = edges[0]["node"]
        assert node["caption"] == "post 23" and node["author"]["username"] == "a3"
        assert len(node["media"]) == 1 and node["media"][0]["url"]
        assert node["viewerHasLiked"] is True and node["viewerHasSaved"] is False
        assert node["commentCount"] == 3
        assert node["comments"]["totalCount"] == 3
        assert [e["node"]["body"] for e in node["comments"]["edges"]] == ["c0 on 23", "c1 on 23"]
        assert all(e["node"]["author"]["username"] for e in node["comments"]["edges"])
        counts.append(count)
    assert counts == [FEED_STATEMENTS, FEED_STATEMENTS], sql_counter

    # The same page without the feed's totalCount: its capped count is not run.
    untotalled = FEED.replace("feed(first: $first) { totalCount", "feed(first: $first) {")
    count, data = await counted(
        gql, sql_counter, untotalled, variables={"first": 20}, token=viewer.token
    )
    assert data["feed"]["edges"] == edges
    assert count == FEED_STATEMENTS - 1, sql_counter


async def test_bad_comment_arguments_fail_only_the_comments_field(
    app: Any, gql: GraphQLClient
) -> None:
    (viewer,) = await create_users(app, ["viewer"])
    await create_post(gql, viewer, "mine")
    result = await gql(
        "{ feed(first: 5) { edges { node { caption comments(first: 5000) { totalCount } } } } }",
        token=viewer.token,
    )
    assert result.codes == ["BAD_USER_INPUT"]
