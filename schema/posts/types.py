"""GraphQL types of posts and comments: Post, Comment, Location, Visibility, Commentable.

Every Post and Comment object wraps a record the resolvers already allowed for
the viewer (resolvers/posts/policy.py), so their fields need no second check.
Fields that reach further (author, media, counts of the viewer, comments) load
through the per-request DataLoaders: a page of posts costs one statement per
kind of field, not one per post (tests/test_posts_sql_count.py pins it).
"""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import TYPE_CHECKING, Annotated, Any, Union

import strawberry
from strawberry.types import Info

from datasources.loading import MaybeAwaitable, loaded, then
from datasources.posts.records import CommentRecord, LocationRecord, PostRecord
from resolvers.errors import NotFound
from resolvers.ids import encode_id, split_id
from resolvers.pagination import Page
from resolvers.posts import comments as comment_resolvers
from resolvers.posts import engagement
from resolvers.posts import posts as post_resolvers
from resolvers.posts.explore import RankedPage
from schema.common import (
    NO_CURSOR,
    Connection,
    Edge,
    Node,
    connection,
    edges_connection,
    given,
    node_fields,
)

if TYPE_CHECKING:
    from schema.media.types import Media
    from schema.posts.takes import Take
    from schema.users.types import User


@strawberry.enum
class Visibility(Enum):
    PUBLIC = "PUBLIC"
    FOLLOWERS = "FOLLOWERS"
    FRIENDS = "FRIENDS"
    PRIVATE = "PRIVATE"


@strawberry.federation.type(keys=["id"], name="Location", shareable=True)
class Location(Node):
    record: strawberry.Private[LocationRecord]

    @strawberry.field
    def id(self) -> strawberry.ID:
        return strawberry.ID(encode_id("Location", self.record.id))

    @strawberry.field
    def name(self) -> str:
        return self.record.name

    @strawberry.field
    def latitude(self) -> float:
        return self.record.latitude

    @strawberry.field
    def longitude(self) -> float:
        return self.record.longitude

    @classmethod
    async def resolve_reference(cls, info: Info, id: strawberry.ID) -> Location | None:
        parts = split_id(id)
        if parts is None or parts[0] != "Location" or not parts[1].isdigit():
            return None
        record = await info.context.loaders.posts.location.load(int(parts[1]))
        return cls(record=record) if record else None


def _user(info: Info, user_id: int) -> MaybeAwaitable[User]:
    from schema.users.types import User

    def wrap(record: Any) -> User:
        if record is None:
            raise NotFound("user")
        return User(record=record)

    return then(loaded(info.context.loaders.users.by_id, user_id), wrap)


