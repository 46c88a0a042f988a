"""GraphQL types of the users domain."""
from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import strawberry
from strawberry.types import Info

from datasources.users.store import UserRecord
from resolvers.ids import encode_id
from resolvers.users import queries
from schema.common import Node

if TYPE_CHECKING:
    from schema.media.types import Media


@strawberry.federation.type(keys=["id"], name="User")
class User(Node):
    record: strawberry.Private[UserRecord]

    @strawberry.field
    def id(self) -> strawberry.ID:
        return strawberry.ID(encode_id("User", self.record.id))

    @strawberry.field
    def username(self) -> str:
        return self.record.username

    @strawberry.field
    def display_name(self) -> str:
        return self.record.display_name

    @strawberry.field
    def bio(self) -> str | None:
        return self.record.bio

    @strawberry.field
    async def avatar(
        self, info: Info
    ) -> Annotated[Media, strawberry.lazy("schema.media.types")] | None:
        from schema.media.types import Media

        if self.record.avatar_media_id is None:
            return None
        media = await info.context.loaders.media.by_id.load(self.record.avatar_media_id)
        return Media(record=media) if media else None

    @strawberry.field
    def is_private(self) -> bool:
        return self.record.is_private

    @strawberry.field
    def is_verified(self) -> bool:
        return self.record.is_verified

    @strawberry.field
    def created_at(self) -> datetime:
        return self.record.created_at

    @strawberry.field
    def follower_count(self) -> int:
        return self.record.follower_count

    @strawberry.field
    def following_count(self) -> int:
        return self.record.following_count

    @classmethod
    async def resolve_reference(cls, info: Info, id: strawberry.ID) -> User | None:
        record = await queries.user_by_global_id(info.context, id)
        return cls(record=record) if record else None


@strawberry.type
class AuthPayload:
    access_token: str
    refresh_token: str
    expires_at: datetime
    user: User


@strawberry.input
class SignUpInput:
    username: str
    email: str
    password: str
    display_name: str | None = None


@strawberry.input
class SignInInput:
    login: str
    password: str


@strawberry.input
class UpdateProfileInput:
    display_name: str | None = strawberry.UNSET
    bio: str | None = strawberry.UNSET
    avatar_media_id: strawberry.ID | None = strawberry.UNSET
    is_private: bool | None = strawberry.UNSET
