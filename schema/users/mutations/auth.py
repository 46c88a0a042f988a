"""signUp, signIn, refreshSession, signOut."""

from __future__ import annotations

import strawberry
from strawberry.types import Info

from datasources.users.store import UserRecord
from resolvers.context import IssuedSession
from resolvers.users import accounts, sessions
from schema.users.types import AuthPayload, SignInInput, SignUpInput, User


def auth_payload(session: IssuedSession, user: UserRecord) -> AuthPayload:
    return AuthPayload(
        access_token=session.access_token,
        refresh_token=session.refresh_token,
        expires_at=session.expires_at,
        user=User(record=user),
    )


@strawberry.type
class AuthMutation:
    @strawberry.mutation
    async def sign_up(self, info: Info, input: SignUpInput) -> AuthPayload:
        data = accounts.SignUp(input.username, input.email, input.password, input.display_name)
        session, user = await accounts.sign_up(info.context, data)
        return auth_payload(session, user)

    @strawberry.mutation
    async def sign_in(self, info: Info, input: SignInInput) -> AuthPayload:
        session, user = await sessions.sign_in(info.context, input.login, input.password)
        return auth_payload(session, user)

    @strawberry.mutation
    async def refresh_session(self, info: Info, refresh_token: str) -> AuthPayload:
        session, user = await sessions.refresh_session(info.context, refresh_token)
        return auth_payload(session, user)

    @strawberry.mutation
    async def sign_out(self, info: Info, refresh_token: str) -> bool:
        return await sessions.sign_out(info.context, refresh_token)
