"""GraphQL types of the media domain."""
from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import TYPE_CHECKING, Annotated

import strawberry
from strawberry.types import Info

from datasources.media.store import MediaRecord
from resolvers.ids import encode_id
from resolvers.media import urls
from schema.common import Node

if TYPE_CHECKING:
    from schema.users.types import User


@strawberry.enum
class MediaKind(Enum):
    IMAGE = "IMAGE"
    VIDEO = "VIDEO"
    AUDIO = "AUDIO"


def _url(root: Media, info: Info) -> str:
    settings = info.context.settings
    return urls.media_url(settings.public_url, settings.signing_key, root.record)


def _thumbnail_url(root: Media, info: Info) -> str | None:
    settings = info.context.settings
    return urls.thumbnail_url(settings.public_url, settings.signing_key, root.record)


@strawberry.federation.type(keys=["id"], name="Media")
class Media(Node):
    """Scalar fields are plain attributes copied from the record, as on Post (and for
    the same reason: graphql-core reads them without a resolver call)."""

    record: strawberry.Private[MediaRecord]

    id: strawberry.ID = strawberry.UNSET  # type: ignore[assignment]  # Node's, as a plain value

    def __post_init__(self) -> None:
        record = self.record
        self.id = strawberry.ID(encode_id("Media", record.id))
        self.kind = MediaKind(record.kind)
        self.mime_type = record.mime_type
        self.width = record.width
        self.height = record.height
        self.duration_ms = record.duration_ms
        self.size_bytes = record.size_bytes
        self.sha256 = record.sha256
        self.alt_text = record.alt_text
        self.created_at = record.created_at

    kind: MediaKind = strawberry.UNSET

    mime_type: str = strawberry.UNSET

    url: str = strawberry.field(resolver=_url)

    thumbnail_url: str | None = strawberry.field(resolver=_thumbnail_url)

    width: int | None = None

    height: int | None = None

    duration_ms: int | None = None

    size_bytes: int = strawberry.UNSET

    sha256: str = strawberry.UNSET

    alt_text: str | None = None

    created_at: datetime = strawberry.UNSET

    @strawberry.field
    async def owner(self, info: Info) -> Annotated[User, strawberry.lazy("schema.users.types")]:
        from schema.users.types import User

        record = await info.context.loaders.users.by_id.load(self.record.owner_id)
        return User(record=record)

    @classmethod
    async def resolve_reference(cls, info: Info, id: strawberry.ID) -> Media | None:
        from resolvers.media.queries import media_by_global_id

        record = await media_by_global_id(info.context, id)
        return cls(record=record) if record else None
