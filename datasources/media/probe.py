"""What an uploaded file is, decided from its bytes, and what clients need to show it.

The file name and the declared content type are never consulted: they are the
uploader's claims. `sniff` reads magic numbers from the first bytes; `probe`
then parses the whole file (Pillow for images, our container readers for video,
mutagen for audio) and fails with `UnsupportedMedia` when the bytes are not a
valid file of the sniffed type. Blocking work: call these from a thread.
"""
from __future__ import annotations

import hashlib
import io
import os
import struct
from dataclasses import dataclass
from pathlib import Path

import mutagen
from mutagen.aac import AAC
from mutagen.mp3 import MP3
from mutagen.oggflac import OggFLAC
from mutagen.oggopus import OggOpus
from mutagen.oggspeex import OggSpeex
from mutagen.oggvorbis import OggVorbis
from PIL import Image, ImageOps

from datasources.media import containers, location

HEAD_BYTES = 64 * 1024
MAX_PIXELS = 80_000_000  # above this a decode needs gigabytes: a decompression bomb
THUMBNAIL_EDGE = 320
ORIENTATION = 0x0112
SIDEWAYS = {5, 6, 7, 8}  # EXIF orientations shown rotated by 90°

IMAGE, VIDEO, AUDIO = "IMAGE", "VIDEO", "AUDIO"
PILLOW_FORMATS = {
    "image/jpeg": "JPEG", "image/png": "PNG", "image/webp": "WEBP", "image/gif": "GIF",
}
ISO_MIME_TYPES = {"video/mp4", "video/quicktime", "video/3gpp", "audio/mp4"}


class UnsupportedMedia(ValueError):
    """Not a file we accept, or not a valid one; the message is safe to show."""


@dataclass(frozen=True)
class Sniffed:
    kind: str  # IMAGE | VIDEO | AUDIO (a video container may still turn out audio-only)
    mime_type: str


@dataclass(frozen=True)
class Probed:
    kind: str
    mime_type: str
    width: int | None = None
    height: int | None = None
    duration_ms: int | None = None
    thumbnail: bytes | None = None  # WebP, at most THUMBNAIL_EDGE on the long side


# ───────────────────────────── sniffing ─────────────────────────────


def sniff(head: bytes) -> Sniffed | None:
    """The type the leading bytes prove, or None for anything we do not accept."""
    if head.startswith(b"\xff\xd8\xff"):
        return Sniffed(IMAGE, "image/jpeg")
    if head.startswith(location.PNG_SIGNATURE):
        return Sniffed(IMAGE, "image/png")
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return Sniffed(IMAGE, "image/gif")
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return Sniffed(IMAGE, "image/webp")
    if head[4:8] == b"ftyp":
        return _sniff_ftyp(head)
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return Sniffed(VIDEO, "video/webm") if containers.ebml_doc_type(head) == "webm" else None
    if head.startswith(b"OggS"):
        return _sniff_ogg(head)
    if head.startswith(b"ID3"):
        return _sniff_after_id3(head)
    return _sniff_audio_frames(head, 0)


# Still-image HEIF/AVIF share the ftyp box with movies; we do not accept them.
STILL_IMAGE_BRANDS = {b"mif1", b"msf1", b"heic", b"heix", b"heim", b"heis", b"avif", b"avis"}
MP4_BRANDS = {
    b"isom", b"iso2", b"iso3", b"iso4", b"iso5", b"iso6", b"iso9", b"mp41", b"mp42",
    b"mp71", b"avc1", b"dash", b"M4V ", b"M4VH", b"M4VP", b"mmp4", b"MSNV", b"NDAS", b"XAVC",
}
M4A_BRANDS = {b"M4A ", b"M4B ", b"M4P "}


def _sniff_ftyp(head: bytes) -> Sniffed | None:
    box_size = min(struct.unpack_from(">I", head)[0], len(head))
    major = head[8:12]
    brands = {major} | {head[i : i + 4] for i in range(16, box_size - 3, 4)}
    if brands & STILL_IMAGE_BRANDS:
        return None
    if major == b"qt  ":
        return Sniffed(VIDEO, "video/quicktime")
    if major in M4A_BRANDS:
        return Sniffed(AUDIO, "audio/mp4")
    if major.startswith((b"3gp", b"3g2")):
        return Sniffed(VIDEO, "video/3gpp")
    if brands & MP4_BRANDS:
        return Sniffed(VIDEO, "video/mp4")
    return None


