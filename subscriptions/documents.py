"""A subscribe request made ready once: parsed, validated, variables coerced,
root field and arguments found, and whether its selection is the same for every
viewer allowed to receive the event ("shared").

Shared selections are what makes fan-out cheap: the hub executes them once per
event for every subscriber of that (document, variables) who may see the event,
and sends the same bytes to all. A selection is shared when every field below the
root is, by this conservative rule:

- a field with arguments is not (connections and lists filter by viewer);
- a field named `viewer…`, or listed in `VIEWER_DEPENDENT`, is not;
- an object field is shared only when listed in `SHARED_OBJECTS` (objects whose
  visibility the live field already settled for every receiver: the comment's
  author and parent have no block with the viewer, the subject is the post the
  viewer may see);
- scalars and enums otherwise are.

Anything else is executed once per viewer (still once per event, not per socket).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    get_named_type,
    is_composite_type,
    specified_rules,
)
from graphql.execution.values import get_argument_values, get_variable_values

from resolvers.errors import BadUserInput
from schema.execution import PlainSelection
from schema.root_field import RootFieldPlan
from server.limits import DocumentCache, validation_rules
from server.settings import Settings

VIEWER_DEPENDENT = frozenset(
    {"stories", "highlights", "lastSeenAt", "isOnline", "sharedPost", "mentions"}
)
SHARED_OBJECTS = frozenset(
    {
        ("Comment", "author"),
        ("Comment", "parent"),
        ("Comment", "subject"),
        ("Post", "author"),
        ("Post", "media"),
        ("Post", "location"),
        ("Take", "author"),
        ("User", "avatar"),
    }
)


@dataclass(frozen=True)
class Prepared:
    query: str
    document: DocumentNode
    operation: OperationDefinitionNode
    operation_name: str | None
    variables: dict[str, Any]
    kind: str  # "query" | "mutation" | "subscription"
    root_field: str = ""
    arguments: Any = None  # the root field's coerced arguments (a dict)
    shared: bool = False
    plain: PlainSelection | None = None  # completed without the executor (schema/execution.py)
    root: RootFieldPlan | None = None  # a query's or mutation's (schema/root_field.py)

    @property
    def key(self) -> tuple[str, str | None, str]:
        """Subscriptions with equal keys get identical results for equal viewers."""
        return (self.query, self.operation_name, _canonical(self.variables))


def _canonical(variables: dict[str, Any]) -> str:
    return json.dumps(variables, sort_keys=True, separators=(",", ":"), default=str)


class Preparer:
    """Parses and validates with the server's limits; caches per query text."""

    def __init__(self, schema: GraphQLSchema, settings: Settings) -> None:
        self.schema = schema
        self.cache = DocumentCache(settings.max_query_tokens)
        self.rules = (*specified_rules, *validation_rules(settings))
        self.budget = settings.max_query_cost
        # per (query, operation): whether its selection is shared, and its plain selection
        self._plans: dict[tuple[str, str | None], tuple[bool, PlainSelection | None]] = {}
        # per (query, operation) of a query or mutation, bounded like the documents
        self._root_plan: Callable[[str, str | None], RootFieldPlan | None] = lru_cache(
            maxsize=self.cache.size
        )(self._plan_root)

    def prepare(self, payload: Any) -> Prepared:
        """Raises a GraphQLError (or a list in `ErrorList`) saying what is wrong."""
        if not isinstance(payload, dict) or not isinstance(payload.get("query"), str):
            raise BadUserInput("a subscribe payload needs a `query` string")
        query: str = payload["query"]
        name = payload.get("operationName") or None
        variables = payload.get("variables") or {}
        if not isinstance(variables, dict):
            raise BadUserInput("`variables` must be an object")
        document = self.cache.parse(query)
        errors = self.cache.validate(self.schema, query, self.rules)
        if errors:
            raise ErrorList(list(errors))
        operation = _operation(document, name)
        kind = operation.operation.value
        if kind != "subscription":
            root = self._root_plan(query, name)
            return Prepared(query, document, operation, name, variables, kind, root=root)
        # Queries and mutations get theirs where they execute (`too_costly`).
        if refused := self.cache.over_budget(self.schema, query, name, variables, self.budget):
            raise ErrorList([refused])
        coerced = get_variable_values(
            self.schema, operation.variable_definitions or (), variables, max_errors=20
        )
        if isinstance(coerced, list):
            raise ErrorList(coerced)
        field = _root_field(operation)
        subscription = self.schema.subscription_type
        assert subscription is not None  # validation passed, so the schema has one
        definition = subscription.fields[field.name.value]
        arguments = get_argument_values(definition, field, coerced)
        key = (query, name)
        if key not in self._plans:
            fragments = _fragments(document)
            shared = _shared(self.schema, definition.type, field.selection_set, fragments)
            self._plans[key] = (shared, PlainSelection.of(self.schema, operation))
        shared, plain = self._plans[key]
        return Prepared(
            query,
            document,
            operation,
            name,
            variables,
            kind,
            root_field=field.name.value,
            arguments=arguments,
            shared=shared,
            plain=plain,
        )

    def _plan_root(self, query: str, name: str | None) -> RootFieldPlan | None:
        document = self.cache.parse(query)
        return RootFieldPlan.of(self.schema, document, _operation(document, name))

    def too_costly(self, prepared: Prepared) -> GraphQLError | None:
        """QUERY_TOO_COMPLEX when a query or mutation costs more than the server's
        budget (a subscription's is checked by `prepare`)."""
        return self.cache.over_budget(
            self.schema, prepared.query, prepared.operation_name, prepared.variables, self.budget
        )


