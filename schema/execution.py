"""Leaner field execution: the same results for less work per field.

A feed page of 20 posts resolves about 380 fields (bench/feed.py), and what a
request costs is mostly the work done per field, not the SQL. graphql-core does
the same steps for every field (a ResolveInfo, the argument check, the resolver,
completion through the type's wrappers) and strawberry puts its own chain in
front of every resolver (an Info, argument conversion, field extensions, the
exception-handler check). These changes take away what a field does not need:

- `LeanExecutor` reads a plain attribute of leaf type (a strawberry field with no
  resolver and no extensions, returning a scalar or an enum, called without
  arguments) straight from its object and coerces it; a getter of leaf type (a
  plain function of `self` alone that `call_resolvers_directly` calls directly,
  as `def id(self) -> ID`) is called the same way. Any outcome that would be an
  error (null in a non-null field, a coercion that fails, a getter that raises)
  goes the standard way instead, so errors, their paths and their messages are
  graphql-core's own (a getter is then called again: a function of its object
  alone gives the same outcome twice).
  It steps aside while a schema extension hooks every resolver (graphql-core
  middleware), which then sees every field as before.
- `LeanExecutor.complete_value` tests the commonest output types first.
- `PlainSelection` completes a subscription event whose selection is only plain
  leaves of the event (every delivered envelope) without the executor at all.
- `call_resolvers_directly` gives graphql-core a direct call of the resolver
  function for every field that needs nothing of strawberry's chain: no field
  extensions, no exception handlers, not a subscription, and arguments of
  built-in scalar types (whose conversion is only renaming) or of input types
  that build themselves (a `from_input` of their own, which strawberry's chain
  would call just the same: sendMessage's input). Middleware still wraps it
  like any resolver.

tests/test_execution.py checks that results and errors are the same as without
them, and that they do less.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, NamedTuple, cast
from weakref import WeakKeyDictionary

import strawberry
from graphql import (
    FieldNode,
    GraphQLLeafType,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLResolveInfo,
    GraphQLResolveInfoHelpers,
    GraphQLSchema,
    OperationDefinitionNode,
    Undefined,
    is_leaf_type,
)
from graphql.execution.collect_fields import FieldDetailsList, GroupedFieldSet
from graphql.pyutils import Path, gather_with_cancel
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext
from strawberry.schema.schema_converter import GraphQLCoreConverter
from strawberry.types.arguments import InputContext
from strawberry.types.base import StrawberryMaybe, StrawberryOptional
from strawberry.types.field import StrawberryField
from strawberry.types.fields.resolver import StrawberryResolver

from datasources.loading import weakly_bound

__all__ = [
    "LeanExecutor",
    "PlainFields",
    "PlainSelection",
    "call_resolvers_directly",
    "complete_leaf",
    "complete_plain",
    "plain_fields",
]

# Argument types strawberry passes to a resolver as graphql-core coerced them.
_AS_IS_ARGUMENTS: tuple[object, ...] = (int, str, bool, float, strawberry.ID)


class _PlainLeaf(NamedTuple):
    attribute: str
    leaf_type: GraphQLLeafType
    non_null: bool
    getter: Callable[[Any], Any] | None = None  # called on the object instead of the read


PlainFields = list[tuple[str, _PlainLeaf | None]]  # (response key, leaf); None: __typename


class _Getter:
    """A direct resolver that calls a function of the object alone (`def f(self)`)."""

    __slots__ = ("function",)

    def __init__(self, function: Callable[[Any], Any]) -> None:
        self.function = function

    def __call__(self, source: Any, info: GraphQLResolveInfo) -> Any:
        return self.function(source)


_PLAIN_LEAVES: WeakKeyDictionary[GraphQLObjectType, dict[str, _PlainLeaf]] = WeakKeyDictionary()


def _definition(field: Any) -> StrawberryField | None:
    found = field.extensions.get(GraphQLCoreConverter.DEFINITION_BACKREF)
    return found if isinstance(found, StrawberryField) else None


def _plain_leaves(parent_type: GraphQLObjectType) -> dict[str, _PlainLeaf]:
    """The fields of `parent_type` that are attribute reads of a scalar or enum."""
    found = _PLAIN_LEAVES.get(parent_type)
    if found is None:
        found = {}
        for name, field in parent_type.fields.items():
            non_null = isinstance(field.type, GraphQLNonNull)
            leaf = field.type.of_type if non_null else field.type
            if not is_leaf_type(leaf):
                continue
            if isinstance(field.resolve, _Getter):
                found[name] = _PlainLeaf("", leaf, non_null, field.resolve.function)
                continue
            definition = _definition(field)
            if (
                definition is None
                or field.args
                or not getattr(field.resolve, "_is_default", False)  # strawberry's basic read
                or not definition.is_basic_field
                or definition.default_resolver is not getattr
            ):
                continue
            found[name] = _PlainLeaf(definition.python_name, leaf, non_null)
        _PLAIN_LEAVES[parent_type] = found
    return found


def _hooks_resolvers(executor: StrawberryGraphQLCoreExecutionContext) -> bool:
    manager = executor.middleware_manager  # strawberry makes one for every request
    return manager is not None and bool(manager.middlewares)


class LeanExecutor(StrawberryGraphQLCoreExecutionContext):
    """graphql-core's executor, reading plain leaf attributes without the per-field
    machinery (see the module docstring).

    `execute_fields` is graphql-core 3.3's own loop (graphql/execution/executor.py)
    with one branch added; strawberry pins graphql-core below 3.4."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # graphql-core keeps two of its own bound methods here: a reference cycle that
        # keeps the whole request (its context, loaders and all they read) alive until
        # the cycle collector runs, instead of freeing it when the request ends.
        self.async_helpers = GraphQLResolveInfoHelpers(
            gather=weakly_bound(self.gather_async_work), track=weakly_bound(self.track_async_work)
        )
        # None while a schema extension hooks every resolver: then no field is read directly.
        self._plain: dict[GraphQLObjectType, dict[str, _PlainLeaf]] | None = (
            None if _hooks_resolvers(self) else {}
        )

    def execute_fields(
        self,
        parent_type: GraphQLObjectType,
        source_value: Any,
        path: Path | None,
        grouped_field_set: GroupedFieldSet,
        position_context: Any,
    ) -> Any:
        plain = self._plain_leaves_of(parent_type)
        if not plain:
            return super().execute_fields(
                parent_type, source_value, path, grouped_field_set, position_context
            )
        results: dict[str, Any] = {}
        is_awaitable = self.is_awaitable
        awaitable_fields: list[str] = []
        try:
            for response_name, field_details_list in grouped_field_set.items():
                leaf = plain.get(field_details_list[0].node.name.value)
                if leaf is not None:
                    value = _read_leaf(leaf, source_value)
                    if value is not Undefined:
                        results[response_name] = value
                        continue
                result = self.execute_field(
                    parent_type,
                    source_value,
                    field_details_list,
                    Path(path, response_name, parent_type.name),
                    position_context,
                )
                if result is not Undefined:
                    results[response_name] = result
                    if is_awaitable(result):
                        awaitable_fields.append(response_name)
        except Exception:
            if awaitable_fields:
                self.settle_in_background([results[field] for field in awaitable_fields])
            raise
        if not awaitable_fields:
            return results

        async def get_results() -> dict[str, Any]:
            if len(awaitable_fields) == 1:
                field = awaitable_fields[0]
                results[field] = await results[field]
            else:
                awaited = await gather_with_cancel(*(results[f] for f in awaitable_fields))
                results.update(zip(awaitable_fields, awaited, strict=True))
            return results

        return get_results()

    def complete_value(
        self,
        return_type: GraphQLOutputType,
        field_details_list: FieldDetailsList,
        info: GraphQLResolveInfo,
        path: Path,
        result: Any,
        position_context: Any,
    ) -> Any:
        """graphql-core's, with the commonest types (non-null objects) first and tested
        by exact class: it runs for every object and every list item of a response."""
        kind = type(return_type)
        if kind is GraphQLNonNull and not isinstance(result, Exception):
            inner = return_type.of_type  # type: ignore[union-attr]
            present = result is not None and result is not Undefined
            if present and type(inner) is GraphQLObjectType:
                return self.complete_object_value(
                    inner, field_details_list, info, path, result, position_context
                )
        elif kind is GraphQLObjectType and not isinstance(result, Exception):
            if result is None or result is Undefined:
                return None
            return self.complete_object_value(
                return_type,  # type: ignore[arg-type]
                field_details_list,
                info,
                path,
                result,
                position_context,
            )
        return super().complete_value(
            return_type, field_details_list, info, path, result, position_context
        )

    def _plain_leaves_of(self, parent_type: GraphQLObjectType) -> dict[str, _PlainLeaf]:
        plans = self._plain
        if plans is None:
            return {}
        found = plans.get(parent_type)
        if found is None:
            found = plans[parent_type] = _plain_leaves(parent_type)
        return found


