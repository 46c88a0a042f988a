"""schema/execution.py: the lean executor and the direct resolver calls give the same
results and the same errors as strawberry's own execution, with less work per field."""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, Callable
from datetime import UTC, datetime
from enum import Enum
from inspect import isawaitable
from typing import Any

import pytest
import strawberry
from graphql import (
    ExecutionResult,
    GraphQLResolveInfo,
    GraphQLSchema,
    OperationDefinitionNode,
    parse,
)
from graphql.execution import execute_subscription_event
from strawberry.extensions import FieldExtension, SchemaExtension
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext
from strawberry.types import Info

from schema.common import SCALARS, Base64
from schema.execution import LeanExecutor, PlainSelection, call_resolvers_directly


@strawberry.enum
class Mood(Enum):
    HAPPY = "happy"
    SAD = "sad"


@strawberry.input
class Filter:
    word: str


@strawberry.input
class Span:
    low: int
    high: int | None = None


def _span_from_input(cls: type[Span], value: Any, _context: Any) -> Span:
    """Builds itself, as sendMessage's input does (schema/messaging/relay.py)."""
    return cls(low=value["low"], high=value.get("high"))


Span.__strawberry_definition__.from_input = _span_from_input  # type: ignore[attr-defined,assignment]


class Shout(FieldExtension):
    def resolve(self, next_: Callable[..., Any], source: Any, info: Info, **kwargs: Any) -> Any:
        return str(next_(source, info, **kwargs)).upper()


@strawberry.type
class Thing:
    count: int = 1
    name: str | None = "thing"
    ratio: float = 0.5
    flag: bool = True
    mood: Mood = Mood.HAPPY
    at: datetime = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    key: strawberry.ID = strawberry.ID("k1")
    blob: Base64 = Base64(b"\x00\x01")
    tags: list[str] = strawberry.field(default_factory=lambda: ["a", "b"])
    required: str = "here"

    @strawberry.field
    def repeated(self, times: int = 2, joined_by: str | None = None) -> str:
        return (joined_by or "").join([self.required] * times)

    @strawberry.field
    def asked(self, info: Info) -> str:
        return f"{info.field_name} by {info.context['who']} at {info.path.prev.key}"

    @strawberry.field
    async def later(self, info: Info, plus: int | None = None) -> int:
        return self.count + (plus or 0) + len(info.context["who"])

    @strawberry.field
    def parent_count(self, parent: strawberry.Parent[Thing]) -> int:
        return parent.count * 10

    @strawberry.field
    def broken(self) -> int | None:
        raise ValueError("broken on purpose")

    @strawberry.field
    def doubled(self) -> int:  # a getter: "three" doubled cannot be coerced to an Int
        return self.count * 2

    @strawberry.field
    def label(self) -> str:  # a getter: null for a null `required`, a non-null error
        return self.required

    @strawberry.field
    def when(self) -> datetime | None:
        return self.at

    @strawberry.field(extensions=[Shout()])
    def shouted(self) -> str:
        return self.required

    @strawberry.field
    def matches(self, filter: Filter) -> bool:
        return filter.word in self.required

    @strawberry.field
    def within(self, span: Span, also: Span | None = None) -> str:
        spans = [span, also] if also is not None else [span]
        return ",".join(f"{type(s).__name__}:{s.low}-{s.high}" for s in spans)

    @strawberry.field
    def twin(self) -> Thing | None:
        return Thing(count=self.count + 100) if self.count < 100 else None

    @strawberry.field
    def must_twin(self) -> Thing:  # None for the last item: a non-null error
        return None if self.count == 7 else Thing(count=self.count + 100)  # type: ignore[return-value]

    @strawberry.field
    def error_value(self) -> Thing | None:  # an error returned rather than raised
        return ValueError("returned, not raised") if self.count == 2 else None  # type: ignore[return-value]


THINGS = [
    Thing(),
    Thing(count=2, name=None, mood=Mood.SAD, required="other"),
    Thing(count=3, required=None),  # type: ignore[arg-type]  # null in a non-null field
    Thing(count="three"),  # type: ignore[arg-type]  # an Int that cannot be coerced
    Thing(count=5, ratio=float("nan")),  # a Float that cannot be coerced either
    Thing(count=6, mood="no such mood"),  # type: ignore[arg-type]
    Thing(count=7),  # whose mustTwin is null
]


@strawberry.type
class Query:
    @strawberry.field
    def things(self) -> list[Thing | None]:
        return list(THINGS)

    @strawberry.field
    def good_things(self) -> list[Thing]:
        return THINGS[:2]

    @strawberry.field
    def one(self, info: Info) -> Thing:
        return THINGS[0]


def schema(lean: bool, extensions: list[Any] | None = None) -> strawberry.Schema:
    built = strawberry.Schema(
        Query,
        types=[Base64],
        config=SCALARS,
        extensions=extensions or [],
        execution_context_class=LeanExecutor if lean else None,
    )
    if lean:
        assert call_resolvers_directly(built) > 0
    return built


