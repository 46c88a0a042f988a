"""Small readers for the video containers we accept: ISO BMFF (MP4/MOV) and WebM.

They read only the metadata boxes/elements (never the media data), seeking past
the rest, so a 200 MB video costs a few reads. Anything malformed raises
`ContainerError`; callers turn that into "not a valid video".
"""
from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

MAX_MOOV_BYTES = 64 * 1024 * 1024  # a sample table this big means hours of video
MAX_EBML_ELEMENT = 4 * 1024 * 1024  # Info and Tracks are tiny; refuse to buffer more


class ContainerError(ValueError):
    """The container is truncated, malformed or not what its header claimed."""


@dataclass(frozen=True)
class Track:
    handler: str  # "vide", "soun", … (WebM: "vide" / "soun" too, for one vocabulary)
    width: int | None = None
    height: int | None = None


@dataclass(frozen=True)
class ContainerInfo:
    duration_ms: int | None
    tracks: tuple[Track, ...]

    @property
    def video(self) -> Track | None:
        return next((t for t in self.tracks if t.handler == "vide" and t.width and t.height), None)

    @property
    def has_audio(self) -> bool:
        return any(t.handler == "soun" for t in self.tracks)


# ───────────────────────────── ISO BMFF (MP4, MOV) ─────────────────────────────

# Boxes whose payload is a list of boxes, on the paths we read or clean.
CONTAINERS = {b"moov", b"trak", b"mdia", b"udta", b"ilst", b"mvex"}
LOCATION_BOX = b"\xa9xyz"  # QuickTime/3GPP "©xyz": ISO 6709 coordinates of the recording


@dataclass(frozen=True)
class Box:
    type: bytes
    start: int  # offset of the box header
    body: int  # offset of the payload
    end: int


def _boxes_in(buf: bytes, start: int, end: int) -> Iterator[Box]:
    pos = start
    while pos + 8 <= end:
        size, kind = struct.unpack_from(">I4s", buf, pos)
        body = pos + 8
        if size == 1:
            if pos + 16 > end:
                raise ContainerError("truncated box header")
            (size,) = struct.unpack_from(">Q", buf, pos + 8)
            body = pos + 16
        elif size == 0:
            size = end - pos
        if size < body - pos or pos + size > end:
            raise ContainerError(f"box {kind!r} overruns its parent")
        yield Box(kind, pos, body, pos + size)
        pos += size


def _top_level_boxes(file: BinaryIO, file_size: int) -> Iterator[Box]:
    """Top-level boxes of a file, read header by header (mdat is never read)."""
    pos = 0
    while pos + 8 <= file_size:
        file.seek(pos)
        header = file.read(16)
        size, kind = struct.unpack_from(">I4s", header)
        body = pos + 8
        if size == 1:
            (size,) = struct.unpack_from(">Q", header, 8)
            body = pos + 16
        elif size == 0:
            size = file_size - pos
        if size < body - pos:
            raise ContainerError(f"box {kind!r} has an impossible size")
        if pos + size > file_size:
            raise ContainerError(f"file is truncated inside box {kind!r}")
        yield Box(kind, pos, body, pos + size)
        pos += size


def read_moov(file: BinaryIO, file_size: int) -> tuple[bytes, int]:
    """The moov box (whole, header included) and its file offset, wherever it is.

    Every top-level box header is walked, so a file cut short anywhere (an upload
    that stopped inside the mdat) is refused rather than stored half playable.
    """
    moov: Box | None = None
    for box in _top_level_boxes(file, file_size):
        if box.type == b"moov" and moov is None:
            moov = box
    if moov is None:
        raise ContainerError("no moov box: the file is incomplete or not a movie")
    if moov.end - moov.start > MAX_MOOV_BYTES:
        raise ContainerError("moov box is too large")
    file.seek(moov.start)
    return file.read(moov.end - moov.start), moov.start


def mp4_info(file: BinaryIO, file_size: int) -> ContainerInfo:
    """Duration (mvhd, or mehd for fragmented files) and the tracks (tkhd + hdlr)."""
    moov, _ = read_moov(file, file_size)
    root = next(_boxes_in(moov, 0, len(moov)))
    timescale = duration = 0
    fragment_duration = 0
    tracks: list[Track] = []
    for box in _boxes_in(moov, root.body, root.end):
        if box.type == b"mvhd":
            timescale, duration = _mvhd(moov[box.body : box.end])
        elif box.type == b"trak":
            tracks.append(_trak(moov, box))
        elif box.type == b"mvex":
            for child in _boxes_in(moov, box.body, box.end):
                if child.type == b"mehd":
                    fragment_duration = _mehd(moov[child.body : child.end])
    if not timescale:
        raise ContainerError("movie header (mvhd) is missing")
    ticks = duration if duration not in (0, 0xFFFFFFFF, 0xFFFFFFFFFFFFFFFF) else fragment_duration
    return ContainerInfo(round(ticks * 1000 / timescale) if ticks else None, tuple(tracks))


