"""What DynamoDB refuses, the emulator refuses: each validation the code relies on, shown failing.

Some are moto's own, one is ours (`local/emulator/refusals.py`); all are held here against the
emulator process the local stack runs, with the data stack's table, so that a request AWS would
refuse can never pass locally unnoticed. The last test shows the services' side: a cursor from
another window of a list is the client's mistake (400), refused before DynamoDB would refuse it.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from botocore.exceptions import ClientError

from local.cloudformation.provision import DataStack
from local.stack import LocalStack
from tests.integration.conftest import call, eventually, token
from tests.integration.test_booking_api import WEEKDAYS, book, future_day, make_provider, slots


def refused(operation: Any, **request: Any) -> str:
    """The ValidationException message DynamoDB (here: the emulator) answers `request` with."""
    with pytest.raises(ClientError) as caught:
        operation(**request)
    assert caught.value.response["Error"]["Code"] == "ValidationException", caught.value.response
    return str(caught.value.response["Error"]["Message"])


@pytest.fixture
def partition(dynamodb: Any, data_stack: DataStack) -> str:
    """Three items in a fresh partition, also indexed by GSI1 under the same partition name."""
    name = f"REFUSALS#{uuid.uuid4().hex}"
    for sort in ("A#1", "A#2", "B#1"):
        item = {"PK": {"S": name}, "SK": {"S": sort}, "GSI1PK": {"S": name}, "GSI1SK": {"S": sort}}
        dynamodb.put_item(TableName=data_stack.table_name, Item=item)
    return name


OUTSIDE = "The provided starting key is outside query boundaries based on provided conditions"
NOT_IN_RANGE = "The provided starting key does not match the range key predicate"


@pytest.mark.parametrize("index", [None, "GSI1"])
def test_a_start_key_outside_the_key_condition_is_refused_and_one_inside_is_not(
    dynamodb: Any, data_stack: DataStack, partition: str, index: str | None
) -> None:
    pk, sk = ("GSI1PK", "GSI1SK") if index else ("PK", "SK")
    request: dict[str, Any] = {
        "TableName": data_stack.table_name,
        "KeyConditionExpression": f"{pk} = :p AND begins_with({sk}, :a)",
        "ExpressionAttributeValues": {":p": {"S": partition}, ":a": {"S": "A#"}},
        **({"IndexName": index} if index else {}),
    }

    def start(partition_value: str, sort: str) -> dict[str, Any]:
        key = {"PK": {"S": partition_value}, "SK": {"S": sort}}
        return {**key, "GSI1PK": {"S": partition_value}, "GSI1SK": {"S": sort}} if index else key

    # another partition's key, as a reused cursor of another provider's list would be
    assert refused(dynamodb.query, **request, ExclusiveStartKey=start("OTHER", "A#1")) == OUTSIDE
    # this partition, outside the sort key condition, as a cursor of another window would be
    assert refused(dynamodb.query, **request, ExclusiveStartKey=start(partition, "B#1")) == NOT_IN_RANGE
    # inside: the next page
    page = dynamodb.query(**request, ExclusiveStartKey=start(partition, "A#1"))
    assert [item["SK"]["S"] for item in page["Items"]] == ["A#2"]


def test_an_item_over_400_kb_is_refused(dynamodb: Any, data_stack: DataStack) -> None:
    item = {"PK": {"S": "BIG"}, "SK": {"S": "BIG"}, "blob": {"S": "x" * (400 * 1024)}}
    assert "size" in refused(dynamodb.put_item, TableName=data_stack.table_name, Item=item).lower()


def test_a_transaction_over_100_items_is_refused(dynamodb: Any, data_stack: DataStack) -> None:
    puts = [
        {"Put": {"TableName": data_stack.table_name, "Item": {"PK": {"S": f"TX#{n}"}, "SK": {"S": "TX"}}}}
        for n in range(101)
    ]
    assert "100" in refused(dynamodb.transact_write_items, TransactItems=puts)


def test_a_transaction_naming_one_item_twice_is_refused(dynamodb: Any, data_stack: DataStack) -> None:
    key = {"PK": {"S": "TWICE"}, "SK": {"S": "TWICE"}}
    twice = [
        {"Put": {"TableName": data_stack.table_name, "Item": key}},
        {
            "ConditionCheck": {
                "TableName": data_stack.table_name,
                "Key": key,
                "ConditionExpression": "attribute_not_exists(PK)",
            }
        },
    ]
    message = refused(dynamodb.transact_write_items, TransactItems=twice)
    assert "multiple operations on one item" in message.lower()


def test_unused_expression_values_and_names_are_refused(dynamodb: Any, data_stack: DataStack) -> None:
    key = {"PK": {"S": "EXPR"}, "SK": {"S": "EXPR"}}
    common = {"TableName": data_stack.table_name, "Key": key, "UpdateExpression": "SET a = :a"}
    unused_value = refused(
        dynamodb.update_item, **common, ExpressionAttributeValues={":a": {"S": "1"}, ":b": {"S": "2"}}
    )
    assert ":b" in unused_value
    unused_name = refused(
        dynamodb.update_item,
        **common,
        ExpressionAttributeValues={":a": {"S": "1"}},
        ExpressionAttributeNames={"#n": "never"},
    )
    assert "#n" in unused_name


def test_a_strongly_consistent_read_of_a_global_index_is_refused(
    dynamodb: Any, data_stack: DataStack, partition: str
) -> None:
    # Why the lists that read GSI1 and GSI2 are eventually consistent, and their tests read again.
    message = refused(
        dynamodb.query,
        TableName=data_stack.table_name,
        IndexName="GSI1",
        KeyConditionExpression="GSI1PK = :p",
        ExpressionAttributeValues={":p": {"S": partition}},
        ConsistentRead=True,
    )
    assert "not supported on global secondary indexes" in message


def test_a_cursor_is_good_only_for_the_query_that_made_it(stack: LocalStack) -> None:
    """A cursor names its query: used with another window or filter, or altered, it is the client's
    mistake (400 INVALID_CURSOR). Reused with another window, DynamoDB would have refused its start
    key (a 500 had it got that far)."""
    weekly = {day: [{"start": "09:00", "end": "17:00"}] for day in WEEKDAYS}
    pid, (sid,) = make_provider(
        stack, "cursor-owner", "Cursors", weekly, [{"name": "V", "durationMinutes": 30, "slotStepMinutes": 30}]
    )
    customer = token(stack, "cursor-reuser", ["customers"])
    for start in [s["start"] for s in slots(stack, pid, sid, future_day(2))[:2]]:
        assert book(stack, customer, pid, sid, start)[0] == 201
    window = "from=2026-01-01T00:00:00Z&to=2099-01-01T00:00:00Z"

    def first_page() -> str | None:  # the list reads an index: eventually consistent
        page = call(stack, "GET", f"/bookings?{window}&limit=1", token=customer)[2]
        return page.get("nextCursor") if page["items"] else None

    cursor = eventually(first_page)
    assert cursor
    assert call(stack, "GET", f"/bookings?{window}&limit=1&cursor={cursor}", token=customer)[0] == 200
    other_window = "from=2026-01-01T00:00:00Z&to=2098-01-01T00:00:00Z"
    altered = cursor[:10] + ("A" if cursor[10] != "A" else "B") + cursor[11:]
    for query in (f"{other_window}&cursor={cursor}", f"{window}&status=CANCELLED&cursor={cursor}",
                  f"{window}&cursor={altered}", f"{window}&cursor=bm90IGEgY3Vyc29y"):  # fmt: skip
        status, _, problem = call(stack, "GET", f"/bookings?{query}", token=customer)
        assert (status, problem["code"]) == (400, "INVALID_CURSOR"), (query, problem)
        assert [error["field"] for error in problem["errors"]] == ["query.cursor"]
