"""`node(id)`: which type a global ID names. Loading stays with each type's owner."""

from __future__ import annotations

from resolvers.ids import split_id


def node_type_name(global_id: str) -> str | None:
    """The type a global ID was minted for, or None when it is not one of ours.

    The type decides who loads the object (its entity's reference resolver, which
    reads through the request's platform-scoped DataLoaders), so an ID of another
    platform, or of a row that is gone, ends as null there and not here.
    """
    parts = split_id(global_id)
    return parts[0] if parts else None
