"""schema/root_field.py: a query or mutation of one root field with a plain selection
gives graphql-core's results and errors without building an executor, and its
resolver runs once whatever the outcome."""

from __future__ import annotations

from enum import Enum
from typing import Any

import pytest
import strawberry
from graphql import ExecutionResult, GraphQLSchema, OperationDefinitionNode, execute, parse
from graphql.execution.values import VariableValues, get_variable_values
from strawberry.execution import optimized_is_awaitable
from strawberry.types import Info

from resolvers.errors import BadUserInput
from schema.common import SCALARS
from schema.execution import LeanExecutor, call_resolvers_directly
from schema.root_field import RootFieldPlan

CALLS: list[str] = []


@strawberry.enum
class Mood(Enum):
    CALM = "calm"


@strawberry.type
class Receipt:
    sequence: int
    duplicate: bool = False
    note: str | None = None
    mood: Mood = Mood.CALM


@strawberry.interface
class Sent:
    sequence: int


@strawberry.type
class Stamp(Sent):
    """Implements an interface: strawberry gives it an `is_type_of` check."""


@strawberry.input
class SendInput:
    text: str
    times: int = 1


def _outcome(text: str, info: Info) -> Any:
    """What `send` returns for a text: the happy path or one of the ways to fail."""
    CALLS.append(text)
    if text == "refused":
        raise BadUserInput("no thanks", field="text")
    if text == "crash":
        raise RuntimeError("crash")
    if text == "null":
        return None
    if text == "error":
        return ValueError("returned, not raised")
    if text == "wrong":
        return Receipt(sequence="x")  # type: ignore[arg-type]  # Int cannot represent "x"
    return Receipt(sequence=len(text), note=f"{info.context['who']} at {info.path.key}")


@strawberry.input
class Tree:
    """Contains itself: a value of it can nest as deep as a client likes."""

    label: str
    children: list[Tree] | None = None


@strawberry.type
class Query:
    @strawberry.field
    def receipt(self) -> Receipt:
        return Receipt(sequence=1)


@strawberry.type
class Mutation:
    @strawberry.mutation
    def send(self, info: Info, input: SendInput) -> Receipt:
        return _outcome(input.text, info)

    @strawberry.mutation
    async def send_later(self, info: Info, input: SendInput) -> Receipt | None:
        return _outcome(input.text, info)  # type: ignore[no-any-return]

    @strawberry.mutation
    def touch(self, times: int) -> bool:
        CALLS.append("touch")
        if times < 0:
            raise BadUserInput("times must not be negative")
        return times > 0

    @strawberry.mutation
    def stamp(self, impostor: bool) -> Stamp:
        CALLS.append("stamp")
        return Receipt(sequence=1) if impostor else Stamp(sequence=2)  # type: ignore[return-value]

    @strawberry.mutation
    def plant(self, tree: Tree) -> int:
        CALLS.append("plant")
        return 1 + len(tree.children or [])

    @strawberry.mutation
    def many(self) -> list[Receipt]:
        return [Receipt(sequence=1)]

    @strawberry.mutation
    def nested(self) -> Query:
        return Query()


@pytest.fixture(scope="module")
def graph() -> GraphQLSchema:
    built = strawberry.Schema(Query, Mutation, config=SCALARS, execution_context_class=LeanExecutor)
    call_resolvers_directly(built)
    return built._schema


def plan_of(graph: GraphQLSchema, query: str) -> RootFieldPlan | None:
    document = parse(query)
    operation = next(d for d in document.definitions if isinstance(d, OperationDefinitionNode))
    return RootFieldPlan.of(graph, document, operation)


def outcome(result: ExecutionResult) -> tuple[Any, list[tuple[Any, ...]]]:
    errors = [(e.message, e.path, e.locations, e.extensions) for e in result.errors or []]
    return result.data, errors


async def planned(graph: GraphQLSchema, query: str, variables: dict[str, Any]) -> Any:
    plan = plan_of(graph, query)
    assert plan is not None
    context = {"who": "ada"}
    return await plan.execute(context, variables, None, LeanExecutor, optimized_is_awaitable)


async def standard(graph: GraphQLSchema, query: str, variables: dict[str, Any]) -> Any:
    result = execute(
        graph,
        parse(query),
        context_value={"who": "ada"},
        variable_values=variables,
        executor_class=LeanExecutor,
        is_awaitable=optimized_is_awaitable,  # type: ignore[arg-type]
    )
    return await result if optimized_is_awaitable(result) else result  # type: ignore[misc]


SEND = "mutation($input: SendInput!) { send(input: $input) { sequence duplicate note mood } }"
SEND_LATER = (
    "mutation($input: SendInput!) {"
    " later: sendLater(input: $input) { __typename sequence again: sequence note } }"
)
TOUCH = "mutation($times: Int!) { touch(times: $times) }"
REPEAT = (
    "mutation($text: String!, $times: Int = 2) {"
    " send(input: {text: $text, times: $times}) { sequence } }"
)
PLANT = "mutation($tree: Tree!) { plant(tree: $tree) }"
STAMP = "mutation($impostor: Boolean!) { stamp(impostor: $impostor) { sequence } }"


