"""takesFeed: ranked by engagement, recency and trend participation; no N+1."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import update

from datasources.posts.take_tables import TakeRow
from datasources.posts.takes_store import FeedCandidate
from datasources.sql import utcnow
from resolvers.posts.takes import feed_score
from tests.conftest import GraphQLClient, create_users
from tests.test_takes import START_TREND, create_take, pk, run_sql

FEED = """
query($first: Int, $after: String) { takesFeed(first: $first, after: $after) {
  totalCount pageInfo { hasNextPage endCursor } edges { cursor node { id caption } }
} }
"""
FEED_PAGE_STATEMENTS = 10
RICH_FEED = """
query($first: Int) { takesFeed(first: $first) { edges { node {
  id caption durationMs likeCount viewerHasLiked
  author { id username }
  video { id kind }
  template { id name useCount slots { durationMs } }
  trend { id hashtag participantCount }
  originator { id author { username } }
} } } }
"""


async def set_take(app: Any, take_id: str, **values: Any) -> None:
    await run_sql(app, update(TakeRow).where(TakeRow.id == pk(take_id)).values(**values))


def test_the_feed_score_formula() -> None:
    """points · boost / (age_hours + 2) ^ 1.8,
    points = 1 + likes + 2·comments + 3·shares + views/10."""
    now = utcnow()

    def candidate(
        hours: float,
        likes: int = 0,
        comments: int = 0,
        shares: int = 0,
        views: int = 0,
        trend: bool = False,
    ) -> FeedCandidate:
        return FeedCandidate(1, now - timedelta(hours=hours), likes, comments, shares, views, trend)

    assert feed_score(candidate(0), now) == 1 / 2**1.8
    assert (
        feed_score(candidate(2, likes=3, comments=1, shares=1, views=20), now)
        == (1 + 3 + 2 + 3 + 2) / 4**1.8
    )
    assert feed_score(candidate(0, trend=True), now) == 1.5 / 2**1.8
    # Engagement beats age up to a point: 10 likes a day ago lose to nothing an hour ago.
    assert feed_score(candidate(24, likes=10), now) < feed_score(candidate(1), now)
    assert feed_score(candidate(3, likes=10), now) > feed_score(candidate(1), now)


async def test_takes_feed_ranks_by_engagement_recency_and_trend_participation(
    app: Any, gql: GraphQLClient
) -> None:
    ana, bob = await create_users(app, ["ana", "bob"])
    now = utcnow()
    fresh = await create_take(app, gql, ana, caption="fresh")
    old_popular = await create_take(app, gql, ana, caption="old popular")
    old_quiet = await create_take(app, gql, ana, caption="old quiet")
    in_trend = await create_take(app, gql, ana, caption="in trend")
    plain_twin = await create_take(app, gql, ana, caption="plain twin")
    (
        await gql(
            START_TREND,
            {"input": {"takeId": in_trend["id"], "name": "Wave", "hashtag": "wave"}},
            token=ana.token,
        )
    ).ok()
    await set_take(app, fresh["id"], created_at=now - timedelta(minutes=10))
    await set_take(
        app, old_popular["id"], created_at=now - timedelta(hours=5), like_count=40, comment_count=5
    )
    await set_take(app, old_quiet["id"], created_at=now - timedelta(hours=5))
    await set_take(app, in_trend["id"], created_at=now - timedelta(hours=2))
    await set_take(app, plain_twin["id"], created_at=now - timedelta(hours=2))

    page = (await gql(FEED, {"first": 10}, token=bob.token)).ok()["takesFeed"]
    order = [e["node"]["caption"] for e in page["edges"]]
    assert order == ["old popular", "fresh", "in trend", "plain twin", "old quiet"]
    assert page["totalCount"] == 5
    # Signed out: the same public takes.
    signed_out = (await gql(FEED, {"first": 10})).ok()["takesFeed"]
    assert [e["node"]["caption"] for e in signed_out["edges"]] == order


async def test_takes_feed_pages_without_gaps_or_repeats(app: Any, gql: GraphQLClient) -> None:
    users = await create_users(app, [f"u{i}" for i in range(3)])
    made = [await create_take(app, gql, users[i % 3], caption=f"t{i}") for i in range(11)]
    seen: list[str] = []
    after = None
    while True:
        page = (await gql(FEED, {"first": 4, "after": after}, token=users[0].token)).ok()[
            "takesFeed"
        ]
        seen += [e["node"]["id"] for e in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert sorted(seen) == sorted(t["id"] for t in made)
    assert len(seen) == len(set(seen))
    assert (await gql(FEED, {"after": "nope"})).codes == ["BAD_USER_INPUT"]
    assert (await gql(FEED, {"first": -1})).codes == ["BAD_USER_INPUT"]


async def test_a_feed_page_costs_the_same_statements_for_5_and_20_takes(
    app: Any, gql: GraphQLClient, sql_counter: list[str]
) -> None:
    """Takes with author, video, template (and slots), trend and originator: one
    statement per kind of field, never one per take."""
    viewer, *authors = await create_users(app, ["viewer"] + [f"a{i}" for i in range(6)])
    template_id = (
        await gql(
            'mutation { createTakeTemplate(input: {name: "T", slots: [{durationMs: 500}]}) '
            "{ id } }",
            token=authors[0].token,
        )
    ).ok()["createTakeTemplate"]["id"]
    origin = await create_take(app, gql, authors[0])
    trend_id = (
        await gql(
            START_TREND,
            {"input": {"takeId": origin["id"], "name": "Go", "hashtag": "go"}},
            token=authors[0].token,
        )
    ).ok()["startTrend"]["id"]
    # The originator ranks last (old): it is never on the pages measured, so each page
    # loads it with the other page's originators, not from the page itself.
    await set_take(app, origin["id"], created_at=utcnow() - timedelta(days=3))
    for i in range(24):
        extra: dict[str, Any] = {}
        if i % 2:
            extra["templateId"] = template_id
        if i % 3:
            extra["trendId"] = trend_id
        await create_take(app, gql, authors[i % len(authors)], caption=f"take {i}", **extra)

    counts = {}
    for first in (5, 20):
        sql_counter.clear()
        data = (await gql(RICH_FEED, {"first": first}, token=viewer.token)).ok()
        assert len(data["takesFeed"]["edges"]) == first
        assert any(e["node"]["originator"] for e in data["takesFeed"]["edges"])
        assert any(e["node"]["template"] for e in data["takesFeed"]["edges"])
        counts[first] = len(sql_counter)
    assert counts[5] == counts[20], counts
    # ranking candidates + takes + trends + templates + their slots + originator
    # takes + videos + the viewer's likes + users (authors, creators, originators)
    # + the viewer's relationships to them (visibility): 10, whatever `first`.
    assert counts[20] == FEED_PAGE_STATEMENTS, counts
