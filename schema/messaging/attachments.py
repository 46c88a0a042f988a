"""GraphQL of encrypted attachments: uploadEncryptedAttachment and its result.
Rules in resolvers/messaging/attachments.py; the bytes are served by
server/attachment_routes.py."""

from __future__ import annotations

from datetime import datetime
from typing import cast

import strawberry
from strawberry.types import Info

from datasources.messaging.attachments import AttachmentRecord
from resolvers.media.uploads import UploadedFile
from resolvers.messaging import attachments as attachment_resolvers
from schema.common import Upload


@strawberry.type(
    description="An end-to-end encrypted attachment: opaque bytes the clients encrypted; "
    "the key travels inside the message."
)
class EncryptedAttachment:
    record: strawberry.Private[AttachmentRecord]

    @strawberry.field
    def id(self) -> strawberry.ID:
        return strawberry.ID(self.record.id)

    @strawberry.field
    def size_bytes(self) -> int:
        return self.record.size_bytes

    @strawberry.field(description="where the holder of the id downloads the bytes")
    def url(self, info: Info) -> str:
        return attachment_resolvers.attachment_url(info.context.settings.public_url, self.record.id)

    @strawberry.field
    def expires_at(self) -> datetime:
        return self.record.expires_at


@strawberry.type
class AttachmentsMutation:
    @strawberry.mutation(
        description="opaque ciphertext, no type detection or processing; expires with the "
        "message retention"
    )
    async def upload_encrypted_attachment(self, info: Info, file: Upload) -> EncryptedAttachment:
        upload = cast(UploadedFile, file)  # Starlette's UploadFile over HTTP
        record = await attachment_resolvers.upload_encrypted_attachment(info.context, upload)
        return EncryptedAttachment(record=record)
