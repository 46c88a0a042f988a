"""Media probing without GraphQL: types from bytes, sizes, durations, location removal, blobs."""
from __future__ import annotations

import asyncio
import io
import shutil
from pathlib import Path

import pytest
from PIL import Image

from datasources.media import containers, probe
from datasources.media.blobs import InvalidBlobKey, LocalBlobStore
from datasources.media.location import strip_location
from tests.fixtures.media import samples
from tests.fixtures.media.samples import FILE_SAMPLES, GPS_IFD, Sample, fixture


def probe_copy(tmp_path: Path, data: bytes) -> tuple[probe.Probed, bytes]:
    """Probe `data` as an upload would (a temp file), and the bytes it leaves in the file."""
    path = tmp_path / "upload"
    path.write_bytes(data)
    sniffed = probe.sniff(data[: probe.HEAD_BYTES])
    assert sniffed is not None
    return probe.probe(path, sniffed), path.read_bytes()


@pytest.mark.parametrize("sample", FILE_SAMPLES, ids=lambda s: s.name)
def test_video_and_audio_are_measured_from_their_containers(tmp_path: Path, sample: Sample) -> None:
    probed, _ = probe_copy(tmp_path, fixture(sample.name))
    assert (probed.kind, probed.mime_type) == (sample.kind, sample.mime_type)
    assert (probed.width, probed.height) == (sample.width, sample.height)
    assert probed.duration_ms == pytest.approx(sample.duration_ms, abs=30)
    assert probed.thumbnail is None


@pytest.mark.parametrize(
    ("make", "mime_type"),
    [
        (samples.jpeg_with_gps, "image/jpeg"),
        (samples.png_with_gps, "image/png"),
        (samples.webp_with_gps, "image/webp"),
        (samples.gif, "image/gif"),
    ],
)
def test_images_are_sniffed_and_sized(tmp_path: Path, make: object, mime_type: str) -> None:
    assert callable(make)
    probed, _ = probe_copy(tmp_path, make())
    assert (probed.kind, probed.mime_type, probed.width, probed.height) == (
        "IMAGE", mime_type, 64, 48
    )
    assert probed.duration_ms is None


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"hello, this is a text file pretending to be a photo\n" * 100,
        b"<!DOCTYPE html><html><script>alert(1)</script></html>",
        b"<svg xmlns='http://www.w3.org/2000/svg'></svg>",
        b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n",
        b"PK\x03\x04" + bytes(100),
        b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic",  # HEIF still image
        b"\x00\x00\x00\x1cftypavif\x00\x00\x00\x00avifmif1miaf",  # AVIF
        b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01\x42\x82\x88matroska",  # Matroska, not WebM
        b"OggS\x00\x02" + bytes(20) + b"\x01\x2a\x80theora" + bytes(40),  # Ogg video
        b"\xff\xfb\x90\x00" + bytes(100),  # one MP3-looking header followed by nothing valid
        bytes(range(256)) * 4,
    ],
    ids=[
        "empty", "text", "html", "svg", "pdf", "zip", "heic", "avif", "matroska",
        "theora", "lone-frame-sync", "noise",
    ],
)
def test_anything_else_is_not_sniffed(data: bytes) -> None:
    assert probe.sniff(data) is None


def test_sniffing_ignores_everything_but_the_bytes() -> None:
    assert probe.sniff(samples.png()) == probe.Sniffed("IMAGE", "image/png")
    assert probe.sniff(fixture("sample.mp4")) == probe.Sniffed("VIDEO", "video/mp4")
    assert probe.sniff(fixture("sample-bare.mp3")) == probe.Sniffed("AUDIO", "audio/mpeg")
    assert probe.sniff(fixture("sample.aac")) == probe.Sniffed("AUDIO", "audio/aac")


def test_frame_headers_give_frame_lengths() -> None:
    mp3 = fixture("sample-bare.mp3")
    first = probe.mp3_frame_length(mp3[:4])
    assert first is not None and probe.mp3_frame_length(mp3[first : first + 4]) is not None
    aac = fixture("sample.aac")
    first = probe.adts_frame_length(aac[:7])
    assert first is not None and probe.adts_frame_length(aac[first : first + 7]) is not None
    assert probe.adts_frame_length(mp3[:7]) is None
    assert probe.mp3_frame_length(aac[:4]) is None


def gps_of(data: bytes) -> dict[int, object]:
    with Image.open(io.BytesIO(data)) as image:
        return dict(image.getexif().get_ifd(GPS_IFD))


def pixels(data: bytes) -> bytes:
    with Image.open(io.BytesIO(data)) as image:
        return image.convert("RGB").tobytes()


def test_jpeg_loses_gps_xmp_and_trailer_but_keeps_pixels_and_other_exif(tmp_path: Path) -> None:
    original = samples.jpeg_with_gps()
    assert gps_of(original)
    probed, stored = probe_copy(tmp_path, original)
    assert gps_of(stored) == {}
    assert b"GPSLatitude" not in stored and b"TRAILING-SECRET" not in stored
    assert pixels(stored) == pixels(original)  # lossless: same compressed image data
    with Image.open(io.BytesIO(stored)) as image:
        exif = image.getexif()
        assert exif[samples.MAKE] == "Entativa Camera"
        assert exif.get_ifd(samples.EXIF_IFD)[samples.DATE_TIME_ORIGINAL] == "2024:05:01 10:00:00"
    assert probed.thumbnail is not None and gps_of(probed.thumbnail) == {}


