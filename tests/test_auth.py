"""Sign-up, sign-in, sessions: what a client sees, on SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from datasources.cache import MemoryCache
from datasources.users.tables import RefreshTokenRow, UserRow
from server.app import create_app
from server.settings import Settings
from tests.conftest import SIGN_UP, GraphQLClient, Result, sign_up

PASSWORD = "correct horse battery"  # what tests.conftest.sign_up uses
PAYLOAD = "accessToken refreshToken expiresAt user { id username }"
SIGN_IN = f"mutation($input: SignInInput!) {{ signIn(input: $input) {{ {PAYLOAD} }} }}"
REFRESH = f"mutation($token: String!) {{ refreshSession(refreshToken: $token) {{ {PAYLOAD} }} }}"
SIGN_OUT = "mutation($token: String!) { signOut(refreshToken: $token) }"
VIEWER = "{ viewer { username } }"


async def sign_in(gql: GraphQLClient, login: str, password: str = PASSWORD, **kw: Any) -> Result:
    return await gql(SIGN_IN, {"input": {"login": login, "password": password}}, **kw)


async def refresh(gql: GraphQLClient, token: str, **kw: Any) -> Result:
    return await gql(REFRESH, {"token": token}, **kw)


async def viewer_status(gql: GraphQLClient, access_token: str) -> tuple[int, list[str]]:
    result = await gql(VIEWER, token=access_token)
    return result.status, result.codes


async def count_rows(app: Any, table: type) -> int:
    async with app.state.runtime.stores.db.session() as session:
        return int(await session.scalar(select(func.count()).select_from(table)))


GqlWith = Callable[..., Awaitable[GraphQLClient]]


@pytest.fixture
async def gql_with(settings: Settings) -> AsyncIterator[GqlWith]:
    """`await gql_with(access_token_ttl_seconds=2)`: a client of an app on the same
    database whose settings differ as given."""
    apps: list[Any] = []
    clients: list[httpx.AsyncClient] = []

    async def make(**overrides: Any) -> GraphQLClient:
        apps.append(create_app(settings.model_copy(update=overrides)))
        transport = httpx.ASGITransport(app=apps[-1])
        clients.append(httpx.AsyncClient(transport=transport, base_url="http://testserver"))
        return GraphQLClient(clients[-1])

    yield make
    for client in clients:
        await client.aclose()
    for app in apps:
        await app.state.runtime.close()


# ── sign-in ──────────────────────────────────────────────────────────────────


async def test_sign_in_by_username_or_email_in_any_case(gql: GraphQLClient) -> None:
    await sign_up(gql, "alice")
    for login in ("alice", "ALICE", "alice@example.com", "Alice@Example.COM", " alice "):
        payload = (await sign_in(gql, login)).ok()["signIn"]
        assert payload["user"]["username"] == "alice"
        mine = await gql(VIEWER, token=payload["accessToken"])
        assert mine.ok() == {"viewer": {"username": "alice"}}


async def test_successful_sign_ins_are_not_counted_as_failures(gql: GraphQLClient) -> None:
    await sign_up(gql, "alice")
    for _ in range(8):
        (await sign_in(gql, "alice")).ok()


async def test_wrong_password_and_unknown_user_get_the_same_error(gql: GraphQLClient) -> None:
    await sign_up(gql, "alice")
    await sign_up(gql, "carol", platform="vignette")
    wrong_password = await sign_in(gql, "alice", "not the password")
    unknown_user = await sign_in(gql, "nobody", "not the password")
    other_platform = await sign_in(gql, "carol")  # carol exists, but on vignette
    assert wrong_password.codes == ["UNAUTHENTICATED"]
    assert wrong_password.data is None
    assert unknown_user.status == wrong_password.status == other_platform.status
    assert unknown_user.errors == wrong_password.errors == other_platform.errors


async def test_unknown_user_takes_as_long_as_a_wrong_password(
    gql: GraphQLClient, gql_from: Callable[[str], GraphQLClient]
) -> None:
    """The time an answer takes must not tell whether the user exists."""
    await sign_up(gql, "alice")

    async def seconds(login: str, address: str) -> float:
        started = time.perf_counter()
        result = await sign_in(gql_from(address), login, "not the password")
        assert result.codes == ["UNAUTHENTICATED"]
        return time.perf_counter() - started

    wrong = [await seconds("alice", f"10.0.0.{n}") for n in range(3)]
    unknown = [await seconds(f"nobody{n}", f"10.0.1.{n}") for n in range(3)]
    # Without a dummy verification an unknown user answers ~10x faster.
    assert statistics.median(unknown) > 0.5 * statistics.median(wrong)


async def test_failures_are_limited_per_login(
    gql: GraphQLClient, gql_from: Callable[[str], GraphQLClient]
) -> None:
    await sign_up(gql, "alice")
    await sign_up(gql, "bob")
    for attempt in range(5):
        result = await sign_in(gql_from(f"10.0.0.{attempt}"), "alice", "wrong password")
        assert result.codes == ["UNAUTHENTICATED"]
    # From yet another address, with the right password, by email: still refused.
    limited = await sign_in(gql_from("10.0.0.99"), "ALICE@example.com")
    assert limited.codes == ["RATE_LIMITED"]
    assert limited.data is None
    retry_after = limited.errors[0]["extensions"]["retryAfter"]
    assert isinstance(retry_after, int) and 1 <= retry_after <= 60
    # Another login is not affected.
    (await sign_in(gql_from("10.0.0.99"), "bob")).ok()


async def test_failures_are_limited_per_address(
    gql: GraphQLClient, gql_from: Callable[[str], GraphQLClient]
) -> None:
    await sign_up(gql, "alice")
    attacker, elsewhere = gql_from("1.2.3.4"), gql_from("5.6.7.8")
    for attempt in range(5):  # a different login each time
        result = await sign_in(attacker, f"guess{attempt}", "wrong password")
        assert result.codes == ["UNAUTHENTICATED"]
    limited = await sign_in(attacker, "alice")
    assert limited.codes == ["RATE_LIMITED"]
    assert 1 <= limited.errors[0]["extensions"]["retryAfter"] <= 60
    assert (await sign_in(elsewhere, "alice")).ok()["signIn"]["user"]["username"] == "alice"


async def test_limit_holds_under_concurrent_guesses(
    app: Any, gql: GraphQLClient, gql_from: Callable[[str], GraphQLClient]
) -> None:
    """Parallel guesses cannot all slip past the counter before any has failed."""
    await sign_up(gql, "alice")
    guesses = [sign_in(gql_from(f"10.1.0.{n}"), "alice", f"guess number {n}") for n in range(12)]
    codes = [result.codes[0] for result in await asyncio.gather(*guesses)]
    assert codes.count("UNAUTHENTICATED") == 5
    assert codes.count("RATE_LIMITED") == 7


async def test_limit_lifts_when_the_window_resets(app: Any, gql: GraphQLClient) -> None:
    now = [1000.0]
    app.state.runtime.stores.cache = MemoryCache(clock=lambda: now[0])
    await sign_up(gql, "alice")
    for _ in range(5):
        assert (await sign_in(gql, "alice", "wrong password")).codes == ["UNAUTHENTICATED"]
    assert (await sign_in(gql, "alice")).errors[0]["extensions"]["retryAfter"] == 60
    now[0] += 45
    assert (await sign_in(gql, "alice")).errors[0]["extensions"]["retryAfter"] == 15
    now[0] += 15
    assert (await sign_in(gql, "alice")).ok()["signIn"]["user"]["username"] == "alice"


# ── refresh-token rotation ───────────────────────────────────────────────────


async def test_refresh_rotates_both_tokens(gql: GraphQLClient) -> None:
    alice = await sign_up(gql, "alice")
    first = (await refresh(gql, alice.refresh_token)).ok()["refreshSession"]
    assert first["user"]["username"] == "alice"
    assert first["refreshToken"] != alice.refresh_token
    assert first["accessToken"] != alice.token
    assert (await gql(VIEWER, token=first["accessToken"])).ok() == {"viewer": {"username": "alice"}}
    second = (await refresh(gql, first["refreshToken"])).ok()["refreshSession"]
    assert second["refreshToken"] not in (alice.refresh_token, first["refreshToken"])


async def test_reusing_a_rotated_token_revokes_the_family(gql: GraphQLClient) -> None:
    alice = await sign_up(gql, "alice")
    other_session = (await sign_in(gql, "alice")).ok()["signIn"]
    rotated = (await refresh(gql, alice.refresh_token)).ok()["refreshSession"]
    newest = (await refresh(gql, rotated["refreshToken"])).ok()["refreshSession"]

    reuse = await refresh(gql, alice.refresh_token)  # the old one, presented again
    assert reuse.codes == ["UNAUTHENTICATED"]
    assert reuse.data is None
    # The whole family ends: the newest refresh token and every access token.
    assert (await refresh(gql, newest["refreshToken"])).codes == ["UNAUTHENTICATED"]
    for access_token in (alice.token, rotated["accessToken"], newest["accessToken"]):
        assert await viewer_status(gql, access_token) == (401, ["UNAUTHENTICATED"])
    # Another sign-in of the same user is another family: untouched.
    assert (await gql(VIEWER, token=other_session["accessToken"])).ok()["viewer"]
    (await refresh(gql, other_session["refreshToken"])).ok()


async def test_two_concurrent_uses_of_one_token_end_the_family(gql: GraphQLClient) -> None:
    alice = await sign_up(gql, "alice")
    results = await asyncio.gather(
        refresh(gql, alice.refresh_token), refresh(gql, alice.refresh_token)
    )
    winners = [r.data["refreshSession"] for r in results if not r.errors]
    assert len(winners) == 1
    assert [r.codes for r in results if r.errors] == [["UNAUTHENTICATED"]]
    # The same token was used twice: whichever won, its tokens are revoked too.
    assert (await refresh(gql, winners[0]["refreshToken"])).codes == ["UNAUTHENTICATED"]
    assert await viewer_status(gql, winners[0]["accessToken"]) == (401, ["UNAUTHENTICATED"])


async def test_refresh_token_only_works_on_its_platform(gql: GraphQLClient) -> None:
    alice = await sign_up(gql, "alice", "socialink")
    await sign_up(gql, "alice", "vignette")
    assert (await refresh(gql, alice.refresh_token, platform="vignette")).codes == [
        "UNAUTHENTICATED"
    ]
    # Presenting it on the wrong platform did not spend or revoke it.
    assert (await refresh(gql, alice.refresh_token, platform="socialink")).ok()


async def test_unknown_refresh_token_is_unauthenticated(gql: GraphQLClient) -> None:
    await sign_up(gql, "alice")
    assert (await refresh(gql, "made-up-token")).codes == ["UNAUTHENTICATED"]


async def test_expired_refresh_token_is_unauthenticated(gql_with: GqlWith) -> None:
    gql = await gql_with(refresh_token_ttl_seconds=1)
    alice = await sign_up(gql, "alice")
    await asyncio.sleep(1.2)
    assert (await refresh(gql, alice.refresh_token)).codes == ["UNAUTHENTICATED"]


# ── sign-out and access-token expiry ─────────────────────────────────────────


async def test_sign_out_rejects_the_sessions_tokens(gql: GraphQLClient) -> None:
    alice = await sign_up(gql, "alice")
    other_session = (await sign_in(gql, "alice")).ok()["signIn"]
    assert await viewer_status(gql, alice.token) == (200, [])

    assert (await gql(SIGN_OUT, {"token": alice.refresh_token})).ok() == {"signOut": True}
    status, codes = await viewer_status(gql, alice.token)
    assert (status, codes) == (401, ["UNAUTHENTICATED"])
    assert (await refresh(gql, alice.refresh_token)).codes == ["UNAUTHENTICATED"]
    # Signing out of one device leaves the others signed in.
    assert (await gql(VIEWER, token=other_session["accessToken"])).ok()["viewer"]


async def test_sign_out_after_rotation_ends_the_newest_tokens(gql: GraphQLClient) -> None:
    alice = await sign_up(gql, "alice")
    rotated = (await refresh(gql, alice.refresh_token)).ok()["refreshSession"]
    assert (await gql(SIGN_OUT, {"token": rotated["refreshToken"]})).ok() == {"signOut": True}
    assert await viewer_status(gql, rotated["accessToken"]) == (401, ["UNAUTHENTICATED"])
    assert await viewer_status(gql, alice.token) == (401, ["UNAUTHENTICATED"])


async def test_sign_out_does_not_tell_whether_a_token_exists(gql: GraphQLClient) -> None:
    alice = await sign_up(gql, "alice")
    assert (await gql(SIGN_OUT, {"token": "made-up-token"})).ok() == {"signOut": True}
    assert (await gql(SIGN_OUT, {"token": alice.refresh_token})).ok() == {"signOut": True}
    assert (await gql(SIGN_OUT, {"token": alice.refresh_token})).ok() == {"signOut": True}


async def test_expired_access_token_is_rejected(gql_with: GqlWith) -> None:
    gql = await gql_with(access_token_ttl_seconds=2)
    alice = await sign_up(gql, "alice")
    assert (await gql(VIEWER, token=alice.token)).ok() == {"viewer": {"username": "alice"}}
    payload = (await sign_in(gql, "alice")).ok()["signIn"]
    expires_at = datetime.fromisoformat(payload["expiresAt"])
    remaining = (expires_at - datetime.now(UTC)).total_seconds()
    assert 0 < remaining <= 2
    await asyncio.sleep(remaining + 0.3)
    assert await viewer_status(gql, payload["accessToken"]) == (401, ["UNAUTHENTICATED"])
    # The refresh token is what gets a new access token.
    fresh = (await refresh(gql, payload["refreshToken"])).ok()["refreshSession"]
    assert (await gql(VIEWER, token=fresh["accessToken"])).ok() == {"viewer": {"username": "alice"}}


# ── sign-up: storage and validation ──────────────────────────────────────────


async def test_password_is_stored_as_an_argon2id_hash(app: Any, gql: GraphQLClient) -> None:
    await sign_up(gql, "alice")
    async with app.state.runtime.stores.db.session() as session:
        stored = await session.scalar(select(UserRow.password_hash))
        token_ids = list(await session.scalars(select(RefreshTokenRow.id)))
    assert stored.startswith("$argon2id$")
    assert PASSWORD not in stored
    assert len(token_ids) == 1 and len(token_ids[0]) == 64  # a sha256, not the token


def sign_up_input(**changes: Any) -> dict[str, Any]:
    data = {"username": "alice", "email": "alice@example.com", "password": PASSWORD}
    return {**data, **changes}


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("username", "al"),
        ("username", "a" * 31),
        ("username", "al ice"),
        ("username", "alice!"),
        ("email", "not-an-address"),
        ("email", "alice@localhost"),
        ("email", "a" * 310 + "@example.com"),
        ("password", "short"),
        ("displayName", "   "),
        ("displayName", "x" * 101),
    ],
)
async def test_sign_up_rejects_each_bad_field(
    app: Any, gql: GraphQLClient, field: str, value: str
) -> None:
    result = await gql(SIGN_UP, {"input": sign_up_input(**{field: value})})
    assert result.codes == ["BAD_USER_INPUT"]
    assert result.errors[0]["extensions"]["field"] == field
    assert result.data is None
    assert await count_rows(app, UserRow) == 0
    assert await count_rows(app, RefreshTokenRow) == 0


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"username": "ALICE", "email": "other@example.com"}, "username"),
        ({"username": "alice2", "email": "Alice@EXAMPLE.com"}, "email"),
    ],
)
async def test_sign_up_conflicts_name_the_field(
    app: Any, gql: GraphQLClient, changes: dict[str, str], field: str
) -> None:
    await sign_up(gql, "alice")
    result = await gql(SIGN_UP, {"input": sign_up_input(**changes)})
    assert result.codes == ["CONFLICT"]
    assert result.errors[0]["extensions"]["field"] == field
    assert await count_rows(app, UserRow) == 1
    assert await count_rows(app, RefreshTokenRow) == 1


# ── the signing secret ───────────────────────────────────────────────────────


def test_signing_key_is_generated_once_per_data_dir(tmp_path: Path) -> None:
    first = Settings(data_dir=tmp_path / "a", secret_key="", _env_file=None)  # type: ignore[call-arg]
    again = Settings(data_dir=tmp_path / "a", secret_key="", _env_file=None)  # type: ignore[call-arg]
    fresh = Settings(data_dir=tmp_path / "b", secret_key="", _env_file=None)  # type: ignore[call-arg]
    assert first.signing_key == again.signing_key  # a restart keeps sessions valid
    assert fresh.signing_key != first.signing_key  # nothing hard-coded
    assert len(first.signing_key) >= 43  # at least 256 bits
    key_file = tmp_path / "a" / "secret_key"
    assert key_file.read_text().strip() == first.signing_key
    assert key_file.stat().st_mode & 0o077 == 0  # readable by the owner only


def test_configured_secret_wins(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, secret_key="configured-" + "x" * 40, _env_file=None)  # type: ignore[call-arg]
    assert settings.signing_key == "configured-" + "x" * 40
    assert not (tmp_path / "secret_key").exists()


async def test_address_limit_sees_the_client_behind_a_trusted_proxy(
    settings: Settings, gql: GraphQLClient, gql_from: Callable[[str], GraphQLClient]
) -> None:
    """Behind the router every request comes from one address: the limit must key on
    the client X-Forwarded-For names, and only when a trusted proxy says so."""
    settings.trusted_proxies = ["10.9.9.9"]
    await sign_up(gql, "alice")
    router = gql_from("10.9.9.9")

    def via(*hops: str) -> dict[str, str]:
        return {"X-Forwarded-For": ", ".join(hops)}

    for attempt in range(5):  # the attacker forges a first hop each time; the router appends
        forged = via(f"192.168.0.{attempt}", "1.2.3.4")
        assert (await sign_in(router, f"guess{attempt}", "wrong", headers=forged)).codes == [
            "UNAUTHENTICATED"
        ]
    limited = await sign_in(router, "alice", headers=via("1.2.3.4"))
    assert limited.codes == ["RATE_LIMITED"]
    # Another client through the same router is not limited.
    assert (await sign_in(router, "alice", headers=via("5.6.7.8"))).ok()

    # From a peer that is not a trusted proxy the header is ignored.
    direct = gql_from("6.6.6.6")
    for attempt in range(5):
        result = await sign_in(direct, f"other{attempt}", "wrong", headers=via(f"7.7.7.{attempt}"))
        assert result.codes == ["UNAUTHENTICATED"]
    assert (await sign_in(direct, "alice", headers=via("8.8.8.8"))).codes == ["RATE_LIMITED"]
