"""Search through the API, on the embedded Tantivy index and on Elasticsearch (an
OpenSearch-API server at 127.0.0.1:9200, see DEVELOPERS.md), each on SQLite and
PostgreSQL: what a user finds, what they must not find, and how fast changes show.

Documents reach the index through the domain events (datasources/search/indexer.py);
`indexed(app)` waits until the outbox relay has handed every event to the consumers,
which for the indexer means written and refreshed.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from datasources.events.tables import OutboxRow
from datasources.search.history import HISTORY_LIMIT
from datasources.search.indexer import SearchIndexer
from datasources.search.tables import HashtagUseRow, SearchQueryDailyRow
from datasources.sql import utcnow
from server.settings import Settings
from tests.conftest import Account, GraphQLClient, create_users
from tests.posts_helpers import DELETE, EDIT, create_post
from tests.services import require

ES_HOST, ES_PORT = "127.0.0.1", 9200

SEARCH = """
query($q: String!, $f: SearchFilter, $first: Int, $after: String) {
  search(query: $q, filter: $f, first: $first, after: $after) {
    totalCount tookMs
    pageInfo { hasNextPage endCursor }
    edges { cursor node { score highlight node {
      __typename
      ... on User { id username }
      ... on Post { id caption author { username } }
      ... on Take { id caption }
      ... on Hashtag { name postCount takeCount }
      ... on Location { id name }
    } } }
  }
}
"""
AUTOCOMPLETE = """
query($p: String!, $types: [SearchType!], $limit: Int) {
  autocomplete(prefix: $p, types: $types, limit: $limit) {
    text type node { __typename ... on User { username } ... on Hashtag { name } }
  }
}
"""
HISTORY = "query($limit: Int) { searchHistory(limit: $limit) { id query type searchedAt } }"
CLEAR = "mutation { clearSearchHistory }"
FOLLOW = "mutation($u: ID!) { follow(userId: $u) { following } }"
BLOCK = "mutation($u: ID!) { block(userId: $u) { blocking } }"


@pytest.fixture(params=["tantivy", "elasticsearch"])
def settings(
    request: pytest.FixtureRequest, tmp_path: Path, database_url: str
) -> Iterator[Settings]:
    """The suite's settings, on each search backend (ES: a fresh alias per test)."""
    extra: dict[str, Any] = {}
    if request.param == "elasticsearch":
        require("Elasticsearch", ES_HOST, ES_PORT)
        extra = {
            "search_backend": "elasticsearch",
            "elasticsearch_url": f"http://{ES_HOST}:{ES_PORT}",
            "elasticsearch_index": f"entativa-api-test-{uuid.uuid4().hex[:12]}",
            "elasticsearch_opensearch_compatible": True,
        }
    chosen = Settings(
        data_dir=tmp_path / "data",
        database_url=database_url,
        secret_key="test-secret-key-that-is-long-enough-for-hs256",
        media_dir=tmp_path / "media",
        story_sweep_seconds=0,
        **extra,
    )
    yield chosen
    if request.param == "elasticsearch":
        asyncio.run(_drop(chosen))


async def _drop(chosen: Settings) -> None:
    from datasources.search.elastic import ElasticSearchIndex

    index = ElasticSearchIndex(
        chosen.elasticsearch_url, chosen.elasticsearch_index, opensearch_compatible=True
    )
    await index.drop()
    await index.close()


async def indexed(app: Any, within: float = 10.0) -> None:
    """Wait until every outbox event was handed to the consumers and the indexer's
    writes are searchable."""
    db = app.state.runtime.stores.db
    deadline = time.monotonic() + within
    while True:
        async with db.session() as session:
            pending = await session.scalar(
                select(func.count()).select_from(OutboxRow).where(OutboxRow.published_at.is_(None))
            )
        if not pending:
            break
        assert time.monotonic() < deadline, f"{pending} events still unpublished"
        await asyncio.sleep(0.02)
    for consumer in app.state.runtime.stores.events.consumers:
        if isinstance(consumer, SearchIndexer):
            await consumer.settled()  # the batched refresh (indexer.py)