QUERY = """
query($plus: Int, $skipName: Boolean!) {
  things {
    count name @skip(if: $skipName) ratio flag mood at key blob tags required
    again: count
    ...More
    repeated repeatedThrice: repeated(times: 3, joinedBy: "-")
    asked later(plus: $plus) parentCount shouted matches(filter: {word: "oth"})
    within(span: {low: 1, high: 4}) withinAlso: within(span: {low: 5}, also: null)
    withinBoth: within(span: {low: 2}, also: {low: 3, high: 9})
    twin { count mood twin { count } }
    mustTwin { count } errorValue { count }
  }
}
fragment More on Thing { flag broken doubled label when }
"""


def outcome(result: Any) -> tuple[Any, list[tuple[str, Any, Any]]]:
    errors = [(e.message, e.path, e.locations) for e in result.errors or []]
    return result.data, sorted(errors, key=repr)


@pytest.mark.parametrize("skip_name", [False, True])
async def test_lean_execution_gives_strawberrys_results_and_errors(skip_name: bool) -> None:
    variables = {"plus": 7, "skipName": skip_name}
    context = {"who": "ada"}
    lean = await schema(True).execute(QUERY, variable_values=variables, context_value=context)
    standard = await schema(False).execute(QUERY, variable_values=variables, context_value=context)
    assert outcome(lean) == outcome(standard)

    data, errors = outcome(lean)
    first, second, null_required, bad_int, bad_float, bad_enum, no_twin = data["things"]
    assert first["mood"] == "HAPPY" and first["at"] == "2026-01-02T03:04:05+00:00"
    assert first["blob"] == "AAE=" and first["repeatedThrice"] == "here-here-here"
    assert first["asked"] == "asked by ada at 0" and first["later"] == 1 + 7 + 3
    assert first["parentCount"] == 10 and first["shouted"] == "HERE"
    assert first["twin"] == {"count": 101, "mood": "HAPPY", "twin": None}
    assert ("name" in second) is not skip_name
    assert first["matches"] is False and second["matches"] is True
    # a null in a non-null field, and values that cannot be coerced, null their item
    assert null_required is None and bad_int is None and bad_float is None
    assert bad_enum is None and no_twin is None
    paths = {tuple(path) for _, path, _ in errors}
    assert ("things", 2, "required") in paths and ("things", 3, "count") in paths
    assert ("things", 4, "ratio") in paths and ("things", 5, "mood") in paths
    assert ("things", 0, "broken") in paths and ("things", 1, "errorValue") in paths
    assert first["doubled"] == 2 and first["label"] == "here" and first["when"] == first["at"]
    assert ("things", 6, "mustTwin") in paths and first["mustTwin"] == {"count": 101}


class Recorder(SchemaExtension):
    """A schema extension hooking every resolver (graphql-core middleware)."""

    seen: list[str] = []

    def resolve(
        self,
        _next: Callable[..., Any],
        root: Any,
        info: GraphQLResolveInfo,
        *args: Any,
        **kwargs: Any,
    ) -> Any:
        Recorder.seen.append(info.field_name)
        return _next(root, info, *args, **kwargs)


async def test_an_extension_hooking_resolvers_still_sees_every_field() -> None:
    query = "{ one { count name mood repeated twin { count } } }"
    seen = {}
    for lean in (True, False):
        Recorder.seen = []
        result = await schema(lean, [Recorder]).execute(query, context_value={"who": "x"})
        assert result.errors is None
        seen[lean] = list(Recorder.seen)
    assert seen[True] == seen[False]
    assert seen[True].count("count") == 2 and "mood" in seen[True]


BUILT: list[str] = []


class CountingLean(LeanExecutor):
    def build_resolve_info(self, *args: Any, **kwargs: Any) -> GraphQLResolveInfo:
        BUILT.append("lean")
        return super().build_resolve_info(*args, **kwargs)


class CountingStandard(StrawberryGraphQLCoreExecutionContext):
    def build_resolve_info(self, *args: Any, **kwargs: Any) -> GraphQLResolveInfo:
        BUILT.append("standard")
        return super().build_resolve_info(*args, **kwargs)


async def test_plain_leaves_are_read_without_a_resolve_info() -> None:
    query = "{ goodThings { count flag mood at key tags twin { count } } }"
    results = []
    for executor in (CountingLean, CountingStandard):
        built = strawberry.Schema(Query, config=SCALARS, execution_context_class=executor)
        results.append((await built.execute(query)).data)
    assert results[0] == results[1] and len(results[0]["goodThings"]) == 2
    # `goodThings`, then per item only `tags` (a list) and `twin`: the twin's own
    # `count` is a plain leaf again. graphql-core's usual way builds one per field.
    assert BUILT.count("lean") == 1 + 2 * 2
    assert BUILT.count("standard") == 1 + 2 * 8


