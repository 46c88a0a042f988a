"""Sessions: sign-in with a failure limit, refresh-token rotation with reuse detection,
sign-out. The rules only; tokens are signed and stored by the Authenticator.
Revoking a family also closes its open sockets (4403) in every process, through
the realtime broker.

- A refresh token works once. Presenting a used one again means two parties hold
  it (a stolen copy is in play), so the whole family is revoked: every refresh
  token of it and, through the cache, every access token it issued. Two requests
  racing with the same token are the same case: one wins, then the family ends.
- Sign-in failures are limited per account (username and email share one
  budget) and per client address, in the cache's fixed one-minute windows.
  Behind a proxy or router, `client_address` must be the real client's, or the
  address limit becomes one limit for everyone.
- Sign-in is no cheap oracle: an unknown user and a wrong password get the same
  error after the same work (argon2 against a dummy hash). An unknown refresh
  token gets the same error as a revoked one; signOut answers true either way.
"""

from __future__ import annotations

import hashlib
import logging
import math
from collections.abc import Sequence

from datasources.cache import Cache
from datasources.sql import utcnow
from datasources.users.sessions import RefreshTokenRecord
from datasources.users.store import Credentials, UserRecord
from resolvers.context import Context, IssuedSession
from resolvers.errors import RateLimited, Unauthenticated
from subscriptions.broker import BrokerUnavailable
from subscriptions.topics import announce_revoked

log = logging.getLogger("entativa.users")

SIGN_IN_WINDOW_SECONDS = 60
WRONG_CREDENTIALS = "login or password is incorrect"
SESSION_ENDED = "refresh token is invalid, expired or revoked; sign in again"
# Access tokens of a revoked family are refused until they have all expired; the
# margin covers clock skew between replicas and a token minted mid-revocation.
REVOCATION_MARGIN_SECONDS = 60


def revoked_family_key(family_id: str) -> str:
    return f"revoked-family:{family_id}"


async def family_revoked(cache: Cache, family_id: str) -> bool:
    """Whether access tokens of this family must be refused (checked on every request)."""
    return await cache.get(revoked_family_key(family_id)) is not None


async def revoke_family(context: Context, family_id: str) -> None:
    """End a family: its refresh tokens (rows) and its access tokens (a cache mark
    that lives as long as any of them could)."""
    await context.stores.sessions.revoke_family(context.platform, family_id)
    ttl = context.settings.access_token_ttl_seconds + REVOCATION_MARGIN_SECONDS
    await context.stores.cache.set(revoked_family_key(family_id), "1", ttl)
    try:
        await announce_revoked(context.stores.broker, family_id)  # close its open sockets
    except BrokerUnavailable:  # Redis down: the sign-out stands (database, cache marks);
        # sockets elsewhere are not closed now, but their subscriptions already ended
        # with the outage and the revoked token is refused on reconnect.
        log.warning("could not announce the revocation of family %s", family_id)


# ── sign-in ──────────────────────────────────────────────────────────────────


def _failure_keys(context: Context, login: str, credentials: Credentials | None) -> list[str]:
    # Failures count against the account, so guesses by username and by email
    # share one budget. A login naming no account counts by its text, hashed: the
    # cache needs no one's email address in clear.
    if credentials is not None:
        who = f"user:{credentials.user.id}"
    else:
        who = "login:" + hashlib.sha256(login.casefold().encode()).hexdigest()[:32]
    return [
        f"sign-in-failures:{context.platform}:{who}",
        f"sign-in-failures:{context.platform}:address:{context.client_address}",
    ]


async def _take_attempt(cache: Cache, keys: Sequence[str], limit: int) -> None:
    """Count this attempt as a failure up front, refusing it if the limit is reached.

    Counting before verifying (and giving the count back on success) makes the
    limit hold under concurrency: of many parallel guesses only `limit` are ever
    verified, instead of all that read the counter before any had failed.
    """
    windows = [await cache.hit(key, SIGN_IN_WINDOW_SECONDS) for key in keys]
    blocked = [window.resets_in for window in windows if window.hits > limit]
    if blocked:
        await _give_back(cache, keys)  # a refused attempt is not a failure
        raise RateLimited(max(1, math.ceil(max(blocked))))


async def _give_back(cache: Cache, keys: Sequence[str]) -> None:
    for key in keys:
        await cache.hit(key, SIGN_IN_WINDOW_SECONDS, amount=-1)


async def sign_in(context: Context, login: str, password: str) -> tuple[IssuedSession, UserRecord]:
    """A new session for a username or email (any case) and its password."""
    login = login.strip()
    credentials = await context.stores.users.credentials(context.platform, login)
    cache, keys = context.stores.cache, _failure_keys(context, login, credentials)
    await _take_attempt(cache, keys, context.settings.sign_in_failures_per_minute)
    try:  # verified also for an unknown user (against a dummy): same time either way
        matches = await context.auth.check_password(
            credentials.password_hash if credentials else None, password
        )
    except Exception:
        await _give_back(cache, keys)  # our fault, not a failed guess
        raise
    if credentials is None or not matches:
        raise Unauthenticated(WRONG_CREDENTIALS)  # the attempt stays counted: it failed
    await _give_back(cache, keys)
    return await context.auth.start_session(credentials.user.id, context.platform), credentials.user


# ── refresh and sign-out ─────────────────────────────────────────────────────


async def _find(context: Context, refresh_token: str) -> RefreshTokenRecord | None:
    token_id = context.auth.refresh_token_id(refresh_token)
    return await context.stores.sessions.find(context.platform, token_id)


async def refresh_session(context: Context, refresh_token: str) -> tuple[IssuedSession, UserRecord]:
    """The next access and refresh tokens of the family; the presented token is spent."""
    used = await _find(context, refresh_token)
    if used is None or used.revoked:
        raise Unauthenticated(SESSION_ENDED)
    if used.used_at is not None:
        await revoke_family(context, used.family_id)
        raise Unauthenticated(SESSION_ENDED)
    if used.expires_at <= utcnow():
        raise Unauthenticated(SESSION_ENDED)
    session = await context.auth.rotate_session(used)
    if session is None:  # a concurrent use of the same token won: reuse
        await revoke_family(context, used.family_id)
        raise Unauthenticated(SESSION_ENDED)
    user = await context.loaders.users.by_id.load(used.user_id)
    if user is None:
        raise Unauthenticated(SESSION_ENDED)
    return session, user


async def sign_out(context: Context, refresh_token: str) -> bool:
    """Revoke the token's family. True also for an unknown or already revoked token:
    signing out is idempotent, and the answer must not tell whether a token exists.
    No access token is needed: the refresh token is the proof, and the access token
    may already have expired."""
    found = await _find(context, refresh_token)
    if found is not None:
        await revoke_family(context, found.family_id)
    return True
