"""Byte layouts of what the reference client puts inside an envelope.

The server relays `content` opaquely, so these layouts are a contract between
clients only. Fields are length-prefixed (4 bytes, big-endian) so a message
parses unambiguously without a schema; Curve25519 public keys travel in
Signal's 33-byte form (a 0x05 type byte, then the 32-byte key).
"""

from __future__ import annotations

import base64
import struct

CURVE25519_TYPE = b"\x05"


class MalformedMessage(ValueError):
    """Bytes that do not parse as the layout they claim to be."""


def pack(*fields: bytes) -> bytes:
    return b"".join(struct.pack(">I", len(field)) + field for field in fields)


def unpack(data: bytes, count: int) -> list[bytes]:
    """Exactly `count` fields, the way `pack` wrote them."""
    fields: list[bytes] = []
    offset = 0
    for _ in range(count):
        if offset + 4 > len(data):
            raise MalformedMessage("truncated field length")
        (size,) = struct.unpack_from(">I", data, offset)
        offset += 4
        if offset + size > len(data):
            raise MalformedMessage("truncated field")
        fields.append(data[offset : offset + size])
        offset += size
    if offset != len(data):
        raise MalformedMessage("trailing bytes")
    return fields


def encode_curve(public_key: bytes) -> bytes:
    """Signal's serialized form of a Curve25519 public key (what the server stores)."""
    return CURVE25519_TYPE + public_key


def decode_curve(serialized: bytes) -> bytes:
    """The raw 32-byte key from either the 33-byte typed form or the raw form."""
    if len(serialized) == 33 and serialized[:1] == CURVE25519_TYPE:
        return serialized[1:]
    if len(serialized) == 32:
        return serialized
    raise MalformedMessage("not a Curve25519 public key")


def b64(data: bytes) -> str:
    """The contract's Base64 scalar (standard alphabet, padded)."""
    return base64.b64encode(data).decode("ascii")


def unb64(text: str) -> bytes:
    return base64.b64decode(text)


def u64(value: int) -> bytes:
    return struct.pack(">Q", value)


def read_u64(data: bytes) -> int:
    if len(data) != 8:
        raise MalformedMessage("not a 64-bit integer")
    return int(struct.unpack(">Q", data)[0])
