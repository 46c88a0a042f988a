"""HTTP hygiene (server/hygiene.py): security headers, CORS from settings, request
body caps, and what the `production` environment switches off."""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import pytest
import strawberry
from graphql import get_introspection_query
from sqlalchemy.exc import ProgrammingError

from server import limits
from server.app import create_app
from server.settings import Settings

Make = Callable[..., httpx.AsyncClient]
ORIGIN = "https://app.example.com"
HTML = {"Accept": "text/html"}
JSON = "application/json"
PLATFORM = {"query": "{ platform }"}


@pytest.fixture
async def client_for(settings: Settings) -> AsyncIterator[Make]:
    """`client_for(schema=None, base=None, **setting_changes)`: an HTTP client of an app
    built so (`base` instead of the test's settings)."""
    made: list[tuple[Any, httpx.AsyncClient]] = []

    def make(
        schema: strawberry.Schema | None = None, base: Settings | None = None, **changes: Any
    ) -> httpx.AsyncClient:
        app = create_app((base or settings).model_copy(update=changes), schema=schema)
        http = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://testserver"
        )
        made.append((app, http))
        return http

    yield make
    for app, http in made:
        await http.aclose()
        await app.state.runtime.close()


def assert_secure(response: httpx.Response) -> None:
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert response.headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]


# ───────────────────────── security headers ─────────────────────────


async def test_every_response_carries_the_security_headers(http: httpx.AsyncClient) -> None:
    graphql = await http.post("/graphql", json={"query": "{ platform }"})
    assert graphql.status_code == 200
    for response in (
        graphql,
        await http.get("/healthz"),
        await http.get("/no/such/path"),
        await http.post("/graphql", content=b"{not json", headers={"content-type": JSON}),
    ):
        assert_secure(response)
        assert response.headers["content-security-policy"].startswith("default-src 'none'")
    assert "strict-transport-security" not in graphql.headers  # development: no HSTS


async def test_graphiql_page_may_load_its_own_assets_and_script_only(
    http: httpx.AsyncClient,
) -> None:
    page = await http.get("/socialink/graphql", headers=HTML)
    assert page.status_code == 200 and "GraphiQL" in page.text
    assert_secure(page)
    policy = dict(
        part.strip().split(" ", 1) for part in page.headers["content-security-policy"].split(";")
    )
    assert policy["default-src"] == "'none'"
    assert policy["connect-src"] == "'self'"
    (inline,) = re.findall(r"<script>(.*?)</script>", page.text, re.DOTALL)
    digest = base64.b64encode(hashlib.sha256(inline.encode()).digest()).decode()
    assert f"'sha256-{digest}'" in policy["script-src"].split()
    assert "'unsafe-inline'" not in policy["script-src"]
    assert "'self'" in policy["script-src"].split()


# ───────────────────────── CORS ─────────────────────────


def preflight(origin: str) -> dict[str, str]:
    return {
        "Origin": origin,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type",
    }


async def test_cors_allows_the_configured_origins_only(client_for: Make) -> None:
    http = client_for(cors_origins=[ORIGIN])
    allowed = await http.options("/graphql", headers=preflight(ORIGIN))
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == ORIGIN
    assert "POST" in allowed.headers["access-control-allow-methods"]
    assert "authorization" in allowed.headers["access-control-allow-headers"].lower()
    assert_secure(allowed)

    refused = await http.options("/graphql", headers=preflight("https://evil.example"))
    assert refused.status_code == 400
    assert "access-control-allow-origin" not in refused.headers

    response = await http.post("/graphql", json=PLATFORM, headers={"Origin": ORIGIN})
    assert response.headers["access-control-allow-origin"] == ORIGIN
    assert "x-request-id" in response.headers["access-control-expose-headers"].lower()


async def test_no_cors_without_configured_origins(http: httpx.AsyncClient) -> None:
    response = await http.post("/graphql", json=PLATFORM, headers={"Origin": ORIGIN})
    assert response.status_code == 200
    assert "access-control-allow-origin" not in response.headers
    preflighted = await http.options("/graphql", headers=preflight(ORIGIN))
    assert "access-control-allow-origin" not in preflighted.headers


# ───────────────────────── body size ─────────────────────────


def assert_too_large(response: httpx.Response, limit: int) -> None:
    assert response.status_code == 413
    assert response.json() == {
        "data": None,
        "errors": [
            {
                "message": f"the request body is over {limit} bytes",
                "extensions": {"code": "PAYLOAD_TOO_LARGE", "limitBytes": limit},
            }
        ],
    }
    assert_secure(response)


