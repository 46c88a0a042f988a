"""Hardening: query cost analysis (server/cost.py) and persisted queries
(server/persisted.py: APQ and trusted documents), through real HTTP requests."""

from __future__ import annotations

import hashlib
import json
import shutil
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from graphql import get_introspection_query

from schema.subgraphs import print_subgraph
from schema.supergraph import supergraph
from server import limits
from server.app import create_app
from server.cli import main
from server.settings import Settings
from tests.conftest import GraphQLClient, Result
from tests.services import REDIS_URL, require

Make = Callable[..., GraphQLClient]


@pytest.fixture
async def client_for(settings: Settings) -> AsyncIterator[Make]:
    """`client_for(**setting_changes)`: a client of a fresh app with those settings."""
    made: list[tuple[Any, httpx.AsyncClient]] = []

    def make(**changes: Any) -> GraphQLClient:
        app = create_app(settings.model_copy(update=changes))
        http = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://testserver"
        )
        made.append((app, http))
        return GraphQLClient(http)

    yield make
    for app, http in made:
        await http.aclose()
        await app.state.runtime.close()


# ───────────────────────── cost ─────────────────────────

# 11 fields deep (under the depth limit): pages of posts, their likers, their followers.
NESTED = """query Nested($n: Int) { user(username: "nobody") { posts(first: $n) { edges { node {
  likers(first: $n) { edges { node { followers(first: $n) { edges { node { id } } } } } }
} } } } }"""


def assert_too_costly(result: Result, budget: int) -> int:
    assert result.data is None, "nothing may execute"
    assert result.codes == ["QUERY_TOO_COMPLEX"], result.errors
    extensions = result.errors[0]["extensions"]
    assert extensions["budget"] == budget
    assert extensions["cost"] > budget
    assert f"the budget is {budget}" in result.errors[0]["message"]
    return int(extensions["cost"])


async def test_a_cheap_query_runs(gql: GraphQLClient) -> None:
    assert (await gql("{ platform viewer { username } }")).ok() == {
        "platform": "SOCIALINK",
        "viewer": None,
    }


async def test_deeply_nested_pages_are_refused_with_cost_and_budget(gql: GraphQLClient) -> None:
    query = """{ feed(first: 100) { edges { node { comments(first: 100) { edges { node {
      author { username } } } } likers(first: 100) { edges { node {
      followers(first: 100) { totalCount } } } } } } } }"""
    cost = assert_too_costly(await gql(query), 20_000)
    # feed 10; per post 1 + comments (1 + 100 × (1 + 1 + 1)) + likers (1 + 100 × (1 + 1 + 1))
    assert cost == 10 + 100 * (1 + 1 + (1 + 100 * 3) + (1 + 100 * 3))


async def test_page_sizes_come_from_the_variables(gql: GraphQLClient) -> None:
    small = await gql(NESTED, {"n": 3})
    assert "QUERY_TOO_COMPLEX" not in small.codes, small.errors
    assert small.data == {"user": None}
    assert_too_costly(await gql(NESTED, {"n": 100}), 20_000)
    # No value: the argument's default, 20 each: 17,262.
    assert "QUERY_TOO_COMPLEX" not in (await gql(NESTED)).codes
    # Above the page cap counts as the cap (the resolvers refuse it anyway).
    assert assert_too_costly(await gql(NESTED, {"n": 10_000}), 20_000) == assert_too_costly(
        await gql(NESTED, {"n": 100}), 20_000
    )


async def test_a_text_costs_what_each_requests_variables_say(gql: GraphQLClient) -> None:
    """Costs are kept per query text only when no page size comes from the variables:
    a default-valued `$n`, costed cheap first, is still refused with a large `n`."""
    defaulted = NESTED.replace("($n: Int)", "($n: Int = 3)")
    for _ in range(2):
        assert (await gql(defaulted)).data == {"user": None}
    assert_too_costly(await gql(defaulted, {"n": 100}), 20_000)
    assert (await gql(defaulted, {"n": 2})).data == {"user": None}
    literal = NESTED.replace("query Nested($n: Int)", "query Nested").replace("$n", "100")
    assert assert_too_costly(await gql(literal), 20_000) == assert_too_costly(
        await gql(literal), 20_000
    )


async def test_fragments_and_inline_fragments_count(gql: GraphQLClient) -> None:
    query = """query($n: Int) { user(username: "nobody") { ...Posts } }
      fragment Posts on User { posts(first: $n) { edges { node { ... on Post { ...Likers } } } } }
      fragment Likers on Post { likers(first: $n) { edges { node { ...Followers } } } }
      fragment Followers on User { followers(first: $n) { edges { node { id } } } }"""
    assert_too_costly(await gql(query, {"n": 100}), 20_000)
    assert (await gql(query, {"n": 2})).data == {"user": None}


