"""Root query fields of the users subgraph."""

from __future__ import annotations

import strawberry
from strawberry.types import Info

from resolvers.users import queries
from schema.common import NO_CURSOR, Connection, Platform, given
from schema.users.types import User, prefetched_users_connection


@strawberry.type
class UsersQuery:
    @strawberry.field
    def platform(self, info: Info) -> Platform:
        return Platform(info.context.platform)

    @strawberry.field
    async def viewer(self, info: Info) -> User | None:
        record = await queries.viewer(info.context)
        return User(record=record) if record else None

    @strawberry.field(
        description="null with a NOT_FOUND error for an unknown username or a block either way"
    )
    async def user(self, info: Info, username: str) -> User | None:
        return User(record=await queries.user_by_username(info.context, username))

    @strawberry.field
    async def follow_requests(
        self, info: Info, first: int | None = 20, after: str | None = NO_CURSOR
    ) -> Connection[User]:
        page = await queries.follow_requests(info.context, first, given(after))
        return await prefetched_users_connection(info, page)

    @strawberry.field
    async def friend_requests(
        self, info: Info, first: int | None = 20, after: str | None = NO_CURSOR
    ) -> Connection[User]:
        page = await queries.friend_requests(info.context, first, given(after))
        return await prefetched_users_connection(info, page)

    @strawberry.field
    async def blocked_users(
        self, info: Info, first: int | None = 20, after: str | None = NO_CURSOR
    ) -> Connection[User]:
        page = await queries.blocked_users(info.context, first, given(after))
        return await prefetched_users_connection(info, page)

    @strawberry.field
    async def suggested_users(self, info: Info, limit: int | None = 10) -> list[User]:
        return [User(record=r) for r in await queries.suggested_users(info.context, limit)]
