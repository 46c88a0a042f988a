"""Opaque global IDs: base64 of "Type:pk". `node(id)` decodes them."""
from __future__ import annotations

import base64
import binascii

from resolvers.errors import BadUserInput


def encode_id(type_name: str, pk: int | str) -> str:
    return base64.urlsafe_b64encode(f"{type_name}:{pk}".encode()).decode().rstrip("=")


def split_id(global_id: str) -> tuple[str, str] | None:
    """(type name, pk) of a global ID, or None when it is not one of ours."""
    try:
        padded = global_id + "=" * (-len(global_id) % 4)
        raw = base64.urlsafe_b64decode(padded.encode()).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    type_name, sep, pk = raw.partition(":")
    if not sep or not type_name or not pk:
        return None
    return type_name, pk


def key_of(global_id: str, expected_type: str) -> int | None:
    """The integer pk of a global ID of `expected_type`, or None when it is not one
    (node and entity references: an ID that is not ours is simply not found)."""
    parts = split_id(global_id)
    if parts is None or parts[0] != expected_type or not parts[1].isdigit():
        return None
    return int(parts[1])


def decode_id(global_id: str, expected_type: str, field: str = "id") -> int:
    """The integer pk of a global ID of `expected_type`; BAD_USER_INPUT otherwise."""
    parts = split_id(global_id)
    if parts is None or parts[0] != expected_type or not parts[1].isdigit():
        raise BadUserInput(f"{field} is not a valid {expected_type} id", field=field)
    return int(parts[1])
