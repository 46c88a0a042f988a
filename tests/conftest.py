"""Fixtures: a fresh app per test on SQLite and on PostgreSQL, and a GraphQL client.

Every test that takes `gql` (or `app`) runs once per relational backend. The
databases are migrated with Alembic once per session; each test then starts
from empty tables (a copy of the migrated SQLite file; TRUNCATE on PostgreSQL).
"""
from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import create_async_engine

from datasources.migrate import upgrade
from datasources.tables import metadata
from server.app import create_app
from server.settings import Settings
from tests.services import POSTGRES_URL, require, reset_postgres

BACKENDS = ["sqlite", "postgresql"]


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "entativa.db"
    asyncio.run(upgrade(f"sqlite+aiosqlite:///{path}"))
    return path


_postgres_ready = False


async def _prepare_postgres() -> None:
    await reset_postgres(POSTGRES_URL)
    await upgrade(POSTGRES_URL)


async def _truncate_postgres() -> None:
    engine = create_async_engine(POSTGRES_URL)
    names = ", ".join(f'"{table.name}"' for table in metadata.sorted_tables)
    async with engine.begin() as conn:
        await conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    await engine.dispose()


@pytest.fixture(params=BACKENDS)
async def database_url(
    request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path
) -> str:
    global _postgres_ready
    if request.param == "sqlite":
        path = tmp_path / "entativa.db"
        shutil.copy(sqlite_template, path)
        return f"sqlite+aiosqlite:///{path}"
    require("PostgreSQL", "127.0.0.1", 5432)
    if not _postgres_ready:
        await _prepare_postgres()
        _postgres_ready = True
    await _truncate_postgres()
    return POSTGRES_URL


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        database_url=database_url,
        secret_key="test-secret-key-that-is-long-enough-for-hs256",
        media_dir=tmp_path / "media",
        story_sweep_seconds=0,  # tests sweep when they choose (resolvers/stories/sweeper.py)
        messaging_sweep_seconds=0,  # likewise (resolvers/messaging/sweeper.py)
    )


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[Any]:
    application = create_app(settings)
    # Run the lifespan as a server does: the outbox relay and consumers start with it.
    async with application.router.lifespan_context(application):
        yield application
    await application.state.runtime.close()


@pytest.fixture
async def http(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


@dataclass
class Result:
    status: int
    body: dict[str, Any]

    @property
    def data(self) -> Any:
        return self.body.get("data")

    @property
    def errors(self) -> list[dict[str, Any]]:
        return self.body.get("errors") or []

    @property
    def codes(self) -> list[str]:
        return [e.get("extensions", {}).get("code") for e in self.errors]

    def ok(self) -> Any:
        assert not self.errors, self.errors
        return self.data


class GraphQLClient:
    """Posts operations the way a frontend does; `token` and `platform` per call."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http

    async def __call__(
        self,
        query: str,
        variables: dict[str, Any] | None = None,
        *,
        token: str | None = None,
        platform: str = "socialink",
        headers: dict[str, str] | None = None,
    ) -> Result:
        all_headers = dict(headers or {})
        if token:
            all_headers["Authorization"] = f"Bearer {token}"
        path = "/graphql" if platform == "default" else f"/{platform}/graphql"
        response = await self.http.post(
            path, json={"query": query, "variables": variables or {}}, headers=all_headers
        )
        return Result(response.status_code, response.json())


@pytest.fixture
def gql(http: httpx.AsyncClient) -> GraphQLClient:
    return GraphQLClient(http)


@pytest.fixture
async def gql_from(app: Any) -> AsyncIterator[Callable[[str], GraphQLClient]]:
    """`gql_from("1.2.3.4")`: a client of the same app whose requests come from that
    address (what the server sees as the client address, e.g. for rate limits)."""
    clients: list[httpx.AsyncClient] = []

    def client_at(address: str) -> GraphQLClient:
        transport = httpx.ASGITransport(app=app, client=(address, 40000))
        clients.append(httpx.AsyncClient(transport=transport, base_url="http://testserver"))
        return GraphQLClient(clients[-1])

    yield client_at
    for client in clients:
        await client.aclose()


SIGN_UP = """
mutation($input: SignUpInput!) {
  signUp(input: $input) { accessToken refreshToken expiresAt user { id username } }
}
"""


@dataclass
class Account:
    id: str
    username: str
    token: str
    refresh_token: str
    platform: str


async def sign_up(gql: GraphQLClient, username: str, platform: str = "socialink") -> Account:
    result = await gql(
        SIGN_UP,
        {
            "input": {
                "username": username,
                "email": f"{username}@example.com",
                "password": "correct horse battery",
            }
        },
        platform=platform,
    )
    payload = result.ok()["signUp"]
    return Account(
        payload["user"]["id"], username, payload["accessToken"], payload["refreshToken"], platform
    )


async def create_users(
    app: Any, usernames: list[str], platform: str = "socialink"
) -> list[Account]:
    """Many signed-in accounts fast: straight through the store, no argon2 per user.

    Their password hash is not a hash, so they cannot sign in with a password; the
    access token comes from the app's own session issuer.
    """
    from resolvers.ids import encode_id

    runtime = app.state.runtime
    accounts = []
    for name in usernames:
        user = await runtime.stores.users.create(
            platform, name, f"{name}@example.com", "test-user-without-password", name
        )
        session = await runtime.auth.start_session(user.id, platform)
        accounts.append(
            Account(
                encode_id("User", user.id),
                name,
                session.access_token,
                session.refresh_token,
                platform,
            )
        )
    return accounts


async def insert_media(
    app: Any, owner: Account, kind: str = "IMAGE", mime_type: str = "image/png"
) -> str:
    """A media row owned by `owner`, inserted directly (no upload); its global ID."""
    from datasources.media.tables import MediaRow
    from resolvers.ids import encode_id, split_id

    owner_parts = split_id(owner.id)
    assert owner_parts is not None
    row = MediaRow(
        platform=owner.platform,
        owner_id=int(owner_parts[1]),
        kind=kind,
        mime_type=mime_type,
        size_bytes=100,
        sha256="0" * 64,
        width=10 if kind == "IMAGE" else None,
        height=10 if kind == "IMAGE" else None,
        blob_key=f"test/{owner.username}/{kind}",
    )
    async with app.state.runtime.stores.db.transaction() as session:
        session.add(row)
        await session.flush()
        return encode_id("Media", row.id)


@pytest.fixture
def sql_counter(app: Any) -> Iterator[list[str]]:
    """Collects every SQL statement the app's engine runs while the test is active."""
    statements: list[str] = []
    engine = app.state.runtime.stores.db.engine.sync_engine

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    yield statements
    event.remove(engine, "before_cursor_execute", record)


@pytest.fixture
def executor_builds(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Each executor the schema's executor class (LeanExecutor) builds while the test
    runs: what schema/root_field.py saves an operation."""
    from schema.execution import LeanExecutor

    built: list[Any] = []
    build = LeanExecutor.build.__func__  # type: ignore[attr-defined]

    def counted(cls: type[LeanExecutor], *args: Any, **kwargs: Any) -> Any:
        built.append(cls)
        return build(cls, *args, **kwargs)

    monkeypatch.setattr(LeanExecutor, "build", classmethod(counted))
    return built


def pytest_configure(config: pytest.Config) -> None:
    # tests/test_scale_out.py, tests/test_faults.py: private servers and processes.
    config.addinivalue_line("markers", "cluster: starts its own servers and processes")
