"""Queries and mutations sent over a websocket (subscriptions/operations.py): the
same rules as over HTTP (cost, rate limits, masking), without strawberry's runner."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import pytest
import strawberry
from strawberry.extensions import SchemaExtension

from resolvers.users import profile
from schema.supergraph import supergraph
from server import limits
from server.app import create_app
from server.settings import RateLimit, RateLimits, Settings
from tests.conftest import Account, GraphQLClient, create_users
from tests.realtime_support import Socket, counting, http_client, live_server, open_socket

BIO = "mutation($bio: String!) { updateProfile(input: {bio: $bio}) { bio } }"
VIEWER = "{ viewer { username bio } }"
COSTLY = (
    "{ viewer { followers(first: 100) { edges { node { username"
    " followers(first: 100) { edges { node { username } } } } } } } }"
)

Serving = Callable[..., AbstractAsyncContextManager[tuple[Any, GraphQLClient, Socket, Account]]]


@pytest.fixture
def serving(settings: Settings) -> Serving:
    """`serving(schema=None, user="alice", **settings)`: an app so configured, served
    by uvicorn, with an HTTP client and a socket signed in as a new user."""

    @asynccontextmanager
    async def serve(
        schema: Callable[[Settings], strawberry.Schema] | None = None,
        user: str = "alice",
        **changes: Any,
    ) -> AsyncIterator[tuple[Any, GraphQLClient, Socket, Account]]:
        configured = settings.model_copy(update=changes)
        app = create_app(configured, schema=schema(configured) if schema else None)
        async with app.router.lifespan_context(app), live_server(app) as address:
            async with http_client(address) as gql:
                (account,) = await create_users(app, [user])
                sock = await open_socket(address, account.token)
                try:
                    yield app, gql, sock, account
                finally:
                    await sock.close()
        await app.state.runtime.close()

    return serve


async def over_socket(sock: Socket, op_id: str, query: str, **variables: Any) -> dict[str, Any]:
    """What a socket answers: the result's payload, then `complete`."""
    await sock.subscribe(op_id, query, variables)
    payload = await sock.next(op_id)
    assert await sock.receive() == {"id": op_id, "type": "complete"}
    return payload


def codes(payload: dict[str, Any]) -> list[str]:
    return [error["extensions"]["code"] for error in payload.get("errors", [])]


async def test_an_operation_over_the_budget_is_refused_on_a_socket_as_over_http(
    serving: Serving,
) -> None:
    async with serving(max_query_cost=5_000) as (_app, gql, sock, alice):
        over_http = await gql(COSTLY, token=alice.token)
        refused = await over_socket(sock, "1", COSTLY)
        assert codes(refused) == codes(over_http.body) == ["QUERY_TOO_COMPLEX"]
        assert refused == over_http.body
        assert refused["data"] is None
        cheap = await over_socket(sock, "2", VIEWER)
        assert cheap == {"data": {"viewer": {"username": "alice", "bio": None}}}


async def test_writes_over_a_socket_take_from_the_same_rate_limit_as_over_http(
    serving: Serving,
) -> None:
    tight = RateLimits(writes=RateLimit(per_minute=1, burst=2))
    async with serving(rate_limits=tight) as (_app, gql, sock, alice):
        first = await over_socket(sock, "1", BIO, bio="one")
        assert first == {"data": {"updateProfile": {"bio": "one"}}}
        assert (await gql(BIO, {"bio": "two"}, token=alice.token)).ok()
        refused = await over_socket(sock, "3", BIO, bio="three")
        assert codes(refused) == ["RATE_LIMITED"] and refused["data"] is None
        assert refused["errors"][0]["extensions"]["retryAfter"] >= 1
        assert (await gql(BIO, {"bio": "four"}, token=alice.token)).codes == ["RATE_LIMITED"]
        unchanged = await over_socket(sock, "5", VIEWER)  # queries take no write token
        assert unchanged == {"data": {"viewer": {"username": "alice", "bio": "two"}}}