def _read_leaf(leaf: _PlainLeaf, source: Any) -> Any:
    """The completed value of a plain leaf field, or Undefined when it would be an
    error: the standard way then raises it with its path and message."""
    if leaf.getter is not None:
        try:
            value = leaf.getter(source)
        except Exception:  # noqa: BLE001 - the standard way raises it properly
            return Undefined
    else:
        value = getattr(source, leaf.attribute, Undefined)
    if value is Undefined:
        return Undefined
    return complete_leaf(leaf.leaf_type, leaf.non_null, value)


def complete_leaf(leaf_type: GraphQLLeafType, non_null: bool, value: Any) -> Any:
    """The completed value of a scalar or enum, or Undefined when it would be an
    error: the standard way then raises it with its path and message."""
    if value is None:
        return Undefined if non_null else None
    try:
        coerced = leaf_type.coerce_output_value(value)
    except Exception:  # noqa: BLE001 - the standard way raises it properly
        return Undefined
    return Undefined if coerced is None else coerced


class PlainSelection:
    """A subscription whose selection below its root field is only plain leaves
    (`_plain_leaves`: attribute reads and getters of scalars and enums, as in
    `{ envelopes(deviceId: 1) { id sequence content } }`), completed for an event
    without graphql-core's executor: no variables coerced again, no fields
    collected, no ResolveInfo. The root field of a subscription resolves to the
    event itself (strawberry), which is the object the leaves are read from.

    `data` gives what the executor would, or None for anything that would be an
    error (a null object, a leaf `_read_leaf` refuses): the executor then runs as
    usual and reports it the standard way.
    """

    __slots__ = ("key", "leaves", "type_name")

    def __init__(self, key: str, type_name: str, leaves: PlainFields):
        self.key = key  # the root field's response key
        self.type_name = type_name
        self.leaves = leaves  # (response key, leaf); None: __typename

    @classmethod
    def of(cls, schema: GraphQLSchema, operation: OperationDefinitionNode) -> PlainSelection | None:
        """The plain selection of a subscription operation, or None when it is not one."""
        root = operation.selection_set.selections
        subscription = schema.subscription_type
        if operation.directives or len(root) != 1 or subscription is None:
            return None
        field = root[0]
        if not isinstance(field, FieldNode) or field.directives or field.selection_set is None:
            return None
        definition = subscription.fields.get(field.name.value)
        object_type = definition.type if definition else None
        if isinstance(object_type, GraphQLNonNull):
            object_type = object_type.of_type
        if not isinstance(object_type, GraphQLObjectType):
            return None
        leaves = plain_fields(object_type, field.selection_set)
        if leaves is None:
            return None
        return cls((field.alias or field.name).value, object_type.name, leaves)

    def data(self, event: Any) -> dict[str, Any] | None:
        completed = complete_plain(self.type_name, self.leaves, event)
        return None if completed is None else {self.key: completed}


