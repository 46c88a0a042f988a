"""schema/input_coercion.py against graphql-core's `coerce_input_value`: the same
outcome for every input type of the served graph, on values shaped like the type
and on values that are not (wrong kinds, nulls, missing and unknown fields)."""

from __future__ import annotations

from typing import Any

import pytest
from graphql import (
    GraphQLEnumType,
    GraphQLInputObjectType,
    GraphQLInputType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLScalarType,
    GraphQLSchema,
    Undefined,
)
from graphql.utilities import coerce_input_value
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schema.input_coercion import input_coercer
from schema.root_field import _nesting
from schema.supergraph import supergraph

SCHEMA: GraphQLSchema = supergraph()._schema
INPUT_TYPES = sorted(
    name
    for name, type_ in SCHEMA.type_map.items()
    if isinstance(type_, GraphQLInputObjectType)
    and not name.startswith("__")
    and _nesting(type_, frozenset()) is not None
)

JUNK = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**40), 2**40)
    | st.floats(allow_nan=False)
    | st.text(max_size=8)
    | st.sampled_from(["", "0", "AAAA", "aGVsbG8=", "2026-11-27T16:00:00+00:00", "VXNlcjox"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner),
    max_leaves=4,
)


def shaped(type_: GraphQLInputType) -> st.SearchStrategy[Any]:
    """Values mostly of `type_`'s shape, now and then anything at all."""
    if isinstance(type_, GraphQLNonNull):
        return shaped(type_.of_type)
    if isinstance(type_, GraphQLList):
        item = shaped(type_.of_type)
        return st.lists(item, max_size=3) | item | JUNK
    if isinstance(type_, GraphQLInputObjectType):
        return st.deferred(lambda: _object(type_)) | JUNK
    if isinstance(type_, GraphQLEnumType):
        return st.sampled_from(list(type_.values)) | JUNK
    assert isinstance(type_, GraphQLScalarType)
    return JUNK


def _object(type_: GraphQLInputObjectType) -> st.SearchStrategy[dict[str, Any]]:
    fields = {name: shaped(field.type) for name, field in type_.fields.items()}
    given_fields = st.fixed_dictionaries({}, optional=fields)
    unknown = st.dictionaries(st.sampled_from(["unknownField", "__typename"]), JUNK, max_size=1)
    return st.tuples(given_fields, unknown).map(lambda pair: {**pair[0], **pair[1]})


def test_there_are_input_types_to_check() -> None:
    assert "SendMessageInput" in INPUT_TYPES
    assert len(INPUT_TYPES) >= 20


@pytest.mark.parametrize("name", INPUT_TYPES)
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_coerces_as_graphql_core_does(name: str, data: st.DataObject) -> None:
    type_ = SCHEMA.type_map[name]
    assert isinstance(type_, GraphQLInputObjectType)
    for wrapped in (type_, GraphQLNonNull(type_), GraphQLList(GraphQLNonNull(type_))):
        value = data.draw(shaped(wrapped) | st.sampled_from([None, Undefined]))
        expected = outcome(coerce_input_value, value, wrapped)
        got = outcome(lambda v, t: input_coercer(t)(v), value, wrapped)
        if expected is Undefined:
            assert got is Undefined, value
        else:
            assert got == expected, value


def outcome(coerce: Any, value: Any, type_: GraphQLInputType) -> Any:
    """The coerced value, or what was raised (strawberry's `out_type` of a oneOf
    input raises for a value with other than one field)."""
    try:
        return coerce(value, type_)
    except Exception as error:  # noqa: BLE001
        return (type(error), str(error))


def test_a_relayed_message_coerces_to_what_graphql_core_gives() -> None:
    type_ = GraphQLNonNull(SCHEMA.type_map["SendMessageInput"])
    value = {
        "clientMessageId": "m-1",
        "senderDeviceId": 1,
        "conversationId": None,
        "envelopes": [
            {
                "recipientId": "VXNlcjoy",
                "recipientDeviceId": 1,
                "recipientRegistrationId": 7,
                "type": "CIPHERTEXT",
                "content": "aGVsbG8=",
            }
        ],
    }
    coerced = input_coercer(type_)(value)
    assert coerced == coerce_input_value(value, type_)
    assert coerced["envelopes"][0]["content"] == b"hello"
    for broken in ({**value, "senderDeviceId": "one"}, {**value, "extra": 1}, {"envelopes": []}):
        assert input_coercer(type_)(broken) is Undefined