async def search(
    gql: GraphQLClient,
    query: str,
    viewer: Account | None = None,
    platform: str = "socialink",
    **filters: Any,
) -> dict[str, Any]:
    first = filters.pop("first", 20)
    after = filters.pop("after", None)
    result = await gql(
        SEARCH,
        {"q": query, "f": filters or None, "first": first, "after": after},
        token=viewer.token if viewer else None,
        platform=viewer.platform if viewer else platform,
    )
    return result.ok()["search"]  # type: ignore[no-any-return]


def nodes(found: dict[str, Any]) -> list[dict[str, Any]]:
    return [edge["node"]["node"] for edge in found["edges"]]


def captions(found: dict[str, Any]) -> set[str]:
    return {n["caption"] for n in nodes(found) if n["__typename"] in ("Post", "Take")}


async def take(app: Any, gql: GraphQLClient, author: Account, caption: str) -> dict[str, Any]:
    from tests.test_takes import create_take

    return await create_take(app, gql, author, caption=caption)


# ── what a search finds ───────────────────────────────────────────────────────
async def test_one_query_finds_users_posts_takes_hashtags_and_places(
    app: Any, gql: GraphQLClient
) -> None:
    (alice,) = await create_users(app, ["alice"])
    profile = 'mutation { updateProfile(input: {displayName: "Alice Beach"}) { id } }'
    (await gql(profile, token=alice.token)).ok()
    place = {"name": "Venice Beach", "latitude": 33.985, "longitude": -118.4695}
    post = await create_post(gql, alice, "Sunset over the #beach", location=place)
    clip = await take(app, gql, alice, "waves at the #beach")
    await indexed(app)

    found = await search(gql, "beach")
    kinds = {n["__typename"] for n in nodes(found)}
    assert kinds == {"User", "Post", "Take", "Hashtag", "Location"}
    assert found["totalCount"] == 5 and found["tookMs"] >= 0
    by_kind = {n["__typename"]: n for n in nodes(found)}
    assert by_kind["Post"]["id"] == post["id"] and by_kind["Take"]["id"] == clip["id"]
    assert by_kind["Hashtag"] == {
        "__typename": "Hashtag",
        "name": "beach",
        "postCount": 1,
        "takeCount": 1,
    }
    assert by_kind["Location"]["name"] == "Venice Beach"
    highlights = [e["node"]["highlight"] for e in found["edges"]]
    assert any(h and "<em>beach</em>" in h.lower() for h in highlights)
    scores = [e["node"]["score"] for e in found["edges"]]
    assert scores == sorted(scores, reverse=True)

    only_places = await search(gql, "venice", types=["LOCATION"])
    assert [n["__typename"] for n in nodes(only_places)] == ["Location"]


async def test_typo_tolerance_follows_word_length(app: Any, gql: GraphQLClient) -> None:
    (author,) = await create_users(app, ["author"])
    await create_post(gql, author, "golden sunset photography")
    await create_post(gql, author, "a cat on a mat")
    await indexed(app)
    # 4+ characters: one edit; 8+: two; shorter words match exactly only.
    assert captions(await search(gql, "sunsett")) == {"golden sunset photography"}
    assert captions(await search(gql, "phtograpy")) == {"golden sunset photography"}
    assert captions(await search(gql, "sunzzt")) == set()  # two edits on a 6-letter word
    assert captions(await search(gql, "cot")) == set()  # three letters: exact only
    assert captions(await search(gql, "cat")) == {"a cat on a mat"}


async def test_near_keeps_what_lies_within_the_radius(app: Any, gql: GraphQLClient) -> None:
    (author,) = await create_users(app, ["author"])
    paris = {"name": "Louvre", "latitude": 48.8606, "longitude": 2.3376}
    versailles = {"name": "Versailles", "latitude": 48.8049, "longitude": 2.1204}
    london = {"name": "Tower Bridge", "latitude": 51.5055, "longitude": -0.0754}
    await create_post(gql, author, "museum day", location=paris)
    await create_post(gql, author, "museum trip", location=versailles)
    await create_post(gql, author, "museum visit", location=london)
    await create_post(gql, author, "museum somewhere")  # no coordinates: never near
    await indexed(app)
    near = {"latitude": 48.8566, "longitude": 2.3522}
    close = await search(gql, "museum", types=["POST"], near={**near, "radiusKm": 5})
    assert captions(close) == {"museum day"}
    wider = await search(gql, "museum", types=["POST"], near={**near, "radiusKm": 30})
    assert captions(wider) == {"museum day", "museum trip"}
    places = await search(gql, "", types=["LOCATION"], near={**near, "radiusKm": 30})
    assert {n["name"] for n in nodes(places)} == {"Louvre", "Versailles"}