async def test_budget_comes_from_settings_and_introspection_is_cheap(client_for: Make) -> None:
    gql = client_for(max_query_cost=25)
    assert (await gql(get_introspection_query())).ok()["__schema"]["types"]
    assert (await gql("{ explore(first: 5) { edges { node { id } } } }")).codes != [
        "QUERY_TOO_COMPLEX"
    ]
    assert_too_costly(await gql("{ explore(first: 8) { edges { node { id } } } }"), 25)
    off = client_for(max_query_cost=0)
    assert "QUERY_TOO_COMPLEX" not in (await off(NESTED, {"n": 100})).codes


def test_subgraph_sdl_publishes_the_costs() -> None:
    sdl = print_subgraph("posts")
    assert (
        'extend schema @link(url: "https://specs.apollo.dev/cost/v0.1",'
        ' import: ["@cost", "@listSize"])' in sdl
    )
    feed = next(line for line in sdl.splitlines() if line.strip().startswith("feed("))
    sizes = '@listSize(slicingArguments: ["first"], sizedFields: ["edges"])'
    assert f"@cost(weight: 10) {sizes}" in feed
    mentions = next(line for line in sdl.splitlines() if line.strip().startswith("mentions:"))
    assert "@listSize(assumedSize: 20)" in mentions
    media = next(line for line in sdl.splitlines() if line.strip().startswith("media: [Media!]!"))
    assert "@listSize" not in media  # the default size: the router's list_size setting
    assert "@cost" not in Path("schema.graphql").read_text()


# ───────────────────────── persisted queries ─────────────────────────

QUERY = "query Platform { platform }"


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def persisted(sha256: str) -> dict[str, Any]:
    return {"persistedQuery": {"version": 1, "sha256Hash": sha256}}


async def post(http: httpx.AsyncClient, body: dict[str, Any]) -> Result:
    response = await http.post("/socialink/graphql", json=body)
    return Result(response.status_code, response.json())


async def get(http: httpx.AsyncClient, sha256: str) -> Result:
    params = {"extensions": json.dumps(persisted(sha256)), "operationName": "Platform"}
    headers = {"Accept": "application/json"}  # what Apollo clients send (not GraphiQL)
    response = await http.get("/socialink/graphql", params=params, headers=headers)
    return Result(response.status_code, response.json())


async def test_apq_unknown_hash_then_register_then_hash_alone(http: httpx.AsyncClient) -> None:
    unknown = await post(http, {"extensions": persisted(sha(QUERY))})
    assert (unknown.status, unknown.codes) == (200, ["PERSISTED_QUERY_NOT_FOUND"])
    assert unknown.errors[0]["message"] == "PersistedQueryNotFound"
    assert (await get(http, sha(QUERY))).codes == ["PERSISTED_QUERY_NOT_FOUND"]

    registered = await post(http, {"query": QUERY, "extensions": persisted(sha(QUERY))})
    assert registered.ok() == {"platform": "SOCIALINK"}
    assert (await post(http, {"extensions": persisted(sha(QUERY))})).ok() == {
        "platform": "SOCIALINK"
    }
    by_get = await get(http, sha(QUERY))
    assert (by_get.status, by_get.ok()) == (200, {"platform": "SOCIALINK"})


async def test_apq_hash_mismatch_and_bad_extensions_are_bad_user_input(
    http: httpx.AsyncClient,
) -> None:
    mismatch = await post(http, {"query": QUERY, "extensions": persisted(sha("{ viewer { id } }"))})
    assert mismatch.codes == ["BAD_USER_INPUT"] and mismatch.data is None
    assert "does not match" in mismatch.errors[0]["message"]
    wrong_version = {"persistedQuery": {"version": 2, "sha256Hash": sha(QUERY)}}
    assert (await post(http, {"query": QUERY, "extensions": wrong_version})).codes == [
        "BAD_USER_INPUT"
    ]
    # The mismatched text was not registered under the hash it claimed.
    missing = await post(http, {"extensions": persisted(sha("{ viewer { id } }"))})
    assert missing.codes == ["PERSISTED_QUERY_NOT_FOUND"]


async def test_apq_is_shared_through_the_cache_and_parsed_once(
    client_for: Make, monkeypatch: pytest.MonkeyPatch
) -> None:
    parses = 0
    real_parse = limits.parse

    def counting_parse(*args: Any, **kwargs: Any) -> Any:
        nonlocal parses
        parses += 1
        return real_parse(*args, **kwargs)

    monkeypatch.setattr(limits, "parse", counting_parse)
    gql = client_for()
    body = {"query": QUERY, "extensions": persisted(sha(QUERY))}
    assert (await post(gql.http, body)).ok()
    for _ in range(3):
        assert (await post(gql.http, {"extensions": persisted(sha(QUERY))})).ok()
    assert parses == 1


