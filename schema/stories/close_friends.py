"""closeFriends, addCloseFriend and removeCloseFriend (resolvers/stories/close_friends.py)."""

from __future__ import annotations

import strawberry
from strawberry.types import Info

from resolvers.stories import close_friends
from schema.common import NO_CURSOR, Connection, given
from schema.users.types import Relationship, User, prefetched_users_connection


@strawberry.type
class CloseFriendsQuery:
    @strawberry.field
    async def close_friends(
        self, info: Info, first: int | None = 50, after: str | None = NO_CURSOR
    ) -> Connection[User]:
        page = await close_friends.close_friends(info.context, first, given(after))
        return await prefetched_users_connection(info, page)


@strawberry.type
class CloseFriendsMutation:
    @strawberry.mutation
    async def add_close_friend(self, info: Info, user_id: strawberry.ID) -> Relationship:
        return Relationship.of(await close_friends.add_close_friend(info.context, user_id))

    @strawberry.mutation
    async def remove_close_friend(self, info: Info, user_id: strawberry.ID) -> Relationship:
        return Relationship.of(await close_friends.remove_close_friend(info.context, user_id))