def plain_fields(object_type: GraphQLObjectType, selection_set: Any) -> PlainFields | None:
    """The selection on `object_type` as plain leaves, or None when it is not only
    those (a fragment, a directive, an argument, an object or a resolved field)."""
    plain = _plain_leaves(object_type)
    leaves: PlainFields = []
    for node in selection_set.selections:
        if not isinstance(node, FieldNode) or node.directives or node.arguments:
            return None
        key = (node.alias or node.name).value
        if node.name.value == "__typename":
            leaves.append((key, None))
            continue
        leaf = plain.get(node.name.value)
        if leaf is None:
            return None
        leaves.append((key, leaf))
    return leaves


def complete_plain(type_name: str, leaves: PlainFields, source: Any) -> dict[str, Any] | None:
    """What the executor completes of `source`'s plain leaves, or None when any of
    it would be an error (then the executor must run to report it)."""
    if source is None:
        return None
    completed: dict[str, Any] = {}
    for key, leaf in leaves:
        value = type_name if leaf is None else _read_leaf(leaf, source)
        if value is Undefined:
            return None
        completed[key] = value
    return completed


class _Argument(NamedTuple):
    python_name: str
    # An input type's own `from_input`, called as strawberry's `convert_argument` does.
    build: Callable[[Any], Any] | None = None


