"""GraphQL types of the users domain."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

import strawberry
from strawberry.types import Info

from datasources.users.graph import RelationshipRecord
from datasources.users.store import UserRecord
from resolvers.ids import encode_id
from resolvers.pagination import Page
from resolvers.users import queries
from schema.common import Connection, Node, connection

if TYPE_CHECKING:
    from schema.media.types import Media


NO_CURSOR: Any = strawberry.UNSET
"""Default of `after`: no default value in the SDL, as the contract writes it."""


def given(after: str | None) -> str | None:
    return None if after is strawberry.UNSET else after


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

    @strawberry.field(description="null when nobody is signed in")
    async def viewer_relationship(self, info: Info) -> Relationship | None:
        found = await queries.viewer_relationship(info.context, self.record)
        return Relationship.of(found) if found else None

    @strawberry.field
    async def followers(
        self, info: Info, first: int | None = 20, after: str | None = NO_CURSOR
    ) -> Connection[User]:
        return users_connection(
            await queries.followers(info.context, self.record, first, given(after))
        )

    @strawberry.field
    async def following(
        self, info: Info, first: int | None = 20, after: str | None = NO_CURSOR
    ) -> Connection[User]:
        return users_connection(
            await queries.following(info.context, self.record, first, given(after))
        )

    @strawberry.field(description="Socialink: accepted mutual friendships. Vignette: always empty.")
    async def friends(
        self, info: Info, first: int | None = 20, after: str | None = NO_CURSOR
    ) -> Connection[User]:
        return users_connection(
            await queries.friends(info.context, self.record, first, given(after))
        )

    @classmethod
    async def resolve_reference(cls, info: Info, id: strawberry.ID) -> User | None:
        record = await queries.user_by_global_id(info.context, id)
        return cls(record=record) if record else None


def users_connection(page: Page[UserRecord]) -> Connection[User]:
    wrapped = Page(
        items=[(key, User(record=record)) for key, record in page.items],
        has_next=page.has_next,
        has_previous=page.has_previous,
        total_count=page.total_count,
    )
    return connection(wrapped)


@strawberry.type
class Relationship:
    """The viewer's relationship to a user (see resolvers/users/policy.py)."""

    following: bool
    followed_by: bool
    requested: bool = strawberry.field(
        description="a follow request from the viewer is waiting for approval"
    )
    blocking: bool
    blocked_by: bool
    friends: bool = strawberry.field(description="Socialink only")
    friend_request_sent: bool
    friend_request_received: bool
    is_close_friend: bool

    @classmethod
    def of(cls, record: RelationshipRecord) -> Relationship:
        return cls(
            following=record.following,
            followed_by=record.followed_by,
            requested=record.requested,
            blocking=record.blocking,
            blocked_by=record.blocked_by,
            friends=record.friends,
            friend_request_sent=record.friend_request_sent,
            friend_request_received=record.friend_request_received,
            is_close_friend=record.is_close_friend,
        )


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
