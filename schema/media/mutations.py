"""uploadMedia and deleteMedia."""
from __future__ import annotations

from typing import cast

import strawberry
from strawberry.types import Info

from resolvers.media import uploads
from schema.common import Upload
from schema.media.types import Media


@strawberry.type
class MediaMutation:
    @strawberry.mutation(description="GraphQL multipart request; the type comes from the bytes")
    async def upload_media(
        self, info: Info, file: Upload, alt_text: str | None = strawberry.UNSET
    ) -> Media:
        text = None if alt_text is strawberry.UNSET else alt_text
        # Upload is declared as bytes; over HTTP it is Starlette's UploadFile.
        upload = cast(uploads.UploadedFile, file)
        record = await uploads.upload_media(info.context, upload, text)
        return Media(record=record)

    @strawberry.mutation
    async def delete_media(self, info: Info, id: strawberry.ID) -> bool:
        return await uploads.delete_media(info.context, id)
