"""A Query's items taken from the body's JSON (services/common/query_items.py) are exactly what
botocore's own parsing gives, for every kind of attribute value; a body with a binary value is left
to botocore whole; and the clients the services build read their Queries that way."""

from __future__ import annotations

import base64
import json
from typing import Any

import botocore.session
from botocore.parsers import create_parser
from hypothesis import given
from hypothesis import strategies as st

from services.common.query_items import items_as_sent

MODEL = botocore.session.get_session().get_service_model("dynamodb")
QUERY = MODEL.operation_model("Query")
NAMES = st.text(min_size=1, max_size=12)
SCALARS = st.one_of(
    st.builds(lambda s: {"S": s}, st.text(max_size=40)),  # quotes, backslashes, "B": inside strings
    st.builds(lambda n: {"N": str(n)}, st.integers(-(10**20), 10**20)),
    st.builds(lambda b: {"BOOL": b}, st.booleans()),
    st.just({"NULL": True}),
    st.builds(lambda s: {"SS": sorted(s)}, st.sets(st.text(max_size=8), min_size=1, max_size=4)),
    st.builds(lambda s: {"NS": sorted(map(str, s))}, st.sets(st.integers(), min_size=1, max_size=4)),
)


def attribute_values(scalars: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[dict[str, Any]]:
    """Attribute values of `scalars`, nested in maps and lists."""
    return st.recursive(
        scalars,
        lambda inner: st.one_of(
            st.builds(lambda m: {"M": m}, st.dictionaries(NAMES, inner, max_size=4)),
            st.builds(lambda values: {"L": values}, st.lists(inner, max_size=4)),
        ),
        max_leaves=12,
    )


VALUES = attribute_values(SCALARS)
ITEMS = st.lists(st.dictionaries(NAMES, VALUES, min_size=1, max_size=6), max_size=8)


def parsed(body: bytes, *, fast: bool) -> dict[str, Any]:
    """What the client answers: botocore's parse, after the before-parse hook when `fast`."""
    response: dict[str, Any] = {"status_code": 200, "headers": {}, "body": body}
    customized: dict[str, Any] = {}
    if fast:
        items_as_sent(response_dict=response, customized_response_dict=customized)
    assert QUERY.output_shape is not None
    answer = create_parser("json").parse(response, QUERY.output_shape)
    answer.update(customized)
    answer.pop("ResponseMetadata", None)
    return dict(answer)


@given(ITEMS, st.booleans())
def test_items_read_from_the_json_are_what_botocore_parses(items: list[dict[str, Any]], more: bool) -> None:
    answer: dict[str, Any] = {"Count": len(items), "ScannedCount": len(items), "Items": items}
    if more:
        answer["LastEvaluatedKey"] = {"PK": {"S": "P"}, "SK": {"S": "S"}}
        answer["ConsumedCapacity"] = {"TableName": "t", "CapacityUnits": 1.5}
    body = json.dumps(answer).encode()
    assert parsed(body, fast=True) == parsed(body, fast=False)


def test_a_binary_value_is_left_to_botocore() -> None:
    blob = base64.b64encode(b"\x00\x01key").decode()
    body = json.dumps({"Count": 1, "ScannedCount": 1, "Items": [{"key": {"B": blob}, "keys": {"BS": [blob]}}]})
    response: dict[str, Any] = {"status_code": 200, "headers": {}, "body": body.encode()}
    customized: dict[str, Any] = {}
    items_as_sent(response_dict=response, customized_response_dict=customized)
    assert customized == {} and response["body"] == body.encode()
    assert parsed(body.encode(), fast=True)["Items"] == [
        {"key": {"B": b"\x00\x01key"}, "keys": {"BS": [b"\x00\x01key"]}}
    ]


def test_an_error_answer_is_left_to_botocore() -> None:
    body = json.dumps(
        {"__type": "com.amazonaws.dynamodb.v20120810#ResourceNotFoundException", "message": "no"}
    ).encode()
    response: dict[str, Any] = {"status_code": 400, "headers": {}, "body": body}
    customized: dict[str, Any] = {}
    items_as_sent(response_dict=response, customized_response_dict=customized)
    assert customized == {} and response["body"] == body


def test_the_services_client_reads_its_queries_this_way(monkeypatch: Any) -> None:
    from services.common import aws

    for name, value in {"AWS_DEFAULT_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x",
                        "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled"}.items():  # fmt: skip
        monkeypatch.setenv(name, value)
    aws.dynamodb_client.cache_clear()
    try:
        body = json.dumps({"Count": 1, "ScannedCount": 1, "Items": [{"PK": {"S": "P"}}]}).encode()
        response: dict[str, Any] = {"status_code": 200, "headers": {}, "body": body}
        customized: dict[str, Any] = {}
        events = aws.dynamodb_client().meta.events
        events.emit("before-parse.dynamodb.Query", response_dict=response, customized_response_dict=customized)
        assert customized == {"Items": [{"PK": {"S": "P"}}]}
        untouched: dict[str, Any] = {}
        events.emit("before-parse.dynamodb.GetItem", response_dict=dict(response), customized_response_dict=untouched)
        assert untouched == {}  # only Queries: the rest stay botocore's
    finally:
        aws.dynamodb_client.cache_clear()
