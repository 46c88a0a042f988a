"""Hashtags through the API: trending order and windows, related tags, a tag's counts,
posts and takes (privacy included), unknown tags, and `entativa search stats`.

Trending and related read `hashtag_uses`, which the search indexer fills from the
post and take events; tests that need exact times of use write those rows directly
(`uses`), the others go through createPost / createTake and wait for the indexer.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from datasources.search.hashtags import MIN_USES
from datasources.search.tables import HashtagUseRow, SearchQueryDailyRow
from datasources.sql import utcnow
from tests.conftest import Account, GraphQLClient, create_users, sign_up
from tests.posts_helpers import create_post
from tests.test_takes import create_take, pk

P = "socialink"

TRENDING = """
query($w: TrendWindow, $n: Int) {
  trendingHashtags(window: $w, limit: $n) {
    hashtag { name } count previousCount growthRate
  }
}
"""
HASHTAG = """
query($name: String!, $n: Int) {
  hashtag(name: $name) {
    name postCount takeCount
    related(limit: $n) { name postCount }
    posts(first: 10) { totalCount edges { node { id caption } } }
    takes(first: 10) { totalCount edges { node { id caption } } }
  }
}
"""

_next_subject = iter(range(1_000_000, 2_000_000))


async def uses(
    app: Any,
    tag: str,
    times: Iterable[datetime],
    platform: str = P,
    subject_type: str = "post",
    subject_ids: Iterable[int] | None = None,
) -> None:
    """`hashtag_uses` rows of `tag`, one per time (each on its own subject unless
    `subject_ids` names them), as the indexer writes them."""
    moments = list(times)
    ids = list(subject_ids) if subject_ids is not None else [next(_next_subject) for _ in moments]
    async with app.state.runtime.stores.db.transaction() as session:
        session.add_all(
            HashtagUseRow(
                platform=platform,
                tag=tag,
                subject_type=subject_type,
                subject_id=subject_id,
                used_at=at,
            )
            for subject_id, at in zip(ids, moments, strict=True)
        )


def spread(count: int, start: datetime, end: datetime) -> list[datetime]:
    """`count` times evenly inside (start, end)."""
    step = (end - start) / (count + 1)
    return [start + step * (i + 1) for i in range(count)]


async def indexed(app: Any, subject_type: str, subject_ids: Iterable[int]) -> None:
    """Wait until the indexer has recorded the tags of these posts or takes."""
    wanted = set(subject_ids)
    for _ in range(200):
        async with app.state.runtime.stores.db.session() as session:
            found = set(
                await session.scalars(
                    select(HashtagUseRow.subject_id).where(
                        HashtagUseRow.subject_type == subject_type,
                        HashtagUseRow.subject_id.in_(wanted),
                    )
                )
            )
        if found == wanted:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"the indexer did not record {wanted - found}")


async def trending(gql: GraphQLClient, window: str | None = None, **kw: Any) -> list[Any]:
    variables: dict[str, Any] = {"n": kw.get("limit", 10)}
    if window is not None:
        variables["w"] = window
    result = await gql(TRENDING, variables, platform=kw.get("platform", P))
    return result.ok()["trendingHashtags"]  # type: ignore[no-any-return]


# ── trending ──────────────────────────────────────────────────────────────


async def test_sudden_growth_beats_steady_volume(app: Any, gql: GraphQLClient) -> None:
    now = utcnow()
    day, before = (now - timedelta(days=1), now), (now - timedelta(days=2), now - timedelta(days=1))
    await uses(app, "steady", spread(100, *before) + spread(100, *day))
    await uses(app, "sudden", spread(12, *day))
    await uses(app, "rising", spread(6, *before) + spread(18, *day))
    await uses(app, "fading", spread(20, *before) + spread(MIN_USES, *day))
    await uses(app, "blip", spread(MIN_USES - 1, *day))  # too few uses to score
    await uses(app, "old", spread(50, *before))  # nothing in the window: not listed

    found = await trending(gql)  # the default window is DAY
    assert [t["hashtag"]["name"] for t in found] == ["sudden", "rising", "steady", "fading", "blip"]
    by_name = {t["hashtag"]["name"]: t for t in found}
    # growthRate = (count - previousCount) / max(previousCount, 1)
    assert by_name["sudden"] | {"hashtag": None} == {
        "hashtag": None, "count": 12, "previousCount": 0, "growthRate": 12.0
    }  # fmt: skip
    assert (by_name["rising"]["count"], by_name["rising"]["previousCount"]) == (18, 6)
    assert by_name["rising"]["growthRate"] == 2.0
    assert by_name["steady"]["growthRate"] == 0.0
    assert by_name["fading"]["growthRate"] == pytest.approx((MIN_USES - 20) / 20)

    top = await trending(gql, "DAY", limit=2)
    assert [t["hashtag"]["name"] for t in top] == ["sudden", "rising"]
    assert await trending(gql, platform="vignette") == []  # tags are per platform


async def test_windows_count_their_own_span_and_the_one_before(
    app: Any, gql: GraphQLClient
) -> None:
    now = utcnow()
    ago = [timedelta(minutes=10), timedelta(minutes=20), timedelta(minutes=90), timedelta(hours=5)]
    ago += [timedelta(days=3), timedelta(days=8), timedelta(days=20)]
    await uses(app, "timed", [now - a for a in ago])

    def counts(found: list[Any]) -> tuple[int, int]:
        (only,) = found
        return only["count"], only["previousCount"]

    assert counts(await trending(gql, "HOUR")) == (2, 1)  # 10, 20 min | 90 min
    assert counts(await trending(gql, "DAY")) == (4, 0)  # up to 5 h | nothing 24-48 h ago
    assert counts(await trending(gql, "WEEK")) == (5, 1)  # up to 3 d | 8 d
    old = await trending(gql, "HOUR", platform=P)
    assert old[0]["growthRate"] == 1.0  # (2 - 1) / 1


async def test_trending_limit_is_checked(app: Any, gql: GraphQLClient) -> None:
    result = await gql(TRENDING, {"n": 51})
    assert result.codes == ["BAD_USER_INPUT"]
    assert (await gql(TRENDING, {"n": 0})).ok()["trendingHashtags"] == []


async def test_trending_counts_load_in_one_statement_for_any_number_of_tags(
    app: Any, gql: GraphQLClient, sql_counter: list[str]
) -> None:
    from tests.test_users_sql_count import counted

    now = utcnow()
    for i in range(12):
        await uses(app, f"tag{i}", [now - timedelta(minutes=1 + i)] * (i + 1))
    query = (
        "query($n: Int) { trendingHashtags(limit: $n) { count hashtag { postCount takeCount } } }"
    )
    statements = []
    for limit in (3, 12):
        count, data = await counted(gql, sql_counter, query, variables={"n": limit})
        found = data["trendingHashtags"]
        assert [t["count"] for t in found] == list(range(12, 12 - limit, -1))
        assert all(t["hashtag"]["postCount"] == t["count"] for t in found)
        statements.append(count)
    assert statements == [2, 2], sql_counter  # the ranking, then every tag's counts


# ── related ───────────────────────────────────────────────────────────────


async def test_related_tags_are_normalised_for_popularity(app: Any, gql: GraphQLClient) -> None:
    """#love is on every post, so it co-occurs with #surf most often (10 times), yet
    it is the least related: Jaccard 10/50 against #wave's 8/10 and #beach's 6/10."""
    now = utcnow()
    posts = list(range(1, 51))
    await uses(app, "love", [now] * 50, subject_ids=posts)
    await uses(app, "surf", [now] * 10, subject_ids=posts[:10])
    await uses(app, "wave", [now] * 8, subject_ids=posts[:8])
    await uses(app, "beach", [now] * 6, subject_ids=posts[4:10])
    await uses(app, "city", [now] * 20, subject_ids=posts[30:50])  # never with #surf

    result = (await gql(HASHTAG, {"name": "surf", "n": 10})).ok()["hashtag"]
    assert [t["name"] for t in result["related"]] == ["wave", "beach", "love"]
    assert result["related"][2]["postCount"] == 50
    limited = (await gql(HASHTAG, {"name": "surf", "n": 1})).ok()["hashtag"]
    assert [t["name"] for t in limited["related"]] == ["wave"]
    # Symmetric, and #love's best partner is the tag sharing most of its posts (#city).
    love = (await gql(HASHTAG, {"name": "love", "n": 2})).ok()["hashtag"]
    assert [t["name"] for t in love["related"]] == ["city", "surf"]


