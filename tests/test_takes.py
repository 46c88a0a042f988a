"""Takes: create, delete, like, view, Behind-the-Takes; their events and their counters."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select, update

from datasources.events.tables import OutboxRow
from datasources.media.tables import MediaRow
from datasources.posts.take_tables import (
    BehindTheTakeRow,
    BehindTheTakeStepRow,
    TakeLikeRow,
    TakeRow,
    TakeTemplateRow,
    TakeTrendRow,
    TakeViewRow,
)
from datasources.sql import utcnow
from resolvers.ids import encode_id, split_id
from tests.conftest import Account, GraphQLClient, create_users, insert_media

TAKE_FIELDS = """
id caption hashtags soundName durationMs viewCount likeCount commentCount shareCount
viewerHasLiked createdAt author { id username } video { id kind }
template { id } trend { id } originator { id } behindTheTake { id }
"""
CREATE_TAKE = (
    f"mutation($input: CreateTakeInput!) {{ createTake(input: $input) {{ {TAKE_FIELDS} }} }}"
)
TAKE = f"query($id: ID!) {{ take(id: $id) {{ {TAKE_FIELDS} }} }}"
DELETE_TAKE = "mutation($id: ID!) { deleteTake(id: $id) }"
LIKE = "mutation($id: ID!) { likeTake(takeId: $id) { likeCount viewerHasLiked } }"
UNLIKE = "mutation($id: ID!) { unlikeTake(takeId: $id) { likeCount viewerHasLiked } }"
VIEW = "mutation($id: ID!) { recordTakeView(takeId: $id) { viewCount } }"
ADD_BEHIND = """
mutation($input: AddBehindTheTakeInput!) { addBehindTheTake(input: $input) {
  id tools createdAt take { id } steps { position title body media { id } }
} }
"""
CREATE_TEMPLATE = """
mutation($input: CreateTakeTemplateInput!) { createTakeTemplate(input: $input) {
  id name description useCount creator { id } sourceTake { id }
  slots { position durationMs hint }
} }
"""
START_TREND = """
mutation($input: StartTrendInput!) { startTrend(input: $input) {
  id name hashtag participantCount originator { id } originatorAuthor { id }
} }
"""

TAKE_TABLES = (
    TakeRow,
    TakeLikeRow,
    TakeViewRow,
    BehindTheTakeRow,
    BehindTheTakeStepRow,
    TakeTemplateRow,
    TakeTrendRow,
)


# ── helpers (imported by the other tests/test_takes*.py) ────────────────────


def pk(global_id: str) -> int:
    parts = split_id(global_id)
    assert parts is not None
    return int(parts[1])


async def insert_video(app: Any, owner: Account, duration_ms: int | None = 15_000) -> str:
    """A VIDEO media row of `owner` with a probed duration; its global ID."""
    row = MediaRow(
        platform=owner.platform,
        owner_id=pk(owner.id),
        kind="VIDEO",
        mime_type="video/mp4",
        size_bytes=1000,
        sha256="0" * 64,
        width=720,
        height=1280,
        duration_ms=duration_ms,
        blob_key=f"test/{owner.username}/video",
    )
    async with app.state.runtime.stores.db.transaction() as session:
        session.add(row)
        await session.flush()
        return encode_id("Media", row.id)


async def create_take(
    app: Any, gql: GraphQLClient, author: Account, **fields: Any
) -> dict[str, Any]:
    video = fields.pop("videoMediaId", None) or await insert_video(app, author)
    result = await gql(
        CREATE_TAKE,
        {"input": {"videoMediaId": video, **fields}},
        token=author.token,
        platform=author.platform,
    )
    return result.ok()["createTake"]  # type: ignore[no-any-return]


async def events(app: Any, *types: str) -> list[dict[str, Any]]:
    """Outbox events (parsed), oldest first, optionally only of `types`."""
    async with app.state.runtime.stores.db.session() as session:
        payloads = await session.scalars(select(OutboxRow.payload).order_by(OutboxRow.id))
        parsed = [json.loads(p) for p in payloads]
    return [e for e in parsed if not types or e["type"] in types]


async def table_counts(app: Any) -> dict[str, int]:
    """Rows in every takes table and take events in the outbox: 'nothing stored' checks."""
    counts: dict[str, int] = {}
    async with app.state.runtime.stores.db.session() as session:
        for table in TAKE_TABLES:
            counts[table.__tablename__] = int(
                await session.scalar(select(func.count()).select_from(table)) or 0
            )
        counts["use_count"] = int(
            await session.scalar(select(func.sum(TakeTemplateRow.use_count))) or 0
        )
        counts["participants"] = int(
            await session.scalar(select(func.sum(TakeTrendRow.participant_count))) or 0
        )
    take_events = [
        e for e in await events(app) if e["subject"]["type"] in ("take", "template", "trend")
    ]
    counts["events"] = len(take_events)
    return counts


async def run_sql(app: Any, statement: Any) -> None:
    async with app.state.runtime.stores.db.transaction() as session:
        await session.execute(statement)


# ── create ───────────────────────────────────────────────────────────────────


async def test_create_take_takes_duration_from_the_video_and_emits_take_created(
    app: Any, gql: GraphQLClient
) -> None:
    (ana,) = await create_users(app, ["ana"])
    video = await insert_video(app, ana, duration_ms=42_500)
    take = await create_take(
        app,
        gql,
        ana,
        videoMediaId=video,
        caption="Sunset run #Sunset #run #sunset",
        soundName="Waves",
    )
    assert take["durationMs"] == 42_500
    assert take["hashtags"] == ["sunset", "run"]
    assert take["soundName"] == "Waves"
    assert take["author"]["id"] == ana.id
    assert take["video"] == {"id": video, "kind": "VIDEO"}
    assert (take["viewCount"], take["likeCount"], take["commentCount"]) == (0, 0, 0)
    assert take["template"] is None and take["trend"] is None and take["originator"] is None
    assert take["viewerHasLiked"] is False

    again = (await gql(TAKE, {"id": take["id"]}, token=ana.token)).ok()["take"]
    assert again == take

    (created,) = await events(app, "take.created")
    assert created["actor"] == {"id": pk(ana.id)}
    assert created["subject"] == {"type": "take", "id": pk(take["id"])}
    assert created["data"]["author_id"] == pk(ana.id)
    assert created["data"]["hashtags"] == ["sunset", "run"]
    assert created["data"]["caption"] == "Sunset run #Sunset #run #sunset"
    assert created["platform"] == "socialink"


async def test_create_take_rejects_bad_videos_and_stores_nothing(
    app: Any, gql: GraphQLClient
) -> None:
    ana, bob = await create_users(app, ["ana", "bob"])
    bobs_video = await insert_video(app, bob)
    image = await insert_media(app, ana)
    too_long = await insert_video(app, ana, duration_ms=10 * 60 * 1000 + 1)
    no_duration = await insert_video(app, ana, duration_ms=None)
    before = await table_counts(app)
    cases = [
        ({"videoMediaId": bobs_video}, ana.token, "BAD_USER_INPUT"),
        ({"videoMediaId": image}, ana.token, "BAD_USER_INPUT"),
        ({"videoMediaId": too_long}, ana.token, "BAD_USER_INPUT"),
        ({"videoMediaId": no_duration}, ana.token, "BAD_USER_INPUT"),
        ({"videoMediaId": "not-an-id"}, ana.token, "BAD_USER_INPUT"),
        (
            {"videoMediaId": await insert_video(app, ana), "caption": "x" * 2201},
            ana.token,
            "BAD_USER_INPUT",
        ),
        ({"videoMediaId": await insert_video(app, ana)}, None, "UNAUTHENTICATED"),
    ]
    for fields, token, code in cases:
        result = await gql(CREATE_TAKE, {"input": fields}, token=token)
        assert result.codes == [code], (fields, result.errors)
        assert result.data is None
    assert await table_counts(app) == before


async def test_a_ten_minute_video_is_the_longest_take(app: Any, gql: GraphQLClient) -> None:
    (ana,) = await create_users(app, ["ana"])
    video = await insert_video(app, ana, duration_ms=10 * 60 * 1000)
    take = await create_take(app, gql, ana, videoMediaId=video)
    assert take["durationMs"] == 600_000


async def test_unknown_template_or_trend_is_not_found_and_stores_nothing(
    app: Any, gql: GraphQLClient
) -> None:
    (ana,) = await create_users(app, ["ana"])
    before = await table_counts(app)
    for field, type_name in (("templateId", "TakeTemplate"), ("trendId", "TakeTrend")):
        video = await insert_video(app, ana)
        result = await gql(
            CREATE_TAKE,
            {"input": {"videoMediaId": video, field: encode_id(type_name, 999)}},
            token=ana.token,
        )
        assert result.codes == ["NOT_FOUND"], result.errors
        malformed = await gql(
            CREATE_TAKE, {"input": {"videoMediaId": video, field: ana.id}}, token=ana.token
        )
        assert malformed.codes == ["BAD_USER_INPUT"]
    assert await table_counts(app) == before


# ── delete ───────────────────────────────────────────────────────────────────


async def test_only_the_author_deletes_a_take_and_counts_adjust(
    app: Any, gql: GraphQLClient
) -> None:
    ana, bob = await create_users(app, ["ana", "bob"])
    origin = await create_take(app, gql, ana)
    template = (
        await gql(
            CREATE_TEMPLATE,
            {"input": {"name": "Beat", "slots": [{"durationMs": 1000}]}},
            token=ana.token,
        )
    ).ok()["createTakeTemplate"]
    trend = (
        await gql(
            START_TREND,
            {"input": {"takeId": origin["id"], "name": "Dance", "hashtag": "dance"}},
            token=ana.token,
        )
    ).ok()["startTrend"]
    bobs = await create_take(app, gql, bob, templateId=template["id"], trendId=trend["id"])
    (await gql(LIKE, {"id": bobs["id"]}, token=ana.token)).ok()

    forbidden = await gql(DELETE_TAKE, {"id": bobs["id"]}, token=ana.token)
    assert forbidden.codes == ["FORBIDDEN"]
    assert (await gql(DELETE_TAKE, {"id": bobs["id"]})).codes == ["UNAUTHENTICATED"]

    assert (await gql(DELETE_TAKE, {"id": bobs["id"]}, token=bob.token)).ok() == {
        "deleteTake": True
    }
    assert (await gql(TAKE, {"id": bobs["id"]}, token=bob.token)).codes == ["NOT_FOUND"]
    assert (await gql(DELETE_TAKE, {"id": bobs["id"]}, token=bob.token)).codes == ["NOT_FOUND"]
    counts = await table_counts(app)
    assert (counts["use_count"], counts["participants"], counts["take_likes"]) == (0, 1, 0)

    (deleted,) = await events(app, "take.deleted")
    assert deleted["subject"] == {"type": "take", "id": pk(bobs["id"])}
    assert deleted["data"]["author_id"] == pk(bob.id)
    assert deleted["data"]["template_id"] == pk(template["id"])
    assert deleted["data"]["trend_id"] == pk(trend["id"])


async def test_deleting_the_originator_take_ends_its_trend(app: Any, gql: GraphQLClient) -> None:
    ana, bob = await create_users(app, ["ana", "bob"])
    origin = await create_take(app, gql, ana)
    trend = (
        await gql(
            START_TREND,
            {"input": {"takeId": origin["id"], "name": "Dance", "hashtag": "dance"}},
            token=ana.token,
        )
    ).ok()["startTrend"]
    joined = await create_take(app, gql, bob, trendId=trend["id"])
    (await gql(DELETE_TAKE, {"id": origin["id"]}, token=ana.token)).ok()
    query = "query($id: ID!) { takeTrend(id: $id) { id } }"
    assert (await gql(query, {"id": trend["id"]}, token=bob.token)).codes == ["NOT_FOUND"]
    after = (await gql(TAKE, {"id": joined["id"]}, token=bob.token)).ok()["take"]
    assert after["trend"] is None and after["originator"] is None


# ── likes ────────────────────────────────────────────────────────────────────


async def test_like_and_unlike_are_idempotent_and_emit_once(app: Any, gql: GraphQLClient) -> None:
    ana, bob = await create_users(app, ["ana", "bob"])
    take = await create_take(app, gql, ana)
    for _ in range(2):
        liked = (await gql(LIKE, {"id": take["id"]}, token=bob.token)).ok()["likeTake"]
        assert liked == {"likeCount": 1, "viewerHasLiked": True}
    for _ in range(2):
        unliked = (await gql(UNLIKE, {"id": take["id"]}, token=bob.token)).ok()["unlikeTake"]
        assert unliked == {"likeCount": 0, "viewerHasLiked": False}
    (like,) = await events(app, "take.liked")
    (unlike,) = await events(app, "take.unliked")
    assert like["actor"] == {"id": pk(bob.id)}
    assert like["data"] == {"author_id": pk(ana.id), "take_id": pk(take["id"])}
    assert unlike["data"]["author_id"] == pk(ana.id)
    assert (await gql(LIKE, {"id": take["id"]})).codes == ["UNAUTHENTICATED"]
    assert (await gql(LIKE, {"id": encode_id("Take", 999)}, token=bob.token)).codes == ["NOT_FOUND"]


async def test_concurrent_likes_and_unlikes_keep_the_count_exact(
    app: Any, gql: GraphQLClient
) -> None:
    author, *fans = await create_users(app, ["author"] + [f"fan{i}" for i in range(20)])
    take = await create_take(app, gql, author)
    await asyncio.gather(*(gql(LIKE, {"id": take["id"]}, token=f.token) for f in fans))
    await asyncio.gather(*(gql(LIKE, {"id": take["id"]}, token=f.token) for f in fans[:10]))
    read = (await gql(TAKE, {"id": take["id"]}, token=author.token)).ok()["take"]
    assert read["likeCount"] == 20
    races = [gql(UNLIKE, {"id": take["id"]}, token=f.token) for f in fans for _ in range(2)]
    await asyncio.gather(*races)
    read = (await gql(TAKE, {"id": take["id"]}, token=author.token)).ok()["take"]
    assert read["likeCount"] == 0
    assert len(await events(app, "take.liked")) == 20
    assert len(await events(app, "take.unliked")) == 20


# ── views ────────────────────────────────────────────────────────────────────


async def test_a_view_counts_once_per_viewer_per_hour(app: Any, gql: GraphQLClient) -> None:
    ana, bob, cid = await create_users(app, ["ana", "bob", "cid"])
    take = await create_take(app, gql, ana)
    await asyncio.gather(*(gql(VIEW, {"id": take["id"]}, token=bob.token) for _ in range(5)))
    assert (await gql(VIEW, {"id": take["id"]}, token=bob.token)).ok()["recordTakeView"] == {
        "viewCount": 1
    }
    assert (await gql(VIEW, {"id": take["id"]}, token=cid.token)).ok()["recordTakeView"] == {
        "viewCount": 2
    }
    # Signed-out and the author's own views are not counted.
    assert (await gql(VIEW, {"id": take["id"]})).ok()["recordTakeView"] == {"viewCount": 2}
    assert (await gql(VIEW, {"id": take["id"]}, token=ana.token)).ok()["recordTakeView"] == {
        "viewCount": 2
    }
    # 59 minutes later: still the same hour for bob; 61 minutes: counted again.
    await run_sql(app, update(TakeViewRow).values(last_counted_at=utcnow() - timedelta(minutes=59)))
    assert (await gql(VIEW, {"id": take["id"]}, token=bob.token)).ok()["recordTakeView"] == {
        "viewCount": 2
    }
    await run_sql(
        app,
        update(TakeViewRow)
        .where(TakeViewRow.viewer_id == pk(bob.id))
        .values(last_counted_at=utcnow() - timedelta(minutes=61)),
    )
    assert (await gql(VIEW, {"id": take["id"]}, token=bob.token)).ok()["recordTakeView"] == {
        "viewCount": 3
    }


# ── Behind-the-Takes ─────────────────────────────────────────────────────────


async def test_behind_the_take_by_the_author_with_ordered_steps_replaced_on_re_add(
    app: Any, gql: GraphQLClient
) -> None:
    ana, bob = await create_users(app, ["ana", "bob"])
    take = await create_take(app, gql, ana)
    photo = await insert_media(app, ana)
    steps = [
        {"title": "Set up the light", "body": "One lamp, left", "mediaId": photo},
        {"title": "Record"},
        {"title": "Cut on the beat", "body": "Trim to 15s"},
    ]
    first = (
        await gql(
            ADD_BEHIND,
            {
                "input": {
                    "takeId": take["id"],
                    "steps": steps,
                    "tools": ["CapCut", " Ring light ", "capcut"],
                }
            },
            token=ana.token,
        )
    ).ok()["addBehindTheTake"]
    assert [s["position"] for s in first["steps"]] == [1, 2, 3]
    assert first["steps"][0] == {
        "position": 1,
        "title": "Set up the light",
        "body": "One lamp, left",
        "media": {"id": photo},
    }
    assert first["steps"][1]["media"] is None
    assert first["tools"] == ["CapCut", "Ring light"]
    assert first["take"] == {"id": take["id"]}

    second = (
        await gql(
            ADD_BEHIND,
            {"input": {"takeId": take["id"], "steps": [{"title": "Just film it"}]}},
            token=ana.token,
        )
    ).ok()["addBehindTheTake"]
    assert second["id"] == first["id"]
    assert [s["title"] for s in second["steps"]] == ["Just film it"]
    assert second["tools"] == []
    read = (await gql(TAKE, {"id": take["id"]}, token=bob.token)).ok()["take"]
    assert read["behindTheTake"] == {"id": first["id"]}
    node = "query($id: ID!) { node(id: $id) { ... on BehindTheTake { steps { title } } } }"
    assert (await gql(node, {"id": first["id"]}, token=bob.token)).ok()["node"] == {
        "steps": [{"title": "Just film it"}]
    }
    added = await events(app, "take.behind_added")
    assert len(added) == 2
    assert added[0]["data"]["author_id"] == pk(ana.id)
    assert added[0]["subject"] == {"type": "take", "id": pk(take["id"])}


async def test_behind_the_take_rejects_others_and_bad_steps_storing_nothing(
    app: Any, gql: GraphQLClient
) -> None:
    ana, bob = await create_users(app, ["ana", "bob"])
    take = await create_take(app, gql, ana)
    bobs_photo = await insert_media(app, bob)
    before = await table_counts(app)
    one = [{"title": "Film"}]
    cases = [
        ({"takeId": take["id"], "steps": one}, bob.token, "FORBIDDEN"),
        ({"takeId": take["id"], "steps": one}, None, "UNAUTHENTICATED"),
        ({"takeId": take["id"], "steps": []}, ana.token, "BAD_USER_INPUT"),
        (
            {"takeId": take["id"], "steps": [{"title": f"s{i}"} for i in range(21)]},
            ana.token,
            "BAD_USER_INPUT",
        ),
        ({"takeId": take["id"], "steps": [{"title": "  "}]}, ana.token, "BAD_USER_INPUT"),
        (
            {"takeId": take["id"], "steps": [{"title": "x", "mediaId": bobs_photo}]},
            ana.token,
            "BAD_USER_INPUT",
        ),
        ({"takeId": encode_id("Take", 999), "steps": one}, ana.token, "NOT_FOUND"),
    ]
    for fields, token, code in cases:
        result = await gql(ADD_BEHIND, {"input": fields}, token=token)
        assert result.codes == [code], (fields, result.errors)
    assert await table_counts(app) == before
    twenty = [{"title": f"s{i}"} for i in range(20)]
    done = await gql(
        ADD_BEHIND, {"input": {"takeId": take["id"], "steps": twenty}}, token=ana.token
    )
    assert len(done.ok()["addBehindTheTake"]["steps"]) == 20


# ── connections, node, comments ──────────────────────────────────────────────

USER_TAKES = """
query($name: String!, $after: String) { user(username: $name) {
  takes(first: 2, after: $after) { totalCount pageInfo { hasNextPage hasPreviousPage endCursor }
    edges { node { caption } } }
} }
"""
NODE = """
query($id: ID!) { node(id: $id) {
  __typename id
  ... on Take { caption }
  ... on TakeTemplate { name }
  ... on TakeTrend { hashtag }
} }
"""


async def test_user_takes_page_newest_first(app: Any, gql: GraphQLClient) -> None:
    ana, bob = await create_users(app, ["ana", "bob"])
    for i in range(5):
        take = await create_take(app, gql, ana, caption=f"t{i}")
        await run_sql(
            app,
            update(TakeRow)
            .where(TakeRow.id == pk(take["id"]))
            .values(created_at=utcnow() - timedelta(minutes=10 - i)),
        )
    captions: list[str] = []
    after = None
    while True:
        page = (await gql(USER_TAKES, {"name": "ana", "after": after}, token=bob.token)).ok()
        takes = page["user"]["takes"]
        assert takes["totalCount"] == 5
        assert takes["pageInfo"]["hasPreviousPage"] is (after is not None)
        captions += [e["node"]["caption"] for e in takes["edges"]]
        if not takes["pageInfo"]["hasNextPage"]:
            break
        after = takes["pageInfo"]["endCursor"]
    assert captions == ["t4", "t3", "t2", "t1", "t0"]


async def test_node_resolves_takes_templates_and_trends_only_on_their_platform(
    app: Any, gql: GraphQLClient
) -> None:
    (ana,) = await create_users(app, ["ana"])
    (vig,) = await create_users(app, ["vig"], platform="vignette")
    take = await create_take(app, gql, ana, caption="hello")
    template_id = (
        await gql(
            CREATE_TEMPLATE, {"input": {"name": "T", "slots": [{"durationMs": 5}]}}, token=ana.token
        )
    ).ok()["createTakeTemplate"]["id"]
    trend_id = (
        await gql(
            START_TREND,
            {"input": {"takeId": take["id"], "name": "Hi", "hashtag": "hi"}},
            token=ana.token,
        )
    ).ok()["startTrend"]["id"]
    expected = {
        take["id"]: {"__typename": "Take", "id": take["id"], "caption": "hello"},
        template_id: {"__typename": "TakeTemplate", "id": template_id, "name": "T"},
        trend_id: {"__typename": "TakeTrend", "id": trend_id, "hashtag": "hi"},
    }
    for global_id, node in expected.items():
        assert (await gql(NODE, {"id": global_id})).ok()["node"] == node
        elsewhere = await gql(NODE, {"id": global_id}, token=vig.token, platform="vignette")
        assert elsewhere.ok()["node"] is None
    for query, name in (
        (TAKE, "take"),
        ("query($id: ID!) { takeTrend(id: $id) { id } }", "takeTrend"),
    ):
        global_id = take["id"] if name == "take" else trend_id
        other = await gql(query, {"id": global_id}, token=vig.token, platform="vignette")
        assert other.codes == ["NOT_FOUND"]


async def test_comments_on_a_take(app: Any, gql: GraphQLClient) -> None:
    ana, bob = await create_users(app, ["ana", "bob"])
    take = await create_take(app, gql, ana)
    add = """mutation($input: AddCommentInput!) { addComment(input: $input) {
      id subject { ... on Take { id commentCount } } } }"""
    for body in ("first!", "nice"):
        result = await gql(add, {"input": {"takeId": take["id"], "body": body}}, token=bob.token)
        assert result.ok()["addComment"]["subject"]["id"] == take["id"]
    query = """query($id: ID!) { take(id: $id) { commentCount
      comments(first: 10) { totalCount edges { node { body author { username } } } } } }"""
    read = (await gql(query, {"id": take["id"]}, token=ana.token)).ok()["take"]
    assert read["commentCount"] == 2
    assert [e["node"]["body"] for e in read["comments"]["edges"]] == ["first!", "nice"]
    (await gql(DELETE_TAKE, {"id": take["id"]}, token=ana.token)).ok()
    from datasources.posts.tables import CommentRow

    async with app.state.runtime.stores.db.session() as session:
        left = await session.scalar(select(func.count()).select_from(CommentRow))
    assert left == 0
