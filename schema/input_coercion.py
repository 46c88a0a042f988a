"""graphql-core's `coerce_input_value`, decided once per input type instead of per value.

`coerce_input_value(value, type_)` asks, at every level of every value, what kind
of type it is coercing to (non-null, list, input object, leaf) and, for an input
object, walks its fields' definitions again. For the relay's `sendMessage` input
(an object with a list of objects of scalars) that was 8% of the relay server's
CPU per message (bench/messaging.py). `input_coercer(type_)` makes those decisions
once and returns a function that does the rest: the same checks in the same
order, the same leaf `coerce_input_value`s, defaults by graphql-core's own
`coerce_default_value`, the same `out_type`, and `Undefined` for a value that
does not coerce (graphql-core's `get_variable_values` then reports why).

Only for types that do not contain themselves (the callers' plans check that:
schema/root_field.py `_nesting`): a coercer of such a type would be built forever.
tests/test_input_coercion.py checks it against graphql-core's on generated values.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from graphql import (
    GraphQLInputObjectType,
    GraphQLInputType,
    GraphQLList,
    GraphQLNonNull,
    Undefined,
    assert_leaf_type,
    is_required_input_field,
)
from graphql.pyutils import is_iterable
from graphql.utilities.coerce_input_value import coerce_default_value

Coercer = Callable[[Any], Any]

__all__ = ["Coercer", "input_coercer"]


def input_coercer(type_: GraphQLInputType) -> Coercer:
    """What `coerce_input_value(value, type_)` does, as a function of the value."""
    if isinstance(type_, GraphQLNonNull):
        return _non_null(input_coercer(type_.of_type))
    if isinstance(type_, GraphQLList):
        return _list(input_coercer(type_.of_type))
    if isinstance(type_, GraphQLInputObjectType):
        return _input_object(type_)
    return _leaf(type_)


def _non_null(inner: Coercer) -> Coercer:
    def coerce(value: Any) -> Any:
        if value is None or value is Undefined:
            return Undefined
        return inner(value)

    return coerce


def _list(item: Coercer) -> Coercer:
    def coerce(value: Any) -> Any:
        if value is None or value is Undefined:
            return None
        # A JSON array is a list: is_iterable's abstract-class checks are for the rest.
        if type(value) is not list and not is_iterable(value):  # a list of one
            coerced = item(value)
            return Undefined if coerced is Undefined else [coerced]
        items = []
        for each in value:
            coerced = item(each)
            if coerced is Undefined:
                return Undefined
            items.append(coerced)
        return items

    return coerce


def _input_object(type_: GraphQLInputObjectType) -> Coercer:
    fields = type_.fields
    # (name, key in the result, coercer, the field when it is optional: its default)
    plan = [
        (
            name,
            field.out_name or name,
            input_coercer(field.type),
            None if is_required_input_field(field) else field,
        )
        for name, field in fields.items()
    ]
    out_type, one_of = type_.out_type, type_.is_one_of

    def coerce(value: Any) -> Any:
        if value is None or value is Undefined:
            return None
        if not isinstance(value, dict):
            return Undefined
        defined = 0
        for name, given in value.items():
            if given is Undefined:
                continue
            defined += 1
            if name not in fields:
                return Undefined
        coerced: dict[str, Any] = {}
        for name, key, coercer, optional in plan:
            given = value.get(name, Undefined)
            if given is Undefined:
                if optional is None:
                    return Undefined
                default = coerce_default_value(optional)
                if default is not Undefined:
                    coerced[key] = default
                continue
            result = coercer(given)
            if result is Undefined:
                return Undefined
            coerced[key] = result
        if one_of and (defined != 1 or len(coerced) != 1 or next(iter(coerced.values())) is None):
            return Undefined
        return out_type(coerced)

    return coerce


def _leaf(type_: GraphQLInputType) -> Coercer:
    coerce_leaf = assert_leaf_type(type_).coerce_input_value

    def coerce(value: Any) -> Any:
        if value is None or value is Undefined:
            return None
        try:
            return coerce_leaf(value)
        except Exception:  # noqa: BLE001 - does not coerce: graphql-core says why
            return Undefined

    return coerce
