"""Take templates (slots, uses) and trends (hashtags, participants, growth ranking)."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from sqlalchemy import update

from datasources.posts.take_tables import TakeRow
from datasources.sql import utcnow
from resolvers.ids import encode_id
from tests.conftest import GraphQLClient, create_users
from tests.test_takes import (
    CREATE_TEMPLATE,
    START_TREND,
    TAKE,
    create_take,
    events,
    insert_video,
    pk,
    run_sql,
    table_counts,
)

TEMPLATES = """
query($after: String) { takeTemplates(first: 2, after: $after) {
  totalCount pageInfo { hasNextPage endCursor }
  edges { node { name useCount } }
} }
"""
TEMPLATE_TAKES = """
query($id: ID!) { node(id: $id) { ... on TakeTemplate {
  useCount takes(first: 10) { totalCount edges { node { id template { id name } } } }
} } }
"""
TREND = """
query($id: ID!) { takeTrend(id: $id) {
  id hashtag participantCount originator { id } originatorAuthor { username }
  participants(first: 10) { totalCount edges { node { id } } }
} }
"""
TRENDING = """
query($first: Int, $after: String) { trendingTakeTrends(first: $first, after: $after) {
  totalCount pageInfo { hasNextPage endCursor } edges { node { hashtag } }
} }
"""


async def template(gql: GraphQLClient, token: str, **fields: Any) -> Any:
    fields.setdefault("name", "Beat drop")
    fields.setdefault("slots", [{"durationMs": 3000, "hint": "intro"}, {"durationMs": 2000}])
    return await gql(CREATE_TEMPLATE, {"input": fields}, token=token)


async def trend(gql: GraphQLClient, token: str, take_id: str, hashtag: str) -> Any:
    return await gql(
        START_TREND,
        {"input": {"takeId": take_id, "name": hashtag.title(), "hashtag": hashtag}},
        token=token,
    )


# ── templates ────────────────────────────────────────────────────────────────


async def test_create_template_with_ordered_slots_and_a_source_take(
    app: Any, gql: GraphQLClient
) -> None:
    (ana,) = await create_users(app, ["ana"])
    source = await create_take(app, gql, ana)
    created = (
        await template(gql, ana.token, description="  Drop on 3 ", sourceTakeId=source["id"])
    ).ok()["createTakeTemplate"]
    assert created["slots"] == [
        {"position": 1, "durationMs": 3000, "hint": "intro"},
        {"position": 2, "durationMs": 2000, "hint": None},
    ]
    assert created["description"] == "Drop on 3"
    assert created["sourceTake"] == {"id": source["id"]}
    assert created["creator"] == {"id": ana.id}
    assert created["useCount"] == 0
    (event,) = await events(app, "template.created")
    assert event["subject"] == {"type": "template", "id": pk(created["id"])}
    assert event["data"]["creator_id"] == pk(ana.id)
    assert event["data"]["name"] == "Beat drop"


async def test_bad_templates_are_rejected_and_store_nothing(app: Any, gql: GraphQLClient) -> None:
    ana, bob = await create_users(app, ["ana", "bob"])
    private = await create_take(app, gql, bob)
    from datasources.users.tables import UserRow

    await run_sql(app, update(UserRow).where(UserRow.id == pk(bob.id)).values(is_private=True))
    before = await table_counts(app)
    cases: list[tuple[dict[str, Any], str]] = [
        ({"slots": []}, "BAD_USER_INPUT"),
        ({"slots": [{"durationMs": 100}] * 21}, "BAD_USER_INPUT"),
        ({"slots": [{"durationMs": 0}]}, "BAD_USER_INPUT"),
        ({"slots": [{"durationMs": -5}]}, "BAD_USER_INPUT"),
        ({"slots": [{"durationMs": 300_000}, {"durationMs": 300_001}]}, "BAD_USER_INPUT"),
        ({"name": "  "}, "BAD_USER_INPUT"),
        ({"sourceTakeId": private["id"]}, "NOT_FOUND"),
        ({"sourceTakeId": encode_id("Take", 999)}, "NOT_FOUND"),
    ]
    for fields, code in cases:
        result = await template(gql, ana.token, **fields)
        assert result.codes == [code], (fields, result.errors)
    assert (await template(gql, "")).codes == ["UNAUTHENTICATED"]
    assert await table_counts(app) == before
    exactly_ten = [{"durationMs": 60_000}] * 10
    assert (
        len((await template(gql, ana.token, slots=exactly_ten)).ok()["createTakeTemplate"]["slots"])
        == 10
    )


async def test_takes_follow_a_template_whose_use_count_is_exact_under_concurrency(
    app: Any, gql: GraphQLClient
) -> None:
    ana, *makers = await create_users(app, ["ana"] + [f"maker{i}" for i in range(12)])
    created = (await template(gql, ana.token)).ok()["createTakeTemplate"]
    takes = await asyncio.gather(
        *(create_take(app, gql, m, templateId=created["id"]) for m in makers)
    )
    assert all(t["template"] == {"id": created["id"]} for t in takes)
    read = (await gql(TEMPLATE_TAKES, {"id": created["id"]}, token=ana.token)).ok()["node"]
    assert read["useCount"] == 12
    assert read["takes"]["totalCount"] == 12
    listed = [e["node"]["id"] for e in read["takes"]["edges"]]
    assert len(set(listed)) == 10 and set(listed) <= {t["id"] for t in takes}
    assert read["takes"]["edges"][0]["node"]["template"]["name"] == "Beat drop"

    used = await events(app, "template.used")
    assert len(used) == 12
    assert {e["data"]["template_creator_id"] for e in used} == {pk(ana.id)}
    assert {e["data"]["take_id"] for e in used} == {pk(t["id"]) for t in takes}


async def test_take_templates_are_listed_by_use(app: Any, gql: GraphQLClient) -> None:
    ana, bob = await create_users(app, ["ana", "bob"])
    names = {}
    for name in ("rare", "popular", "medium"):
        names[name] = (await template(gql, ana.token, name=name)).ok()["createTakeTemplate"]["id"]
    for name, uses in (("popular", 3), ("medium", 2), ("rare", 1)):
        for _ in range(uses):
            await create_take(app, gql, bob, templateId=names[name])
    first = (await gql(TEMPLATES, token=bob.token)).ok()["takeTemplates"]
    assert [e["node"] for e in first["edges"]] == [
        {"name": "popular", "useCount": 3},
        {"name": "medium", "useCount": 2},
    ]
    assert first["totalCount"] == 3 and first["pageInfo"]["hasNextPage"] is True
    rest = (await gql(TEMPLATES, {"after": first["pageInfo"]["endCursor"]}, token=bob.token)).ok()[
        "takeTemplates"
    ]
    assert [e["node"]["name"] for e in rest["edges"]] == ["rare"]
    assert rest["pageInfo"]["hasNextPage"] is False
    assert (await gql(TEMPLATES, {"after": "garbage"})).codes == ["BAD_USER_INPUT"]


# ── trends ───────────────────────────────────────────────────────────────────


async def test_start_a_trend_and_join_it_with_deep_links_to_the_originator(
    app: Any, gql: GraphQLClient
) -> None:
    ana, bob, cid = await create_users(app, ["ana", "bob", "cid"])
    origin = await create_take(app, gql, ana)
    started = (await trend(gql, ana.token, origin["id"], "  #Dance_Off2 ")).ok()["startTrend"]
    assert started["hashtag"] == "dance_off2"
    assert started["participantCount"] == 1
    assert started["originator"] == {"id": origin["id"]}
    assert started["originatorAuthor"] == {"id": ana.id}

    joined = [await create_take(app, gql, u, trendId=started["id"]) for u in (bob, cid)]
    for take in joined:
        assert take["trend"] == {"id": started["id"]}
        assert take["originator"] == {"id": origin["id"]}
    read_origin = (await gql(TAKE, {"id": origin["id"]}, token=bob.token)).ok()["take"]
    assert read_origin["trend"] == {"id": started["id"]}
    assert read_origin["originator"] == {"id": origin["id"]}

    read = (await gql(TREND, {"id": started["id"]}, token=cid.token)).ok()["takeTrend"]
    assert read["participantCount"] == 3
    assert read["originatorAuthor"] == {"username": "ana"}
    assert [e["node"]["id"] for e in read["participants"]["edges"]] == [
        origin["id"],
        joined[0]["id"],
        joined[1]["id"],
    ]
    assert read["participants"]["totalCount"] == 3

    (started_event,) = await events(app, "trend.started")
    assert started_event["data"]["hashtag"] == "dance_off2"
    assert started_event["data"]["originator_author_id"] == pk(ana.id)
    joins = await events(app, "trend.joined")
    assert [e["data"]["take_id"] for e in joins] == [pk(t["id"]) for t in joined]
    assert {e["data"]["trend_originator_author_id"] for e in joins} == {pk(ana.id)}
    assert {e["subject"]["id"] for e in joins} == {pk(started["id"])}


async def test_trend_rules_conflicts_and_bad_input_store_nothing(
    app: Any, gql: GraphQLClient
) -> None:
    ana, bob = await create_users(app, ["ana", "bob"])
    first, second = await create_take(app, gql, ana), await create_take(app, gql, ana)
    bobs = await create_take(app, gql, bob)
    (await trend(gql, ana.token, first["id"], "dance")).ok()
    before = await table_counts(app)
    cases = [
        (second["id"], "#DANCE", ana.token, "CONFLICT"),  # same hashtag, other case
        (first["id"], "other", ana.token, "CONFLICT"),  # the take is already in a trend
        (bobs["id"], "bobs", ana.token, "FORBIDDEN"),  # someone else's take
        (second["id"], "two words", ana.token, "BAD_USER_INPUT"),
        (second["id"], "dash-ed", ana.token, "BAD_USER_INPUT"),
        (second["id"], "#", ana.token, "BAD_USER_INPUT"),
        (encode_id("Take", 999), "ghost", ana.token, "NOT_FOUND"),
        (second["id"], "anon", "", "UNAUTHENTICATED"),
    ]
    for take_id, hashtag, token, code in cases:
        result = await trend(gql, token, take_id, hashtag)
        assert result.codes == [code], (hashtag, result.errors)
    assert await table_counts(app) == before
    # Another platform has its own hashtags.
    (vig,) = await create_users(app, ["vig"], platform="vignette")
    vig_take = await create_take(app, gql, vig)
    result = await gql(
        START_TREND,
        {"input": {"takeId": vig_take["id"], "name": "Dance", "hashtag": "dance"}},
        token=vig.token,
        platform="vignette",
    )
    assert result.ok()["startTrend"]["hashtag"] == "dance"


async def test_concurrent_joins_count_every_participant(app: Any, gql: GraphQLClient) -> None:
    ana, *others = await create_users(app, ["ana"] + [f"p{i}" for i in range(12)])
    origin = await create_take(app, gql, ana)
    started = (await trend(gql, ana.token, origin["id"], "wave")).ok()["startTrend"]
    await asyncio.gather(*(create_take(app, gql, u, trendId=started["id"]) for u in others))
    read = (await gql(TREND, {"id": started["id"]}, token=ana.token)).ok()["takeTrend"]
    assert read["participantCount"] == 13


async def test_trending_take_trends_rank_by_growth_of_the_last_day_against_the_day_before(
    app: Any, gql: GraphQLClient
) -> None:
    """score = (recent − previous) / √(previous + 1), windows of 24 h."""
    users = await create_users(app, [f"u{i}" for i in range(16)])
    owner = users[0]
    now = utcnow()
    plans = {
        # hashtag: (joins 30 h ago, joins 2 h ago) besides the originator (joined 3 days ago)
        "steady": (6, 6),  # (6 − 6)/√7 = 0 … plus originator outside both windows
        "rising": (0, 4),  # 4/1 = 4
        "surging": (3, 10),  # 7/2 = 3.5
        "fading": (5, 1),  # −4/√6 ≈ −1.63
    }
    for hashtag, (old, new) in plans.items():
        origin = await create_take(app, gql, owner)
        started = (await trend(gql, owner.token, origin["id"], hashtag)).ok()["startTrend"]
        await run_sql(
            app,
            update(TakeRow)
            .where(TakeRow.id == pk(origin["id"]))
            .values(trend_joined_at=now - timedelta(days=3)),
        )
        for i in range(old + new):
            take = await create_take(app, gql, users[1 + i], trendId=started["id"])
            when = now - timedelta(hours=30 if i < old else 2)
            await run_sql(
                app,
                update(TakeRow).where(TakeRow.id == pk(take["id"])).values(trend_joined_at=when),
            )
    page = (await gql(TRENDING, {"first": 2}, token=owner.token)).ok()["trendingTakeTrends"]
    assert [e["node"]["hashtag"] for e in page["edges"]] == ["rising", "surging"]
    assert page["totalCount"] == 4
    rest = (
        await gql(TRENDING, {"first": 5, "after": page["pageInfo"]["endCursor"]}, token=owner.token)
    ).ok()["trendingTakeTrends"]
    assert [e["node"]["hashtag"] for e in rest["edges"]] == ["steady", "fading"]
    assert rest["pageInfo"]["hasNextPage"] is False


async def test_concurrent_trends_with_one_hashtag_make_one_trend(
    app: Any, gql: GraphQLClient
) -> None:
    users = await create_users(app, [f"s{i}" for i in range(6)])
    takes = [await create_take(app, gql, u) for u in users]
    results = await asyncio.gather(
        *(trend(gql, u.token, t["id"], "same") for u, t in zip(users, takes, strict=True))
    )
    assert sorted(r.codes[0] if r.errors else "OK" for r in results) == ["CONFLICT"] * 5 + ["OK"]
    assert len(await events(app, "trend.started")) == 1


async def test_blocks_hide_trends_and_templates(app: Any, gql: GraphQLClient) -> None:
    ana, bob = await create_users(app, ["ana", "bob"])
    origin = await create_take(app, gql, ana)
    trend_id = (await trend(gql, ana.token, origin["id"], "mine")).ok()["startTrend"]["id"]
    template_id = (await template(gql, ana.token)).ok()["createTakeTemplate"]["id"]
    block = "mutation($u: ID!) { block(userId: $u) { blocking } }"
    (await gql(block, {"u": bob.id}, token=ana.token)).ok()
    assert (await gql(TREND, {"id": trend_id}, token=bob.token)).codes == ["NOT_FOUND"]
    trending = (await gql(TRENDING, {"first": 10}, token=bob.token)).ok()["trendingTakeTrends"]
    assert trending["edges"] == [] and trending["totalCount"] == 0
    listed = (await gql(TEMPLATES, token=bob.token)).ok()["takeTemplates"]
    assert listed["edges"] == [] and listed["totalCount"] == 0
    node = await gql("query($t: ID!) { node(id: $t) { id } }", {"t": template_id}, token=bob.token)
    assert node.ok()["node"] is None
    for field, global_id in (("templateId", template_id), ("trendId", trend_id)):
        result = await gql(
            "mutation($input: CreateTakeInput!) { createTake(input: $input) { id } }",
            {"input": {"videoMediaId": await insert_video(app, bob), field: global_id}},
            token=bob.token,
        )
        assert result.codes == ["NOT_FOUND"]
    # Ana still sees both.
    assert (await gql(TREND, {"id": trend_id}, token=ana.token)).ok()["takeTrend"]["id"] == trend_id