async def test_pages_follow_the_cursor_without_repeats(app: Any, gql: GraphQLClient) -> None:
    (author,) = await create_users(app, ["author"])
    for n in range(5):
        await create_post(gql, author, f"pancake recipe {n}")
    await indexed(app)
    seen: list[str] = []
    after = None
    while True:
        page = await search(gql, "pancake", first=2, after=after)
        assert page["totalCount"] == 5
        seen += [n["id"] for n in nodes(page)]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert len(seen) == 5 == len(set(seen))


# ── privacy ────────────────────────────────────────────────────────────────────
async def _world(app: Any, gql: GraphQLClient, private: bool) -> dict[str, Account]:
    names = ["author", "follower", "friend", "stranger", "blocked", "blocker"]
    people = dict(zip(names, await create_users(app, names), strict=True))
    (people["other"],) = await create_users(app, ["otherside"], platform="vignette")
    author = people["author"]

    async def run(query: str, actor: Account, **variables: Any) -> None:
        (await gql(query, variables, token=actor.token)).ok()

    await run(FOLLOW, people["follower"], u=author.id)
    await run(
        "mutation($u: ID!) { sendFriendRequest(userId: $u) { friends } }",
        people["friend"],
        u=author.id,
    )
    await run(
        "mutation($u: ID!) { respondToFriendRequest(userId: $u, accept: true) { friends } }",
        author,
        u=people["friend"].id,
    )
    if private:
        await run("mutation { updateProfile(input: {isPrivate: true}) { id } }", author)
    for visibility in ("PUBLIC", "FOLLOWERS", "FRIENDS", "PRIVATE"):
        await create_post(gql, author, f"lighthouse {visibility.lower()}", visibility=visibility)
    await take(app, gql, author, "lighthouse take")
    await run(BLOCK, author, u=people["blocked"].id)
    await run(BLOCK, people["blocker"], u=author.id)
    await indexed(app)
    return people


@pytest.mark.parametrize("private", [False, True], ids=["public_account", "private_account"])
async def test_results_hold_only_what_the_viewer_may_see(
    app: Any, gql: GraphQLClient, private: bool
) -> None:
    people = await _world(app, gql, private)
    everything = {f"lighthouse {v}" for v in ("public", "followers", "friends", "private")}
    everything.add("lighthouse take")
    expected: dict[str | None, set[str]] = {
        "author": everything,
        "follower": {"lighthouse public", "lighthouse followers", "lighthouse take"},
        "friend": {"lighthouse public", "lighthouse friends", "lighthouse take"},
        "stranger": set() if private else {"lighthouse public", "lighthouse take"},
        None: set() if private else {"lighthouse public", "lighthouse take"},
        "blocked": set(),
        "blocker": set(),
        "other": set(),  # another platform: nothing of socialink
    }
    for kind, wanted in expected.items():
        viewer = people[kind] if kind else None
        found = await search(gql, "lighthouse", viewer)
        assert captions(found) == wanted, kind
        assert found["totalCount"] == len(found["edges"]) == len(wanted), kind
    # Blocks hide the accounts themselves too, both ways.
    for kind in ("blocked", "blocker"):
        users = await search(gql, "author", people[kind], types=["USER"])
        assert "author" not in {n["username"] for n in nodes(users)}, kind
    users = await search(gql, "author", people["stranger"], types=["USER"])
    assert [n["username"] for n in nodes(users)] == ["author"]  # a private profile is findable


