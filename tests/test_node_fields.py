"""schema/common.py node_fields: what a connection's query selects on its nodes,
read from the syntax tree (fragments flattened, variables replaced)."""

from __future__ import annotations

from typing import Any

import strawberry
from strawberry.types import Info

from schema.common import NodeField, node_fields, node_selection

SEEN: list[list[NodeField]] = []


@strawberry.type
class Item:
    name: str = "item"

    @strawberry.field
    def children(self, first: int | None = 20, after: str | None = None) -> list[str]:
        return []


@strawberry.type
class ItemEdge:
    node: Item


@strawberry.type
class ItemConnection:
    edges: list[ItemEdge]
    total: int = 1


@strawberry.type
class Query:
    @strawberry.field
    def items(self, info: Info) -> ItemConnection:
        SEEN.append(node_fields(info))
        assert node_selection(info) == frozenset(field.name for field in SEEN[-1])
        return ItemConnection(edges=[ItemEdge(node=Item())])


SCHEMA = strawberry.Schema(Query)


async def fields_of(query: str, variables: dict[str, Any] | None = None) -> list[NodeField]:
    SEEN.clear()
    result = await SCHEMA.execute(query, variable_values=variables)
    assert result.errors is None, result.errors
    return SEEN[-1]


async def test_plain_fields_with_their_arguments_as_written() -> None:
    fields = await fields_of(
        '{ items { total edges { node { name children(first: 2, after: "x") } } } }'
    )
    assert fields == [NodeField("name", {}), NodeField("children", {"first": "2", "after": "x"})]


async def test_fragments_are_flattened_and_variables_replaced() -> None:
    query = """
    query($n: Int) { items { ...Page } }
    fragment Page on ItemConnection { edges { node { ... on Item { ...Card } } } }
    fragment Card on Item { name children(first: $n) }
    """
    fields = await fields_of(query, {"n": 5})
    assert fields == [NodeField("name", {}), NodeField("children", {"first": 5})]


async def test_fields_outside_the_nodes_do_not_count() -> None:
    assert await fields_of("{ items { total } }") == []
    assert await fields_of("{ items { edges { __typename } } }") == []
