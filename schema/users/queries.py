"""Root query fields of the users subgraph."""
from __future__ import annotations

import strawberry
from strawberry.types import Info

from resolvers.users import queries
from schema.common import Platform
from schema.users.types import User


@strawberry.type
class UsersQuery:
    @strawberry.field
    def platform(self, info: Info) -> Platform:
        return Platform(info.context.platform)

    @strawberry.field
    async def viewer(self, info: Info) -> User | None:
        record = await queries.viewer(info.context)
        return User(record=record) if record else None

    @strawberry.field
    async def user(self, info: Info, username: str) -> User | None:
        record = await queries.user_by_username(info.context, username)
        return User(record=record) if record else None
