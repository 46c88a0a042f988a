"""User.posts: the field the posts domain contributes to the users domain's User.

A mixin (never registered on its own): `schema.users.types.User` inherits it,
and schema/domains.py lists it under the posts domain's `contributes`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import strawberry
from strawberry.types import Info

from resolvers.posts import posts
from schema.common import NO_CURSOR, Connection, given

if TYPE_CHECKING:
    from datasources.users.store import UserRecord
    from schema.posts.types import Post


@strawberry.type
class UserPostsFields:
    # `record` is User's own field; declared for type checkers only, so that the
    # mixin's GraphQL fields are exactly what it contributes (`posts`).
    if TYPE_CHECKING:
        record: UserRecord

    @strawberry.field(
        description="newest first, those the viewer may see; FORBIDDEN for a private "
        "account's non-followers"
    )
    async def posts(
        self, info: Info, first: int | None = 20, after: str | None = NO_CURSOR
    ) -> Connection[Annotated[Post, strawberry.lazy("schema.posts.types")]]:
        from schema.posts.types import prefetched_posts

        page = await posts.user_posts(info.context, self.record, first, given(after))
        return await prefetched_posts(info, page)
