"""Page arguments and pages of the posts domain (keyset cursors of resolvers/pagination)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from datasources.posts.records import After, Slice
from resolvers.context import Context
from resolvers.errors import BadUserInput
from resolvers.pagination import Keyset, Page, decode_cursor, page_size

T = TypeVar("T")


def arguments(context: Context, first: int | None, after: str | None) -> tuple[int, After | None]:
    """Validated `first` (0..max_page_size) and `after` (a cursor we issued)."""
    limit = page_size(first, context.settings.max_page_size)
    key = decode_cursor(after)
    if key is None:
        return limit, None
    if key.at.tzinfo is None:  # every cursor we issue carries its UTC offset
        raise BadUserInput("after is not a valid cursor", field="after")
    return limit, After(key.at, key.id)


def to_page(
    context: Context, found: Slice[T], pk: Callable[[T], int], after: After | None
) -> Page[T]:
    """A store slice as a page; users it joined along prime the user loader."""
    if found.users:
        context.loaders.users.prime(found.users)
    return Page(
        items=[
            (Keyset(at, pk(item)), item) for at, item in zip(found.times, found.items, strict=True)
        ],
        has_next=found.has_next,
        has_previous=after is not None,
        total_count=found.total,
    )