async def test_deleted_and_edited_posts_change_results_within_a_second(
    app: Any, gql: GraphQLClient
) -> None:
    (author,) = await create_users(app, ["author"])
    post = await create_post(gql, author, "ephemeral #momentary")
    await indexed(app)
    assert captions(await search(gql, "ephemeral")) == {"ephemeral #momentary"}

    await gql(EDIT, {"id": post["id"], "c": "permanent now"}, token=author.token)
    deadline = time.monotonic() + 1.0
    while (await search(gql, "ephemeral"))["totalCount"] or captions(
        await search(gql, "permanent")
    ) != {"permanent now"}:
        assert time.monotonic() < deadline, "the edit did not reach the index within 1 s"
        await asyncio.sleep(0.02)
    assert captions(await search(gql, "ephemeral")) == set()
    assert nodes(await search(gql, "momentary", types=["HASHTAG"])) == []  # no use left

    await gql(EDIT, {"id": post["id"], "c": "once more #again"}, token=author.token)
    await indexed(app)
    started = time.monotonic()
    (await gql(DELETE, {"id": post["id"]}, token=author.token)).ok()
    # totalCount is the index's own count: the post is gone from the index itself,
    # not only hidden by the check every hit goes through.
    while (await search(gql, "again"))["totalCount"]:
        assert time.monotonic() - started < 1.0, "the deleted post is still indexed after 1 s"
        await asyncio.sleep(0.02)
    async with app.state.runtime.stores.db.session() as session:
        assert await session.scalar(select(func.count()).select_from(HashtagUseRow)) == 0


async def test_a_restarted_indexer_replays_what_the_index_lost(
    app: Any, gql: GraphQLClient, settings: Settings
) -> None:
    """The embedded index loses writes it had not committed when the process died;
    the outbox since the checkpoint brings them back (indexer.py)."""
    from datasources.registry import search_checkpoint
    from datasources.search.records import SearchType

    (author,) = await create_users(app, ["author"])
    post = await create_post(gql, author, "marmalade toast")
    await indexed(app)
    stores = app.state.runtime.stores
    checkpoint = search_checkpoint(stores.search_config)
    if settings.search_backend == "tantivy":
        assert checkpoint is not None and checkpoint.exists()
    # What a crash before the commit looks like from outside: the post is not indexed.
    await stores.search.delete("socialink", SearchType.POST, [int(_pk(post["id"]))])
    await stores.search.refresh()
    assert (await search(gql, "marmalade"))["totalCount"] == 0

    indexer = SearchIndexer(stores.db, stores.search, checkpoint)
    replayed = await indexer.recover()
    if checkpoint is None:  # Elasticsearch: acknowledged writes are durable, no replay
        assert replayed == 0
        return
    assert replayed >= 1
    assert captions(await search(gql, "marmalade")) == {"marmalade toast"}


# ── autocomplete ───────────────────────────────────────────────────────────────
async def test_autocomplete_puts_followed_accounts_first(app: Any, gql: GraphQLClient) -> None:
    viewer, popular, friend, rude, *fans = await create_users(
        app, ["viewer", "samantha", "samuel", "sammy", "fan1", "fan2", "fan3"]
    )
    for fan in fans:  # samantha is the most followed
        (await gql(FOLLOW, {"u": popular.id}, token=fan.token)).ok()
    (await gql(FOLLOW, {"u": friend.id}, token=viewer.token)).ok()
    (await gql(BLOCK, {"u": viewer.id}, token=rude.token)).ok()
    await create_post(gql, popular, "#samba night")
    await indexed(app)

    result = await gql(AUTOCOMPLETE, {"p": "sam"}, token=viewer.token)
    texts = [(s["type"], s["text"]) for s in result.ok()["autocomplete"]]
    assert texts[0] == ("USER", "samuel")  # followed first
    assert ("USER", "samantha") in texts and ("HASHTAG", "samba") in texts
    assert all(text != "sammy" for _, text in texts)  # blocks the viewer: never suggested

    signed_out = await gql(AUTOCOMPLETE, {"p": "sam", "types": ["USER"]})
    users = [s["text"] for s in signed_out.ok()["autocomplete"]]
    assert users[0] == "samantha"  # most followed first without a viewer
    assert "sammy" in users


