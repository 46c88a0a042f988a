"""Types every domain shares: Node, PageInfo, Relay connections, scalars, Platform."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable, Iterator
from enum import Enum
from typing import Any, Generic, NewType, TypeVar

import strawberry
from strawberry.file_uploads import Upload
from strawberry.schema.config import StrawberryConfig
from strawberry.types import Info
from strawberry.types.nodes import SelectedField, Selection

from resolvers.pagination import Page, encode_cursor

T = TypeVar("T")


def _parse_base64(value: str) -> bytes:
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("not valid standard base64") from exc


Base64 = NewType("Base64", bytes)

# Custom scalars are registered through the schema config (strawberry's current API);
# every schema we build passes SCALARS, and `Base64` is listed in its types.
SCALARS = StrawberryConfig(
    scalar_map={
        Base64: strawberry.scalar(
            name="Base64",
            description="standard base64 of opaque bytes (keys, ciphertext)",
            serialize=lambda value: base64.b64encode(value).decode(),
            parse_value=_parse_base64,
        )
    }
)

__all__ = [
    "Base64", "SCALARS", "Upload", "Node", "PageInfo", "Connection", "Edge", "Platform",
    "connection", "node_fields", "node_selection", "NO_CURSOR", "given",
]  # fmt: skip


@strawberry.enum
class Platform(Enum):
    SOCIALINK = "socialink"
    VIGNETTE = "vignette"


# An entity interface (Federation 2.3): `@key` in the users subgraph, which owns
# `node(id)`; every implementation is an entity that loads by reference.
@strawberry.federation.interface(keys=["id"])
class Node:
    @strawberry.field
    def id(self) -> strawberry.ID:
        """Every Node type gives its own global ID (resolvers/ids.py encode_id)."""
        raise NotImplementedError


@strawberry.type
class PageInfo:
    has_next_page: bool
    has_previous_page: bool
    start_cursor: str | None
    end_cursor: str | None


@strawberry.type
class Edge(Generic[T]):
    cursor: str
    node: T


@strawberry.type
class Connection(Generic[T]):
    edges: list[Edge[T]]
    page_info: PageInfo
    total_count: int


def connection(page: Page[T]) -> Connection[T]:
    """Wrap a keyset page (already converted to schema objects) as a Relay connection."""
    edges = [Edge(cursor=encode_cursor(key), node=node) for key, node in page.items]
    return Connection(
        edges=edges,
        page_info=PageInfo(
            has_next_page=page.has_next,
            has_previous_page=page.has_previous,
            start_cursor=edges[0].cursor if edges else None,
            end_cursor=edges[-1].cursor if edges else None,
        ),
        total_count=page.total_count,
    )


NO_CURSOR: Any = strawberry.UNSET
"""Default of `after`: no default value in the SDL, as the contract writes it."""


def given(value: Any) -> Any:
    """None for an argument or input field the client left out."""
    return None if value is strawberry.UNSET else value


def node_fields(info: Info) -> list[SelectedField]:
    """The fields a connection's query selects on `edges { node { … } }`, through
    fragments too: what a connection resolver may prefetch for its nodes."""
    edges = _fields_named(info.selected_fields, "edges")
    return list(_fields(_fields_named(edges, "node")))


def node_selection(info: Info) -> frozenset[str]:
    """Names of the `node_fields`."""
    return frozenset(field.name for field in node_fields(info))


def _fields(selections: Iterable[Selection]) -> Iterator[SelectedField]:
    """The fields among `selections`' children, fragments flattened."""
    for selection in selections:
        for child in selection.selections:
            if isinstance(child, SelectedField):
                yield child
            else:
                yield from _fields([child])


def _fields_named(selections: Iterable[Selection], name: str) -> list[SelectedField]:
    return [field for field in _fields(selections) if field.name == name]