def _mvhd(body: bytes) -> tuple[int, int]:
    if len(body) < 4:
        raise ContainerError("short mvhd")
    if body[0] == 1:
        if len(body) < 32:
            raise ContainerError("short mvhd")
        _, timescale, duration = struct.unpack_from(">16sIQ", body, 4)
    else:
        if len(body) < 20:
            raise ContainerError("short mvhd")
        _, timescale, duration = struct.unpack_from(">8sII", body, 4)
    return timescale, duration


def _mehd(body: bytes) -> int:
    if body[:1] == b"\x01" and len(body) >= 12:
        return int(struct.unpack_from(">Q", body, 4)[0])
    if len(body) >= 8:
        return int(struct.unpack_from(">I", body, 4)[0])
    return 0


def _trak(moov: bytes, trak: Box) -> Track:
    handler = ""
    size: tuple[int, int] | None = None
    for box in _boxes_in(moov, trak.body, trak.end):
        if box.type == b"tkhd":
            size = _tkhd_display_size(moov[box.body : box.end])
        elif box.type == b"mdia":
            for child in _boxes_in(moov, box.body, box.end):
                if child.type == b"hdlr" and child.end - child.body >= 12:
                    handler = moov[child.body + 8 : child.body + 12].decode("latin-1")
    width, height = size if size else (None, None)
    return Track(handler, width, height)


def _tkhd_display_size(body: bytes) -> tuple[int, int]:
    """Width and height as shown: the stored size, swapped when the matrix turns it 90°."""
    base = 36 if body[:1] == b"\x01" else 24  # version 1 has 64-bit times and duration
    matrix_at = base + 16
    if len(body) < matrix_at + 36 + 8:
        raise ContainerError("short tkhd")
    a, b, _u, c, d = struct.unpack_from(">5i", body, matrix_at)
    width, height = struct.unpack_from(">II", body, matrix_at + 36)
    width, height = width >> 16, height >> 16  # 16.16 fixed point
    if a == 0 and d == 0 and b != 0 and c != 0:  # rotated by 90° or 270° (phones in portrait)
        return height, width
    return width, height


def location_boxes(moov: bytes) -> list[Box]:
    """Boxes inside moov that hold where the movie was recorded.

    `©xyz` (QuickTime/3GPP user data, also inside iTunes-style ilst), and Apple
    `meta` boxes whose `keys` name a location (com.apple.quicktime.location.*).
    """
    found: list[Box] = []
    root = next(_boxes_in(moov, 0, len(moov)))

    def walk(start: int, end: int) -> None:
        for box in _boxes_in(moov, start, end):
            if box.type == LOCATION_BOX:
                found.append(box)
            elif box.type == b"meta":
                if b"location" in moov[box.body : box.end] and _meta_has_keys(moov, box):
                    found.append(box)
                else:
                    walk(_meta_children_start(moov, box), box.end)
            elif box.type in CONTAINERS:
                walk(box.body, box.end)

    walk(root.body, root.end)
    return found


def _meta_children_start(buf: bytes, meta: Box) -> int:
    """ISO `meta` is a full box (4 bytes of version/flags first); QuickTime's is not."""
    if buf[meta.body + 4 : meta.body + 8] in (b"hdlr", b"keys", b"ilst"):
        return meta.body
    return meta.body + 4


def _meta_has_keys(buf: bytes, meta: Box) -> bool:
    try:
        children = _boxes_in(buf, _meta_children_start(buf, meta), meta.end)
        return any(child.type == b"keys" for child in children)
    except ContainerError:
        return True  # unreadable metadata that mentions a location: blank it all the same


def blank_location(file: BinaryIO, file_size: int) -> int:
    """Overwrite location boxes in place with `free` boxes of zeros; the number blanked.

    Same sizes, so no offset in the file (chunk offsets in stco/co64) moves: the
    audio and video bytes stay exactly as uploaded. `file` must be open for r+b.
    """
    moov, offset = read_moov(file, file_size)
    boxes = location_boxes(moov)
    for box in boxes:
        header = box.body - box.start
        file.seek(offset + box.start + 4)
        file.write(b"free")
        file.seek(offset + box.start + header)
        file.write(bytes(box.end - box.body))
    return len(boxes)


# ───────────────────────────── WebM (EBML) ─────────────────────────────

EBML = 0x1A45DFA3
DOC_TYPE = 0x4282
SEGMENT = 0x18538067
INFO = 0x1549A966
TRACKS = 0x1654AE6B
CLUSTER = 0x1F43B675
TIMECODE_SCALE = 0x2AD7B1
DURATION = 0x4489
TRACK_ENTRY = 0xAE
TRACK_TYPE = 0x83
VIDEO = 0xE0
PIXEL_WIDTH = 0xB0
PIXEL_HEIGHT = 0xBA
TRACK_TYPES = {1: "vide", 2: "soun"}