# ── history ────────────────────────────────────────────────────────────────────
async def test_history_is_private_newest_first_and_clearable(app: Any, gql: GraphQLClient) -> None:
    me, someone = await create_users(app, ["me", "someone"])
    await search(gql, "first query", me)
    await search(gql, "Second Query", me, types=["POST"])
    await search(gql, "not mine", someone)
    await search(gql, "signed out")

    mine = (await gql(HISTORY, token=me.token)).ok()["searchHistory"]
    assert [(e["query"], e["type"]) for e in mine] == [
        ("Second Query", "POST"),
        ("first query", None),
    ]
    theirs = (await gql(HISTORY, token=someone.token)).ok()["searchHistory"]
    assert [e["query"] for e in theirs] == ["not mine"]
    assert (await gql(HISTORY)).codes == ["UNAUTHENTICATED"]
    assert (await gql(CLEAR)).codes == ["UNAUTHENTICATED"]

    assert (await gql(CLEAR, token=me.token)).ok()["clearSearchHistory"] is True
    assert (await gql(HISTORY, token=me.token)).ok()["searchHistory"] == []
    theirs = (await gql(HISTORY, token=someone.token)).ok()["searchHistory"]
    assert [e["query"] for e in theirs] == ["not mine"]

    # The rollup counts every search, signed out included, without who searched.
    async with app.state.runtime.stores.db.session() as session:
        rows = {
            (row.query, row.search_type): (row.count, row.zero_results)
            for row in await session.scalars(select(SearchQueryDailyRow))
        }
    assert rows[("second query", "POST")] == (1, 1)
    assert rows[("signed out", "ALL")] == (1, 1)


async def test_history_keeps_the_last_fifty(app: Any, gql: GraphQLClient) -> None:
    (me,) = await create_users(app, ["me"])
    log = app.state.runtime.stores.search_log
    user = await app.state.runtime.stores.users.by_username("socialink", "me")
    for n in range(HISTORY_LIMIT + 5):
        await log.record("socialink", user.id, f"q{n}", None, "ALL", False, utcnow())
    entries = (await gql(HISTORY, {"limit": 50}, token=me.token)).ok()["searchHistory"]
    assert len(entries) == HISTORY_LIMIT
    assert entries[0]["query"] == f"q{HISTORY_LIMIT + 4}" and entries[-1]["query"] == "q5"


# ── bad input ──────────────────────────────────────────────────────────────────
@pytest.mark.parametrize(
    "variables",
    [
        {"q": "x", "first": 0},
        {"q": "x", "first": 101},
        {"q": "x", "after": "not-a-cursor"},
        {"q": "x", "f": {"types": ["PLANET"]}},
        {"q": "x", "f": {"types": []}},
        {"q": "x", "f": {"near": {"latitude": 91, "longitude": 0, "radiusKm": 1}}},
        {"q": "x", "f": {"near": {"latitude": 0, "longitude": 0, "radiusKm": 0}}},
        {"q": "x", "f": {"minLikes": -1}},
        {"q": "x", "f": {"authorId": "nope"}},
        {"q": "x" * 201},
    ],
    ids=[
        "first_zero",
        "first_too_big",
        "bad_cursor",
        "unknown_type",
        "no_types",
        "bad_latitude",
        "zero_radius",
        "negative_likes",
        "bad_author",
        "long_query",
    ],
)
async def test_bad_input_is_refused(
    app: Any, gql: GraphQLClient, variables: dict[str, Any]
) -> None:
    result = await gql(SEARCH, variables)
    assert result.codes == ["BAD_USER_INPUT"], result.errors


async def test_bad_autocomplete_and_history_input_is_refused(app: Any, gql: GraphQLClient) -> None:
    (me,) = await create_users(app, ["me"])
    assert (await gql(AUTOCOMPLETE, {"p": "a", "limit": 0})).codes == ["BAD_USER_INPUT"]
    assert (await gql(AUTOCOMPLETE, {"p": "a", "types": ["NOPE"]})).codes == ["BAD_USER_INPUT"]
    assert (await gql(HISTORY, {"limit": 51}, token=me.token)).codes == ["BAD_USER_INPUT"]


