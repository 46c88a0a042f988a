"""Rate limits per operation class (server/ratelimit.py): who pays, what it costs,
what a refused client is told, and buckets shared by replicas through Redis."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
import strawberry
from graphql import parse

from server import limits
from server.app import create_app
from server.ratelimit import classify
from server.settings import RateLimit, RateLimits, Settings
from tests.conftest import GraphQLClient, Result, create_users, sign_up
from tests.services import REDIS_URL, require

UPDATE_BIO = 'mutation { updateProfile(input: {bio: "hello"}) { bio } }'
SEARCH = '{ autocomplete(prefix: "al") { __typename } }'
SIGN_IN = (
    "mutation($l: String!, $p: String!) { signIn(input: {login: $l, password: $p}) "
    "{ accessToken } }"
)

ClientAt = Callable[[str], GraphQLClient]


def tight(**classes: tuple[float, int]) -> RateLimits:
    """Rate limits with the given classes at (per_minute, burst), the rest generous."""
    limits = RateLimits()
    for name, (rate, burst) in classes.items():
        setattr(limits, name, RateLimit(per_minute=rate, burst=burst))
    return limits


@pytest.fixture
async def limited(settings: Settings) -> AsyncIterator[Callable[..., Any]]:
    """`limited(rate_limits=..., **settings)`: an app so configured, as `(app, client_at)`."""
    made: list[tuple[Any, list[httpx.AsyncClient]]] = []

    def make(schema: strawberry.Schema | None = None, **changes: Any) -> tuple[Any, ClientAt]:
        changes.setdefault("sign_in_failures_per_minute", 1000)  # that limit is tested elsewhere
        app = create_app(settings.model_copy(update=changes), schema=schema)
        clients: list[httpx.AsyncClient] = []
        made.append((app, clients))

        def client_at(address: str) -> GraphQLClient:
            transport = httpx.ASGITransport(app=app, client=(address, 40000))
            clients.append(httpx.AsyncClient(transport=transport, base_url="http://testserver"))
            return GraphQLClient(clients[-1])

        return app, client_at

    yield make
    for app, clients in made:
        for client in clients:
            await client.aclose()
        await app.state.runtime.close()


def assert_limited(result: Result) -> int:
    assert result.codes == ["RATE_LIMITED"], result.body
    assert result.data is None  # refused before anything ran
    retry_after = result.errors[0]["extensions"]["retryAfter"]
    assert isinstance(retry_after, int) and retry_after >= 1
    return retry_after


# ───────────────────────── classes ─────────────────────────


def test_operations_are_classified_by_their_root_fields() -> None:
    def classes(query: str, name: str | None = None) -> dict[str, int]:
        return {kind: cost for kind, cost in classify(parse(query), name).items()}

    assert classes("mutation { signIn(input: {}) { accessToken } }") == {"sign_in": 1}
    assert classes("mutation { signUp(input: {}) { accessToken } }") == {"sign_up": 1}
    assert classes("mutation { claimPreKeyBundles(userId: 1) { id } }") == {"key_claims": 1}
    assert classes("mutation { a: follow(userId: 1) { id } b: likePost(postId: 2) { id } }") == {
        "writes": 2
    }
    searches = '{ search(query: "x") { totalCount } autocomplete(prefix: "a") { id } }'
    assert classes(searches) == {"search": 2}
    assert classes("{ viewer { id } platform __typename }") == {}
    # Root fields behind fragments count; only the operation that runs is classified.
    assert classes(
        "fragment F on Mutation { follow(userId: 1) { id } } "
        "mutation M { ...F ... on Mutation { signIn(input: {}) { accessToken } } } "
        'query Q { search(query: "x") { totalCount } }',
        "M",
    ) == {"writes": 1, "sign_in": 1}


# ───────────────────────── sign in / sign up ─────────────────────────


async def test_sign_in_attempts_are_limited_per_address(limited: Callable[..., Any]) -> None:
    app, client_at = limited(rate_limits=tight(sign_in=(1, 2)))
    await create_users(app, ["alice"])
    here, elsewhere = client_at("10.0.0.1"), client_at("10.0.0.2")
    await sign_up(elsewhere, "bob")
    for _ in range(2):  # wrong passwords: the attempts count, whatever their outcome
        assert (await here(SIGN_IN, {"l": "alice", "p": "nope"})).codes == ["UNAUTHENTICATED"]
    refused = await here(SIGN_IN, {"l": "bob", "p": "correct horse battery"})
    assert 55 <= assert_limited(refused) <= 60  # one attempt back per minute
    signed_in = await elsewhere(SIGN_IN, {"l": "bob", "p": "correct horse battery"})
    assert signed_in.ok()["signIn"]["accessToken"]


async def test_sign_ups_are_limited_per_address(limited: Callable[..., Any]) -> None:
    _app, client_at = limited(rate_limits=tight(sign_up=(1, 2)))
    here, elsewhere = client_at("10.0.0.1"), client_at("10.0.0.2")
    await sign_up(here, "one")
    await sign_up(here, "two")
    refused = await here(
        'mutation { signUp(input: {username: "three", email: "t@example.com",'
        ' password: "correct horse battery"}) { accessToken } }'
    )
    assert_limited(refused)
    await sign_up(elsewhere, "three")  # the name was not taken by the refused attempt


# ───────────────────────── writes: per user and per address ─────────────────────────


async def test_writes_are_limited_per_user(limited: Callable[..., Any]) -> None:
    app, client_at = limited(rate_limits=tight(writes=(1, 3)))
    alice, bob = await create_users(app, ["alice", "bob"])
    here = client_at("10.0.0.1")
    for _ in range(3):
        assert (await here(UPDATE_BIO, token=alice.token)).ok()
    assert_limited(await here(UPDATE_BIO, token=alice.token))
    assert_limited(await client_at("10.9.9.9")(UPDATE_BIO, token=alice.token))  # anywhere
    assert (await here(UPDATE_BIO, token=bob.token)).ok()  # same address, own bucket
    # Reads are not writes.
    assert (await here("{ viewer { username } }", token=alice.token)).ok()


async def test_signed_in_users_share_a_looser_limit_per_address(
    limited: Callable[..., Any],
) -> None:
    limits_ = tight(writes=(1, 2)).model_copy(update={"signed_in_address_factor": 2.0})
    app, client_at = limited(rate_limits=limits_)
    alice, bob, carol = await create_users(app, ["alice", "bob", "carol"])
    here = client_at("10.0.0.1")
    for account in (alice, alice, bob, bob):  # 4 = 2 × the per-user burst
        assert (await here(UPDATE_BIO, token=account.token)).ok()
    assert_limited(await here(UPDATE_BIO, token=carol.token))  # her own bucket is full
    assert (await client_at("10.0.0.2")(UPDATE_BIO, token=carol.token)).ok()


async def test_each_root_field_takes_a_token_and_a_refusal_takes_none(
    limited: Callable[..., Any],
) -> None:
    app, client_at = limited(rate_limits=tight(writes=(1, 2)))
    (alice,) = await create_users(app, ["alice"])
    here = client_at("10.0.0.1")
    aliased = (
        'mutation { a: updateProfile(input: {bio: "a"}) { bio }'
        ' b: updateProfile(input: {bio: "b"}) { bio } c: updateProfile(input: {bio: "c"}) { bio } }'
    )
    assert_limited(await here(aliased, token=alice.token))
    profile = await here("{ viewer { bio } }", token=alice.token)
    assert profile.ok()["viewer"]["bio"] != "c"  # nothing ran
    assert (await here(UPDATE_BIO, token=alice.token)).ok()  # both tokens still there
    assert (await here(UPDATE_BIO, token=alice.token)).ok()
    assert_limited(await here(UPDATE_BIO, token=alice.token))


# ───────────────────────── search, key claims ─────────────────────────


async def test_search_is_limited_and_other_queries_are_not(limited: Callable[..., Any]) -> None:
    _app, client_at = limited(rate_limits=tight(search=(1, 2)))
    here = client_at("10.0.0.1")
    for _ in range(2):
        assert (await here(SEARCH)).ok() is not None
    assert_limited(await here(SEARCH))
    assert_limited(await here('{ search(query: "al") { totalCount } }'))
    assert (await here("{ platform }")).ok() == {"platform": "SOCIALINK"}
    assert (await client_at("10.0.0.2")(SEARCH)).ok() is not None


@strawberry.type
class KeyQuery:
    @strawberry.field
    def platform(self) -> str:
        return "test"


@strawberry.type
class KeyMutation:
    @strawberry.mutation
    def claim_pre_key_bundles(self, user_id: strawberry.ID) -> list[str]:
        return [f"bundle-of-{user_id}"]


async def test_key_claims_are_limited_once_the_mutation_exists(
    limited: Callable[..., Any], settings: Settings
) -> None:
    schema = strawberry.Schema(KeyQuery, KeyMutation, extensions=limits.extensions(settings))
    _app, client_at = limited(schema=schema, rate_limits=tight(key_claims=(1, 1), writes=(1, 1)))
    here = client_at("10.0.0.1")
    claim = 'mutation { claimPreKeyBundles(userId: "7") }'
    assert (await here(claim)).ok() == {"claimPreKeyBundles": ["bundle-of-7"]}
    assert_limited(await here(claim))


# ───────────────────────── retryAfter ─────────────────────────


async def test_retry_after_says_when_a_token_is_back(limited: Callable[..., Any]) -> None:
    _app, client_at = limited(rate_limits=tight(search=(6, 1)))  # one token per 10 s
    here = client_at("10.0.0.1")
    assert (await here(SEARCH)).ok() is not None
    response = await here.http.post("/socialink/graphql", json={"query": SEARCH})
    retry_after = assert_limited(Result(response.status_code, response.json()))
    assert 9 <= retry_after <= 10
    assert response.headers["retry-after"] == str(retry_after)


async def test_tokens_come_back_at_the_configured_rate(limited: Callable[..., Any]) -> None:
    _app, client_at = limited(rate_limits=tight(search=(600, 1)))  # one token per 0.1 s
    here = client_at("10.0.0.1")
    assert (await here(SEARCH)).ok() is not None
    assert assert_limited(await here(SEARCH)) == 1  # whole seconds, at least 1
    await asyncio.sleep(0.15)
    assert (await here(SEARCH)).ok() is not None


# ───────────────────────── Redis: shared by replicas ─────────────────────────


async def test_buckets_in_redis_are_shared_by_two_apps(limited: Callable[..., Any]) -> None:
    require("Redis", "127.0.0.1", 6379)
    address = f"10.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}.7"  # fresh buckets
    changes = {"redis_url": REDIS_URL, "rate_limits": tight(search=(1, 3))}
    _first, first_at = limited(**changes)
    _second, second_at = limited(**changes)
    first, second = first_at(address), second_at(address)
    assert (await first(SEARCH)).ok() is not None
    assert (await second(SEARCH)).ok() is not None
    assert (await first(SEARCH)).ok() is not None
    assert_limited(await second(SEARCH))
    assert_limited(await first(SEARCH))
    # Concurrent requests through both apps: the script is atomic, none slips through.
    other = f"10.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}.8"
    one, two = first_at(other), second_at(other)
    results = await asyncio.gather(*(client(SEARCH) for client in [one, two] * 5))
    assert sum(not result.errors for result in results) == 3
