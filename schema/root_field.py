"""A query or mutation of one root field with a plain selection, run without the
executor's operation machinery.

Every message a mobile client relays is `sendMessage(input: $input) { … }` sent on
its socket: one root field, whose resolver does the work, and a selection of
scalars of its payload. For that, graphql-core builds an executor (strawberry's
execution context, the resolve-info helpers), collects the root fields, runs the
serial mutation reducer and completes the payload through its type's wrappers:
about a fifth of the relay server's CPU per message (bench/messaging.py), for an
outcome that is a dict of a few leaves.

`RootFieldPlan` does what that amounts to for such an operation, with
graphql-core's and the executor class's own functions where there is anything to
decide: the variables coerced as `coerce_input_value` coerces them (with the
signatures, the nesting check and each type's coercer, schema/input_coercion.py,
made once per document, not per request), the arguments by
`get_argument_values`, the ResolveInfo built by the executor class's
`build_resolve_info`, the field's own resolver called with them, and the plain
leaves of the result read as `LeanExecutor` reads them (schema/execution.py).
Anything else goes the standard way, which reports it:

- before the resolver is called (variables or arguments that do not coerce), the
  whole operation runs the standard way;
- after it (the resolver raised or returned null, an error or something a leaf
  refuses), the standard way runs with a middleware that gives the root field the
  resolver's outcome instead of calling it again (a mutation must not run twice),
  so errors, their paths and the null propagation are graphql-core's own.

tests/test_root_field.py checks the results and errors against the standard way.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from graphql import (
    DocumentNode,
    ExecutionResult,
    FieldNode,
    GraphQLError,
    GraphQLField,
    GraphQLInputObjectType,
    GraphQLInputType,
    GraphQLLeafType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLResolveInfo,
    GraphQLResolveInfoHelpers,
    GraphQLSchema,
    OperationDefinitionNode,
    OperationType,
    Undefined,
    execute,
    is_leaf_type,
)
from graphql.execution.get_variable_signature import (
    GraphQLVariableSignature,
    get_variable_signature,
)
from graphql.execution.values import (
    VariableValues,
    VariableValueSource,
    get_argument_values,
    get_variable_values,
)
from graphql.language.parser import MAX_NESTING_DEPTH
from graphql.pyutils import Path, gather_with_cancel
from strawberry.utils.await_maybe import await_maybe

from schema.execution import PlainFields, complete_leaf, complete_plain, plain_fields
from schema.input_coercion import Coercer, input_coercer

__all__ = ["RootFieldPlan", "execute_operation"]

IsAwaitable = Callable[[Any], bool]
# graphql-core's default limit on variable coercion errors (`execute`).
MAX_COERCION_ERRORS = 50


class RootFieldPlan:
    """How to run one operation document's single root field (see the module)."""

    __slots__ = (
        "document",
        "field",
        "key",
        "leaf_type",
        "leaves",
        "node",
        "non_null",
        "object_type",
        "operation",
        "path",
        "root_type",
        "schema",
        "signatures",
    )

    def __init__(
        self,
        schema: GraphQLSchema,
        document: DocumentNode,
        operation: OperationDefinitionNode,
        root_type: GraphQLObjectType,
        node: FieldNode,
        field: GraphQLField,
    ) -> None:
        self.schema, self.document, self.operation = schema, document, operation
        self.root_type, self.node, self.field = root_type, node, field
        self.key = (node.alias or node.name).value
        self.path = Path(None, self.key, root_type.name)
        self.non_null = isinstance(field.type, GraphQLNonNull)
        inner = field.type.of_type if isinstance(field.type, GraphQLNonNull) else field.type
        self.object_type: GraphQLObjectType | None = None
        self.leaves: PlainFields = []
        self.leaf_type: GraphQLLeafType | None = None
        if isinstance(inner, GraphQLObjectType):
            self.object_type = inner
        elif is_leaf_type(inner):
            self.leaf_type = inner
        signatures = _shallow_signatures(schema, operation)
        self.signatures: list[tuple[GraphQLVariableSignature, Coercer]] | None = (
            None if signatures is None else [(s, input_coercer(s.type)) for s in signatures]
        )

    @classmethod
    def of(
        cls, schema: GraphQLSchema, document: DocumentNode, operation: OperationDefinitionNode
    ) -> RootFieldPlan | None:
        """The plan of a validated query or mutation, or None when it does not fit:
        more than one root field, a fragment or a directive anywhere, a root field of
        a list or abstract type, or a selection that is not only plain leaves."""
        if (
            operation.operation is OperationType.SUBSCRIPTION
            or operation.directives
            or schema.get_directive("defer")
            or schema.get_directive("stream")
            or any(not isinstance(d, OperationDefinitionNode) for d in document.definitions)
        ):
            return None
        root_type = schema.get_root_type(operation.operation)
        selections = operation.selection_set.selections
        if root_type is None or len(selections) != 1:
            return None
        node = selections[0]
        if not isinstance(node, FieldNode) or node.directives:
            return None
        field = root_type.fields.get(node.name.value)
        if field is None or field.resolve is None:
            return None
        plan = cls(schema, document, operation, root_type, node, field)
        if plan.object_type is not None and node.selection_set is not None:
            leaves = plain_fields(plan.object_type, node.selection_set)
            if leaves is None:
                return None
            plan.leaves = leaves
            return plan
        if plan.leaf_type is not None and node.selection_set is None:
            return plan
        return None

    async def execute(
        self,
        context: Any,
        variables: dict[str, Any],
        operation_name: str | None,
        executor_class: type[Any],
        is_awaitable: IsAwaitable,
    ) -> ExecutionResult:
        """The operation's result, as graphql-core's `execute` would give it."""

        def standard(replay: _Replay | None = None) -> Awaitable[ExecutionResult]:
            return execute_operation(
                self.schema,
                self.document,
                context,
                variables,
                operation_name,
                executor_class,
                is_awaitable,
                [replay] if replay is not None else None,
            )

        coerced: VariableValues | list[GraphQLError] | None = self._given_variables(variables)
        if coerced is None:
            coerced = get_variable_values(
                self.schema,
                self.operation.variable_definitions or (),
                variables,
                max_errors=MAX_COERCION_ERRORS,
            )
        if isinstance(coerced, list):
            return await standard()
        try:
            arguments = self._arguments(coerced)
        except Exception:  # noqa: BLE001 - the standard way reports it, as a field error
            return await standard()
        info = self._info(executor_class, context, coerced, is_awaitable)
        try:
            result = self.field.resolve(None, info, **arguments)  # type: ignore[misc]
            if is_awaitable(result):
                result = await result
        except Exception as error:  # noqa: BLE001 - reported the standard way, not re-run
            return await standard(_Replay(error, raised=True))
        data = self._complete(result, info)
        if data is Undefined:
            return await standard(_Replay(result, raised=False))
        return ExecutionResult({self.key: data}, None)

    def _given_variables(self, inputs: dict[str, Any]) -> VariableValues | None:
        """What `get_variable_values` gives when every variable is given and coerces
        (a client's every send), without what it does for the other cases: the
        signatures are the plan's, and its nesting check cannot fail for input types
        nested less deeply than its limit. None otherwise: then it runs itself."""
        if self.signatures is None:
            return None
        sources: dict[str, VariableValueSource] = {}
        coerced: dict[str, Any] = {}
        for signature, coerce in self.signatures:
            value = inputs.get(signature.name, Undefined)
            if value is Undefined:
                return None
            coerced_value = coerce(value)
            if coerced_value is Undefined:
                return None
            sources[signature.name] = VariableValueSource(signature, value)
            coerced[signature.name] = coerced_value
        return VariableValues(sources, coerced)

    def _arguments(self, variables: VariableValues) -> dict[str, Any]:
        if not (self.field.args or self.node.arguments):
            return {}
        return get_argument_values(self.field, self.node, variables)

    def _info(
        self,
        executor_class: type[Any],
        context: Any,
        variables: VariableValues,
        is_awaitable: IsAwaitable,
    ) -> GraphQLResolveInfo:
        operation = _Operation(self, context, variables, is_awaitable)
        info: GraphQLResolveInfo = executor_class.build_resolve_info(
            operation, self.field, [self.node], self.root_type, self.path
        )
        return info

    def _complete(self, result: Any, info: GraphQLResolveInfo) -> Any:
        """The completed value, or Undefined when completing it is an error (or null
        in a non-null field) that the standard way must report."""
        if isinstance(result, Exception):
            return Undefined
        if self.leaf_type is not None:
            return complete_leaf(self.leaf_type, self.non_null, result)
        object_type = self.object_type
        assert object_type is not None
        if result is None:
            return Undefined if self.non_null else None
        if object_type.is_type_of is not None and object_type.is_type_of(result, info) is not True:
            return Undefined
        completed = complete_plain(object_type.name, self.leaves, result)
        return Undefined if completed is None else completed