@strawberry.federation.type(keys=["id"], name="Post")
class Post(Node):
    """Scalar fields (the global id too) are plain attributes, copied from the record
    when the object is made: graphql-core reads them without calling a resolver (a
    page of 20 posts has hundreds of such fields, and each resolver call costs more
    than the copy)."""

    record: strawberry.Private[PostRecord]

    id: strawberry.ID = strawberry.UNSET  # type: ignore[assignment]  # Node's, as a plain value

    def __post_init__(self) -> None:
        record = self.record
        self.id = strawberry.ID(encode_id("Post", record.id))
        self.caption = record.caption
        self.hashtags = list(record.hashtags)
        self.visibility = Visibility(record.visibility)
        self.created_at = record.created_at
        self.edited_at = record.edited_at
        self.like_count = record.like_count
        self.comment_count = record.comment_count
        self.share_count = record.share_count
        self.save_count = record.save_count

    @strawberry.field
    def author(self, info: Info) -> Annotated[User, strawberry.lazy("schema.users.types")]:
        return _user(info, self.record.author_id)  # type: ignore[return-value]

    caption: str | None = None

    @strawberry.field
    def media(self, info: Info) -> list[Annotated[Media, strawberry.lazy("schema.media.types")]]:
        from schema.media.types import Media

        def wrap(records: Any) -> list[Media]:
            return [Media(record=record) for record in records]

        found = loaded(info.context.loaders.posts.media, self.record.id)
        return then(found, wrap)  # type: ignore[return-value]

    hashtags: list[str] = strawberry.UNSET

    @strawberry.field
    async def mentions(
        self, info: Info
    ) -> list[Annotated[User, strawberry.lazy("schema.users.types")]]:
        from schema.users.types import User

        ids = await info.context.loaders.posts.mentions.load(self.record.id)
        users = await info.context.loaders.users.by_id.load_many(ids)
        return [User(record=user) for user in users if user is not None]

    @strawberry.field
    def location(self) -> Location | None:
        return Location(record=self.record.location) if self.record.location else None

    visibility: Visibility = strawberry.UNSET

    created_at: datetime = strawberry.UNSET

    edited_at: datetime | None = None

    like_count: int = strawberry.UNSET

    comment_count: int = strawberry.UNSET

    share_count: int = strawberry.UNSET

    save_count: int = strawberry.UNSET

    @strawberry.field
    def viewer_has_liked(self, info: Info) -> bool:
        return engagement.viewer_has(info.context, self.record, "liked")  # type: ignore[return-value]

    @strawberry.field
    def viewer_has_saved(self, info: Info) -> bool:
        return engagement.viewer_has(info.context, self.record, "saved")  # type: ignore[return-value]

    @strawberry.field(description="set when this post is a share of another post")
    async def shared_post(self, info: Info) -> Post | None:
        record = await post_resolvers.shared_post(info.context, self.record)
        return Post(record=record) if record else None

    @strawberry.field
    def comments(
        self, info: Info, first: int | None = 20, after: str | None = NO_CURSOR
    ) -> Connection[Comment]:
        found = comment_resolvers.thread_now(
            info.context, "post", self.record.id, first, given(after)
        )
        return then(found, comments_of)  # type: ignore[return-value]

    @strawberry.field
    async def likers(
        self, info: Info, first: int | None = 20, after: str | None = NO_CURSOR
    ) -> Connection[Annotated[User, strawberry.lazy("schema.users.types")]]:
        from schema.users.types import users_connection

        page = await engagement.likers(info.context, self.record, first, given(after))
        return users_connection(page)  # type: ignore[return-value]

    @classmethod
    async def resolve_reference(cls, info: Info, id: strawberry.ID) -> Post | None:
        record = await post_resolvers.post_by_global_id(info.context, id)
        return cls(record=record) if record else None


@strawberry.federation.type(keys=["id"], name="Comment")
class Comment(Node):
    """Scalar fields are plain attributes, as on Post (and for the same reason)."""

    record: strawberry.Private[CommentRecord]

    id: strawberry.ID = strawberry.UNSET  # type: ignore[assignment]  # Node's, as a plain value

    def __post_init__(self) -> None:
        self.id = strawberry.ID(encode_id("Comment", self.record.id))
        self.body = self.record.body
        self.like_count = self.record.like_count
        self.created_at = self.record.created_at

    @strawberry.field
    def author(self, info: Info) -> Annotated[User, strawberry.lazy("schema.users.types")]:
        return _user(info, self.record.author_id)  # type: ignore[return-value]

    body: str = strawberry.UNSET

    @strawberry.field(description="the post or take commented on")
    async def subject(
        self, info: Info
    ) -> Annotated[
        Union[Post, Annotated[Take, strawberry.lazy("schema.posts.takes")]],  # noqa: UP007
        strawberry.union("Commentable"),
    ]:
        record = await comment_resolvers.subject_record(info.context, self.record)
        if isinstance(record, PostRecord):
            return Post(record=record)
        from schema.posts.takes import Take

        return Take(record=record)

    @strawberry.field
    async def parent(self, info: Info) -> Comment | None:
        record = await comment_resolvers.parent(info.context, self.record)
        return Comment(record=record) if record else None

    @strawberry.field
    async def replies(
        self, info: Info, first: int | None = 20, after: str | None = NO_CURSOR
    ) -> Connection[Comment]:
        page = await comment_resolvers.replies_page(info.context, self.record, first, given(after))
        return comments_of(page)

    like_count: int = strawberry.UNSET

    @strawberry.field
    def viewer_has_liked(self, info: Info) -> bool:
        viewer_id = info.context.viewer_id
        if viewer_id is None:
            return False
        loader = info.context.loaders.posts.comment_liked(viewer_id)
        return loaded(loader, self.record.id)  # type: ignore[return-value]

    created_at: datetime = strawberry.UNSET

    @classmethod
    async def resolve_reference(cls, info: Info, id: strawberry.ID) -> Comment | None:
        record = await comment_resolvers.comment_by_global_id(info.context, id)
        return cls(record=record) if record else None