async def test_a_json_body_over_the_cap_is_refused_with_413(client_for: Make) -> None:
    http = client_for(max_request_bytes=2000)
    query = "{ platform }"  # unknown variables are ignored
    fits = await http.post("/graphql", json={"query": query, "variables": {"bio": "x" * 1500}})
    assert fits.json() == {"data": {"platform": "SOCIALINK"}}
    big = {"query": query, "variables": {"bio": "x" * 5000}}
    assert_too_large(await http.post("/graphql", json=big), 2000)

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted as it comes
        yield b'{"query": "{ platform }", "variables": {"bio": "'
        for _ in range(10):
            yield b"x" * 500
        yield b'"}}'

    chunked = await http.post("/graphql", content=chunks(), headers={"content-type": JSON})
    assert "content-length" not in chunked.request.headers
    assert_too_large(chunked, 2000)


async def test_uploads_are_capped_by_the_largest_media_cap(client_for: Make) -> None:
    http = client_for(
        max_request_bytes=1000, max_image_bytes=3000, max_video_bytes=5000, max_audio_bytes=100
    )
    operations = (
        '{"query": "mutation($f: Upload!) { uploadMedia(file: $f) { id } }",'
        ' "variables": {"f": null}}'
    )
    files = {"0": ("big.bin", b"\0" * 7000, "application/octet-stream")}
    data = {"operations": operations, "map": '{"0": ["variables.f"]}'}
    response = await http.post("/graphql", data=data, files=files)
    assert_too_large(response, 6000)

    # No Content-Length: cut off once 6000 bytes have come.
    body = (
        b'--B\r\nContent-Disposition: form-data; name="operations"\r\n\r\n'
        + operations.encode()
        + b'\r\n--B\r\nContent-Disposition: form-data; name="map"\r\n\r\n{"0": ["variables.f"]}'
        + b'\r\n--B\r\nContent-Disposition: form-data; name="0"; filename="big.bin"\r\n'
        + b"Content-Type: application/octet-stream\r\n\r\n"
        + b"\0" * 9000
        + b"\r\n--B--\r\n"
    )

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(body), 1000):
            yield body[start : start + 1000]

    multipart = {"content-type": "multipart/form-data; boundary=B"}
    streamed = await http.post("/graphql", content=chunks(), headers=multipart)
    assert "content-length" not in streamed.request.headers
    assert_too_large(streamed, 6000)


# ───────────────────────── production ─────────────────────────


@strawberry.type
class BrokenQuery:
    @strawberry.field
    def platform(self) -> str:
        return "fine"

    @strawberry.field
    def broken_sql(self) -> str | None:
        raise ProgrammingError(
            "SELECT password_hash FROM users WHERE id = $1",
            (1,),
            Exception('relation "users" does not exist'),
        )


@pytest.fixture
def production(settings: Settings) -> Iterator[Settings]:
    # Validated anew: model_copy(update=...) would skip the production switches.
    yield Settings(**{**settings.model_dump(), "environment": "production"})


async def test_production_turns_off_graphiql_and_introspection(
    client_for: Make, production: Settings
) -> None:
    assert not production.graphiql and not production.introspection
    http = client_for(base=production)
    page = await http.get("/graphql", headers=HTML)
    assert "GraphiQL" not in page.text and page.status_code != 200
    assert (await http.get("/graphiql/static/graphiql.js")).status_code == 404
    introspection = (await http.post("/graphql", json={"query": get_introspection_query()})).json()
    assert introspection["data"] is None
    assert [e["extensions"]["code"] for e in introspection["errors"]] == ["BAD_USER_INPUT"]
    assert "introspection is disabled" in introspection["errors"][0]["message"]
    # Queries still work; responses say HTTPS only from now on.
    response = await http.post("/graphql", json={"query": "{ platform __typename }"})
    assert response.json()["data"] == {"platform": "SOCIALINK", "__typename": "Query"}
    assert response.headers["strict-transport-security"].startswith("max-age=")


async def test_production_errors_carry_no_traceback_or_sql(
    client_for: Make, production: Settings
) -> None:
    schema = strawberry.Schema(BrokenQuery, extensions=limits.extensions(production))
    http = client_for(schema=schema, base=production)
    response = await http.post("/graphql", json={"query": "{ platform brokenSql }"})
    body = response.json()
    assert body["data"] == {"platform": "fine", "brokenSql": None}
    (error,) = body["errors"]
    assert error["message"] == "Internal server error"
    assert error["extensions"] == {
        "code": "INTERNAL_SERVER_ERROR",
        "requestId": response.headers["x-request-id"],
    }
    for leak in ("SELECT", "password_hash", "relation", "Traceback", "ProgrammingError", ".py"):
        assert leak not in response.text
    # A malformed query is the client's mistake: told what is wrong, nothing more.
    malformed = await http.post("/graphql", json={"query": "{ platform("})
    assert [e["extensions"]["code"] for e in malformed.json()["errors"]] == ["BAD_USER_INPUT"]
    assert "Traceback" not in malformed.text and ".py" not in malformed.text
