"""signUp, signIn, refreshSession, signOut."""
from __future__ import annotations

import strawberry
from strawberry.types import Info

from resolvers.context import IssuedSession
from resolvers.users import accounts
from schema.users.types import AuthPayload, SignUpInput, User


def auth_payload(session: IssuedSession, user: accounts.UserRecord) -> AuthPayload:
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