# ── connections ──────────────────────────────────────────────────────────


def posts_of(page: Page[PostRecord]) -> Connection[Post]:
    return connection(page.map(lambda record: Post(record=record)))


async def prefetched_posts(info: Info, page: Page[PostRecord]) -> Connection[Post]:
    """`posts_of`, after loading in one batch each what the selection asks of the
    posts (media, the viewer's likes and saves, first comments)."""
    await post_resolvers.prefetch(info.context, [r for _, r in page.items], wanted(info))
    return posts_of(page)


def wanted(info: Info) -> post_resolvers.Wanted:
    """What a connection's query selects on its posts (see schema.common.node_fields)."""
    fields = node_fields(info)
    names = {field.name for field in fields}
    comments = None
    if "comments" in names:
        arguments = {_page_arguments(f.arguments) for f in fields if f.name == "comments"}
        if len(arguments) == 1:  # one page of comments asked for: worth loading ahead
            comments = next(iter(arguments))
    return post_resolvers.Wanted(
        media="media" in names,
        liked="viewerHasLiked" in names,
        saved="viewerHasSaved" in names,
        comments=comments,
    )


def _page_arguments(arguments: dict[str, Any]) -> tuple[int | None, str | None] | None:
    """(first, after) as given (literals arrive unparsed); None when not plainly valid,
    so the field itself reports the error."""
    first, after = arguments.get("first", 20), arguments.get("after")
    if isinstance(first, str) and first.isdigit():
        first = int(first)
    if (first is not None and not isinstance(first, int)) or not (
        after is None or isinstance(after, str)
    ):
        return None
    return first, after


def ranked_posts(page: RankedPage) -> Connection[Post]:
    """A ranked page (explore), whose cursors are already encoded."""
    edges = [Edge(position=cursor, node=Post(record=record)) for cursor, record in page.items]
    return edges_connection(edges, page.has_next, page.has_previous, page.total_count)


def comments_of(page: Page[CommentRecord]) -> Connection[Comment]:
    return connection(page.map(lambda record: Comment(record=record)))


async def comments_connection(
    info: Info, subject_type: str, subject_id: int, first: int | None, after: str | None
) -> Connection[Comment]:
    """The comments field of a commentable subject (Post.comments, Take.comments):
    top-level comments, oldest first, batched across subjects. The caller has
    already shown the subject to the viewer (its object exists only if visible)."""
    page = await comment_resolvers.comments_page(
        info.context, subject_type, subject_id, first, after
    )
    return comments_of(page)


# ── inputs ───────────────────────────────────────────────────────────────


@strawberry.input
class LocationInput:
    name: str
    latitude: float
    longitude: float


@strawberry.input
class CreatePostInput:
    caption: str | None = strawberry.UNSET
    media_ids: list[strawberry.ID] = strawberry.field(default_factory=list)
    visibility: Visibility | None = Visibility.PUBLIC
    location: LocationInput | None = strawberry.UNSET


@strawberry.input
class AddCommentInput:
    post_id: strawberry.ID | None = strawberry.field(
        default=strawberry.UNSET, description="exactly one of postId / takeId"
    )
    take_id: strawberry.ID | None = strawberry.UNSET
    body: str
    parent_id: strawberry.ID | None = strawberry.UNSET


@strawberry.input
class SharePostInput:
    post_id: strawberry.ID
    caption: str | None = strawberry.UNSET
