"""Passwords (argon2id) and tokens (short-lived signed access, rotated refresh).

Access tokens are HS256 JWTs bound to a platform (`plt`) and a token family
(`fam`); refresh tokens are random strings stored only as hashes, rotated on use.
A family is one sign-in and all its rotations: revoking it (sign-out, or reuse
of a rotated refresh token) ends every token it issued. The rules for when that
happens are in resolvers/users/sessions.py; this module signs and stores.
"""
from __future__ import annotations

import asyncio
import hashlib
import secrets
import uuid
from datetime import UTC, datetime, timedelta
from functools import cache

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from datasources.users.sessions import RefreshTokenRecord, SessionStore
from resolvers.context import IssuedSession, Viewer
from server.settings import Settings

ALGORITHM = "HS256"


@cache
def _dummy_hash() -> str:
    """A hash of a random password with the same parameters as real ones, made once
    per process: verifying against it costs what verifying a real password costs."""
    return PasswordHasher().hash(secrets.token_urlsafe(32))


def _whole_seconds(moment: datetime) -> datetime:
    """JWT `exp` is whole seconds; report the same instant the token really expires."""
    return moment.replace(microsecond=0)


class Auth:
    def __init__(self, settings: Settings, sessions: SessionStore) -> None:
        self.settings = settings
        self.sessions = sessions
        self.hasher = PasswordHasher()  # argon2id with the library's current parameters
        self.dummy_hash = _dummy_hash()

    def hash_password(self, password: str) -> str:
        return self.hasher.hash(password)

    def verify_password(self, password_hash: str, password: str) -> bool:
        try:
            return self.hasher.verify(password_hash, password)
        except (VerificationError, InvalidHashError):
            return False

    async def check_password(self, password_hash: str | None, password: str) -> bool:
        # argon2 takes tens of milliseconds of CPU: run it off the event loop.
        if password_hash is None:
            await asyncio.to_thread(self.verify_password, self.dummy_hash, password)
            return False
        return await asyncio.to_thread(self.verify_password, password_hash, password)

    def issue_access_token(
        self, user_id: int, platform: str, family_id: str
    ) -> tuple[str, datetime]:
        now = datetime.now(UTC)
        expires_at = _whole_seconds(now + timedelta(seconds=self.settings.access_token_ttl_seconds))
        claims = {
            "sub": str(user_id),
            "plt": platform,
            "fam": family_id,
            "exp": expires_at,
            "iat": now,
            "jti": uuid.uuid4().hex,  # two tokens issued in the same second still differ
        }
        return jwt.encode(claims, self.settings.signing_key, algorithm=ALGORITHM), expires_at

    def read_access_token(self, token: str) -> Viewer | None:
        """The viewer a valid, unexpired token proves; None for anything else.

        Signature and expiry only: whether its family was revoked is checked by
        `Runtime.authenticate`, which has the cache.
        """
        try:
            claims = jwt.decode(token, self.settings.signing_key, algorithms=[ALGORITHM])
            return Viewer(
                user_id=int(claims["sub"]), platform=claims["plt"], family_id=claims["fam"]
            )
        except (jwt.PyJWTError, KeyError, ValueError):
            return None

    def refresh_token_id(self, refresh_token: str) -> str:
        # A plain hash is enough: the token is 256 random bits, not a guessable secret.
        return hashlib.sha256(refresh_token.encode()).hexdigest()

    def _issue(self, user_id: int, platform: str, family_id: str) -> tuple[IssuedSession, datetime]:
        """A new access and refresh token of the family, and when the refresh token expires."""
        access, expires_at = self.issue_access_token(user_id, platform, family_id)
        session = IssuedSession(access, secrets.token_urlsafe(32), expires_at, user_id)
        refresh_expires_at = datetime.now(UTC) + timedelta(
            seconds=self.settings.refresh_token_ttl_seconds
        )
        return session, refresh_expires_at

    async def start_session(self, user_id: int, platform: str) -> IssuedSession:
        """A sign-in: a new token family, its first refresh token stored as a hash."""
        family_id = uuid.uuid4().hex
        session, refresh_expires_at = self._issue(user_id, platform, family_id)
        await self.sessions.add(
            self.refresh_token_id(session.refresh_token),
            family_id,
            user_id,
            platform,
            refresh_expires_at,
        )
        return session

    async def rotate_session(self, used: RefreshTokenRecord) -> IssuedSession | None:
        session, refresh_expires_at = self._issue(used.user_id, used.platform, used.family_id)
        new_id = self.refresh_token_id(session.refresh_token)
        if not await self.sessions.rotate(used, new_id, refresh_expires_at):
            return None
        return session