async def test_an_internal_error_over_a_socket_is_masked_with_the_request_id(
    serving: Serving, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(*_args: Any) -> Any:
        raise RuntimeError("the database password is hunter2")

    monkeypatch.setattr(profile, "update_profile", broken)
    async with serving() as (_app, _gql, sock, _alice):
        payload = await over_socket(sock, "1", BIO, bio="x")
    (error,) = payload["errors"]
    assert payload["data"] is None
    assert error["message"] == "Internal server error" and error["path"] == ["updateProfile"]
    assert error["extensions"]["code"] == "INTERNAL_SERVER_ERROR"
    assert len(error["extensions"]["requestId"]) == 32
    assert "hunter2" not in str(payload)


class Seen(SchemaExtension):
    """A test's own extension: records each operation it is run for."""

    operations: list[str | None] = []

    def on_execute(self) -> Iterator[None]:
        Seen.operations.append(self.execution_context.operation_name)
        yield


async def test_strawberrys_runner_is_left_out_unless_another_extension_needs_it(
    serving: Serving, monkeypatch: pytest.MonkeyPatch
) -> None:
    runs: list[str | None] = []
    execute = strawberry.Schema.execute

    async def counted(self: strawberry.Schema, query: str | None, *args: Any, **kw: Any) -> Any:
        runs.append(kw.get("operation_name"))
        return await execute(self, query, *args, **kw)

    monkeypatch.setattr(strawberry.Schema, "execute", counted)
    named = "mutation Named($bio: String!) { updateProfile(input: {bio: $bio}) { bio } }"
    async with serving() as (_app, _gql, sock, _alice):
        answer = await over_socket(sock, "1", named, bio="plain")
    assert answer == {"data": {"updateProfile": {"bio": "plain"}}}
    assert runs == []

    def with_seen(settings: Settings) -> strawberry.Schema:
        return supergraph([*limits.extensions(settings), Seen])

    Seen.operations = []
    async with serving(schema=with_seen, user="bob") as (_app, _gql, sock, _alice):
        answer = await over_socket(sock, "1", named, bio="seen")
    assert answer == {"data": {"updateProfile": {"bio": "seen"}}}
    assert Seen.operations == ["Named"] and len(runs) == 1


async def test_a_one_field_mutation_over_a_socket_is_run_without_building_an_executor(
    serving: Serving, executor_builds: list[Any]
) -> None:
    """schema/root_field.py: the same answer as over HTTP, where strawberry builds one."""
    async with serving() as (_app, gql, sock, alice):
        answer = await over_socket(sock, "1", BIO, bio="planned")
        assert answer == {"data": {"updateProfile": {"bio": "planned"}}}
        assert executor_builds == []
        over_http = await gql(BIO, {"bio": "planned"}, token=alice.token)
        assert over_http.body == answer and len(executor_builds) == 1
        too_long = "x" * 10_000  # the resolver refuses it: its error, as over HTTP
        refused = await over_socket(sock, "2", BIO, bio=too_long)
        refused_over_http = await gql(BIO, {"bio": too_long}, token=alice.token)
        assert codes(refused) == ["BAD_USER_INPUT"] and refused["data"] is None
        assert refused == refused_over_http.body


async def test_a_mutations_next_and_complete_go_out_in_one_write(serving: Serving) -> None:
    async with serving() as (app, _gql, sock, _alice):
        (connection,) = app.state.realtime.connections
        transport = counting(connection._frames)
        answer = await over_socket(sock, "1", BIO, bio="one write")
        assert answer == {"data": {"updateProfile": {"bio": "one write"}}}
        assert len(transport.writes) == 1
        assert transport.writes[0].count(b"\x81") == 2  # two frames: next, complete


async def test_an_operation_id_that_needs_escaping_is_echoed_exactly(serving: Serving) -> None:
    async with serving() as (_app, _gql, sock, _alice):
        for op_id in ('quote"d', "back\\slash", "é\u2028"):
            answer = await over_socket(sock, op_id, BIO, bio="escaped")
            assert answer == {"data": {"updateProfile": {"bio": "escaped"}}}