def _shallow_signatures(
    schema: GraphQLSchema, operation: OperationDefinitionNode
) -> list[GraphQLVariableSignature] | None:
    """The operation's variable signatures when every variable's type nests less
    deeply than graphql-core's limit (so no value of it can be too deep), else None."""
    signatures = []
    for definition in operation.variable_definitions or ():
        signature = get_variable_signature(schema, definition)
        if isinstance(signature, GraphQLError):
            return None
        depth = _nesting(signature.type, frozenset())
        if depth is None or depth > MAX_NESTING_DEPTH:
            return None
        signatures.append(signature)
    return signatures


def _nesting(type_: GraphQLInputType, seen: frozenset[str]) -> int | None:
    """How deep `input_is_nested_too_deeply` can go into a value of `type_`: one
    level per list and per input object; None for a type that contains itself."""
    if isinstance(type_, GraphQLNonNull):
        type_ = type_.of_type
    if isinstance(type_, GraphQLList):
        inner = _nesting(type_.of_type, seen)
        return None if inner is None else inner + 1
    if not isinstance(type_, GraphQLInputObjectType):
        return 0
    if type_.name in seen:
        return None
    deepest = 0
    for field in type_.fields.values():
        depth = _nesting(field.type, seen | {type_.name})
        if depth is None:
            return None
        deepest = max(deepest, depth)
    return deepest + 1


