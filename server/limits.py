"""What a request may cost before anything runs: limits, and the parse/validation caches.

`extensions(settings)` is the one list every schema the server runs gets (the monolith,
a subgraph, a test schema), so the limits, caches, masking and metrics labels are the
same whichever way the graph is served.

Limits (each `QUERY_TOO_COMPLEX`, with `extensions.limit`, before execution):
- tokens: the graphql-core parser stops at `max_query_tokens` (the cheapest defence:
  it runs before any tree is built);
- depth: the deepest field path, fragments followed, introspection fields adding no depth
  (GraphiQL's introspection query is deep but cheap and must keep working);
- aliases: aliased fields, fragments followed (aliases are how one request multiplies
  the same expensive field);
- cost: the estimated work with the request's variables (server/cost.py), over
  `max_query_cost` refused with `extensions.cost` and `extensions.budget`.

Rate limits per operation class (server/ratelimit.py) run last, just before execution,
so a refused or invalid request takes no token.

A large share of Python GraphQL time is parse + validate, and clients send the same few
query texts again and again: both are cached per query text (bounded LRU, so unique
texts from an attacker cannot grow memory), and so is the cost of an operation whose
page sizes are all written in its text.
"""
from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from functools import lru_cache
from typing import Any

import strawberry
from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLSchema,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    ValidationRule,
    parse,
)
from graphql.language import Visitor
from graphql.validation import ASTValidationRule
from strawberry.extensions import SchemaExtension
from strawberry.schema.schema import validate_document

from resolvers.errors import BadUserInput, QueryTooComplex
from server.cost import Costed, operation_cost, refusal
from server.masking import MaskInternalErrors
from server.observability import record_operation
from server.ratelimit import refuse_over_limits
from server.settings import Settings

CACHE_SIZE = 1024  # distinct query texts kept parsed and validated
INTROSPECTION_ROOTS = frozenset({"__schema", "__type"})

Extension = type[SchemaExtension] | Callable[[], SchemaExtension]


def too_complex(message: str, limit: int, node: Any = None) -> GraphQLError:
    return GraphQLError(message, node, extensions={"code": QueryTooComplex.code, "limit": limit})


class _Shape:
    """Depth and alias count of selection sets, each fragment measured once.

    Memoizing fragments keeps this linear: a document whose fragments each spread the
    next one twice would otherwise take exponential time to walk.
    """

    def __init__(self, fragments: dict[str, FragmentDefinitionNode]) -> None:
        self.fragments = fragments
        self.measured: dict[str, tuple[int, int]] = {}
        self.walking: set[str] = set()

    def of(self, selection_set: SelectionSetNode | None) -> tuple[int, int]:
        """(depth, aliases) of a selection set; a leaf field has depth 1."""
        depth = aliases = 0
        for selection in selection_set.selections if selection_set else ():
            if isinstance(selection, FieldNode):
                below, inner_aliases = self.of(selection.selection_set)
                # Introspection (and __typename) adds no depth: GraphiQL's schema query is
                # deep but cheap. Its aliases still count: they multiply the work.
                free = selection.name.value.startswith("__")
                inner = (0 if free else 1 + below, inner_aliases + (1 if selection.alias else 0))
            elif isinstance(selection, InlineFragmentNode):
                inner = self.of(selection.selection_set)
            elif isinstance(selection, FragmentSpreadNode):
                inner = self.fragment(selection.name.value)
            else:
                continue
            depth = max(depth, inner[0])
            aliases += inner[1]
        return depth, aliases

    def fragment(self, name: str) -> tuple[int, int]:
        if name in self.measured:
            return self.measured[name]
        fragment = self.fragments.get(name)
        if fragment is None or name in self.walking:
            return (0, 0)  # unknown fragments and cycles are reported by the standard rules
        self.walking.add(name)
        self.measured[name] = self.of(fragment.selection_set)
        self.walking.discard(name)
        return self.measured[name]


def complexity_rule(max_depth: int, max_aliases: int) -> type[ASTValidationRule]:
    """A validation rule rejecting operations deeper than max_depth or with too many aliases."""

    class QueryComplexity(ValidationRule):
        def enter_document(self, node: DocumentNode, *_args: Any) -> Any:
            fragments = {
                d.name.value: d for d in node.definitions if isinstance(d, FragmentDefinitionNode)
            }
            shape = _Shape(fragments)
            for operation in node.definitions:
                if isinstance(operation, OperationDefinitionNode):
                    self.check(operation, shape)
            return Visitor.BREAK  # this rule needs nothing else from the walk

        def check(self, operation: OperationDefinitionNode, shape: _Shape) -> None:
            name = operation.name.value if operation.name else "the operation"
            try:
                depth, aliases = shape.of(operation.selection_set)
            except RecursionError:
                self.report_error(too_complex(f"{name} is nested too deeply", max_depth, operation))
                return
            if depth > max_depth:
                self.report_error(
                    too_complex(
                        f"{name} is {depth} fields deep; the limit is {max_depth}"
                        " (fragments included): ask for less nesting per request",
                        max_depth,
                        operation,
                    )
                )
            if aliases > max_aliases:
                self.report_error(
                    too_complex(
                        f"{name} uses {aliases} aliases; the limit is {max_aliases}"
                        " (fragments included): split it into several requests",
                        max_aliases,
                        operation,
                    )
                )

    return QueryComplexity


class NoIntrospection(ValidationRule):
    """`__schema` and `__type` are refused when introspection is off (`__typename` stays)."""

    def enter_field(self, node: FieldNode, *_args: Any) -> None:
        if node.name.value in INTROSPECTION_ROOTS:
            self.report_error(
                GraphQLError(
                    f"introspection is disabled on this server ({node.name.value})",
                    node,
                    extensions={"code": BadUserInput.code},
                )
            )


