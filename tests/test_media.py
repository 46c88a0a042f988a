"""uploadMedia / deleteMedia over the GraphQL multipart request spec, and serving the bytes."""
from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image
from sqlalchemy import func, select

from datasources.media.tables import MediaRow
from resolvers.ids import encode_id
from tests.conftest import Account, GraphQLClient, Result, sign_up
from tests.fixtures.media import samples
from tests.fixtures.media.samples import FILE_SAMPLES, GPS_IFD, Sample, fixture

MEDIA_FIELDS = (
    "id kind mimeType url thumbnailUrl width height durationMs sizeBytes sha256 altText"
    " owner { username }"
)
UPLOAD = f"""
mutation($file: Upload!, $altText: String) {{
  uploadMedia(file: $file, altText: $altText) {{ {MEDIA_FIELDS} }}
}}
"""
DELETE = "mutation($id: ID!) { deleteMedia(id: $id) }"
MEDIA = f"query($id: ID!) {{ media(id: $id) {{ {MEDIA_FIELDS} }} }}"


async def upload(
    http: httpx.AsyncClient,
    account: Account | None,
    data: bytes,
    filename: str = "upload.bin",
    content_type: str = "application/octet-stream",
    alt_text: str | None = None,
    platform: str | None = None,
) -> Result:
    """POST a GraphQL multipart request (operations + map + the file), as Apollo clients do."""
    operations = {"query": UPLOAD, "variables": {"file": None, "altText": alt_text}}
    headers = {"Authorization": f"Bearer {account.token}"} if account else {}
    response = await http.post(
        f"/{platform or (account.platform if account else 'socialink')}/graphql",
        data={"operations": json.dumps(operations), "map": json.dumps({"0": ["variables.file"]})},
        files={"0": (filename, data, content_type)},
        headers=headers,
    )
    return Result(response.status_code, response.json())


def media_dir(app: Any) -> Path:
    return Path(app.state.runtime.settings.resolved_media_dir)


def stored_files(app: Any) -> list[Path]:
    """Every file under the media directory, temp files included."""
    root = media_dir(app)
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


async def media_rows(app: Any) -> int:
    async with app.state.runtime.stores.db.session() as session:
        return int(await session.scalar(select(func.count()).select_from(MediaRow)) or 0)


async def assert_nothing_stored(app: Any) -> None:
    assert await media_rows(app) == 0
    assert stored_files(app) == []


def path_of(url: str) -> str:
    return httpx.URL(url).path if url.startswith("http") else url


@pytest.fixture
async def alice(gql: GraphQLClient) -> Account:
    return await sign_up(gql, "alice")


@pytest.mark.parametrize("sample", FILE_SAMPLES, ids=lambda s: s.name)
async def test_upload_video_and_audio(
    http: httpx.AsyncClient, alice: Account, sample: Sample
) -> None:
    data = fixture(sample.name)
    media = (await upload(http, alice, data, sample.name, "application/octet-stream")).ok()[
        "uploadMedia"
    ]
    assert (media["kind"], media["mimeType"]) == (sample.kind, sample.mime_type)
    assert (media["width"], media["height"]) == (sample.width, sample.height)
    assert media["durationMs"] == pytest.approx(sample.duration_ms, abs=30)
    assert media["thumbnailUrl"] is None
    assert media["owner"] == {"username": "alice"}
    served = await http.get(path_of(media["url"]))
    assert served.status_code == 200
    assert served.headers["content-type"].startswith(sample.mime_type)
    assert media["sizeBytes"] == len(served.content)
    assert media["sha256"] == hashlib.sha256(served.content).hexdigest()
    if sample.name != "rotated-geo.mov":  # the only one whose bytes had to change
        assert served.content == data


@pytest.mark.parametrize(
    ("make", "mime_type"),
    [
        (samples.jpeg_with_gps, "image/jpeg"),
        (samples.png, "image/png"),
        (samples.webp_with_gps, "image/webp"),
        (samples.gif, "image/gif"),
    ],
    ids=["jpeg", "png", "webp", "gif"],
)
async def test_upload_images(
    http: httpx.AsyncClient, alice: Account, make: Any, mime_type: str
) -> None:
    result = await upload(http, alice, make(), "picture", mime_type, alt_text="a gradient")
    media = result.ok()["uploadMedia"]
    assert (media["kind"], media["mimeType"], media["width"], media["height"]) == (
        "IMAGE", mime_type, 64, 48
    )
    assert media["durationMs"] is None and media["altText"] == "a gradient"
    served = await http.get(path_of(media["url"]))
    assert served.headers["content-type"] == mime_type
    assert media["sizeBytes"] == len(served.content)
    assert media["sha256"] == hashlib.sha256(served.content).hexdigest()
    again = (await GraphQLClient(http)(MEDIA, {"id": media["id"]})).ok()["media"]
    assert again == media