class _Operation:
    """What an executor's `build_resolve_info` reads of its executor, for one run."""

    __slots__ = (
        "abort_signal",
        "async_helpers",
        "context_value",
        "fragment_definitions",
        "is_awaitable",
        "operation",
        "operation_extensions",
        "root_value",
        "schema",
        "variable_values",
    )

    def __init__(
        self,
        plan: RootFieldPlan,
        context: Any,
        variables: VariableValues,
        is_awaitable: IsAwaitable,
    ) -> None:
        self.schema = plan.schema
        self.fragment_definitions: dict[str, Any] = {}
        self.root_value = None
        self.operation = plan.operation
        self.variable_values = variables
        self.context_value = context
        self.is_awaitable = is_awaitable
        self.abort_signal = None
        self.async_helpers = _HELPERS
        self.operation_extensions = None


def _gather(values: Sequence[Awaitable[Any]]) -> Awaitable[list[Any]]:
    return gather_with_cancel(*values)


_SETTLING: set[asyncio.Future[Any]] = set()


def _track(values: Sequence[Any]) -> None:
    """As the executor's `track_async_work`: settle awaitables in the background."""
    awaitables = [value for value in values if inspect.isawaitable(value)]
    if awaitables:
        future = asyncio.gather(*awaitables, return_exceptions=True)
        _SETTLING.add(future)
        future.add_done_callback(_SETTLING.discard)


_HELPERS = GraphQLResolveInfoHelpers(gather=_gather, track=_track)


class _Replay:
    """A middleware giving the root field the outcome its resolver already had."""

    __slots__ = ("outcome", "raised")

    def __init__(self, outcome: Any, raised: bool) -> None:
        self.outcome, self.raised = outcome, raised

    def resolve(self, next_: Any, source: Any, info: GraphQLResolveInfo, **arguments: Any) -> Any:
        if info.path.prev is not None:
            return next_(source, info, **arguments)
        if self.raised:
            raise self.outcome
        return self.outcome


async def execute_operation(
    schema: GraphQLSchema,
    document: DocumentNode,
    context: Any,
    variables: dict[str, Any],
    operation_name: str | None,
    executor_class: type[Any],
    is_awaitable: IsAwaitable,
    middleware: list[Any] | None = None,
) -> ExecutionResult:
    """The standard way: graphql-core's `execute` with the schema's executor class."""
    result = execute(
        schema,
        document,
        context_value=context,
        variable_values=variables,
        operation_name=operation_name,
        executor_class=executor_class,
        is_awaitable=is_awaitable,  # type: ignore[arg-type]
        middleware=middleware,
    )
    return await await_maybe(result)  # type: ignore[arg-type]
