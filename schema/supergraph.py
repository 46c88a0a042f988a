"""Compose the domains into one schema: the monolith that `entativa serve` runs."""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import strawberry
from graphql import print_schema
from strawberry.extensions import SchemaExtension
from strawberry.tools import merge_types

from schema.common import SCALARS, Base64
from schema.domains import DOMAINS, Domain


def _root(name: str, parts: Sequence[type]) -> type | None:
    return merge_types(name, tuple(parts)) if parts else None


def _roots(domains: Iterable[Domain]) -> dict[str, Any]:
    domains = list(domains)
    return {
        "query": _root("Query", [q for d in domains for q in d.queries]),
        "mutation": _root("Mutation", [m for d in domains for m in d.mutations]),
        "subscription": _root("Subscription", [s for d in domains for s in d.subscriptions]),
        "types": [t for d in domains for t in d.extra_types],
    }


def supergraph(extensions: Sequence[type[SchemaExtension] | SchemaExtension] = ()) -> strawberry.Schema:
    """Every domain in one schema (no federation fields): what clients see."""
    roots = _roots(DOMAINS.values())
    roots["types"] = [Base64, *roots["types"]]
    return strawberry.federation.Schema(**roots, extensions=list(extensions), config=SCALARS)


def print_supergraph() -> str:
    """The API schema as SDL (no federation directives), sorted as graphql-core prints it."""
    return print_schema(supergraph()._schema)