async def test_type_comes_from_the_bytes_not_the_name_or_content_type(
    http: httpx.AsyncClient, alice: Account
) -> None:
    media = (await upload(http, alice, samples.png(), "x.mp4", "video/mp4")).ok()["uploadMedia"]
    assert (media["kind"], media["mimeType"]) == ("IMAGE", "image/png")
    served = await http.get(path_of(media["url"]))
    assert served.headers["content-type"] == "image/png"


async def test_text_named_like_a_photo_is_refused_and_nothing_is_stored(
    app: Any, http: httpx.AsyncClient, alice: Account
) -> None:
    result = await upload(http, alice, b"just some text\n" * 50, "photo.jpg", "image/jpeg")
    assert result.codes == ["BAD_USER_INPUT"]
    assert result.errors[0]["extensions"]["field"] == "file"
    await assert_nothing_stored(app)


async def test_a_truncated_video_is_refused_and_nothing_is_stored(
    app: Any, http: httpx.AsyncClient, alice: Account
) -> None:
    result = await upload(http, alice, fixture("sample.mp4")[:3000], "clip.mp4", "video/mp4")
    assert result.codes == ["BAD_USER_INPUT"]
    assert result.errors[0]["extensions"]["field"] == "file"
    await assert_nothing_stored(app)


@pytest.mark.parametrize(
    ("setting", "data"),
    [
        ("max_image_bytes", samples.png()),
        ("max_video_bytes", fixture("sample.mp4")),
        ("max_audio_bytes", fixture("sample.ogg")),
        ("max_audio_bytes", fixture("sample.m4a")),  # an MP4 container, held to the audio limit
    ],
    ids=["image", "video", "audio", "audio-in-mp4"],
)
async def test_over_the_limit_is_payload_too_large_and_nothing_is_stored(
    app: Any, http: httpx.AsyncClient, alice: Account, setting: str, data: bytes
) -> None:
    setattr(app.state.runtime.settings, setting, len(data) - 1)
    result = await upload(http, alice, data)
    assert result.codes == ["PAYLOAD_TOO_LARGE"]
    assert result.errors[0]["extensions"]["limitBytes"] == len(data) - 1
    await assert_nothing_stored(app)
    setattr(app.state.runtime.settings, setting, len(data))
    assert (await upload(http, alice, data)).ok()["uploadMedia"]["sizeBytes"] == len(data)


