"""What a query costs before it runs: a static estimate of the work it asks for.

The depth and alias limits (server/limits.py) bound the shape of a document, not its
work: `feed(first: 100) { edges { node { comments(first: 100) { … likers(first: 100)` is
only a few fields deep but asks for a million rows. The cost counts that:

- a field returning an object costs 1, a scalar or enum 0, unless `WEIGHTS` says more
  (the fields that rank, search or fan out: feed, explore, search, …);
- a connection multiplies what is asked per edge by its page size (`first`, capped at
  `MAX_SLICE` like the resolvers cap it; absent: the argument's default);
- any other list of objects multiplies by its slicing argument (`limit`) or by an
  assumed size (`LIST_SIZES`, else `DEFAULT_LIST_SIZE`);
- introspection and `__typename` are free (GraphiQL's schema query must keep working).

Variables count with the request's values, so the estimate is per request, not per
document: `ServeOperation` (server/limits.py) runs it after validation, on every path that
executes through the schema (HTTP, multipart, websockets).

The same numbers are published in each subgraph's SDL as `@cost` / `@listSize` (the IBM
cost directive spec as Apollo federation imports it), so a router can enforce them
before a request reaches a subgraph: `sdl_directives`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from graphql import (
    ConstArgumentNode,
    ConstDirectiveNode,
    ConstListValueNode,
    ConstValueNode,
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLField,
    GraphQLInterfaceType,
    GraphQLList,
    GraphQLNamedType,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    IntValueNode,
    NameNode,
    OperationDefinitionNode,
    SchemaExtensionNode,
    SelectionSetNode,
    StringValueNode,
    VariableNode,
    get_named_type,
    is_composite_type,
)
from graphql.pyutils import Undefined

from resolvers.errors import QueryTooComplex

COST_SPEC_URL = "https://specs.apollo.dev/cost/v0.1"
SLICING_ARGUMENTS = ("first", "limit")  # page-size arguments; all capped at MAX_SLICE
SIZED_FIELDS = ("edges", "nodes")  # the fields of a connection its page size multiplies
MAX_SLICE = 100  # the resolvers' page-size cap (settings.max_page_size)
DEFAULT_LIST_SIZE = 10  # assumed length of a list of objects with no slicing argument

# Fields whose own work is well above a row read: ranking, search, fan-out over follows.
WEIGHTS: Mapping[tuple[str, str], int] = {
    ("Query", "feed"): 10,
    ("Query", "explore"): 10,
    ("Query", "takesFeed"): 10,
    ("Query", "trendingTakeTrends"): 5,
    ("Query", "storyTray"): 10,
    ("Query", "search"): 20,
    ("Query", "autocomplete"): 5,
    ("Query", "trendingHashtags"): 5,
    ("Query", "suggestedUsers"): 5,
    ("Query", "notifications"): 5,
}

# Assumed lengths of lists of objects that have no slicing argument: the input caps
# where there is one (resolvers: MAX_STICKERS, MAX_OPTIONS, MAX_MEDIA, MAX_MENTIONS),
# else a typical screenful.
LIST_SIZES: Mapping[tuple[str, str], int] = {
    ("Query", "storyTray"): 20,
    ("StoryTrayItem", "stories"): 10,
    ("User", "stories"): 10,
    ("Story", "stickers"): 10,
    ("PollSticker", "options"): 4,
    ("Post", "media"): 10,
    ("Post", "mentions"): 20,
}


def too_costly(name: str, cost: int, budget: int, node: Any = None) -> GraphQLError:
    return GraphQLError(
        f"{name} costs {cost}; the budget is {budget}: ask for smaller pages (`first`)"
        " or less nesting per request",
        node,
        extensions={"code": QueryTooComplex.code, "cost": cost, "budget": budget},
    )


def _unwrapped(gtype: Any) -> Any:
    return gtype.of_type if isinstance(gtype, GraphQLNonNull) else gtype


def _slicing_argument(field: GraphQLField) -> str | None:
    return next((name for name in SLICING_ARGUMENTS if name in field.args), None)


@dataclass(frozen=True)
class Costed:
    """An operation's estimated cost. `by_variables`: a page size came from the
    request's variables (`first: $n`), so the same text may cost differently with
    other variables; otherwise every request with this text costs the same."""

    cost: int
    operation: OperationDefinitionNode | None
    by_variables: bool = False


class _Coster:
    """Cost of selection sets of one operation, each (fragment, page size) walked once.

    Memoizing fragments keeps this linear: fragments that spread the next one twice would
    otherwise take exponential time (the result is still the exponential cost, refused).
    """

    def __init__(
        self,
        schema: GraphQLSchema,
        fragments: dict[str, FragmentDefinitionNode],
        operation: OperationDefinitionNode,
        variables: Mapping[str, Any] | None,
    ) -> None:
        self.schema = schema
        self.fragments = fragments
        self.variables = variables or {}
        self.defaults = {
            d.variable.name.value: d.default_value for d in operation.variable_definitions or ()
        }
        self.measured: dict[tuple[str, str, int | None], int] = {}
        self.walking: set[str] = set()
        self.by_variables = False

    def of(
        self, parent: GraphQLNamedType, selection_set: SelectionSetNode | None, sized: int | None
    ) -> int:
        total = 0
        for selection in selection_set.selections if selection_set else ():
            if isinstance(selection, FieldNode):
                total += self.field(parent, selection, sized)
            elif isinstance(selection, InlineFragmentNode):
                condition = selection.type_condition
                inner = self.schema.get_type(condition.name.value) if condition else parent
                total += self.of(inner or parent, selection.selection_set, sized)
            elif isinstance(selection, FragmentSpreadNode):
                total += self.fragment(selection.name.value, sized)
        return total

    def fragment(self, name: str, sized: int | None) -> int:
        fragment = self.fragments.get(name)
        if fragment is None or name in self.walking:
            return 0  # unknown fragments and cycles are reported by the standard rules
        gtype = self.schema.get_type(fragment.type_condition.name.value)
        if gtype is None:
            return 0
        key = (name, gtype.name, sized)
        if key not in self.measured:
            self.walking.add(name)
            self.measured[key] = self.of(gtype, fragment.selection_set, sized)
            self.walking.discard(name)
        return self.measured[key]

    def field(self, parent: GraphQLNamedType, node: FieldNode, sized: int | None) -> int:
        name = node.name.value
        if name.startswith("__"):
            return 0  # introspection and __typename: cheap, whatever their shape
        if not isinstance(parent, GraphQLObjectType | GraphQLInterfaceType):
            return 0
        definition = parent.fields.get(name)
        if definition is None:
            return 0  # reported by validation
        named = get_named_type(definition.type)
        composite = is_composite_type(named)
        weight = WEIGHTS.get((parent.name, name), 1 if composite else 0)
        slicing = _slicing_argument(definition)
        page = self.page_size(node, definition, slicing) if slicing else None
        children = self.of(named, node.selection_set, None) if composite else 0
        if isinstance(_unwrapped(definition.type), GraphQLList):
            if sized is not None and name in SIZED_FIELDS:
                size = sized
            elif page is not None:
                size = page
            else:
                size = LIST_SIZES.get((parent.name, name), DEFAULT_LIST_SIZE if composite else 0)
            return size * (weight + children)
        if page is not None and composite:  # a connection: its edges get the page size
            children = self.of(named, node.selection_set, page)
        return weight + children

    def page_size(self, node: FieldNode, definition: GraphQLField, argument: str) -> int:
        value: Any = Undefined
        given = next((a.value for a in node.arguments or () if a.name.value == argument), None)
        if isinstance(given, IntValueNode):
            value = int(given.value)
        elif isinstance(given, VariableNode):
            self.by_variables = True
            variable = given.name.value
            if variable in self.variables:
                value = self.variables[variable]
            elif isinstance(self.defaults.get(variable), IntValueNode):
                value = int(self.defaults[variable].value)  # type: ignore[union-attr]
            elif self.defaults.get(variable) is None:  # not given: the argument is absent
                value = definition.args[argument].default_value
        elif given is None:
            value = definition.args[argument].default_value
        if not isinstance(value, int) or isinstance(value, bool):
            return MAX_SLICE  # null, unknown or not a number (coercion will refuse it)
        return max(0, min(value, MAX_SLICE))


def operation_cost(
    schema: GraphQLSchema,
    document: DocumentNode,
    operation_name: str | None,
    variables: Mapping[str, Any] | None,
) -> Costed:
    """The cost of the operation the request executes (0 when it names none that exists)."""
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if operation_name:
        operations = [o for o in operations if o.name and o.name.value == operation_name]
    if len(operations) != 1:
        return Costed(0, None)  # execution reports the missing or ambiguous operation
    operation = operations[0]
    root = schema.get_root_type(operation.operation)
    if root is None:
        return Costed(0, operation)
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    coster = _Coster(schema, fragments, operation, variables)
    try:
        cost = coster.of(root, operation.selection_set, None)
    except RecursionError:
        cost = 2**63  # nesting beyond the interpreter's stack: refuse
    return Costed(cost, operation, coster.by_variables)


def check_cost(
    schema: GraphQLSchema,
    document: DocumentNode,
    operation_name: str | None,
    variables: Mapping[str, Any] | None,
    budget: int,
) -> GraphQLError | None:
    """A QUERY_TOO_COMPLEX error when the operation costs more than `budget` (0: no budget)."""
    if budget <= 0:
        return None
    return refusal(operation_cost(schema, document, operation_name, variables), budget)


def refusal(costed: Costed, budget: int) -> GraphQLError | None:
    """A QUERY_TOO_COMPLEX error when `costed` is over `budget` (0: no budget)."""
    if budget <= 0 or costed.cost <= budget:
        return None
    operation = costed.operation
    name = operation.name.value if operation and operation.name else "the operation"
    return too_costly(name, costed.cost, budget, operation)


# ──────────────────────────── SDL ────────────────────────────


def _directive(name: str, **arguments: ConstValueNode) -> ConstDirectiveNode:
    args = tuple(ConstArgumentNode(name=NameNode(value=k), value=v) for k, v in arguments.items())
    return ConstDirectiveNode(name=NameNode(value=name), arguments=args)


def _strings(values: tuple[str, ...] | list[str]) -> ConstListValueNode:
    return ConstListValueNode(values=tuple(StringValueNode(value=v) for v in values))


def cost_link() -> SchemaExtensionNode:
    """`extend schema @link(url: ".../cost/v0.1", import: ["@cost", "@listSize"])`."""
    link = _directive(
        "link",
        url=StringValueNode(value=COST_SPEC_URL),
        **{"import": _strings(["@cost", "@listSize"])},
    )
    return SchemaExtensionNode(directives=(link,), operation_types=())


def sdl_directives(parent: GraphQLNamedType, name: str) -> list[ConstDirectiveNode]:
    """`@cost` / `@listSize` of one field: the numbers `operation_cost` uses.

    Only what differs from the defaults is published: an object weighs 1, a scalar 0
    (the spec's defaults), a list without `@listSize` has DEFAULT_LIST_SIZE elements
    (the router's setting: Apollo Router `demand_control.strategy.static_estimated.
    list_size: 10`). A connection's page size multiplies its `edges` (`sizedFields`).
    """
    if not isinstance(parent, GraphQLObjectType | GraphQLInterfaceType):
        return []
    definition = parent.fields[name]
    directives: list[ConstDirectiveNode] = []
    if (parent.name, name) in WEIGHTS:
        weight = WEIGHTS[(parent.name, name)]
        directives.append(_directive("cost", weight=IntValueNode(value=str(weight))))
    named = get_named_type(definition.type)
    if not is_composite_type(named):
        return directives
    is_list = isinstance(_unwrapped(definition.type), GraphQLList)
    slicing = _slicing_argument(definition)
    if slicing:
        arguments: dict[str, ConstValueNode] = {"slicingArguments": _strings([slicing])}
        if not is_list and isinstance(named, GraphQLObjectType):
            sized = [f for f in SIZED_FIELDS if f in named.fields]
            if sized:
                arguments["sizedFields"] = _strings(sized)
        directives.append(_directive("listSize", **arguments))
    elif is_list and LIST_SIZES.get((parent.name, name), DEFAULT_LIST_SIZE) != DEFAULT_LIST_SIZE:
        size = LIST_SIZES[(parent.name, name)]
        directives.append(_directive("listSize", assumedSize=IntValueNode(value=str(size))))
    return directives
