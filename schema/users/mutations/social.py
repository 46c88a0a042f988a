"""follow, unfollow, follow requests, friendships (Socialink), block and unblock."""

from __future__ import annotations

import strawberry
from strawberry.types import Info

from resolvers.users import social
from schema.users.types import Relationship


@strawberry.type
class SocialMutation:
    @strawberry.mutation
    async def follow(self, info: Info, user_id: strawberry.ID) -> Relationship:
        return Relationship.of(await social.follow(info.context, user_id))

    @strawberry.mutation
    async def unfollow(self, info: Info, user_id: strawberry.ID) -> Relationship:
        return Relationship.of(await social.unfollow(info.context, user_id))

    @strawberry.mutation
    async def respond_to_follow_request(
        self, info: Info, user_id: strawberry.ID, accept: bool
    ) -> Relationship:
        return Relationship.of(
            await social.respond_to_follow_request(info.context, user_id, accept)
        )

    @strawberry.mutation
    async def send_friend_request(self, info: Info, user_id: strawberry.ID) -> Relationship:
        return Relationship.of(await social.send_friend_request(info.context, user_id))

    @strawberry.mutation
    async def respond_to_friend_request(
        self, info: Info, user_id: strawberry.ID, accept: bool
    ) -> Relationship:
        return Relationship.of(
            await social.respond_to_friend_request(info.context, user_id, accept)
        )

    @strawberry.mutation
    async def remove_friend(self, info: Info, user_id: strawberry.ID) -> Relationship:
        return Relationship.of(await social.remove_friend(info.context, user_id))

    @strawberry.mutation
    async def block(self, info: Info, user_id: strawberry.ID) -> Relationship:
        return Relationship.of(await social.block(info.context, user_id))

    @strawberry.mutation
    async def unblock(self, info: Info, user_id: strawberry.ID) -> Relationship:
        return Relationship.of(await social.unblock(info.context, user_id))
