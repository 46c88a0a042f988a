"""Passwords (argon2id) and tokens (short-lived signed access, rotated refresh).

Access tokens are HS256 JWTs bound to a platform (`plt`) and a token family
(`fam`); refresh tokens are random strings stored only as hashes, rotated on use.
"""
from __future__ import annotations

import secrets
import uuid
from datetime import UTC, datetime, timedelta

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from resolvers.context import IssuedSession, Viewer
from server.settings import Settings

ALGORITHM = "HS256"


class Auth:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.hasher = PasswordHasher()  # argon2id with the library's current parameters

    def hash_password(self, password: str) -> str:
        return self.hasher.hash(password)

    def verify_password(self, password_hash: str, password: str) -> bool:
        try:
            return self.hasher.verify(password_hash, password)
        except (VerificationError, InvalidHashError):
            return False

    def issue_access_token(self, user_id: int, platform: str, family_id: str) -> tuple[str, datetime]:
        expires_at = datetime.now(UTC) + timedelta(seconds=self.settings.access_token_ttl_seconds)
        claims = {
            "sub": str(user_id),
            "plt": platform,
            "fam": family_id,
            "exp": expires_at,
            "iat": datetime.now(UTC),
        }
        return jwt.encode(claims, self.settings.signing_key, algorithm=ALGORITHM), expires_at

    def read_access_token(self, token: str) -> Viewer | None:
        """The viewer a valid, unexpired token proves; None for anything else."""
        try:
            claims = jwt.decode(token, self.settings.signing_key, algorithms=[ALGORITHM])
            return Viewer(user_id=int(claims["sub"]), platform=claims["plt"], family_id=claims["fam"])
        except (jwt.PyJWTError, KeyError, ValueError):
            return None

    async def start_session(self, user_id: int, platform: str) -> IssuedSession:
        family_id = uuid.uuid4().hex
        access, expires_at = self.issue_access_token(user_id, platform, family_id)
        return IssuedSession(access, secrets.token_urlsafe(32), expires_at, user_id)
