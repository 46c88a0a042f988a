"""GraphQL types of the users domain."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import strawberry
from strawberry.types import Info

from datasources.loading import MaybeAwaitable, loaded, then
from datasources.users.graph import RelationshipRecord
from datasources.users.store import UserRecord
from resolvers.ids import encode_id
from resolvers.pagination import Page
from resolvers.users import queries
from schema.common import NO_CURSOR, Connection, Node, connection, given, node_selection
from schema.messaging.user_fields import UserPresenceFields
from schema.posts.user_fields import UserPostsFields
from schema.posts.user_takes import UserTakesFields
from schema.stories.user_fields import UserStoriesFields

if TYPE_CHECKING:
    from schema.media.types import Media


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


def _avatar(root: User, info: Info) -> MaybeAwaitable[Media | None]:
    """User.avatar: the media, at once when this request already loaded it."""
    from schema.media.types import Media

    if root.record.avatar_media_id is None:
        return None
    media = loaded(info.context.loaders.media.by_id, root.record.avatar_media_id)
    return then(media, lambda found: Media(record=found) if found else None)


@strawberry.federation.type(keys=["id"], name="User")
class User(Node, UserPostsFields, UserTakesFields, UserStoriesFields, UserPresenceFields):
    """Scalar fields (the global id too) are plain attributes copied from the record
    when the object is made, as on Post (schema/posts/types.py): graphql-core reads
    them without a resolver call, and a page of posts with their authors and their
    comments' authors asks for dozens of them."""

    record: strawberry.Private[UserRecord]

    id: strawberry.ID = strawberry.UNSET  # type: ignore[assignment]  # Node's, as a plain value

    def __post_init__(self) -> None:
        record = self.record
        self.id = strawberry.ID(encode_id("User", record.id))
        self.username = record.username
        self.display_name = record.display_name
        self.bio = record.bio
        self.is_private = record.is_private
        self.is_verified = record.is_verified
        self.created_at = record.created_at
        self.follower_count = record.follower_count
        self.following_count = record.following_count

    username: str = strawberry.UNSET

    display_name: str = strawberry.UNSET

    bio: str | None = None

    # Declared here (not as a decorated method, whose field strawberry would list after
    # every plain attribute) to keep the served schema's field order.
    avatar: MaybeAwaitable[Media | None] = strawberry.field(
        resolver=_avatar,
        graphql_type=Annotated["Media", strawberry.lazy("schema.media.types")] | None,
    )

    is_private: bool = strawberry.UNSET

    is_verified: bool = strawberry.UNSET

    created_at: datetime = strawberry.UNSET

    follower_count: int = strawberry.UNSET

    following_count: int = strawberry.UNSET

    @strawberry.field(description="null when nobody is signed in", graphql_type=Relationship | None)
    def viewer_relationship(self, info: Info) -> MaybeAwaitable[Relationship | None]:
        found = queries.viewer_relationship(info.context, self.record)
        return then(found, lambda shown: Relationship.of(shown) if shown else None)

    @strawberry.field
    async def followers(
        self, info: Info, first: int | None = 20, after: str | None = NO_CURSOR
    ) -> Connection[User]:
        page = await queries.followers(info.context, self.record, first, given(after))
        return await prefetched_users_connection(info, page)

    @strawberry.field
    async def following(
        self, info: Info, first: int | None = 20, after: str | None = NO_CURSOR
    ) -> Connection[User]:
        page = await queries.following(info.context, self.record, first, given(after))
        return await prefetched_users_connection(info, page)

    @strawberry.field(description="Socialink: accepted mutual friendships. Vignette: always empty.")
    async def friends(
        self, info: Info, first: int | None = 20, after: str | None = NO_CURSOR
    ) -> Connection[User]:
        page = await queries.friends(info.context, self.record, first, given(after))
        return await prefetched_users_connection(info, page)

    @classmethod
    async def resolve_reference(cls, info: Info, id: strawberry.ID) -> User | None:
        record = await queries.user_by_global_id(info.context, id)
        return cls(record=record) if record else None


async def prefetched_users_connection(info: Info, page: Page[UserRecord]) -> Connection[User]:
    """`users_connection`, after loading in one batch each what the selection asks of
    the nodes' avatars and viewer relationships (see datasources/loading.py)."""
    wanted = node_selection(info)
    await queries.prefetch(
        info.context,
        [record for _, record in page.items],
        avatars="avatar" in wanted,
        relationships="viewerRelationship" in wanted,
    )
    return users_connection(page)


def users_connection(page: Page[UserRecord]) -> Connection[User]:
    return connection(page.map(lambda record: User(record=record)))


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