OGG_AUDIO_CODECS = (b"\x01vorbis", b"OpusHead", b"\x7fFLAC", b"Speex   ")


def _sniff_ogg(head: bytes) -> Sniffed | None:
    """Ogg audio (Vorbis, Opus, FLAC, Speex); Ogg video (Theora) is not accepted."""
    if len(head) < 27:
        return None
    first_packet = 27 + head[26]  # after the page header and its segment table
    if head[first_packet:].startswith(OGG_AUDIO_CODECS):
        return Sniffed(AUDIO, "audio/ogg")
    return None


def _sniff_after_id3(head: bytes) -> Sniffed | None:
    if len(head) < 10 or any(b & 0x80 for b in head[6:10]):
        return None
    size = int.from_bytes(bytes(b & 0x7F for b in head[6:10]), "big")  # syncsafe
    audio_at = 10 + size + (10 if head[5] & 0x10 else 0)
    if audio_at + 4 > len(head):
        return Sniffed(AUDIO, "audio/mpeg")  # big tag (cover art): mutagen checks the frames
    return _sniff_audio_frames(head, audio_at)


def _sniff_audio_frames(head: bytes, at: int) -> Sniffed | None:
    """MP3 or ADTS AAC: a valid frame header at `at`, and another right after it."""
    for mime_type, frame_length in FRAME_READERS:
        length = frame_length(head[at : at + 7])
        if length is None:
            continue
        following = at + length
        # A real stream has its second frame within the head, unless it is one frame long.
        if following == len(head) or frame_length(head[following : following + 7]) is not None:
            return Sniffed(AUDIO, mime_type)
    return None


MP3_BITRATES = {
    3: (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320),  # MPEG-1
    2: (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),  # MPEG-2
    0: (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),  # MPEG-2.5
}
MP3_SAMPLE_RATES = {3: (44100, 48000, 32000), 2: (22050, 24000, 16000), 0: (11025, 12000, 8000)}


def mp3_frame_length(header: bytes) -> int | None:
    """Bytes in the MPEG audio Layer III frame starting with `header`, or None."""
    if len(header) < 4 or header[0] != 0xFF or header[1] & 0xE0 != 0xE0:
        return None
    version, layer = (header[1] >> 3) & 3, (header[1] >> 1) & 3
    bitrate_index, rate_index = header[2] >> 4, (header[2] >> 2) & 3
    if version == 1 or layer != 1 or bitrate_index in (0, 15) or rate_index == 3:
        return None
    bitrate = MP3_BITRATES[version][bitrate_index] * 1000
    sample_rate = MP3_SAMPLE_RATES[version][rate_index]
    padding = (header[2] >> 1) & 1
    return (144 if version == 3 else 72) * bitrate // sample_rate + padding


def adts_frame_length(header: bytes) -> int | None:
    """Bytes in the ADTS (AAC) frame starting with `header`, or None."""
    if len(header) < 7 or header[0] != 0xFF or header[1] & 0xF6 != 0xF0:
        return None
    if (header[2] >> 2) & 0x0F >= 13:  # sampling frequency index
        return None
    length = ((header[3] & 0x03) << 11) | (header[4] << 3) | (header[5] >> 5)
    return length if length >= 7 else None


FRAME_READERS = (("audio/mpeg", mp3_frame_length), ("audio/aac", adts_frame_length))

# ───────────────────────────── probing ─────────────────────────────


def probe(path: Path, sniffed: Sniffed) -> Probed:
    """Parse the file as its sniffed type. Images are rewritten in place without location
    metadata, and MP4/MOV location boxes are blanked, before anything is measured."""
    if sniffed.kind == IMAGE:
        return _probe_image(path, sniffed.mime_type)
    if sniffed.mime_type in ISO_MIME_TYPES:
        return _probe_iso(path, sniffed.mime_type)
    if sniffed.mime_type == "video/webm":
        return _probe_webm(path)
    return _probe_audio(path, sniffed.mime_type)