def _vint(buf: bytes, pos: int, *, keep_marker: bool) -> tuple[int, int, bool]:
    """(value, length, all-ones) of the EBML variable-length integer at `pos`."""
    if pos >= len(buf) or buf[pos] == 0:
        raise ContainerError("invalid EBML variable-length integer")
    length = 9 - buf[pos].bit_length()
    if pos + length > len(buf):
        raise ContainerError("truncated EBML element")
    first = buf[pos] if keep_marker else buf[pos] & (0xFF >> length)
    value = int.from_bytes(bytes([first]) + buf[pos + 1 : pos + length], "big")
    unknown = not keep_marker and value == (1 << (7 * length)) - 1
    return value, length, unknown


def _element_header(buf: bytes, pos: int) -> tuple[int, int, int | None]:
    """(element id, payload offset, payload size or None when unknown-sized)."""
    element_id, id_len, _ = _vint(buf, pos, keep_marker=True)
    if id_len > 4:
        raise ContainerError("EBML id longer than 4 bytes")
    size, size_len, unknown = _vint(buf, pos + id_len, keep_marker=False)
    return element_id, pos + id_len + size_len, None if unknown else size


def _elements(buf: bytes, start: int, end: int) -> Iterator[tuple[int, int, int]]:
    pos = start
    while pos < end:
        element_id, body, size = _element_header(buf, pos)
        if size is None or body + size > end:
            raise ContainerError("EBML element overruns its parent")
        yield element_id, body, body + size
        pos = body + size


def ebml_doc_type(head: bytes) -> str | None:
    """The DocType of an EBML header ("webm", "matroska"), or None when unreadable."""
    try:
        element_id, body, size = _element_header(head, 0)
        if element_id != EBML or size is None or body + size > len(head):
            return None
        for child, start, end in _elements(head, body, body + size):
            if child == DOC_TYPE:
                return head[start:end].rstrip(b"\0").decode("ascii")
    except (ContainerError, UnicodeDecodeError):
        return None
    return None


def webm_info(file: BinaryIO, file_size: int) -> ContainerInfo:
    """Duration (Info: TimecodeScale × Duration) and tracks (Tracks: TrackType, Video size)."""
    head = file.read(64)
    element_id, body, size = _element_header(head, 0)
    if element_id != EBML or size is None:
        raise ContainerError("not an EBML file")
    pos = body + size
    file.seek(pos)
    element_id, body, size = _element_header(file.read(12), 0)
    if element_id != SEGMENT:
        raise ContainerError("no Segment after the EBML header")
    end = file_size if size is None else min(file_size, pos + body + size)
    info = tracks = None
    pos += body
    while pos < end and (info is None or tracks is None):
        file.seek(pos)
        element_id, body, size = _element_header(file.read(12), 0)
        if element_id == CLUSTER:
            break  # media data starts; WebM puts Info and Tracks before it
        if size is None:
            raise ContainerError("unknown-sized element before the first Cluster")
        if element_id in (INFO, TRACKS):
            if size > MAX_EBML_ELEMENT or pos + body + size > file_size:
                raise ContainerError("Info/Tracks element is truncated or too large")
            file.seek(pos + body)
            payload = file.read(size)
            if element_id == INFO:
                info = _webm_duration(payload)
            else:
                tracks = _webm_tracks(payload)
        pos += body + size
    if tracks is None:
        raise ContainerError("no Tracks element")
    return ContainerInfo(info, tracks)


def _uint(data: bytes) -> int:
    return int.from_bytes(data, "big")


def _webm_duration(info: bytes) -> int | None:
    scale_ns = 1_000_000
    duration: float | None = None
    for element_id, start, end in _elements(info, 0, len(info)):
        if element_id == TIMECODE_SCALE:
            scale_ns = _uint(info[start:end])
        elif element_id == DURATION:
            if end - start == 4:
                duration = struct.unpack(">f", info[start:end])[0]
            elif end - start == 8:
                duration = struct.unpack(">d", info[start:end])[0]
    if duration is None or duration <= 0:
        return None  # live recordings (MediaRecorder) often have no Duration
    return round(duration * scale_ns / 1_000_000)


def _webm_tracks(tracks: bytes) -> tuple[Track, ...]:
    found: list[Track] = []
    for element_id, start, end in _elements(tracks, 0, len(tracks)):
        if element_id != TRACK_ENTRY:
            continue
        handler, width, height = "", None, None
        for child, cstart, cend in _elements(tracks, start, end):
            if child == TRACK_TYPE:
                handler = TRACK_TYPES.get(_uint(tracks[cstart:cend]), "")
            elif child == VIDEO:
                for prop, pstart, pend in _elements(tracks, cstart, cend):
                    if prop == PIXEL_WIDTH:
                        width = _uint(tracks[pstart:pend])
                    elif prop == PIXEL_HEIGHT:
                        height = _uint(tracks[pstart:pend])
        found.append(Track(handler, width, height))
    return tuple(found)
