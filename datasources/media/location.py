"""Remove where a photo was taken from an image, without re-encoding it.

The choice: rewrite only the metadata containers (JPEG segments, PNG chunks,
WebP chunks, GIF extensions) and keep the compressed pixels byte for byte.
Re-encoding would also drop the metadata, but it costs quality on every upload
(JPEG generation loss), changes the colours of CMYK/ICC images and the bytes
the uploader chose; the rewrite is cheap and exact.

What goes: the EXIF GPS IFD (the rest of EXIF stays, so orientation, camera and
capture time survive), XMP packets (they may repeat GPS as exif:GPSLatitude), the
Photoshop IRB (IPTC, embedded EXIF/XMP copies), and JPEG multi-picture data (MPF
and the extra images after the end of the main image, which carry their own EXIF).
Anything after the end of the image (EOI / IEND / trailer) is dropped too.
Unparseable EXIF is dropped whole: when unsure, fail closed.
"""
from __future__ import annotations

import struct
import zlib

from PIL import Image

from datasources.media.containers import ContainerError

EXIF_PREFIX = b"Exif\x00\x00"
GPS_IFD = 0x8825
XMP_PREFIXES = (b"http://ns.adobe.com/xap/1.0/\x00", b"http://ns.adobe.com/xmp/extension/\x00")


class CorruptImage(ContainerError):
    """The image's structure is broken (truncated, bad segment lengths)."""


def strip_location(data: bytes, mime_type: str) -> bytes:
    """The image without location metadata; the same object when nothing had to go."""
    stripper = {
        "image/jpeg": _strip_jpeg,
        "image/png": _strip_png,
        "image/webp": _strip_webp,
        "image/gif": _strip_gif,
    }[mime_type]
    cleaned = stripper(data)
    return data if cleaned == data else cleaned


def exif_without_location(raw: bytes) -> bytes | None:
    """EXIF (with or without the "Exif\\0\\0" prefix) minus the GPS IFD; None to drop it."""
    exif = Image.Exif()
    try:
        exif.load(raw)
        if GPS_IFD not in exif:
            return raw
        del exif[GPS_IFD]
        cleaned = exif.tobytes()
    except Exception:  # Pillow raises many types on malformed EXIF: drop it (fail closed)
        return None
    return cleaned if raw.startswith(EXIF_PREFIX) else cleaned[len(EXIF_PREFIX) :]


# ───────────────────────────── JPEG ─────────────────────────────

SOS, EOI, APP1, APP2, APP13 = 0xDA, 0xD9, 0xE1, 0xE2, 0xED
STANDALONE = {0x01, *range(0xD0, 0xD8)}  # TEM and RSTn carry no length


def _strip_jpeg(data: bytes) -> bytes:
    if not data.startswith(b"\xff\xd8"):
        raise CorruptImage("not a JPEG")
    out = bytearray(data[:2])
    pos = 2
    while True:
        marker, pos = _jpeg_marker(data, pos)
        if marker == EOI:
            out += b"\xff\xd9"  # trailing bytes (MPF images, appended files) are dropped
            return bytes(out)
        if marker in STANDALONE:
            out += bytes((0xFF, marker))
            continue
        if pos + 2 > len(data):
            raise CorruptImage("JPEG is truncated")
        end = pos + struct.unpack_from(">H", data, pos)[0]
        if end > len(data) or end < pos + 2:
            raise CorruptImage("JPEG segment overruns the file")
        out += _jpeg_segment(marker, data[pos + 2 : end])
        pos = end
        if marker == SOS:
            scan_end = _entropy_end(data, pos)
            out += data[pos:scan_end]
            pos = scan_end


def _jpeg_marker(data: bytes, pos: int) -> tuple[int, int]:
    if pos >= len(data) or data[pos] != 0xFF:
        raise CorruptImage("JPEG marker expected")
    while pos < len(data) and data[pos] == 0xFF:  # fill bytes
        pos += 1
    if pos >= len(data):
        raise CorruptImage("JPEG is truncated")
    return data[pos], pos + 1


def _entropy_end(data: bytes, pos: int) -> int:
    """Where the entropy-coded data of a scan ends: the first real marker after it."""
    while True:
        pos = data.find(b"\xff", pos)
        if pos < 0 or pos + 1 >= len(data):
            raise CorruptImage("JPEG is truncated (no end of image)")
        following = data[pos + 1]
        if following == 0x00 or 0xD0 <= following <= 0xD7:  # stuffed 0xFF, restart marker
            pos += 2
        elif following == 0xFF:
            pos += 1
        else:
            return pos


def _jpeg_segment(marker: int, payload: bytes) -> bytes:
    """The segment to write for (marker, payload): as is, rewritten, or b"" to drop it."""
    if marker == APP1 and payload.startswith(EXIF_PREFIX):
        cleaned = exif_without_location(payload)
        if cleaned is None or len(cleaned) > 0xFFFD:
            return b""
        payload = cleaned
    elif marker == APP1 and payload.startswith(XMP_PREFIXES):
        return b""
    elif marker == APP2 and payload.startswith(b"MPF\x00"):
        return b""
    elif marker == APP13:  # Photoshop IRB: IPTC and copies of EXIF/XMP
        return b""
    return bytes((0xFF, marker)) + struct.pack(">H", len(payload) + 2) + payload