def _direct_resolver(
    definition: StrawberryField,
    renamed: dict[str, _Argument],
    info_class: type[strawberry.Info],
) -> Callable[..., Any]:
    """What strawberry's chain ends up calling, called with the same arguments."""
    resolver = definition.base_resolver
    assert resolver is not None
    function = cast(Callable[..., Any], resolver.wrapped_func)
    takes_self = resolver.self_parameter is not None
    info_name = resolver.info_parameter.name if resolver.info_parameter else None
    source_names = [
        parameter.name
        for parameter in (resolver.parent_parameter, resolver.root_parameter)
        if parameter is not None
    ]

    if takes_self and not resolver.is_async and len(resolver.signature.parameters) == 1:
        return _Getter(function)  # `def field(self)`: LeanExecutor may call it in its loop

    if takes_self and not renamed and not source_names and _info_second(resolver):
        # the commonest shape, `def field(self, info)`, without building keyword arguments

        def resolve_with_info(source: Any, info: GraphQLResolveInfo) -> Any:
            return function(source, info_class(_raw_info=info, _field=definition))

        return resolve_with_info

    def resolve(source: Any, info: GraphQLResolveInfo, **arguments: Any) -> Any:
        kwargs = {}
        for name, value in arguments.items():
            argument = renamed[name]
            built = argument.build
            kwargs[argument.python_name] = value if built is None or value is None else built(value)
        if info_name is not None:
            kwargs[info_name] = info_class(_raw_info=info, _field=definition)
        for name in source_names:
            kwargs[name] = source
        return function(source, **kwargs) if takes_self else function(**kwargs)

    return resolve


def _info_second(resolver: StrawberryResolver[Any]) -> bool:
    """Whether the resolver's parameters are exactly (self, info), info positional."""
    parameters = list(resolver.signature.parameters.values())
    return (
        len(parameters) == 2
        and resolver.info_parameter is not None
        and parameters[1].name == resolver.info_parameter.name
        and parameters[1].kind is inspect.Parameter.POSITIONAL_OR_KEYWORD
    )


def _direct_arguments(
    definition: StrawberryField, schema: strawberry.Schema
) -> dict[str, _Argument] | None:
    """GraphQL name -> how the resolver gets each argument, or None when one needs
    strawberry's conversion."""
    config = schema.config
    renamed = {}
    for argument in definition.arguments:
        kind = argument.type
        if isinstance(kind, StrawberryOptional) and not isinstance(kind, StrawberryMaybe):
            kind = kind.of_type  # (Maybe wraps what it gets: strawberry's chain does that)
        graphql_name = config.name_converter.from_argument(argument)
        if kind in _AS_IS_ARGUMENTS:
            renamed[graphql_name] = _Argument(argument.python_name)
            continue
        build = _self_building_input(kind, schema, graphql_name)
        if build is None:
            return None
        renamed[graphql_name] = _Argument(argument.python_name, build)
    return renamed


def _self_building_input(
    kind: object, schema: strawberry.Schema, graphql_name: str
) -> Callable[[Any], Any] | None:
    """An input type's own `from_input` as strawberry would call it for this argument
    (no Info: what the input builds must not depend on the request), or None."""
    definition = getattr(kind, "__strawberry_definition__", None)
    from_input = getattr(definition, "from_input", None)
    if definition is None or not definition.is_input or from_input is None:
        return None
    context = InputContext(
        info=None,
        config=schema.config,
        scalar_registry=schema.schema_converter.scalar_registry,
        path=(graphql_name,),
    )

    def build(value: Any) -> Any:
        return from_input(kind, value, context)

    return build


def call_resolvers_directly(schema: strawberry.Schema) -> int:
    """Swap strawberry's resolver chain for a direct call wherever it would do
    nothing but call the resolver; returns how many fields it swapped."""
    converter = schema.schema_converter
    if converter._exception_handler_specs:  # every field may need the handler check
        return 0
    swapped = 0
    for graphql_type in schema._schema.type_map.values():
        if not isinstance(graphql_type, GraphQLObjectType):
            continue
        for field in graphql_type.fields.values():
            definition = _definition(field)
            if (
                definition is None
                or definition.base_resolver is None
                or not callable(definition.base_resolver.wrapped_func)
                or definition.extensions
                or definition.is_subscription
                or field.subscribe is not None
            ):
                continue
            renamed = _direct_arguments(definition, schema)
            if renamed is None or set(renamed) != set(field.args):
                continue
            field.resolve = _direct_resolver(definition, renamed, schema.config.info_class)
            swapped += 1
    return swapped