def _probe_image(path: Path, mime_type: str) -> Probed:
    original = path.read_bytes()  # images are capped at max_image_bytes (20 MB)
    try:
        data = location.strip_location(original, mime_type)
    except location.CorruptImage as exc:
        raise UnsupportedMedia(f"not a valid image: {exc}") from exc
    if data is not original:
        _replace_contents(path, data)
    try:
        with Image.open(io.BytesIO(data), formats=[PILLOW_FORMATS[mime_type]]) as image:
            width, height = image.size
            if width * height > MAX_PIXELS:
                raise UnsupportedMedia(f"image is too large ({width}x{height} pixels)")
            if image.getexif().get(ORIENTATION) in SIDEWAYS:
                width, height = height, width  # report the size as displayed
            thumbnail = thumbnail_webp(image)  # decodes every pixel: proves the image whole
    except UnsupportedMedia:
        raise
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise UnsupportedMedia("not a valid image") from exc
    return Probed(IMAGE, mime_type, width, height, None, thumbnail)


def thumbnail_webp(image: Image.Image) -> bytes:
    """First frame, upright (EXIF orientation applied), at most 320 px on the long side."""
    image.seek(0)
    image.draft("RGB", (THUMBNAIL_EDGE * 2, THUMBNAIL_EDGE * 2))  # JPEG: decode at a fraction
    frame = ImageOps.exif_transpose(image)
    frame.thumbnail((THUMBNAIL_EDGE, THUMBNAIL_EDGE), Image.Resampling.LANCZOS)
    has_alpha = frame.mode in ("RGBA", "LA", "PA") or "transparency" in frame.info
    frame = frame.convert("RGBA" if has_alpha else "RGB")
    out = io.BytesIO()
    frame.save(out, "WEBP", quality=80, method=4)
    return out.getvalue()


def _replace_contents(path: Path, data: bytes) -> None:
    temp = path.with_name(path.name + ".clean")
    try:
        temp.write_bytes(data)
        os.replace(temp, path)
    finally:
        temp.unlink(missing_ok=True)


def _probe_iso(path: Path, mime_type: str) -> Probed:
    size = path.stat().st_size
    try:
        with path.open("r+b") as file:
            info = containers.mp4_info(file, size)
            containers.blank_location(file, size)
    except (containers.ContainerError, struct.error) as exc:
        raise UnsupportedMedia(f"not a valid MP4/MOV file: {exc}") from exc
    video = info.video
    if video is not None:
        video_mime = "video/mp4" if mime_type == "audio/mp4" else mime_type
        return Probed(VIDEO, video_mime, video.width, video.height, info.duration_ms)
    if info.has_audio:
        return Probed(AUDIO, "audio/mp4", None, None, info.duration_ms)
    raise UnsupportedMedia("the file has neither a video nor an audio track")


def _probe_webm(path: Path) -> Probed:
    try:
        with path.open("rb") as file:
            info = containers.webm_info(file, path.stat().st_size)
    except (containers.ContainerError, struct.error) as exc:
        raise UnsupportedMedia(f"not a valid WebM file: {exc}") from exc
    video = info.video
    if video is not None:
        return Probed(VIDEO, "video/webm", video.width, video.height, info.duration_ms)
    if info.has_audio:
        return Probed(AUDIO, "audio/webm", None, None, info.duration_ms)
    raise UnsupportedMedia("the file has neither a video nor an audio track")


def _probe_audio(path: Path, mime_type: str) -> Probed:
    try:
        if mime_type == "audio/mpeg":
            parsed: mutagen.FileType | None = MP3(path)
        elif mime_type == "audio/aac":
            parsed = AAC(path)
        else:
            parsed = mutagen.File(path, options=[OggVorbis, OggOpus, OggFLAC, OggSpeex])
    except mutagen.MutagenError as exc:
        raise UnsupportedMedia("not a valid audio file") from exc
    length = parsed.info.length if parsed is not None and parsed.info is not None else 0
    if not length or length <= 0:
        raise UnsupportedMedia("not a valid audio file (no playable audio)")
    return Probed(AUDIO, mime_type, None, None, round(length * 1000))


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for chunk in iter(lambda: file.read(1024 * 1024), b""):
            digest.update(chunk)
    return digest.hexdigest()
