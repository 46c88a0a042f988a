"""Sign-up: the contract's validation rules, then one insert."""

from __future__ import annotations

import re
from dataclasses import dataclass

from datasources.users.store import UsernameTaken, UserRecord
from resolvers.context import Context, IssuedSession
from resolvers.errors import BadUserInput, Conflict

USERNAME = re.compile(r"^[a-z0-9._]{3,30}$")
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
MIN_PASSWORD = 10
MAX_DISPLAY_NAME = 100


@dataclass(frozen=True)
class SignUp:
    username: str
    email: str
    password: str
    display_name: str | None


def validate_sign_up(data: SignUp) -> None:
    """BAD_USER_INPUT naming the first offending field, before anything is written."""
    if not USERNAME.match(data.username.lower()):
        raise BadUserInput("username must be 3-30 characters of a-z, 0-9, '.' and '_'", "username")
    if len(data.email) > 320 or not EMAIL.match(data.email):
        raise BadUserInput("email is not a valid address", "email")
    if len(data.password) < MIN_PASSWORD:
        raise BadUserInput(f"password must have at least {MIN_PASSWORD} characters", "password")
    if (
        data.display_name is not None
        and not 1 <= len(data.display_name.strip()) <= MAX_DISPLAY_NAME
    ):
        raise BadUserInput(f"displayName must be 1-{MAX_DISPLAY_NAME} characters", "displayName")


async def sign_up(context: Context, data: SignUp) -> tuple[IssuedSession, UserRecord]:
    validate_sign_up(data)
    try:
        user = await context.stores.users.create(
            platform=context.platform,
            username=data.username,
            email=data.email,
            password_hash=context.auth.hash_password(data.password),
            display_name=(data.display_name or data.username).strip(),
        )
    except UsernameTaken as taken:
        raise Conflict(f"{taken.field} is already taken", taken.field) from taken
    session = await context.auth.start_session(user.id, context.platform)
    return session, user
