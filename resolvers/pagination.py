"""Keyset pagination: cursors are opaque encodings of the sort key, never offsets."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Generic, TypeVar

from resolvers.errors import BadUserInput

T = TypeVar("T")
U = TypeVar("U")


@dataclass(frozen=True)
class Keyset:
    """Position after which a page starts: (created_at, id), newest first."""

    at: datetime
    id: int


def encode_cursor(key: Keyset) -> str:
    """base64url of the JSON `["<isoformat>",<id>]`, written out directly: an ISO
    timestamp needs no JSON escaping, and every edge of every page pays for this
    (json.dumps costs twice as much)."""
    raw = f'["{key.at.isoformat()}",{key.id:d}]'
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

    def map(self, wrap: Callable[[T], U]) -> Page[U]:
        """The same page with each item wrapped (e.g. records as schema objects)."""
        return Page(
            items=[(key, wrap(item)) for key, item in self.items],
            has_next=self.has_next,
            has_previous=self.has_previous,
            total_count=self.total_count,
        )

    @classmethod
    def from_fetched(
        cls, found: list[T], limit: int, has_previous: bool, total: int, key: Callable[[T], Keyset]
    ) -> Page[T]:
        """A page from `limit + 1` items fetched (the extra one tells there is a next page)."""
        return cls(
            items=[(key(item), item) for item in found[:limit]],
            has_next=len(found) > limit,
            has_previous=has_previous,
            total_count=total,
        )
