"""Keyset pagination: cursors are opaque encodings of the sort key, never offsets."""
from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Generic, TypeVar

from resolvers.errors import BadUserInput

T = TypeVar("T")


@dataclass(frozen=True)
class Keyset:
    """Position after which a page starts: (created_at, id), newest first."""

    at: datetime
    id: int


def encode_cursor(key: Keyset) -> str:
    raw = json.dumps([key.at.isoformat(), key.id], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> Keyset | None:
    if cursor is None:
        return None
    try:
        raw = base64.urlsafe_b64decode((cursor + "=" * (-len(cursor) % 4)).encode())
        at, pk = json.loads(raw)
        return Keyset(datetime.fromisoformat(at), int(pk))
    except (ValueError, TypeError, json.JSONDecodeError) as exc:
        raise BadUserInput("after is not a valid cursor", field="after") from exc


def page_size(first: int | None, maximum: int) -> int:
    if first is None:
        return 20
    if first < 0 or first > maximum:
        raise BadUserInput(f"first must be between 0 and {maximum}", field="first")
    return first


@dataclass
class Page(Generic[T]):
    """One page of a keyset-paginated list, with the key of each item."""

    items: list[tuple[Keyset, T]]
    has_next: bool
    has_previous: bool
    total_count: int
