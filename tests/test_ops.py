"""Operations: error masking, query limits, caches, introspection switch, health, metrics,
request ids, and the GraphiQL page as a browser receives it (the browser run itself is in
tests/test_graphiql_browser.py)."""
from __future__ import annotations

import json
import logging
import socket
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import strawberry
from graphql import get_introspection_query
from prometheus_client.parser import text_string_to_metric_families

from resolvers.errors import Forbidden
from server import graphiql, limits
from server.app import create_app
from server.logs import JsonFormatter
from server.settings import Settings
from tests.conftest import GraphQLClient, Result
from tests.services import services_required

Make = Callable[..., GraphQLClient]


@pytest.fixture
async def client_for(settings: Settings) -> AsyncIterator[Make]:
    """`client_for(schema=None, **setting_changes)`: a client of a fresh app built so."""
    made: list[tuple[Any, httpx.AsyncClient]] = []

    def make(schema: strawberry.Schema | None = None, **changes: Any) -> GraphQLClient:
        app = create_app(settings.model_copy(update=changes), schema=schema)
        http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver")
        made.append((app, http))
        return GraphQLClient(http)

    yield make
    for app, http in made:
        await http.aclose()
        await app.state.runtime.close()


def sign_up_mutation(username: str, selection: str = "user { id }", alias: str = "") -> str:
    return (
        f'{alias}signUp(input: {{username: "{username}", email: "{username}@example.com",'
        f' password: "correct horse battery"}}) {{ {selection} }}'
    )


async def user_exists(gql: GraphQLClient, username: str) -> bool:
    result = await gql("query($u: String!) { user(username: $u) { id } }", {"u": username})
    assert set(result.codes) <= {"NOT_FOUND"}, result.errors
    return result.data["user"] is not None


def nested(depth_pairs: int) -> str:
    """`avatar { owner { … id } }`: two levels per pair (User.avatar -> Media.owner -> User)."""
    return "avatar { owner { " * depth_pairs + "id" + " } }" * depth_pairs


# ───────────────────────── error masking ─────────────────────────

SECRET = "password=hunter2 at 10.0.0.5"


@strawberry.type
class BrokenQuery:
    @strawberry.field
    def platform(self) -> str:
        return "fine"

    @strawberry.field
    def boom(self) -> str | None:
        raise RuntimeError(f"connection failed: {SECRET}")

    @strawberry.field
    def denied(self) -> str | None:
        raise Forbidden("only the author may see this")


@pytest.mark.parametrize("with_extensions", [True, False], ids=["ops-extensions", "bare-schema"])
async def test_internal_errors_are_masked_and_logged_with_the_request_id(
    client_for: Make, settings: Settings, caplog: pytest.LogCaptureFixture, with_extensions: bool
) -> None:
    extensions = limits.extensions(settings) if with_extensions else []
    gql = client_for(schema=strawberry.Schema(BrokenQuery, extensions=extensions))
    caplog.set_level(logging.INFO, logger="entativa")

    query = "query Broken { platform boom denied }"
    response = await gql.http.post("/graphql", json={"query": query})

    body = response.json()
    assert body["data"] == {"platform": "fine", "boom": None, "denied": None}
    errors = {tuple(e["path"]): e for e in body["errors"]}
    request_id = response.headers["x-request-id"]
    assert errors[("boom",)]["message"] == "Internal server error"
    assert errors[("boom",)]["extensions"] == {
        "code": "INTERNAL_SERVER_ERROR",
        "requestId": request_id,
    }
    assert errors[("denied",)]["message"] == "only the author may see this"
    assert errors[("denied",)]["extensions"] == {"code": "FORBIDDEN"}
    assert "hunter2" not in response.text

    logged = [r for r in caplog.records if r.name == "entativa.errors"]
    assert len(logged) == 1, "each internal error is logged once"
    line = json.loads(JsonFormatter().format(logged[0]))
    assert line["level"] == "ERROR"
    assert line["request_id"] == request_id
    assert line["platform"] == "socialink"
    assert line["path"] == "boom"
    assert "RuntimeError" in line["traceback"] and SECRET in line["traceback"]


@pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`")
def test_internal_errors_are_masked_over_websockets_too(tmp_path: Path) -> None:
    from starlette.testclient import TestClient

    settings = Settings(
        data_dir=tmp_path, database_url=f"sqlite+aiosqlite:///{tmp_path}/e.db", secret_key="k" * 40
    )
    schema = strawberry.Schema(BrokenQuery, extensions=limits.extensions(settings))
    headers = {"X-Request-Id": "ws-trace-1"}
    with (
        TestClient(create_app(settings, schema=schema)) as client,
        client.websocket_connect(
            "/graphql", subprotocols=["graphql-transport-ws"], headers=headers
        ) as ws,
    ):
        ws.send_json({"type": "connection_init"})
        assert ws.receive_json()["type"] == "connection_ack"
        ws.send_json({"type": "subscribe", "id": "1", "payload": {"query": "{ boom denied }"}})
        errors = ws.receive_json()["payload"]["errors"]
        huge = "{" + " x" * 2001 + "}"
        ws.send_json({"type": "subscribe", "id": "2", "payload": {"query": huge}})
        assert ws.receive_json()["type"] == "complete"
        too_big = ws.receive_json()
    assert [e["extensions"] for e in errors] == [
        {"code": "INTERNAL_SERVER_ERROR", "requestId": "ws-trace-1"},
        {"code": "FORBIDDEN"},
    ]
    assert too_big["type"] == "error"
    assert too_big["payload"][0]["extensions"] == {"code": "QUERY_TOO_COMPLEX", "limit": 2000}


async def test_parse_and_validation_errors_get_bad_user_input(gql: GraphQLClient) -> None:
    unknown_field = await gql("{ platform nope }")
    assert unknown_field.codes == ["BAD_USER_INPUT"]
    assert "nope" in unknown_field.errors[0]["message"]
    syntax = await gql("{ platform ")
    assert syntax.codes == ["BAD_USER_INPUT"]
    assert "Syntax Error" in syntax.errors[0]["message"]
    bad_variable = await gql("query($u: String!) { user(username: $u) { id } }", {"u": 42})
    assert bad_variable.codes == ["BAD_USER_INPUT"]


# ───────────────────────── limits ─────────────────────────


def assert_too_complex(result: Result, limit: int, words: str) -> None:
    assert result.data is None, "nothing may execute"
    assert result.codes == ["QUERY_TOO_COMPLEX"], result.errors
    assert result.errors[0]["extensions"]["limit"] == limit
    assert words in result.errors[0]["message"]


async def test_too_deep_is_rejected_before_anything_runs(gql: GraphQLClient) -> None:
    # signUp, user, then 5 × (avatar, owner), then id: 13 fields deep; the default limit is 12.
    deep = "mutation { " + sign_up_mutation("deep", f"user {{ {nested(5)} }}") + " }"
    assert_too_complex(await gql(deep), 12, "13 fields deep")
    assert not await user_exists(gql, "deep")

    shallow = "mutation { " + sign_up_mutation("shallow", f"user {{ {nested(4)} }}") + " }"
    assert (await gql(shallow)).ok()["signUp"]["user"] == {"avatar": None}
    assert await user_exists(gql, "shallow")


async def test_depth_follows_fragments(gql: GraphQLClient) -> None:
    query = """
      mutation { signUp(input: {username: "frag", email: "frag@example.com",
                                password: "correct horse battery"}) { user { ...A } } }
      fragment A on User { avatar { owner { ...B } } }
      fragment B on User { avatar { owner { ...C } } }
      fragment C on User { avatar { owner { ...D } } }
      fragment D on User { avatar { owner { ...E } } }
      fragment E on User { avatar { owner { id } } }
    """
    assert_too_complex(await gql(query), 12, "13 fields deep")
    assert not await user_exists(gql, "frag")


async def test_introspection_is_not_limited_by_depth(client_for: Make) -> None:
    gql = client_for(max_query_depth=2)
    result = await gql(get_introspection_query())
    assert "User" in {t["name"] for t in result.ok()["__schema"]["types"]}
    assert (await gql("{ viewer { username } }")).ok() == {"viewer": None}
    assert_too_complex(await gql("{ viewer { avatar { id } } }"), 2, "3 fields deep")


async def test_too_many_aliases_is_rejected_before_anything_runs(gql: GraphQLClient) -> None:
    thirty = "{ " + " ".join(f"a{i}: platform" for i in range(30)) + " }"
    assert len((await gql(thirty)).ok()) == 30
    thirty_one = "{ " + " ".join(f"a{i}: platform" for i in range(31)) + " }"
    assert_too_complex(await gql(thirty_one), 30, "31 aliases")

    in_introspection = " ".join(f"t{i}: types {{ name }}" for i in range(31))
    assert_too_complex(await gql(f"{{ __schema {{ {in_introspection} }} }}"), 30, "31 aliases")

    signups = " ".join(sign_up_mutation(f"alias{i}", alias=f"a{i}: ") for i in range(31))
    assert_too_complex(await gql(f"mutation {{ {signups} }}"), 30, "31 aliases")
    assert not await user_exists(gql, "alias0")


async def test_aliases_in_fragments_count_once_per_spread(gql: GraphQLClient) -> None:
    fields = " ".join(f"p{i}: platform" for i in range(16))
    query = f"{{ ...F x: __typename ...F }} fragment F on Query {{ {fields} }}"
    assert_too_complex(await gql(query), 30, "33 aliases")

    # Each fragment spreads the next twice: 2^24 aliases once expanded, measured at once.
    chain = " ".join(f"fragment F{i} on Query {{ ...F{i + 1} ...F{i + 1} }}" for i in range(24))
    doubling = f"{{ ...F0 }} {chain} fragment F24 on Query {{ p: platform }}"
    assert_too_complex(await gql(doubling), 30, f"{2**24} aliases")


async def test_too_many_tokens_is_rejected_before_anything_runs(gql: GraphQLClient) -> None:
    huge = "mutation { " + sign_up_mutation("tokens", "user { " + "id " * 2000 + "}") + " }"
    assert_too_complex(await gql(huge), 2000, "more than 2000 tokens")
    assert not await user_exists(gql, "tokens")


async def test_limits_come_from_settings(client_for: Make) -> None:
    gql = client_for(max_aliases=2, max_query_tokens=20)
    assert (await gql("{ a: platform b: platform }")).ok() == {"a": "SOCIALINK", "b": "SOCIALINK"}
    assert_too_complex(await gql("{ a: platform b: platform c: platform }"), 2, "3 aliases")
    assert_too_complex(await gql("{ " + "platform " * 25 + "}"), 20, "more than 20 tokens")


async def test_limits_apply_to_a_subgraph_served_alone(settings: Settings) -> None:
    app = create_app(settings.model_copy(update={"max_aliases": 3}), subgraph="users")
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        gql = GraphQLClient(http)
        assert (await gql("{ a: __typename b: __typename }")).ok() == {"a": "Query", "b": "Query"}
        four = await gql("{ a: __typename b: __typename c: __typename d: __typename }")
    await app.state.runtime.close()
    assert_too_complex(four, 3, "4 aliases")


async def test_parse_and_validation_are_cached_per_query_text(
    client_for: Make, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = {"parse": 0, "validate": 0}
    real_parse, real_validate = limits.parse, limits.validate_document

    def counting_parse(*args: Any, **kwargs: Any) -> Any:
        calls["parse"] += 1
        return real_parse(*args, **kwargs)

    def counting_validate(*args: Any, **kwargs: Any) -> Any:
        calls["validate"] += 1
        return real_validate(*args, **kwargs)

    monkeypatch.setattr(limits, "parse", counting_parse)
    monkeypatch.setattr(limits, "validate_document", counting_validate)
    gql = client_for()
    for platform in ("socialink", "vignette", "socialink"):
        assert (await gql("query Same { platform }", platform=platform)).ok()
    assert calls == {"parse": 1, "validate": 1}
    assert (await gql("query Other { platform }")).ok()
    assert calls == {"parse": 2, "validate": 2}


async def test_introspection_can_be_switched_off(client_for: Make) -> None:
    closed, open_ = client_for(introspection=False), client_for()
    schema_query = "{ __schema { types { name } } }"
    refused = await closed(schema_query)
    assert refused.data is None
    assert refused.codes == ["BAD_USER_INPUT"]
    assert "introspection is disabled" in refused.errors[0]["message"]
    assert (await closed('{ __type(name: "User") { name } }')).codes == ["BAD_USER_INPUT"]
    assert (await closed("{ __typename platform }")).ok() == {
        "__typename": "Query",
        "platform": "SOCIALINK",
    }
    # Each app has its own caches: the other app's answer for the same text is not reused.
    assert (await open_(schema_query)).ok()["__schema"]["types"]


# ───────────────────────── health, readiness, metrics ─────────────────────────


async def test_healthz_says_the_process_is_up(http: httpx.AsyncClient) -> None:
    response = await http.get("/healthz")
    assert (response.status_code, response.json()) == (200, {"status": "ok"})


async def test_readyz_checks_every_store(http: httpx.AsyncClient) -> None:
    response = await http.get("/readyz")
    body = response.json()
    assert response.status_code == 200, body
    assert body["status"] == "ok" and body["failed"] == []
    assert body["checks"]["db"] == "ok"


def closed_port() -> int:
    """A local port nothing listens on (bound and released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_readyz_is_503_when_the_database_is_unreachable(client_for: Make) -> None:
    gql = client_for(database_url=f"postgresql+asyncpg://postgres@127.0.0.1:{closed_port()}/none")
    assert (await gql.http.get("/healthz")).status_code == 200
    response = await gql.http.get("/readyz")
    body = response.json()
    assert response.status_code == 503
    assert body["status"] == "unavailable"
    assert body["failed"] == ["db"]
    assert body["checks"]["db"].startswith("unavailable")


async def test_readyz_is_503_when_redis_is_unreachable(client_for: Make) -> None:
    gql = client_for(redis_url=f"redis://127.0.0.1:{closed_port()}/0")
    response = await gql.http.get("/readyz")
    body = response.json()
    assert response.status_code == 503
    assert body["failed"] == ["cache", "broker"]  # both use Redis
    assert body["checks"]["db"] == "ok"


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


async def test_metrics_count_requests_and_errors(gql: GraphQLClient) -> None:
    assert (await gql("query Platform { platform }")).ok()
    assert (await gql("query Platform { platform }", platform="vignette")).ok()
    assert (await gql("query Broken { nope }")).codes == ["BAD_USER_INPUT"]
    assert (await gql("{ viewer { id } }", token="not-a-token")).codes == ["UNAUTHENTICATED"]

    response = await gql.http.get("/metrics")
    assert response.headers["content-type"].startswith("text/plain")
    seen = samples(response.text)

    def value(name: str, **labels: str) -> float:
        return seen.get((name, frozenset(labels.items())), 0.0)

    requests = "entativa_graphql_requests_total"
    assert value(requests, platform="socialink", operation="Platform") == 1
    assert value(requests, platform="vignette", operation="Platform") == 1
    assert value(requests, platform="socialink", operation="Broken") == 1
    assert value("entativa_graphql_errors_total", code="BAD_USER_INPUT") == 1
    assert value("entativa_graphql_errors_total", code="UNAUTHENTICATED") == 1
    assert value("entativa_graphql_request_seconds_count", platform="socialink") == 3
    assert value("entativa_graphql_request_seconds_count", platform="vignette") == 1


async def test_each_app_has_its_own_metrics(client_for: Make) -> None:
    first, second = client_for(), client_for()
    assert (await first("query Platform { platform }")).ok()
    seen = samples((await second.http.get("/metrics")).text)
    assert not any(name == "entativa_graphql_requests_total" for name, _ in seen)


# ───────────────────────── request ids and the request log ─────────────────────────


async def test_every_response_carries_a_request_id(http: httpx.AsyncClient) -> None:
    first = (await http.get("/healthz")).headers["x-request-id"]
    second = (await http.get("/healthz")).headers["x-request-id"]
    assert len(first) == 32 and first != second


async def test_a_sane_incoming_request_id_is_kept_and_logged(
    http: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="entativa")
    response = await http.post(
        "/vignette/graphql",
        json={"query": "query Who { viewer { id } platform }"},
        headers={"X-Request-Id": "trace-abc.123"},
    )
    assert response.headers["x-request-id"] == "trace-abc.123"
    [record] = [r for r in caplog.records if r.name == "entativa.requests"]
    line = json.loads(JsonFormatter().format(record))
    assert line["message"] == "graphql request"
    assert line["request_id"] == "trace-abc.123"
    assert (line["platform"], line["operation"], line["status"]) == ("vignette", "Who", 200)
    assert isinstance(line["duration_ms"], float) and line["duration_ms"] >= 0
    assert line["time"].endswith("+00:00") and line["level"] == "INFO"


@pytest.mark.parametrize("incoming", ["has space", "x" * 200, "<script>", ""])
async def test_an_insane_incoming_request_id_is_replaced(
    http: httpx.AsyncClient, incoming: str
) -> None:
    response = await http.get("/healthz", headers={"X-Request-Id": incoming})
    assert response.headers["x-request-id"] != incoming
    assert len(response.headers["x-request-id"]) == 32


# ───────────────────────── GraphiQL page ─────────────────────────

BROWSER = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}


def require_local_assets() -> None:
    if graphiql.local_assets_present():
        return
    message = "GraphiQL assets missing: run `npm ci` in server/graphiql (dev.py does it)"
    if services_required():
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


def page_config(html: str) -> dict[str, Any]:
    start = html.index('type="application/json">') + len('type="application/json">')
    return json.loads(html[start : html.index("</script>", start)])  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("path", "platform"),
    [
        ("/graphql", "Socialink"),
        ("/socialink/graphql", "Socialink"),
        ("/vignette/graphql", "Vignette"),
    ],
)
async def test_browsers_get_graphiql_with_local_assets(
    http: httpx.AsyncClient, path: str, platform: str
) -> None:
    require_local_assets()
    response = await http.get(path, headers=BROWSER)
    assert response.status_code == 200
    html = response.text
    assert f"Entativa Graph · {platform}" in html
    assert "unpkg" not in html and "jsdelivr" not in html
    config = page_config(html)
    assert config["endpoint"] == path
    assert "platform" in config["defaultQuery"] and "signIn" in config["defaultQuery"]
    for name in ("react.js", "react-dom.js", "graphiql.js", "graphiql.css"):
        assert f"/graphiql/static/{name}" in html
        asset = await http.get(f"/graphiql/static/{name}")
        assert asset.status_code == 200 and len(asset.content) > 1000
    assert (await http.get("/graphiql/static/package.json")).status_code == 404


async def test_graphiql_falls_back_to_the_cdn_without_node_modules(
    http: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    monkeypatch.setattr(graphiql, "NODE_MODULES", tmp_path / "missing")
    html = (await http.get("/graphql", headers=BROWSER)).text
    versions = graphiql.locked_versions()
    assert versions["graphiql"].startswith("3.") and versions["react"].startswith("18.")
    assert f"https://unpkg.com/graphiql@{versions['graphiql']}/graphiql.min.js" in html
    assert f"https://unpkg.com/react@{versions['react']}/umd/react.production.min.js" in html
    assert (await http.get("/graphiql/static/graphiql.js")).status_code == 404


async def test_no_ide_when_graphiql_is_off(client_for: Make) -> None:
    gql = client_for(graphiql=False)
    page = await gql.http.get("/graphql", headers=BROWSER)
    assert page.status_code == 404 and "GraphiQL" not in page.text
    assert (await gql.http.get("/graphiql/static/graphiql.js")).status_code == 404
    assert (await gql("{ platform }")).ok() == {"platform": "SOCIALINK"}
