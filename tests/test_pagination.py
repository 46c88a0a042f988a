"""resolvers/pagination.py: cursors are the base64url of a JSON [isoformat, id]."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta, timezone

import pytest

from resolvers.pagination import Keyset, decode_cursor, encode_cursor


@pytest.mark.parametrize(
    "at",
    [
        datetime(2026, 11, 26, 10, 52, 27, 123456, tzinfo=UTC),
        datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),  # no microseconds
        datetime(2026, 1, 2, 3, 4, 5, 60, tzinfo=timezone(timedelta(hours=-5, minutes=-30))),
        datetime(2026, 1, 2, 3, 4, 5),  # naive (decode_cursor accepts, posts refuse)
    ],
)
@pytest.mark.parametrize("pk", [0, 7, 12345678901234])
def test_cursor_is_the_json_of_the_key_and_decodes_back(at: datetime, pk: int) -> None:
    """The cursor is written out without json.dumps (it is on every edge): it must stay
    byte for byte what json.dumps gave, so cursors issued before still decode."""
    key = Keyset(at, pk)
    cursor = encode_cursor(key)
    raw = json.dumps([at.isoformat(), pk], separators=(",", ":"))
    assert cursor == base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")
    assert decode_cursor(cursor) == key
