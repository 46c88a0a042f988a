"""Objects of another domain that a type points at by id (an author, a media),
loaded through the request's DataLoaders: one batched read per kind per request."""

from __future__ import annotations

from typing import TYPE_CHECKING

from strawberry.types import Info

from resolvers.errors import NotFound

if TYPE_CHECKING:
    from schema.media.types import Media
    from schema.users.types import User


async def load_user(info: Info, user_id: int) -> User:
    """The user (NOT_FOUND when gone: a required author field then fails alone)."""
    from schema.users.types import User

    record = await info.context.loaders.users.by_id.load(user_id)
    if record is None:
        raise NotFound("user")
    return User(record=record)


async def load_media(info: Info, media_id: int | None) -> Media | None:
    from schema.media.types import Media

    if media_id is None:
        return None
    record = await info.context.loaders.media.by_id.load(media_id)
    return Media(record=record) if record else None
