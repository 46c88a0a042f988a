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


@strawberry.federation.type(keys=["id"], name="Media")
class Media(Node):
    record: strawberry.Private[MediaRecord]

    @strawberry.field
    def id(self) -> strawberry.ID:
        return strawberry.ID(encode_id("Media", self.record.id))

    @strawberry.field
    def kind(self) -> MediaKind:
        return MediaKind(self.record.kind)

    @strawberry.field
    def mime_type(self) -> str:
        return self.record.mime_type

    @strawberry.field
    def url(self, info: Info) -> str:
        settings = info.context.settings
        return urls.media_url(settings.public_url, settings.signing_key, self.record)

    @strawberry.field
    def thumbnail_url(self, info: Info) -> str | None:
        settings = info.context.settings
        return urls.thumbnail_url(settings.public_url, settings.signing_key, self.record)

    @strawberry.field
    def width(self) -> int | None:
        return self.record.width

    @strawberry.field
    def height(self) -> int | None:
        return self.record.height

    @strawberry.field
    def duration_ms(self) -> int | None:
        return self.record.duration_ms

    @strawberry.field
    def size_bytes(self) -> int:
        return self.record.size_bytes

    @strawberry.field
    def sha256(self) -> str:
        return self.record.sha256

    @strawberry.field
    def alt_text(self) -> str | None:
        return self.record.alt_text

    @strawberry.field
    def created_at(self) -> datetime:
        return self.record.created_at

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