# ── a tag: counts, posts, takes, privacy ───────────────────────────────────


async def test_a_tag_counts_and_lists_what_the_viewer_may_see(app: Any, gql: GraphQLClient) -> None:
    author, private, follower, stranger = await create_users(
        app, ["author", "private", "follower", "stranger"]
    )
    blocker = (await create_users(app, ["blocker"]))[0]

    async def run(query: str, actor: Account, **variables: Any) -> None:
        (await gql(query, variables, token=actor.token)).ok()

    follow = "mutation($u: ID!) { follow(userId: $u) { following } }"
    await run("mutation { updateProfile(input: {isPrivate: true}) { id } }", private)
    await run(follow, follower, u=author.id)
    await run(follow, follower, u=private.id)
    await run(
        "mutation($u: ID!) { respondToFollowRequest(userId: $u, accept: true) { following } }",
        private,
        u=follower.id,
    )
    await run("mutation($u: ID!) { block(userId: $u) { blocking } }", blocker, u=stranger.id)

    public = await create_post(gql, author, "Sunset #Golden #hour")
    followers_only = await create_post(gql, author, "#golden for friends", visibility="FOLLOWERS")
    hidden = await create_post(gql, private, "#GOLDEN mine")
    blocked = await create_post(gql, blocker, "#golden from a blocker")
    await create_post(gql, author, "#other")
    take = await create_take(app, gql, author, caption="a #golden take")
    private_take = await create_take(app, gql, private, caption="#golden too")
    await indexed(app, "post", [pk(p["id"]) for p in (public, followers_only, hidden, blocked)])
    await indexed(app, "take", [pk(take["id"]), pk(private_take["id"])])

    async def seen(viewer: Account | None, name: str = "golden") -> dict[str, Any]:
        result = await gql(HASHTAG, {"name": name, "n": 5}, token=viewer.token if viewer else None)
        return result.ok()["hashtag"]  # type: ignore[no-any-return]

    def captions(connection: dict[str, Any]) -> list[str]:
        return [edge["node"]["caption"] for edge in connection["edges"]]

    anonymous = await seen(None, "#GoLdEn")  # '#' optional, any case
    assert anonymous["name"] == "golden"
    assert (anonymous["postCount"], anonymous["takeCount"]) == (4, 2)  # every use counted
    assert captions(anonymous["posts"]) == ["#golden from a blocker", "Sunset #Golden #hour"]
    assert captions(anonymous["takes"]) == ["a #golden take"]
    assert [t["name"] for t in anonymous["related"]] == ["hour"]

    mine = await seen(follower)
    assert captions(mine["posts"]) == [
        "#golden from a blocker", "#GOLDEN mine", "#golden for friends", "Sunset #Golden #hour"
    ]  # fmt: skip
    assert mine["posts"]["totalCount"] == 4
    assert captions(mine["takes"]) == ["#golden too", "a #golden take"]

    theirs = await seen(stranger)  # blocked by `blocker`, not following `private`
    assert captions(theirs["posts"]) == ["Sunset #Golden #hour"]
    assert theirs["posts"]["totalCount"] == 1
    assert (theirs["postCount"], theirs["takeCount"]) == (4, 2)