@pytest.mark.parametrize(
    ("query", "variables"),
    [
        (SEND, {"input": {"text": "hello"}}),
        (SEND_LATER, {"input": {"text": "hello", "times": 2}}),
        (TOUCH, {"times": 3}),
        (REPEAT, {"text": "hi"}),  # a variable left out: its default
        (PLANT, {"tree": {"label": "a", "children": [{"label": "b"}]}}),
        (TOUCH, {"times": 0}),
        # the resolver raises: an API error with its code, or an internal one
        (SEND, {"input": {"text": "refused"}}),
        (SEND, {"input": {"text": "crash"}}),
        (SEND_LATER, {"input": {"text": "crash"}}),
        (TOUCH, {"times": -1}),
        # the resolver returns null (non-null: the whole data is null) or an error
        (SEND, {"input": {"text": "null"}}),
        (SEND_LATER, {"input": {"text": "null"}}),
        (SEND, {"input": {"text": "error"}}),
        (SEND_LATER, {"input": {"text": "error"}}),
        # the result is not of the field's type (`is_type_of`)
        (STAMP, {"impostor": False}),
        (STAMP, {"impostor": True}),
        # a leaf of the result does not coerce
        (SEND, {"input": {"text": "wrong"}}),
        (SEND_LATER, {"input": {"text": "wrong"}}),
    ],
)
async def test_results_and_errors_are_graphql_cores_and_the_resolver_runs_once(
    graph: GraphQLSchema, query: str, variables: dict[str, Any]
) -> None:
    CALLS.clear()
    mine = await planned(graph, query, variables)
    assert len(CALLS) == 1
    CALLS.clear()
    theirs = await standard(graph, query, variables)
    assert len(CALLS) == 1
    assert outcome(mine) == outcome(theirs)


@pytest.mark.parametrize(
    ("query", "variables"),
    [
        (SEND, {}),
        (SEND, {"input": {"times": 2}}),
        (SEND, {"input": {"text": "hi", "extra": 1}}),
        (SEND, {"input": "hi"}),
        (REPEAT, {"text": "hi", "times": None}),  # null where the argument needs a value
    ],
)
async def test_inputs_that_do_not_coerce_are_refused_without_calling_the_resolver(
    graph: GraphQLSchema, query: str, variables: dict[str, Any]
) -> None:
    CALLS.clear()
    mine = await planned(graph, query, variables)
    theirs = await standard(graph, query, variables)
    assert CALLS == []
    assert mine.errors and outcome(mine) == outcome(theirs)


def deep(levels: int) -> dict[str, Any]:
    tree: dict[str, Any] = {"label": "leaf"}
    for _ in range(levels):
        tree = {"label": "branch", "children": [tree]}
    return tree


async def test_a_type_that_contains_itself_keeps_graphql_cores_nesting_check(
    graph: GraphQLSchema,
) -> None:
    plan = plan_of(graph, PLANT)
    assert plan is not None and plan.signatures is None
    CALLS.clear()
    mine = await planned(graph, PLANT, {"tree": deep(300)})
    theirs = await standard(graph, PLANT, {"tree": deep(300)})
    assert CALLS == [] and mine.data is None
    assert outcome(mine) == outcome(theirs)
    assert mine.errors[0].message == "Variable values are nested too deeply."


def described(values: VariableValues) -> dict[str, tuple[Any, ...]]:
    """The sources, with each type by name (a signature's type is built per call)."""
    return {
        name: (str(s.signature.type), s.signature.default, s.signature.default_value, s.value)
        for name, s in values.sources.items()
    }


def test_given_variables_are_coerced_as_graphql_core_coerces_them(graph: GraphQLSchema) -> None:
    plan = plan_of(graph, SEND)
    assert plan is not None and plan.signatures is not None
    given = {"input": {"text": "hi", "times": 3}, "unused": 1}
    definitions = plan.operation.variable_definitions
    mine, theirs = plan._given_variables(given), get_variable_values(graph, definitions, given)
    assert mine is not None and not isinstance(theirs, list)
    assert mine.coerced == theirs.coerced == {"input": {"text": "hi", "times": 3}}
    assert described(mine) == described(theirs)
    assert plan._given_variables({}) is None  # left out: graphql-core's own, with defaults
    assert plan._given_variables({"input": {"times": 3}}) is None  # does not coerce


async def test_the_happy_path_builds_no_executor(
    graph: GraphQLSchema, executor_builds: list[Any]
) -> None:
    result = await planned(graph, SEND, {"input": {"text": "hello"}})
    assert result.data == {
        "send": {"sequence": 5, "duplicate": False, "note": "ada at send", "mood": "CALM"}
    }
    assert executor_builds == []
    failed = await planned(graph, SEND, {"input": {"text": "refused"}})
    assert failed.errors and len(executor_builds) == 1  # only a failure goes the standard way


@pytest.mark.parametrize(
    "query",
    [
        "mutation { many { sequence } }",  # a list
        "mutation { nested { receipt { sequence } } }",  # an object below the root
        "mutation { touch(times: 1) again: touch(times: 2) }",  # two root fields
        'mutation { send(input: {text: "a"}) { ...R } } fragment R on Receipt { sequence }',
        'mutation { send(input: {text: "a"}) { ... on Receipt { sequence } } }',
        "mutation($b: Boolean!) { touch(times: 1) @include(if: $b) }",
        'mutation($b: Boolean!) { send(input: {text: "a"}) { sequence @skip(if: $b) } }',
        "mutation { __typename }",
        "subscription { __typename }",
    ],
)
def test_other_operations_go_the_standard_way(graph: GraphQLSchema, query: str) -> None:
    assert plan_of(graph, query) is None


def test_queries_and_literal_arguments_have_a_plan(graph: GraphQLSchema) -> None:
    assert plan_of(graph, "{ receipt { sequence mood } }") is not None
    assert plan_of(graph, 'mutation { send(input: {text: "a"}) { sequence } }') is not None