@pytest.mark.parametrize("make", [samples.png_with_gps, samples.webp_with_gps], ids=["png", "webp"])
def test_png_and_webp_lose_gps_and_keep_pixels(tmp_path: Path, make: object) -> None:
    assert callable(make)
    original = make()
    assert gps_of(original)
    _, stored = probe_copy(tmp_path, original)
    assert gps_of(stored) == {}
    assert b"GPSLatitude" not in stored
    assert pixels(stored) == pixels(original)
    with Image.open(io.BytesIO(stored)) as image:
        assert image.getexif()[samples.MAKE] == "Entativa Camera"


def test_gif_loses_its_xmp_extension_and_keeps_its_frames() -> None:
    original = samples.gif_with_xmp()
    stored = strip_location(original, "image/gif")
    assert b"GPSLatitude" in original and b"GPSLatitude" not in stored
    with Image.open(io.BytesIO(stored)) as image:
        assert getattr(image, "n_frames", 1) == 2


def test_images_without_location_are_stored_unchanged() -> None:
    for data, mime_type in ((samples.png(), "image/png"), (samples.gif(), "image/gif")):
        assert strip_location(data, mime_type) is data


def test_video_location_is_blanked_in_place(tmp_path: Path) -> None:
    original = fixture("rotated-geo.mov")
    assert b"\xa9xyz" in original and b"+48.8584" in original
    probed, stored = probe_copy(tmp_path, original)
    assert b"\xa9xyz" not in stored and b"+48.8584" not in stored
    assert len(stored) == len(original)  # same size: no chunk offset moved
    assert (probed.width, probed.height) == (48, 64)  # still parses; rotation applied
    moov, _ = containers.read_moov(io.BytesIO(stored), len(stored))
    assert containers.location_boxes(moov) == []


def test_thumbnail_is_an_upright_webp_of_at_most_320_pixels(tmp_path: Path) -> None:
    probed, _ = probe_copy(tmp_path, samples.jpeg_with_gps(size=(800, 600), orientation=6))
    assert (probed.width, probed.height) == (600, 800)  # EXIF 6: shown rotated
    assert probed.thumbnail is not None
    with Image.open(io.BytesIO(probed.thumbnail)) as thumbnail:
        assert thumbnail.format == "WEBP"
        assert thumbnail.size == (240, 320)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (fixture("sample.mp4")[:3000], "MP4"),  # cut inside the mdat, moov first
        (fixture("sample.mov")[:1500], "MP4"),  # moov (at the end) cut off
        (fixture("sample-vp8.webm")[:60], "WebM"),
        (samples.jpeg_with_gps()[:400], "image"),
        (b"\xff\xd8\xff\xe0" + bytes(64), "image"),
        (samples.png()[:200], "image"),
    ],
    ids=["mp4", "mov", "webm", "jpeg-truncated", "jpeg-garbage", "png-truncated"],
)
def test_broken_files_are_unsupported(tmp_path: Path, data: bytes, message: str) -> None:
    with pytest.raises(probe.UnsupportedMedia, match=message):
        probe_copy(tmp_path, data)


def test_decompression_bombs_are_refused(tmp_path: Path) -> None:
    bomb = samples.encode(Image.new("1", (9000, 9000)), "PNG")  # 81 Mpx in a few kB
    with pytest.raises(probe.UnsupportedMedia, match="too large"):
        probe_copy(tmp_path, bomb)


async def test_local_blob_store_writes_atomically_and_deletes_idempotently(tmp_path: Path) -> None:
    blobs = LocalBlobStore(tmp_path / "media")
    stored = await blobs.put("abcdef", io.BytesIO(b"hello"))
    assert stored.size == 5 and stored.path.read_bytes() == b"hello"
    assert stored.path == tmp_path / "media" / "ab" / "cd" / "abcdef"
    source = blobs.temp_dir() / "upload"
    shutil.copy(Path(samples.HERE / "sample.ogg"), source)
    moved = await blobs.put("0123456789.thumb", source)
    assert not source.exists()  # moved in, not copied
    file, size = blobs.open("0123456789.thumb")
    with file:
        assert file.read() == fixture("sample.ogg") and size == moved.size
    assert await blobs.exists("abcdef")
    await blobs.delete("abcdef")
    await blobs.delete("abcdef")
    assert not await blobs.exists("abcdef") and await blobs.stat("abcdef") is None
    assert list(blobs.temp_dir().iterdir()) == []
    for bad in ("../etc/passwd", "a/b", "", ".hidden", "x" * 200):
        with pytest.raises(InvalidBlobKey):
            await blobs.put(bad, io.BytesIO(b"x"))
        assert await blobs.stat(bad) is None and not await blobs.exists(bad)
        await blobs.delete(bad)  # a key we could never have written: nothing to delete


def test_concurrent_puts_never_expose_partial_files(tmp_path: Path) -> None:
    blobs = LocalBlobStore(tmp_path / "media")
    payload = bytes(3 * 1024 * 1024)

    async def run() -> None:
        await asyncio.gather(*(blobs.put(f"key{i}xx", io.BytesIO(payload)) for i in range(4)))

    asyncio.run(run())
    for i in range(4):
        assert blobs.path(f"key{i}xx").stat().st_size == len(payload)
    assert list(blobs.temp_dir().iterdir()) == []