async def test_posts_of_a_tag_page_by_cursor(app: Any, gql: GraphQLClient) -> None:
    (author,) = await create_users(app, ["pager"])
    made = [await create_post(gql, author, f"#paged {i}") for i in range(5)]
    await indexed(app, "post", [pk(p["id"]) for p in made])
    query = """
    query($after: String) { hashtag(name: "paged") { posts(first: 2, after: $after) {
      totalCount pageInfo { hasNextPage endCursor } edges { node { caption } } } } }
    """
    seen: list[str] = []
    after = None
    while True:
        page = (await gql(query, {"after": after})).ok()["hashtag"]["posts"]
        assert page["totalCount"] == 5
        seen += [edge["node"]["caption"] for edge in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert seen == [f"#paged {i}" for i in reversed(range(5))]


async def test_edits_and_deletions_change_the_counts(app: Any, gql: GraphQLClient) -> None:
    author = await sign_up(gql, "editor")
    first = await create_post(gql, author, "#draft one")
    second = await create_post(gql, author, "#draft two")
    await indexed(app, "post", [pk(first["id"]), pk(second["id"])])
    edit = "mutation($id: ID!, $c: String!) { editPost(id: $id, caption: $c) { id } }"
    (await gql(edit, {"id": first["id"], "c": "#final one"}, token=author.token)).ok()
    delete = "mutation($id: ID!) { deletePost(id: $id) }"
    (await gql(delete, {"id": second["id"]}, token=author.token)).ok()

    async def count(name: str) -> int | None:
        found = (await gql(HASHTAG, {"name": name})).ok()["hashtag"]
        return None if found is None else found["postCount"]

    for _ in range(200):
        if await count("draft") is None and await count("final") == 1:
            break
        await asyncio.sleep(0.05)
    assert (await count("draft"), await count("final")) == (None, 1)


async def test_unknown_or_malformed_tags_are_null(app: Any, gql: GraphQLClient) -> None:
    await uses(app, "known", [utcnow()], platform="vignette")
    for name in ("nothing", "#", "", "two words", "#known"):
        assert (await gql(HASHTAG, {"name": name})).ok() == {"hashtag": None}
    found = (await gql(HASHTAG, {"name": "#known"}, platform="vignette")).ok()["hashtag"]
    assert (found["name"], found["postCount"], found["takeCount"]) == ("known", 1, 0)
    assert found["posts"]["edges"] == []  # the use has no post behind it


# ── entativa search stats ────────────────────────────────────────────────


async def test_search_stats_prints_top_and_zero_result_queries_per_day(
    app: Any, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from server.cli import main as entativa

    today = utcnow().date()
    rows = [
        (today, "sunset", "ALL", 9, 0),
        (today, "sunset", "USER", 3, 0),  # types are summed: 12
        (today, "qwzx", "ALL", 4, 4),
        (today, "cats", "POST", 7, 1),
        (today - timedelta(days=1), "dogs", "ALL", 5, 0),
        (today - timedelta(days=9), "ancient", "ALL", 50, 50),  # older than 7 days
    ]
    async with app.state.runtime.stores.db.transaction() as session:
        session.add_all(
            SearchQueryDailyRow(
                day=day, platform=P, query=q, search_type=t, count=c, zero_results=z
            )
            for day, q, t, c, z in rows
        )
    async with app.state.runtime.stores.db.session() as session:
        assert await session.scalar(select(func.count()).select_from(SearchQueryDailyRow)) == 6
    monkeypatch.setenv("ENTATIVA_DATABASE_URL", str(app.state.runtime.settings.database_url))

    await asyncio.to_thread(entativa, ["search", "stats"])
    out = capsys.readouterr().out
    assert "ancient" not in out
    assert "user" not in out.split("\n", 1)[1].lower().replace("no user ids", "")
    today_part, yesterday_part = out.split(f"{today - timedelta(days=1)} {P}")
    top, zero = today_part.split(f"{today} {P}")[1].split("zero results:")
    assert [line.split() for line in top.strip().splitlines()[1:]] == [
        ["12", "sunset"], ["7", "cats"], ["4", "qwzx"]
    ]  # fmt: skip
    assert [line.split() for line in zero.strip().splitlines()] == [["4", "qwzx"], ["1", "cats"]]
    assert "5  dogs" in yesterday_part

    await asyncio.to_thread(entativa, ["search", "stats", "--days", "20", "--limit", "1"])
    out = capsys.readouterr().out
    assert f"{today - timedelta(days=9)} {P}" in out and "50  ancient" in out
    assert "cats" not in out  # one query per list
