"""User.takes: the field the posts domain contributes to the users domain's User.

A mixin (never registered on its own): `schema.users.types.User` inherits it,
and schema/domains.py lists it under the posts domain's `contributes`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import strawberry
from strawberry.types import Info

from resolvers.posts import takes as take_resolvers
from schema.common import NO_CURSOR, Connection, given

if TYPE_CHECKING:
    from datasources.users.store import UserRecord
    from schema.posts.takes import Take


@strawberry.type
class UserTakesFields:
    # `record` is User's own field; declared for type checkers only, so that the
    # mixin's GraphQL fields are exactly what it contributes (`takes`).
    if TYPE_CHECKING:
        record: UserRecord

    @strawberry.field(description="newest first; FORBIDDEN for a private account's non-followers")
    async def takes(
        self, info: Info, first: int | None = 20, after: str | None = NO_CURSOR
    ) -> Connection[Annotated[Take, strawberry.lazy("schema.posts.takes")]]:
        from schema.posts.takes import prefetched_takes

        listing = await take_resolvers.user_takes(info.context, self.record, first, given(after))
        return await prefetched_takes(info, listing)