async def test_a_large_upload_streams_in_chunks_up_to_the_limit(
    app: Any, http: httpx.AsyncClient, alice: Account
) -> None:
    app.state.runtime.settings.max_audio_bytes = 3 * 1024 * 1024
    frames = fixture("sample-bare.mp3")
    big = frames * (4 * 1024 * 1024 // len(frames))  # 4 MB of valid MP3 frames
    result = await upload(http, alice, big, "long.mp3", "audio/mpeg")
    assert result.codes == ["PAYLOAD_TOO_LARGE"]
    await assert_nothing_stored(app)


async def test_signed_out_upload_is_unauthenticated(app: Any, http: httpx.AsyncClient) -> None:
    result = await upload(http, None, samples.png())
    assert result.codes == ["UNAUTHENTICATED"]
    await assert_nothing_stored(app)


async def test_alt_text_longer_than_1000_characters_is_refused(
    app: Any, http: httpx.AsyncClient, alice: Account
) -> None:
    result = await upload(http, alice, samples.png(), alt_text="x" * 1001)
    assert result.codes == ["BAD_USER_INPUT"]
    assert result.errors[0]["extensions"]["field"] == "altText"
    await assert_nothing_stored(app)
    ok = await upload(http, alice, samples.png(), alt_text="é" * 1000)
    assert ok.ok()["uploadMedia"]["altText"] == "é" * 1000


async def test_a_failed_row_insert_removes_the_blobs(
    app: Any, http: httpx.AsyncClient, alice: Account, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken_create(*_args: Any) -> None:
        raise RuntimeError("database went away")

    monkeypatch.setattr(app.state.runtime.stores.media, "create", broken_create)
    result = await upload(http, alice, samples.jpeg_with_gps())
    assert result.codes == ["INTERNAL_SERVER_ERROR"]
    await assert_nothing_stored(app)


async def test_served_photo_has_no_gps(http: httpx.AsyncClient, alice: Account) -> None:
    original = samples.jpeg_with_gps()
    with Image.open(io.BytesIO(original)) as image:
        assert image.getexif().get_ifd(GPS_IFD)
    media = (await upload(http, alice, original, "IMG_0001.jpg", "image/jpeg")).ok()["uploadMedia"]
    served = (await http.get(path_of(media["url"]))).content
    with Image.open(io.BytesIO(served)) as image:
        assert image.getexif().get_ifd(GPS_IFD) == {}
        assert image.getexif()[samples.MAKE] == "Entativa Camera"
    assert media["sha256"] == hashlib.sha256(served).hexdigest()
    thumbnail = (await http.get(path_of(media["thumbnailUrl"]))).content
    with Image.open(io.BytesIO(thumbnail)) as image:
        assert image.getexif().get_ifd(GPS_IFD) == {}


async def test_thumbnail_is_webp_at_most_320_pixels(
    http: httpx.AsyncClient, alice: Account
) -> None:
    data = samples.encode(samples.gradient((800, 600)), "PNG")
    media = (await upload(http, alice, data)).ok()["uploadMedia"]
    assert media["thumbnailUrl"] == media["url"] + "/thumbnail"
    response = await http.get(path_of(media["thumbnailUrl"]))
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/webp"
    with Image.open(io.BytesIO(response.content)) as image:
        assert image.format == "WEBP" and image.size == (320, 240)
    video = (await upload(http, alice, fixture("sample.mp4"))).ok()["uploadMedia"]
    assert video["thumbnailUrl"] is None
    assert (await http.get(path_of(video["url"]) + "/thumbnail")).status_code == 404


async def test_serving_headers_conditional_and_range_requests(
    http: httpx.AsyncClient, alice: Account
) -> None:
    data = fixture("sample.mp4")
    media = (await upload(http, alice, data)).ok()["uploadMedia"]
    url, size, etag = path_of(media["url"]), len(data), f'"{media["sha256"]}"'

    full = await http.get(url)
    assert full.status_code == 200 and full.content == data
    assert full.headers["content-type"] == "video/mp4"
    assert full.headers["etag"] == etag
    assert full.headers["accept-ranges"] == "bytes"
    assert full.headers["content-length"] == str(size)
    assert "immutable" in full.headers["cache-control"]
    assert "max-age=31536000" in full.headers["cache-control"]

    for if_none_match in (etag, f"W/{etag}", f'"other", {etag}', "*"):
        cached = await http.get(url, headers={"If-None-Match": if_none_match})
        assert cached.status_code == 304 and cached.content == b""
        assert cached.headers["etag"] == etag
    assert (await http.get(url, headers={"If-None-Match": '"other"'})).status_code == 200

    for header, start, end in (
        ("bytes=0-9", 0, 9),
        ("bytes=100-", 100, size - 1),
        ("bytes=-50", size - 50, size - 1),
        (f"bytes=10-{size + 1000}", 10, size - 1),
    ):
        part = await http.get(url, headers={"Range": header})
        assert part.status_code == 206, header
        assert part.headers["content-range"] == f"bytes {start}-{end}/{size}"
        assert part.content == data[start : end + 1]

    for unsatisfiable in (f"bytes={size}-", f"bytes={size + 5}-{size + 10}", "bytes=-0"):
        refused = await http.get(url, headers={"Range": unsatisfiable})
        assert refused.status_code == 416, unsatisfiable
        assert refused.headers["content-range"] == f"bytes */{size}"

    stale = await http.get(url, headers={"Range": "bytes=0-9", "If-Range": '"old"'})
    assert stale.status_code == 200 and stale.content == data
    fresh = await http.get(url, headers={"Range": "bytes=0-9", "If-Range": etag})
    assert fresh.status_code == 206

    head = await http.head(url)
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-length"] == str(size) and head.headers["etag"] == etag


async def test_unknown_media_urls_are_404(http: httpx.AsyncClient) -> None:
    for path in (
        f"/media/{encode_id('Media', 999)}",
        f"/media/{encode_id('Media', 999)}/somekey",
        f"/media/{encode_id('User', 1)}/somekey",
        "/media/not-an-id/somekey",
        f"/media/{encode_id('Media', 999)}/somekey/thumbnail",
    ):
        assert (await http.get(path)).status_code == 404, path


async def test_media_bytes_need_the_key_the_graph_gave(
    http: httpx.AsyncClient, alice: Account
) -> None:
    """Ids are guessable; the bytes open only with the URL the graph handed out."""
    first = (await upload(http, alice, samples.png())).ok()["uploadMedia"]
    second = (await upload(http, alice, samples.png((12, 12)))).ok()["uploadMedia"]
    first_path, second_path = path_of(first["url"]), path_of(second["url"])
    assert (await http.get(first_path)).status_code == 200
    assert (await http.get(first_path + "/thumbnail")).status_code == 200

    first_id, first_key = first_path.split("/")[2:4]
    second_id, second_key = second_path.split("/")[2:4]
    refused = [
        f"/media/{first_id}",  # no key
        f"/media/{first_id}/{first_key[:-1]}",  # a truncated key
        f"/media/{first_id}/{second_key}",  # another media's key
        f"/media/{second_id}/{first_key}/thumbnail",
    ]
    for path in refused:
        assert (await http.get(path)).status_code == 404, path


async def test_delete_by_a_stranger_is_forbidden_and_keeps_the_media(
    gql: GraphQLClient, http: httpx.AsyncClient, alice: Account
) -> None:
    media = (await upload(http, alice, samples.png())).ok()["uploadMedia"]
    mallory = await sign_up(gql, "mallory")
    result = await gql(DELETE, {"id": media["id"]}, token=mallory.token)
    assert result.codes == ["FORBIDDEN"]
    assert (await gql(MEDIA, {"id": media["id"]})).ok()["media"]["id"] == media["id"]
    assert (await http.get(path_of(media["url"]))).status_code == 200


async def test_delete_by_the_owner_removes_row_bytes_and_avatar(
    app: Any, gql: GraphQLClient, http: httpx.AsyncClient, alice: Account
) -> None:
    media = (await upload(http, alice, samples.jpeg_with_gps())).ok()["uploadMedia"]
    keep = (await upload(http, alice, samples.png())).ok()["uploadMedia"]
    avatar = await gql(
        "mutation($id: ID) { updateProfile(input: {avatarMediaId: $id}) { avatar { id } } }",
        {"id": media["id"]},
        token=alice.token,
    )
    assert avatar.ok() == {"updateProfile": {"avatar": {"id": media["id"]}}}
    files_before = len(stored_files(app))

    result = await gql(DELETE, {"id": media["id"]}, token=alice.token)
    assert result.ok() == {"deleteMedia": True}
    assert (await gql(MEDIA, {"id": media["id"]})).ok() == {"media": None}
    assert (await http.get(path_of(media["url"]))).status_code == 404
    assert (await http.get(path_of(media["thumbnailUrl"]))).status_code == 404
    assert len(stored_files(app)) == files_before - 2  # the original and its thumbnail
    viewer = await gql("{ viewer { avatar { id } } }", token=alice.token)
    assert viewer.ok() == {"viewer": {"avatar": None}}
    assert (await http.get(path_of(keep["url"]))).status_code == 200

    again = await gql(DELETE, {"id": media["id"]}, token=alice.token)
    assert again.codes == ["NOT_FOUND"]


async def test_delete_from_the_other_platform_or_of_an_unknown_id_is_not_found(
    gql: GraphQLClient, http: httpx.AsyncClient, alice: Account
) -> None:
    media = (await upload(http, alice, samples.png())).ok()["uploadMedia"]
    alice_on_vignette = await sign_up(gql, "alice", "vignette")
    other = await gql(
        DELETE, {"id": media["id"]}, token=alice_on_vignette.token, platform="vignette"
    )
    assert other.codes == ["NOT_FOUND"]
    unknown = await gql(DELETE, {"id": encode_id("Media", 12345)}, token=alice.token)
    assert unknown.codes == ["NOT_FOUND"]
    signed_out = await gql(DELETE, {"id": media["id"]})
    assert signed_out.codes == ["UNAUTHENTICATED"]
    assert (await http.get(path_of(media["url"]))).status_code == 200


async def test_media_is_invisible_from_the_other_platform(
    gql: GraphQLClient, http: httpx.AsyncClient, alice: Account
) -> None:
    media = (await upload(http, alice, samples.png())).ok()["uploadMedia"]
    assert (await gql(MEDIA, {"id": media["id"]}, platform="vignette")).ok() == {"media": None}
