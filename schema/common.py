"""Types every domain shares: Node, PageInfo, Relay connections, scalars, Platform."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Collection, Iterable, Iterator
from enum import Enum
from typing import Any, Generic, NamedTuple, NewType, TypeVar, cast

import strawberry
from graphql import (
    FieldNode,
    FragmentSpreadNode,
    GraphQLResolveInfo,
    InlineFragmentNode,
    SelectionNode,
)
from strawberry.file_uploads import Upload
from strawberry.schema.config import StrawberryConfig
from strawberry.types import Info
from strawberry.types.nodes import convert_arguments

from resolvers.pagination import Keyset, Page, encode_cursor

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
    "connection", "edges_connection", "node_fields", "node_selection", "selects", "NO_CURSOR",
    "given",
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


Position = Keyset | str
"""Where an edge sits: a keyset, encoded only when the client asks for its cursor
(a page of posts with their first comments has an edge and a pageInfo per comment
connection, and most queries select no cursor), or a cursor already encoded."""


def cursor_of(position: Position | None) -> str | None:
    return position if position is None or isinstance(position, str) else encode_cursor(position)


@strawberry.type
class PageInfo:
    has_next_page: bool
    has_previous_page: bool
    start: strawberry.Private[Position | None] = None
    end: strawberry.Private[Position | None] = None

    @strawberry.field
    def start_cursor(self) -> str | None:
        return cursor_of(self.start)

    @strawberry.field
    def end_cursor(self) -> str | None:
        return cursor_of(self.end)


def _edge_cursor(root: Edge[Any]) -> str:
    return cast(str, cursor_of(root.position))


@strawberry.type
class Edge(Generic[T]):
    position: strawberry.Private[Position]
    cursor: str = strawberry.field(resolver=_edge_cursor)
    node: T


@strawberry.type
class Connection(Generic[T]):
    edges: list[Edge[T]]
    page_info: PageInfo
    total_count: int


def connection(page: Page[T]) -> Connection[T]:
    """Wrap a keyset page (already converted to schema objects) as a Relay connection."""
    return edges_connection(
        [Edge(position=key, node=node) for key, node in page.items],
        page.has_next,
        page.has_previous,
        page.total_count,
    )


def edges_connection(
    edges: list[Edge[T]], has_next: bool, has_previous: bool, total_count: int
) -> Connection[T]:
    return Connection(
        edges=edges,
        page_info=PageInfo(
            has_next_page=has_next,
            has_previous_page=has_previous,
            start=edges[0].position if edges else None,
            end=edges[-1].position if edges else None,
        ),
        total_count=total_count,
    )


NO_CURSOR: Any = strawberry.UNSET
"""Default of `after`: no default value in the SDL, as the contract writes it."""


def given(value: Any) -> Any:
    """None for an argument or input field the client left out."""
    return None if value is strawberry.UNSET else value


class NodeField(NamedTuple):
    """A field selected on a connection's nodes, with its arguments as the query wrote
    them (variables replaced by their values, literals unparsed: strawberry's
    `SelectedField.arguments`)."""

    name: str
    arguments: dict[str, Any]


def node_fields(info: Info) -> list[NodeField]:
    """The fields a connection's query selects on `edges { node { … } }`, through
    fragments too: what a connection resolver may prefetch for its nodes. Walks the
    syntax tree down to them only (`info.selected_fields` would convert the whole
    selection, every nested field of every node, on each request)."""
    raw = info._raw_info
    edges = [field for field in _fields(raw, raw.field_nodes) if field.name.value == "edges"]
    return [
        NodeField(field.name.value, convert_arguments(raw, field.arguments))
        for node in _fields(raw, edges)
        if node.name.value == "node"
        for field in _fields(raw, [node])
    ]


def node_selection(info: Info) -> frozenset[str]:
    """Names of the `node_fields`."""
    return frozenset(field.name for field in node_fields(info))


def selects(info: Info, name: str) -> bool:
    """Whether the query selects `name` directly on this field (through fragments too),
    e.g. a connection's totalCount: a count is a statement of its own, not worth running
    for a client that does not ask for it."""
    raw = info._raw_info
    return any(field.name.value == name for field in _fields(raw, raw.field_nodes))


def _fields(info: GraphQLResolveInfo, nodes: Iterable[SelectionNode]) -> Iterator[FieldNode]:
    """The fields among `nodes`' children, fragments flattened."""
    for node in nodes:
        for child in _children(info, node):
            if isinstance(child, FieldNode):
                yield child
            else:
                yield from _fields(info, [child])


def _children(info: GraphQLResolveInfo, node: SelectionNode) -> Collection[SelectionNode]:
    """A field's or a fragment's selections (a spread's are its fragment's)."""
    if isinstance(node, FragmentSpreadNode):
        return info.fragments[node.name.value].selection_set.selections
    selection_set = cast(FieldNode | InlineFragmentNode, node).selection_set
    return selection_set.selections if selection_set else ()
