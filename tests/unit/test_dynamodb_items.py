"""Items converted without boto3 (services/common/dynamodb.py, decision 0035) exactly as boto3's own
`TypeSerializer` and `TypeDeserializer` convert them, on generated values: the same attribute values,
the same plain values back, the same refusals."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from boto3.dynamodb.types import Binary, TypeDeserializer, TypeSerializer
from hypothesis import given
from hypothesis import strategies as st

from services.common.dynamodb import attribute_value, from_item, plain_value, to_item

NUMBERS = st.one_of(
    st.integers(-(10**38) + 1, 10**38 - 1),
    st.decimals(allow_nan=False, allow_infinity=False, places=6, min_value=-(10**20), max_value=10**20),
)
SCALARS = st.one_of(st.none(), st.booleans(), NUMBERS, st.text(max_size=20), st.binary(max_size=20))
SETS = st.one_of(
    st.frozensets(st.integers(-(10**9), 10**9), max_size=5),
    st.frozensets(st.text(max_size=8), max_size=5),
    st.frozensets(st.binary(min_size=1, max_size=8), min_size=1, max_size=5),
)
VALUES = st.recursive(
    st.one_of(SCALARS, SETS),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.tuples(inner, inner),
        st.dictionaries(st.text(max_size=8), inner, max_size=4),
    ),
    max_leaves=12,
)


def boto3_plain(value: Any) -> Any:
    """boto3's deserialized value made plain as `from_item` answers it: whole numbers as int, others as
    float, binary as bytes, sets' members too. (Before decision 0035 `from_item` left binary in boto3's
    `Binary` and a number set's members as Decimal; nothing stores either.)"""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, Binary):
        return value.value  # type: ignore[attr-defined]  # (its stubs leave the attribute out)
    if isinstance(value, list):
        return [boto3_plain(member) for member in value]
    if isinstance(value, dict):
        return {key: boto3_plain(member) for key, member in value.items()}
    if isinstance(value, set):
        return {boto3_plain(member) for member in value}
    return value


def unordered(value: Any) -> Any:
    """A set's members come in no particular order: compare them as sets."""
    if isinstance(value, dict) and len(value) == 1 and next(iter(value)) in ("SS", "NS", "BS"):
        return {next(iter(value)): frozenset(value[next(iter(value))])}
    if isinstance(value, dict):
        return {key: unordered(member) for key, member in value.items()}
    if isinstance(value, list):
        return [unordered(member) for member in value]
    return value


@given(VALUES)
def test_a_value_converts_as_boto3_converts_it(value: Any) -> None:
    ours = attribute_value(value)
    assert unordered(ours) == unordered(TypeSerializer().serialize(value))
    assert plain_value(ours) == boto3_plain(TypeDeserializer().deserialize(ours))  # type: ignore[arg-type]


@given(st.dictionaries(st.text(min_size=1, max_size=8), VALUES, max_size=5))
def test_an_item_drops_its_none_values_and_comes_back_plain(values: dict[str, Any]) -> None:
    item = to_item(values)
    assert set(item) == {name for name, value in values.items() if value is not None}
    assert from_item(item) == {
        name: boto3_plain(TypeDeserializer().deserialize(TypeSerializer().serialize(value)))
        for name, value in values.items()
        if value is not None
    }


# Decimals of up to 38 digits at any exponent: within DynamoDB's range they are written exactly,
# beyond it (or below its smallest) refused, by both.
DECIMALS = st.tuples(st.integers(-(10**38) + 1, 10**38 - 1), st.integers(-170, 130)).map(
    lambda digits: Decimal(digits[0]).scaleb(digits[1])
)


@given(DECIMALS)
def test_a_number_anywhere_near_dynamodbs_limits_is_written_or_refused_as_boto3_does(number: Decimal) -> None:
    try:
        theirs = TypeSerializer().serialize(number)
    except Exception as refusal:
        with pytest.raises(type(refusal)):
            attribute_value(number)
        return
    assert attribute_value(number) == theirs
    assert plain_value(theirs) == boto3_plain(TypeDeserializer().deserialize(theirs))


@pytest.mark.parametrize(
    "value",
    [
        1.5,  # a float: DynamoDB's numbers are decimal
        [1, 2.5],
        Decimal("NaN"),
        Decimal("Infinity"),
        10**38,  # 39 digits: DynamoDB would round it
        Decimal("1e-170"),  # smaller than DynamoDB stores
        object(),
        {1, "one"},  # a set of mixed members
    ],
)
def test_what_boto3_refuses_is_refused(value: Any) -> None:
    with pytest.raises(Exception) as boto3_refusal:
        TypeSerializer().serialize(value)
    with pytest.raises(type(boto3_refusal.value)):
        attribute_value(value)


@pytest.mark.parametrize("value", [{}, {"S": "a", "N": "1"}, {"X": "?"}])
def test_what_is_no_attribute_value_is_refused(value: dict[str, Any]) -> None:
    with pytest.raises(TypeError):
        plain_value(value)