async def test_getters_are_called_without_a_resolve_info() -> None:
    query = "{ goodThings { doubled label when broken } }"
    results = []
    for executor in (CountingLean, CountingStandard):
        BUILT.clear()
        built = strawberry.Schema(Query, config=SCALARS, execution_context_class=executor)
        if executor is CountingLean:
            assert call_resolvers_directly(built) > 0
        results.append(outcome(await built.execute(query)))
        # `goodThings`, then only `broken`, which raises, goes the standard way per item
        # (a getter's error is graphql-core's own); the standard way builds one per field
        assert BUILT.count(BUILT[0]) == (1 + 2 * 1 if executor is CountingLean else 1 + 2 * 4)
    assert results[0] == results[1]
    assert results[0][0]["goodThings"][0] == {
        "doubled": 2,
        "label": "here",
        "when": "2026-01-02T03:04:05+00:00",
        "broken": None,
    }


@pytest.mark.parametrize("field", ["doubled", "label"])
async def test_a_getters_bad_value_is_graphql_cores_error(field: str) -> None:
    query = f"{{ things {{ {field} }} }}"
    lean = outcome(await schema(True).execute(query))
    assert lean == outcome(await schema(False).execute(query))
    data, errors = lean
    bad = 3 if field == "doubled" else 2  # "three" doubled is no Int; a null `required`
    assert data["things"][bad] is None
    assert ("things", bad, field) in {tuple(path) for _, path, _ in errors}


async def test_resolvers_are_called_without_strawberrys_chain(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from strawberry.types.field import StrawberryField

    through_chain: list[str] = []
    original = StrawberryField.get_result

    def get_result(field: StrawberryField, *args: Any, **kwargs: Any) -> Any:
        through_chain.append(field.python_name)
        return original(field, *args, **kwargs)

    monkeypatch.setattr(StrawberryField, "get_result", get_result)
    query = (
        "{ one { repeated(times: 1) asked parentCount shouted"
        ' matches(filter: {word: "e"}) within(span: {low: 1}, also: {low: 2, high: 3}) } }'
    )
    result = await schema(True).execute(query, context_value={"who": "x"})
    assert result.errors is None
    assert result.data["one"]["matches"] is True
    assert result.data["one"]["within"] == "Span:1-None,Span:2-3"
    # an input argument converted by strawberry and a field extension keep strawberry's
    # chain; the rest (an input that builds itself included) do not
    assert sorted(through_chain) == ["matches", "shouted"]


# ── subscriptions of plain leaves (PlainSelection) ────────────────────────


@strawberry.type
class Subscription:
    @strawberry.subscription
    async def thing(self, n: int = 0) -> AsyncGenerator[Thing, None]:
        yield THINGS[n]


PLAIN_EVENT = (
    "subscription($n: Int) { thing(n: $n) {"
    " count name ratio flag mood at key blob required doubled label __typename again: count"
    " } }"
)


def subscription_schema() -> GraphQLSchema:
    built = strawberry.Schema(
        Query,
        subscription=Subscription,
        types=[Base64],
        config=SCALARS,
        execution_context_class=LeanExecutor,
    )
    call_resolvers_directly(built)
    return built._schema


def plain_selection(gs: GraphQLSchema, query: str) -> PlainSelection | None:
    operation = parse(query).definitions[0]
    assert isinstance(operation, OperationDefinitionNode)
    return PlainSelection.of(gs, operation)


async def test_a_subscription_of_plain_leaves_completes_an_event_as_the_executor_does() -> None:
    """Each event's data, in the same key order, without building an executor; an
    event with anything the executor reports as an error is left to the executor."""
    gs = subscription_schema()
    plain = plain_selection(gs, PLAIN_EVENT)
    assert plain is not None
    document = parse(PLAIN_EVENT)
    completed = 0
    for thing in THINGS:
        built = LeanExecutor.build(gs, document, thing, {}, {"n": 0})
        assert not isinstance(built, list)
        executed = execute_subscription_event(built)
        if isawaitable(executed):
            executed = await executed
        assert isinstance(executed, ExecutionResult)
        data = plain.data(thing)
        if executed.errors:
            assert data is None  # the executor runs and reports them
            continue
        assert json.dumps(data) == json.dumps(executed.data)
        completed += 1
    assert completed == 3  # THINGS[0], [1] (a null name) and [6]
    assert plain.data(None) is None


@pytest.mark.parametrize(
    "selection",
    [
        "count twin { count }",  # an object field
        "count repeated(times: 3)",  # arguments
        "count asked",  # a resolver that needs its info
        "count shouted",  # a field extension
        "... on Thing { count }",  # a fragment
        "count @include(if: true)",  # a directive
    ],
)
def test_other_subscriptions_go_through_the_executor(selection: str) -> None:
    query = f"subscription {{ thing {{ {selection} }} }}"
    assert plain_selection(subscription_schema(), query) is None