async def test_apq_hashes_reach_every_replica_through_redis(client_for: Make) -> None:
    require("Redis", "127.0.0.1", 6379)
    one, other = client_for(redis_url=REDIS_URL), client_for(redis_url=REDIS_URL)
    text = f"query Unique{uuid.uuid4().hex} {{ platform }}"  # no entry from an earlier run
    assert (await post(other.http, {"extensions": persisted(sha(text))})).codes == [
        "PERSISTED_QUERY_NOT_FOUND"
    ]
    assert (await post(one.http, {"query": text, "extensions": persisted(sha(text))})).ok()
    assert (await post(other.http, {"extensions": persisted(sha(text))})).ok() == {
        "platform": "SOCIALINK"
    }


async def test_apq_can_be_switched_off(client_for: Make) -> None:
    gql = client_for(persisted_queries=False)
    refused = await post(gql.http, {"extensions": persisted(sha(QUERY))})
    assert refused.codes == ["PERSISTED_QUERY_NOT_SUPPORTED"]
    assert (await gql(QUERY)).ok() == {"platform": "SOCIALINK"}


async def test_trusted_documents_run_only_registered_documents(
    client_for: Make, settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    documents = tmp_path / "documents"
    (documents / "nested").mkdir(parents=True)
    (documents / "platform.graphql").write_text(QUERY)
    viewer = "query Viewer { viewer { username } }"
    (documents / "nested" / "viewer.graphql").write_text(viewer)
    (documents / "notes.txt").write_text("{ not a document")
    monkeypatch.setenv("ENTATIVA_DATA_DIR", str(settings.data_dir))
    main(["documents", "register", str(documents)])
    stored = json.loads((settings.data_dir / "trusted_documents.json").read_text())
    assert stored == {sha(QUERY): QUERY, sha(viewer): viewer}

    gql = client_for(trusted_documents=True)
    assert (await post(gql.http, {"extensions": persisted(sha(QUERY))})).ok() == {
        "platform": "SOCIALINK"
    }
    assert (await gql(viewer)).ok() == {"viewer": None}  # the identical text runs too
    other = await gql("{ platform }")
    assert (other.data, other.codes) == (None, ["PERSISTED_QUERY_NOT_IN_LIST"])
    unknown = await post(gql.http, {"extensions": persisted(sha("{ platform }"))})
    assert unknown.codes == ["PERSISTED_QUERY_NOT_FOUND"]
    # APQ cannot register anything in this mode.
    body = {"query": "{ platform }", "extensions": persisted(sha("{ platform }"))}
    assert (await post(gql.http, body)).codes == ["PERSISTED_QUERY_NOT_IN_LIST"]


def test_registering_an_invalid_document_fails_and_writes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "bad.graphql").write_text("{ nope }")
    monkeypatch.setenv("ENTATIVA_DATA_DIR", str(tmp_path / "data"))
    with pytest.raises(SystemExit, match="nope"):
        main(["documents", "register", str(tmp_path / "docs")])
    assert not (tmp_path / "data" / "trusted_documents.json").exists()


# ───────────────────────── websockets ─────────────────────────

EXPENSIVE_SUBSCRIPTION = """subscription { commentAdded(postId: "UG9zdDox") { author {
  followers(first: 100) { edges { node { followers(first: 100) { edges { node { id } } } } } }
} } }"""


@pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`")
def test_websockets_get_cost_and_trusted_documents(tmp_path: Path, sqlite_template: Path) -> None:
    from starlette.testclient import TestClient

    from server.persisted import TRUSTED_FILE, register_directory

    shutil.copy(sqlite_template, tmp_path / "e.db")
    settings = Settings(
        data_dir=tmp_path / "data",
        database_url=f"sqlite+aiosqlite:///{tmp_path}/e.db",
        secret_key="k" * 40,
        story_sweep_seconds=0,
        trusted_documents=True,
    )
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "platform.graphql").write_text(QUERY)
    (tmp_path / "docs" / "expensive.graphql").write_text(EXPENSIVE_SUBSCRIPTION)
    register_directory(settings.data_dir / TRUSTED_FILE, tmp_path / "docs", supergraph()._schema)
    with (
        TestClient(create_app(settings)) as client,
        client.websocket_connect("/graphql", subprotocols=["graphql-transport-ws"]) as ws,
    ):
        ws.send_json({"type": "connection_init"})
        assert ws.receive_json()["type"] == "connection_ack"
        by_hash = {"extensions": persisted(sha(QUERY))}
        ws.send_json({"type": "subscribe", "id": "1", "payload": by_hash})
        assert ws.receive_json()["payload"] == {"data": {"platform": "SOCIALINK"}}
        assert ws.receive_json()["type"] == "complete"
        ws.send_json({"type": "subscribe", "id": "2", "payload": {"query": "{ platform }"}})
        refused = ws.receive_json()
        ws.send_json({"type": "subscribe", "id": "3", "payload": {"query": EXPENSIVE_SUBSCRIPTION}})
        too_costly = ws.receive_json()
    assert refused["type"] == "error"
    assert refused["payload"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_IN_LIST"
    assert too_costly["type"] == "error"
    assert too_costly["payload"][0]["extensions"]["code"] == "QUERY_TOO_COMPLEX"
    assert too_costly["payload"][0]["extensions"]["budget"] == 20_000