class ErrorList(Exception):
    def __init__(self, errors: list[GraphQLError]) -> None:
        super().__init__(errors[0].message if errors else "invalid request")
        self.errors = errors


def _operation(document: DocumentNode, name: str | None) -> OperationDefinitionNode:
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if name is not None:
        operations = [o for o in operations if o.name and o.name.value == name]
    if len(operations) != 1:
        raise BadUserInput("name exactly one operation (operationName)")
    return operations[0]


def _root_field(operation: OperationDefinitionNode) -> FieldNode:
    fields = [s for s in operation.selection_set.selections if isinstance(s, FieldNode)]
    if len(fields) != 1 or len(operation.selection_set.selections) != 1:
        raise BadUserInput("a subscription selects exactly one root field, not in a fragment")
    return fields[0]


def _fragments(document: DocumentNode) -> dict[str, FragmentDefinitionNode]:
    return {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}


def _shared(
    schema: GraphQLSchema,
    type_: Any,
    selection_set: SelectionSetNode | None,
    fragments: dict[str, FragmentDefinitionNode],
    seen: frozenset[str] = frozenset(),
) -> bool:
    """Whether this selection on `type_` is the same for every allowed viewer."""
    if selection_set is None:
        return True
    parent = get_named_type(type_)
    for selection in selection_set.selections:
        if isinstance(selection, FieldNode):
            if not _shared_field(schema, parent, selection, fragments, seen):
                return False
        elif isinstance(selection, InlineFragmentNode):
            condition = selection.type_condition
            on = schema.get_type(condition.name.value) if condition else parent
            if not _shared(schema, on, selection.selection_set, fragments, seen):
                return False
        elif isinstance(selection, FragmentSpreadNode):
            name = selection.name.value
            fragment = fragments.get(name)
            if fragment is None or name in seen:
                continue
            on = schema.get_type(fragment.type_condition.name.value)
            if not _shared(schema, on, fragment.selection_set, fragments, seen | {name}):
                return False
    return True


def _shared_field(
    schema: GraphQLSchema,
    parent: Any,
    node: FieldNode,
    fragments: dict[str, FragmentDefinitionNode],
    seen: frozenset[str],
) -> bool:
    name = node.name.value
    if name.startswith("__"):
        return True
    if node.arguments or "viewer" in name.lower() or name in VIEWER_DEPENDENT:
        return False
    if not isinstance(parent, GraphQLObjectType):  # an interface or union: look per type
        return all(
            _shared_field(schema, possible, node, fragments, seen)
            for possible in schema.get_possible_types(parent)
            if name in possible.fields
        )
    field = parent.fields.get(name)
    if field is None:
        return False
    if field.args:  # defaults apply even when the query gives no arguments
        return False
    if not is_composite_type(get_named_type(field.type)):
        return True
    if (parent.name, name) not in SHARED_OBJECTS:
        return False
    return _shared(schema, field.type, node.selection_set, fragments, seen)
