"""Encrypted attachments: opaque bytes in, the same bytes out to any signed-in holder of
the id, a size limit that stores nothing past it, and the 30-day purge."""

from __future__ import annotations

import json
import os
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select

from datasources.messaging.call_tables import EncryptedAttachmentRow
from resolvers.messaging.sweeper import sweep_round
from tests.conftest import Account, Result, create_users
from tests.stories_support import Clock

UPLOAD = """
mutation($file: Upload!) { uploadEncryptedAttachment(file: $file) { id sizeBytes url expiresAt } }
"""
# A PNG signature: the server must not care (no type detection, no processing).
PNG_LOOKING = b"\x89PNG\r\n\x1a\n" + os.urandom(2000)


async def upload(http: httpx.AsyncClient, account: Account | None, data: bytes) -> Result:
    operations = {"query": UPLOAD, "variables": {"file": None}}
    headers = {"Authorization": f"Bearer {account.token}"} if account else {}
    response = await http.post(
        "/socialink/graphql",
        data={"operations": json.dumps(operations), "map": json.dumps({"0": ["variables.file"]})},
        files={"0": ("photo.png", data, "image/png")},
        headers=headers,
    )
    return Result(response.status_code, response.json())


async def download(http: httpx.AsyncClient, url: str, token: str | None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return await http.get(url, headers=headers)


async def rows(app: Any) -> list[EncryptedAttachmentRow]:
    async with app.state.runtime.stores.db.session() as session:
        return list(await session.scalars(select(EncryptedAttachmentRow)))


def stored_files(app: Any) -> list[Path]:
    root = Path(app.state.runtime.settings.resolved_media_dir)
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


async def test_upload_and_download_opaque_bytes(app: Any, http: httpx.AsyncClient) -> None:
    clock = Clock()
    app.state.runtime.stores.clock = clock
    ada, bob = await create_users(app, ["ada", "bob"])
    (other,) = await create_users(app, ["other"], platform="vignette")
    result = (await upload(http, ada, PNG_LOOKING)).ok()["uploadEncryptedAttachment"]
    assert result["sizeBytes"] == len(PNG_LOOKING)
    assert len(result["id"]) >= 43  # 256 random bits
    assert result["url"].endswith(f"/attachments/{result['id']}")
    assert datetime.fromisoformat(result["expiresAt"]) == clock.now + timedelta(days=30)

    got = await download(http, result["url"], bob.token)  # any signed-in holder of the id
    assert got.status_code == 200
    assert got.content == PNG_LOOKING  # byte for byte: nothing processed
    assert got.headers["content-type"] == "application/octet-stream"
    assert got.headers["x-content-type-options"] == "nosniff"
    assert (await download(http, result["url"], ada.token)).content == PNG_LOOKING

    assert (await download(http, result["url"], None)).status_code == 401
    assert (await download(http, result["url"], "not-a-token")).status_code == 401
    assert (await download(http, result["url"], other.token)).status_code == 404  # other platform
    guessed = result["url"].replace(result["id"], "A" * len(result["id"]))
    assert (await download(http, guessed, bob.token)).status_code == 404
    (row,) = await rows(app)
    assert row.uploader_id > 0 and row.size_bytes == len(PNG_LOOKING)

    again = (await upload(http, ada, PNG_LOOKING)).ok()["uploadEncryptedAttachment"]
    assert again["id"] != result["id"]  # the same bytes twice: two independent attachments


async def test_signed_out_upload_is_refused(app: Any, http: httpx.AsyncClient) -> None:
    result = await upload(http, None, b"ciphertext")
    assert result.codes == ["UNAUTHENTICATED"]
    assert await rows(app) == []
    assert [p for p in stored_files(app) if ".tmp" not in p.parts] == []


async def test_the_size_limit_stores_nothing_past_it(app: Any, http: httpx.AsyncClient) -> None:
    app.state.runtime.settings.max_encrypted_attachment_bytes = 4096  # 100 MB by default
    (ada,) = await create_users(app, ["ada"])
    too_big = await upload(http, ada, os.urandom(4097))
    assert too_big.codes == ["PAYLOAD_TOO_LARGE"]
    assert too_big.errors[0]["extensions"]["limitBytes"] == 4096
    assert await rows(app) == []
    assert stored_files(app) == []  # not even a temp file
    exactly = (await upload(http, ada, os.urandom(4096))).ok()["uploadEncryptedAttachment"]
    assert exactly["sizeBytes"] == 4096
    assert len(await rows(app)) == 1


async def test_purged_after_the_retention(app: Any, http: httpx.AsyncClient) -> None:
    stores = app.state.runtime.stores
    clock = Clock()
    stores.clock = clock
    ada, bob = await create_users(app, ["ada", "bob"])
    old = (await upload(http, ada, b"old ciphertext")).ok()["uploadEncryptedAttachment"]
    clock.move(days=29)
    new = (await upload(http, ada, b"new ciphertext")).ok()["uploadEncryptedAttachment"]
    assert len(stored_files(app)) == 2

    clock.move(days=1)  # the first is 30 days old
    assert (await download(http, old["url"], bob.token)).status_code == 404  # expired at once
    assert (await sweep_round(stores))["attachments"] == 1  # what the sweeper runs
    assert [row.id for row in await rows(app)] == [new["id"]]
    assert len(stored_files(app)) == 1  # its blob went too
    assert (await download(http, new["url"], bob.token)).content == b"new ciphertext"
    assert (await sweep_round(stores))["attachments"] == 0
