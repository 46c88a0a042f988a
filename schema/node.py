"""`Query.node(id)`, and the stubs a subgraph returns for entities another one owns.

`Node` is an entity interface: `@key(fields: "id")` in the users subgraph, which
owns `node`; a plain interface in the subgraphs that define Node types of their
own; `@interfaceObject` in a subgraph that uses Node but defines none (see
schema/subgraphs.py for why). Every type implementing Node is
an entity whose `resolve_reference` loads it by global ID through the
per-request DataLoaders, so `node` needs no registry of its own: a new domain's
type is reachable by `node` as soon as it implements Node and is owned.

`node` always loads the object through its type's reference resolver, in a
subgraph too, even for a type that subgraph knows only as a stub (`id`
alone): an unknown, deleted or other-platform ID is then null through the
router exactly as in the monolith. (Returning an unchecked `{__typename, id}`
stub instead would let the router answer `node(id) { id }` for an object that
does not exist.) Every subgraph process has every domain's stores, so this is
one batched DataLoader read of the owner's store, not a network hop; the
router still fetches the other fields from the owning subgraph. In a subgraph
where Node is an `@interfaceObject` (it defines no Node type), the found
object is returned as an `EntityStub` of Node for the router to type.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any

import strawberry
from strawberry.types import Info
from strawberry.types.base import StrawberryObjectDefinition

from resolvers.node import node_type_name
from schema.common import Node

NODE_TYPE_NAME = "Node"
STUB_TYPES_ATTRIBUTE = "entity_stub_types"
"""Attribute of a subgraph's strawberry Schema: names of the types it has only as stubs."""


@dataclass(frozen=True)
class EntityStub:
    """An entity known only by its key: `{__typename, id}` for the router to complete."""

    typename: str
    id: str


def stub_type_names(schema: object) -> frozenset[str]:
    """The types the executing schema returns as stubs (none in the monolith)."""
    names: frozenset[str] = getattr(schema, STUB_TYPES_ATTRIBUTE, frozenset())
    return names


def node_class(schema: strawberry.Schema, type_name: str) -> Any | None:
    """The class of the Node type named `type_name`, when it can load by reference."""
    concrete = schema.schema_converter.type_map.get(type_name)
    definition = concrete.definition if concrete else None
    if not isinstance(definition, StrawberryObjectDefinition) or definition.is_interface:
        return None
    origin = definition.origin
    if not (issubclass(origin, Node) and hasattr(origin, "resolve_reference")):
        return None
    return origin


async def resolve_node(info: Info, global_id: str) -> Any | None:
    """The object a global ID names, a stub of it (subgraphs), or None."""
    type_name = node_type_name(global_id)
    if type_name is None:
        return None
    cls = node_class(info.schema, type_name)
    if cls is None:
        return None
    result = cls.resolve_reference(info=info, id=strawberry.ID(global_id))
    found = await result if inspect.isawaitable(result) else result
    if found is not None and NODE_TYPE_NAME in stub_type_names(info.schema):
        return EntityStub(NODE_TYPE_NAME, global_id)  # Node is an @interfaceObject here
    return found


@strawberry.type
class NodeQuery:
    @strawberry.field(
        description="The object with this global ID; null when it is unknown, gone, "
        "or of another platform."
    )
    async def node(self, info: Info, id: strawberry.ID) -> Node | None:
        node: Node | None = await resolve_node(info, id)
        return node
