"""The emulator's answers with items set as moto keeps them (local/emulator/overheads.py) are
exactly what moto's own serializer writes, for every kind of attribute value, binary included; moto's
folder listed once names the services moto's own listing names."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from moto import backends
from moto.core.responses import get_service_model
from moto.core.serialize import JSONSerializer, XFormedAttributePicker

from local.emulator import overheads
from tests.unit.test_query_items import NAMES, attribute_values
from tests.unit.test_query_items import SCALARS as PLAIN_SCALARS

MODEL = get_service_model("dynamodb")
# The plain kinds as botocore's parse is tested with, and binary ones, which take moto's own path.
SCALARS = st.one_of(
    PLAIN_SCALARS,
    st.builds(lambda b: {"B": b}, st.binary(max_size=16)),  # moto's path: base64 on the way out
    st.builds(lambda s: {"BS": sorted(s)}, st.sets(st.binary(max_size=8), min_size=1, max_size=3)),
)
VALUES = attribute_values(SCALARS)
ITEMS = st.lists(st.dictionaries(NAMES, VALUES, min_size=1, max_size=6), max_size=8)


@pytest.fixture(scope="module", autouse=True)
def moto_serializer_restored() -> Iterator[None]:
    """Each test installs the shortcut when it needs it; moto's own is back afterwards."""
    yield
    JSONSerializer._serialize_type_structure = overheads._moto_structure  # type: ignore[method-assign]
    backends.list_of_moto_modules = overheads._moto_modules


def serialized(operation: str, result: dict[str, Any], *, shortcut: bool) -> dict[str, Any]:
    if shortcut:
        overheads.install()
    else:
        JSONSerializer._serialize_type_structure = overheads._moto_structure  # type: ignore[method-assign]
    serializer = JSONSerializer(
        operation_model=MODEL.operation_model(operation),
        pretty_print=False,
        value_picker=XFormedAttributePicker(response_transformers=None),
    )
    return dict(serializer.serialize(result))


@given(ITEMS, st.booleans())
def test_emulator_query_answer_is_what_moto_serializes(items: list[dict[str, Any]], more: bool) -> None:
    result: dict[str, Any] = {"Count": len(items), "ScannedCount": len(items), "Items": items}
    if more:
        result["LastEvaluatedKey"] = {"PK": {"S": "P"}, "SK": {"S": "S"}}
    assert serialized("Query", result, shortcut=True) == serialized("Query", result, shortcut=False)


@given(st.dictionaries(NAMES, VALUES, min_size=1, max_size=6))
def test_emulator_get_item_answer_is_what_moto_serializes(item: dict[str, Any]) -> None:
    assert serialized("GetItem", {"Item": item}, shortcut=True) == serialized("GetItem", {"Item": item}, shortcut=False)


def test_emulator_sets_only_values_without_binary_as_they_are() -> None:
    assert overheads.plain({"M": {"a": {"L": [{"S": "x"}, {"NULL": True}, {"NS": ["1"]}]}}})
    assert not overheads.plain({"M": {"a": {"L": [{"S": "x"}, {"B": b"\x00"}]}}})
    assert not overheads.plain({"BS": [b"a"]})
    assert not overheads.plain({"S": "x", "N": "1"})  # malformed: moto says what it says
    assert not overheads.plain({"N": 1})


def test_emulator_lists_moto_services_as_moto_does() -> None:
    listed = list(overheads.list_of_moto_modules())
    assert listed == list(overheads._moto_modules())
    assert {"dynamodb", "dynamodbstreams", "s3", "sqs"} <= set(listed)
