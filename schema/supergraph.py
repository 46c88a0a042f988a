"""Compose the domains into one schema: the monolith that `entativa serve` runs.

The monolith is the one schema definition: `schema.subgraphs` derives every
subgraph from it. `print_supergraph()` is what clients see of it (the API
schema): the federation plumbing strawberry adds (`_service`, `_entities`,
`_Any`, `@key`…) is left out, so it equals what a router composes from the
subgraphs. `schema.graphql` at the top of the repository is its output.
Like the composed API schema it carries no `@oneOf` (strawberry enforces
one-of inputs itself, in the monolith and in each subgraph).
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

import strawberry
from graphql import (
    DefinitionNode,
    DirectiveDefinitionNode,
    DocumentNode,
    GraphQLSchema,
    ObjectTypeDefinitionNode,
    SchemaDefinitionNode,
    SchemaExtensionNode,
    TypeDefinitionNode,
    parse,
    print_ast,
    print_schema,
)
from strawberry.extensions import SchemaExtension
from strawberry.tools import merge_types

from schema.common import SCALARS, Base64
from schema.domains import DOMAINS, Domain
from schema.execution import LeanExecutor, call_resolvers_directly

N = TypeVar("N")

FEDERATION_FIELDS = frozenset({"_service", "_entities"})
FEDERATION_TYPES = frozenset({"_Any", "_Entity", "_Service", "_FieldSet"})
FEDERATION_TYPE_PREFIXES = ("link__", "federation__")
FEDERATION_DIRECTIVES = frozenset(
    {
        "authenticated", "composeDirective", "context", "cost", "extends", "external",
        "fromContext", "inaccessible", "interfaceObject", "key", "link", "listSize",
        "override", "policy", "provides", "requires", "requiresScopes", "shareable", "tag",
    }
)  # fmt: skip


def _root(name: str, parts: Sequence[type]) -> type | None:
    return merge_types(name, tuple(parts)) if parts else None


def _roots(domains: Iterable[Domain]) -> dict[str, Any]:
    domains = list(domains)
    types = [t for d in domains for t in (*d.owns, *d.extra_types)]
    return {
        "query": _root("Query", [q for d in domains for q in d.queries]),
        "mutation": _root("Mutation", [m for d in domains for m in d.mutations]),
        "subscription": _root("Subscription", [s for d in domains for s in d.subscriptions]),
        "types": list(dict.fromkeys(types)),
    }


def supergraph(
    extensions: Sequence[type[SchemaExtension] | Callable[[], SchemaExtension]] = (),
) -> strawberry.Schema:
    """Every domain in one schema: the monolith, and the source of every subgraph.

    Extensions are classes or factories: strawberry makes one instance per request.
    """
    roots = _roots(DOMAINS.values())
    roots["types"] = [Base64, *roots["types"]]
    schema = strawberry.federation.Schema(
        **roots,
        extensions=list(extensions),
        config=SCALARS,
        execution_context_class=LeanExecutor,
    )
    call_resolvers_directly(schema)
    return schema


def replace_node(node: N, **changes: Any) -> N:
    """A copy of an AST node with some attributes changed (frozen in graphql-core 3.3)."""
    if dataclasses.is_dataclass(node) and not isinstance(node, type):
        return dataclasses.replace(node, **changes)  # type: ignore[type-var]
    changed = copy.copy(node)
    for name, value in changes.items():
        setattr(changed, name, value)
    return changed


def is_federation_type(name: str) -> bool:
    return name in FEDERATION_TYPES or name.startswith(FEDERATION_TYPE_PREFIXES)


def _without_federation(definition: DefinitionNode, query_type: str) -> DefinitionNode | None:
    """The definition as clients see it, or None when it is federation plumbing."""
    if isinstance(definition, DirectiveDefinitionNode):
        return None if definition.name.value in FEDERATION_DIRECTIVES else definition
    if isinstance(definition, SchemaDefinitionNode | SchemaExtensionNode):
        return definition
    assert isinstance(definition, TypeDefinitionNode)
    if is_federation_type(definition.name.value):
        return None
    if isinstance(definition, ObjectTypeDefinitionNode) and definition.name.value == query_type:
        fields = tuple(f for f in definition.fields or () if f.name.value not in FEDERATION_FIELDS)
        return replace_node(definition, fields=fields)
    return definition


def api_definitions(schema: GraphQLSchema) -> list[DefinitionNode]:
    """The SDL of a graphql-core schema as AST definitions, minus federation plumbing."""
    query_type = schema.query_type.name if schema.query_type else "Query"
    kept = (_without_federation(d, query_type) for d in parse(print_schema(schema)).definitions)
    return [d for d in kept if d is not None]


def _sort_key(definition: DefinitionNode | SchemaExtensionNode) -> tuple[int, str]:
    if isinstance(definition, SchemaDefinitionNode | SchemaExtensionNode):
        return (0, "")
    if isinstance(definition, DirectiveDefinitionNode):
        return (1, definition.name.value)
    assert isinstance(definition, TypeDefinitionNode)
    return (2, definition.name.value)


def print_definitions(definitions: Iterable[DefinitionNode | SchemaExtensionNode]) -> str:
    """SDL with types sorted by name (stable diffs) and fields in definition order."""
    ordered = sorted(definitions, key=_sort_key)
    return print_ast(DocumentNode(definitions=tuple(ordered)))  # type: ignore[arg-type]


def print_supergraph() -> str:
    """The API schema as SDL: every domain, no federation plumbing or directives."""
    return print_definitions(api_definitions(supergraph()._schema))