def validation_rules(settings: Settings) -> tuple[type[ASTValidationRule], ...]:
    rules: list[type[ASTValidationRule]] = [
        complexity_rule(settings.max_query_depth, settings.max_aliases)
    ]
    if not settings.introspection:
        rules.append(NoIntrospection)
    return tuple(rules)


class DocumentCache:
    """Parsed documents and validation results by query text, for one set of rules."""

    def __init__(self, max_tokens: int, size: int = CACHE_SIZE) -> None:
        self.max_tokens = max_tokens
        self.size = size
        self.parse: Callable[[str], DocumentNode] = lru_cache(maxsize=size)(self._parse)
        self.validate: Callable[..., list[GraphQLError]] = lru_cache(maxsize=size)(self._validate)
        self.costs: dict[tuple[GraphQLSchema, str, str | None], Costed] = {}

    def cost(
        self,
        schema: GraphQLSchema,
        query: str,
        operation_name: str | None,
        variables: dict[str, Any] | None,
    ) -> Costed:
        """The cost of `query`'s operation, kept per text unless its page sizes come
        from the variables (`first: $n` costs what each request's variables say)."""
        key = (schema, query, operation_name)
        known = self.costs.get(key)
        if known is not None:
            return known
        costed = operation_cost(schema, self.parse(query), operation_name, variables)
        if not costed.by_variables:
            if len(self.costs) >= self.size:
                del self.costs[next(iter(self.costs))]  # the oldest: bounded like the rest
            self.costs[key] = costed
        return costed

    def over_budget(
        self,
        schema: GraphQLSchema,
        query: str,
        operation_name: str | None,
        variables: dict[str, Any] | None,
        budget: int,
    ) -> GraphQLError | None:
        """QUERY_TOO_COMPLEX when the operation costs more than `budget` (0: no budget)."""
        if budget <= 0:
            return None
        return refusal(self.cost(schema, query, operation_name, variables), budget)

    def _parse(self, query: str) -> DocumentNode:
        return parse(query, max_tokens=self.max_tokens)

    def _validate(
        self, schema: GraphQLSchema, query: str, rules: tuple[type[ASTValidationRule], ...]
    ) -> list[GraphQLError]:
        return validate_document(schema, self.parse(query), rules)


class ServeOperation(MaskInternalErrors):
    """The one schema extension of every operation the server runs:

    - adds our validation rules, parses with the token limit, and serves parse and
      validation (and the cost analysis) from the cache;
    - records the operation's name for the view's metrics and logs
      (server/observability.py `record_operation`);
    - refuses an operation over its rate limits before it executes
      (server/ratelimit.py `refuse_over_limits`);
    - masks internal errors in the result (server/masking.py, the class it extends).

    One extension rather than one per concern: strawberry wraps every hook of every
    extension in a context manager on every operation (a lookup of each hook name on
    each extension, `contextlib` and `update_wrapper` for each hook found). Four
    extensions with six hooks cost a `sendMessage` over a websocket 192 µs in
    process against 157 µs with the first alone (bench/messaging.py's relay runs
    one per message).
    """

    def __init__(
        self, cache: DocumentCache, rules: Sequence[type[ASTValidationRule]], budget: int = 0
    ) -> None:
        super().__init__()
        self.cache = cache
        self.rules = tuple(rules)
        self.budget = budget  # max_query_cost; 0: no cost analysis
        self.cached_document = False

    def on_operation(self) -> Iterator[None]:
        context = self.execution_context
        context.validation_rules = (*context.validation_rules, *self.rules)
        # Also applies when strawberry parses itself (after a syntax error below).
        context.parse_options["max_tokens"] = self.cache.max_tokens
        yield from super().on_operation()  # the result is masked when the operation ends

    def on_parse(self) -> Iterator[None]:
        context = self.execution_context
        if context.query and context.graphql_document is None:
            try:
                context.graphql_document = self.cache.parse(context.query)
                self.cached_document = True
            except GraphQLError:
                pass  # strawberry parses again and reports the syntax error as usual
        yield

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        if self.cached_document and context.pre_execution_errors is None and context.query:
            errors = self.cache.validate(
                context.schema._schema, context.query, tuple(context.validation_rules)
            )
            # A copy: the cached list is shared by every request with this text.
            context.pre_execution_errors = list(errors)
            if not errors and (
                too_costly := self.cache.over_budget(
                    context.schema._schema,
                    context.query,
                    context.operation_name,
                    context.variables,
                    self.budget,
                )
            ):
                context.pre_execution_errors = [too_costly]
        record_operation(context.context, context.operation_name)
        yield

    async def on_execute(self) -> AsyncIterator[None]:
        await refuse_over_limits(self.execution_context)
        yield


class ServeOperations:
    """What strawberry calls for each operation (one `ServeOperation` each, all sharing
    one cache): the extension `extensions(settings)` gives a schema. A class rather than
    a closure so that the socket path (subscriptions/operations.py) can tell a schema
    served by these rules alone, and apply the same ones."""

    def __init__(self, settings: Settings) -> None:
        self.cache = DocumentCache(settings.max_query_tokens)
        self.rules = validation_rules(settings)
        self.budget = settings.max_query_cost

    def __call__(self) -> SchemaExtension:
        return ServeOperation(self.cache, self.rules, self.budget)


def extensions(settings: Settings) -> list[Extension]:
    """The schema extensions of a server with these settings (factories: one per request)."""
    return [ServeOperations(settings)]


def served_alone(schema: strawberry.Schema) -> bool:
    """Whether `ServeOperations` is all that hooks the schema's operations (no other
    extension, no directives: strawberry adds an extension for those)."""
    found = schema.extensions
    return len(found) == 1 and isinstance(found[0], ServeOperations) and not schema.directives