# ───────────────────────────── PNG ─────────────────────────────

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
TEXT_CHUNKS = {b"tEXt", b"zTXt", b"iTXt"}


def _strip_png(data: bytes) -> bytes:
    if not data.startswith(PNG_SIGNATURE):
        raise CorruptImage("not a PNG")
    out = bytearray(PNG_SIGNATURE)
    pos = len(PNG_SIGNATURE)
    while pos + 12 <= len(data):
        length, kind = struct.unpack_from(">I4s", data, pos)
        end = pos + 12 + length
        if end > len(data):
            raise CorruptImage("PNG chunk overruns the file")
        body = data[pos + 8 : pos + 8 + length]
        if kind == b"eXIf":
            cleaned = exif_without_location(body)
            if cleaned is not None:
                out += _png_chunk(kind, cleaned)
        elif kind in TEXT_CHUNKS and _png_metadata_keyword(body):
            pass  # XMP or an ImageMagick "Raw profile" (hex EXIF/IPTC/XMP)
        else:
            out += data[pos:end]
        pos = end
        if kind == b"IEND":
            return bytes(out)
    raise CorruptImage("PNG is truncated (no IEND)")


def _png_metadata_keyword(body: bytes) -> bool:
    keyword = body.split(b"\x00", 1)[0]
    return keyword == b"XML:com.adobe.xmp" or keyword.startswith(b"Raw profile type")


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    crc = zlib.crc32(kind + body) & 0xFFFFFFFF
    return struct.pack(">I4s", len(body), kind) + body + struct.pack(">I", crc)


# ───────────────────────────── WebP ─────────────────────────────

VP8X_XMP, VP8X_EXIF = 0x04, 0x08


def _strip_webp(data: bytes) -> bytes:
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WEBP":
        raise CorruptImage("not a WebP")
    end = min(len(data), 8 + struct.unpack_from("<I", data, 4)[0])
    chunks: list[bytes] = []
    drop_flags = 0
    pos = 12
    while pos + 8 <= end:
        kind, size = struct.unpack_from("<4sI", data, pos)
        body_end = pos + 8 + size
        if body_end > end:
            raise CorruptImage("WebP chunk overruns the file")
        body = data[pos + 8 : body_end]
        if kind == b"EXIF":
            cleaned = exif_without_location(body)
            if cleaned is None:
                drop_flags |= VP8X_EXIF
            else:
                chunks.append(_riff_chunk(kind, cleaned))
        elif kind == b"XMP ":
            drop_flags |= VP8X_XMP
        else:
            chunks.append(data[pos : body_end + (size & 1)])
        pos = body_end + (size & 1)
    if drop_flags and chunks and chunks[0][:4] == b"VP8X":
        first = chunks[0]
        chunks[0] = first[:8] + bytes((first[8] & ~drop_flags,)) + first[9:]
    body = b"WEBP" + b"".join(chunks)
    return b"RIFF" + struct.pack("<I", len(body)) + body


def _riff_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack("<4sI", kind, len(body)) + body + (b"\x00" if len(body) & 1 else b"")


# ───────────────────────────── GIF ─────────────────────────────


def _strip_gif(data: bytes) -> bytes:
    """GIF has no EXIF; it can carry an XMP application extension, which goes."""
    if len(data) < 13 or data[:6] not in (b"GIF87a", b"GIF89a"):
        raise CorruptImage("not a GIF")
    pos = 13 + _color_table_size(data[10])
    out = bytearray(data[:pos])
    while pos < len(data):
        introducer = data[pos]
        if introducer == 0x3B:  # trailer
            out += b";"
            return bytes(out)
        if introducer == 0x21:  # extension: label, then sub-blocks
            end = _sub_blocks_end(data, pos + 2)
            if not data[pos + 1 : pos + 14] == b"\xff\x0bXMP DataXMP":
                out += data[pos:end]
        elif introducer == 0x2C:  # image: descriptor, local colour table, LZW size, sub-blocks
            if pos + 10 > len(data):
                raise CorruptImage("GIF is truncated")
            start = pos + 10 + _color_table_size(data[pos + 9]) + 1
            end = _sub_blocks_end(data, start)
            out += data[pos:end]
        else:
            raise CorruptImage("unknown GIF block")
        pos = end
    raise CorruptImage("GIF is truncated (no trailer)")


def _color_table_size(flags: int) -> int:
    return 3 * (1 << ((flags & 0x07) + 1)) if flags & 0x80 else 0


def _sub_blocks_end(data: bytes, pos: int) -> int:
    while True:
        if pos >= len(data):
            raise CorruptImage("GIF is truncated")
        size = data[pos]
        pos += 1 + size
        if size == 0:
            return pos