# ── operators ──────────────────────────────────────────────────────────────────
async def test_metrics_time_searches_and_count_empty_ones(
    app: Any, gql: GraphQLClient, http: Any
) -> None:
    await search(gql, "nothing at all", types=["POST"])
    text = (await http.get("/metrics")).text
    assert 'entativa_search_seconds_count{platform="socialink",type="POST"} 1.0' in text
    assert 'entativa_search_zero_results_total{platform="socialink",type="POST"} 1.0' in text


async def test_search_with_twenty_hits_runs_a_fixed_number_of_statements(
    app: Any, gql: GraphQLClient, sql_counter: list[str]
) -> None:
    people = await create_users(app, [f"poster{n}" for n in range(10)])
    for n in range(20):
        await create_post(gql, people[n % 10], f"harbour view {n}")
    await indexed(app)
    sql_counter.clear()
    found = await search(gql, "harbour", people[0], first=20)
    assert len(found["edges"]) == 20
    statements = [s for s in sql_counter if not s.lstrip().upper().startswith(("BEGIN", "COMMIT"))]
    # The audience, the posts with their authors, the viewer's relationships to
    # them, the rollup upsert, the history insert and its trim: none per hit.
    assert len(statements) == 6, statements


# ── reindex ────────────────────────────────────────────────────────────────────
async def test_reindex_rebuilds_the_index_from_the_database(
    app: Any,
    gql: GraphQLClient,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    (author,) = await create_users(app, ["author"])
    await create_post(gql, author, "lantern festival #lights")
    await indexed(app)
    index = app.state.runtime.stores.search
    # The index loses its documents (a new cluster, a lost disk): search finds nothing.
    from datasources.search.records import SearchType

    posts = nodes(await search(gql, "lantern"))
    await index.delete("socialink", SearchType.POST, [int(_pk(posts[0]["id"]))])
    await index.delete("socialink", SearchType.USER, [int(_pk(author.id))])
    await index.delete("socialink", SearchType.HASHTAG, ["lights"])
    await index.refresh()
    assert nodes(await search(gql, "lantern")) == []

    _environment(settings, monkeypatch)
    from server.cli import main as entativa

    await asyncio.to_thread(entativa, ["search", "reindex"])
    output = capsys.readouterr().out
    assert "[entativa search] post" in output and "swapped in the new index" in output
    assert "100%" in output

    await asyncio.sleep(1.05)  # a serving process follows another's swap within a second
    found = {n["__typename"] for n in nodes(await search(gql, "lantern"))}
    assert found == {"Post"}
    assert {n["__typename"] for n in nodes(await search(gql, "lights"))} == {"Post", "Hashtag"}
    assert [n["username"] for n in nodes(await search(gql, "author", types=["USER"]))] == ["author"]


async def test_searches_keep_answering_while_the_index_is_rebuilt(
    app: Any, gql: GraphQLClient, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    people = await create_users(app, [f"author{n}" for n in range(5)])
    for n in range(30):
        await create_post(gql, people[n % 5], f"origami crane {n}")
    await indexed(app)
    _environment(settings, monkeypatch)
    from server.cli import main as entativa

    rebuild = asyncio.ensure_future(asyncio.to_thread(entativa, ["search", "reindex"]))
    answers = []
    while not rebuild.done():
        answers.append((await search(gql, "origami", first=5))["totalCount"])
    await rebuild
    await asyncio.sleep(1.05)  # the serving process follows the swap
    answers.append((await search(gql, "origami", first=5))["totalCount"])
    assert len(answers) >= 2 and set(answers) == {30}, answers


def _environment(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """The settings of the app under test, as `entativa` commands read them."""
    for name, value in settings.model_dump().items():
        if value is not None and not isinstance(value, list | dict):
            monkeypatch.setenv(f"ENTATIVA_{name.upper()}", str(value))


def _pk(global_id: str) -> str:
    from resolvers.ids import split_id

    parts = split_id(global_id)
    assert parts is not None
    return parts[1]
