"""Cursors of the takes lists that are not sorted by (time, id).

Lists sorted by time use resolvers/pagination.py's Keyset cursors. Ranked
lists (takesFeed, trendingTakeTrends) and takeTemplates (by use) page by
their own sort key. A ranked cursor also carries the time the first page was
ranked at (`ranked_at`): later pages rank again as of that time, so scores that
decay with age do not shift between pages and nothing is skipped or repeated
while the counters stand still. Cursors stay opaque to clients.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

from resolvers.errors import BadUserInput

T = TypeVar("T")


@dataclass
class Listing(Generic[T]):
    """One page of a list whose cursors are already encoded (any sort order)."""

    items: list[tuple[str, T]]
    has_next: bool
    has_previous: bool
    total_count: int


def encode(*values: Any) -> str:
    raw = json.dumps(list(values), separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode(cursor: str, size: int) -> list[Any]:
    """The `size` values of a cursor we issued; BAD_USER_INPUT otherwise."""
    try:
        raw = base64.urlsafe_b64decode((cursor + "=" * (-len(cursor) % 4)).encode())
        values = json.loads(raw)
    except (ValueError, TypeError) as exc:
        raise BadUserInput("after is not a valid cursor", field="after") from exc
    if not isinstance(values, list) or len(values) != size:
        raise BadUserInput("after is not a valid cursor", field="after")
    return values


@dataclass(frozen=True)
class RankedCursor:
    """Position in a ranked list: the ranking time, then the last item's sort key."""

    ranked_at: datetime
    key: tuple[float, ...]

    def encode(self) -> str:
        return encode(self.ranked_at.isoformat(), *self.key)

    @classmethod
    def decode(cls, cursor: str | None, key_size: int) -> RankedCursor | None:
        if cursor is None:
            return None
        values = decode(cursor, key_size + 1)
        try:
            at = datetime.fromisoformat(values[0])
            key = tuple(float(v) for v in values[1:])
        except (TypeError, ValueError) as exc:
            raise BadUserInput("after is not a valid cursor", field="after") from exc
        if at.tzinfo is None:
            raise BadUserInput("after is not a valid cursor", field="after")
        return cls(at, key)


def count_id(cursor: str | None) -> tuple[int, int] | None:
    """A (count, id) cursor: takeTemplates, most used first."""
    if cursor is None:
        return None
    values = decode(cursor, 2)
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        raise BadUserInput("after is not a valid cursor", field="after")
    return int(values[0]), int(values[1])
