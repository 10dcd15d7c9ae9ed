"""The rewritten TransactWriteItems keeps DynamoDB's semantics (checked in-process against moto)."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

TABLE = "appointments-inproc"


@pytest.fixture
def client(moto_table: tuple[Any, str]) -> Any:
    return moto_table[0]


def key(sk: str) -> dict[str, Any]:
    return {"PK": {"S": "P"}, "SK": {"S": sk}}


def put(sk: str, condition: str | None = "attribute_not_exists(PK)", **attributes: Any) -> dict[str, Any]:
    operation: dict[str, Any] = {"TableName": TABLE, "Item": {**key(sk), **attributes}}
    if condition:
        operation["ConditionExpression"] = condition
    return {"Put": operation}


def items(client: Any) -> dict[str, dict[str, Any]]:
    found = client.query(
        TableName=TABLE, KeyConditionExpression="PK = :p", ExpressionAttributeValues={":p": {"S": "P"}}
    )["Items"]
    return {item["SK"]["S"]: item for item in found}


def stream_records(client: Any) -> list[dict[str, Any]]:
    streams = boto3.client("dynamodbstreams", region_name="us-east-1")
    arn = client.describe_table(TableName=TABLE)["Table"]["LatestStreamArn"]
    shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
    iterator = streams.get_shard_iterator(StreamArn=arn, ShardId=shard, ShardIteratorType="TRIM_HORIZON")
    return [dict(record) for record in streams.get_records(ShardIterator=iterator["ShardIterator"])["Records"]]


def cancellation_codes(error: ClientError) -> list[str]:
    return [reason["Code"] for reason in error.response["CancellationReasons"]]


def test_a_successful_transaction_writes_every_item_and_its_stream_records(client: Any) -> None:
    client.put_item(TableName=TABLE, Item={**key("counter"), "n": {"N": "1"}})
    client.put_item(TableName=TABLE, Item={**key("guard"), "open": {"BOOL": True}})
    client.transact_write_items(
        TransactItems=[
            put("a", v={"S": "1"}),
            {"Update": {"TableName": TABLE, "Key": key("counter"), "UpdateExpression": "ADD n :one",
                        "ConditionExpression": "n = :one", "ExpressionAttributeValues": {":one": {"N": "1"}}}},
            {"ConditionCheck": {"TableName": TABLE, "Key": key("guard"), "ConditionExpression": "#o = :t",
                                "ExpressionAttributeNames": {"#o": "open"},
                                "ExpressionAttributeValues": {":t": {"BOOL": True}}}},
        ]
    )  # fmt: skip
    state = items(client)
    assert state["a"]["v"] == {"S": "1"}
    assert state["counter"]["n"] == {"N": "2"}
    assert [r["eventName"] for r in stream_records(client)] == ["INSERT", "INSERT", "INSERT", "MODIFY"]


def test_a_failed_condition_cancels_everything_with_per_item_reasons(client: Any) -> None:
    client.put_item(TableName=TABLE, Item={**key("taken"), "owner": {"S": "first"}})
    before = len(stream_records(client))
    with pytest.raises(ClientError) as raised:
        client.transact_write_items(
            TransactItems=[
                put("fresh"),
                {"Put": {"TableName": TABLE, "Item": {**key("taken"), "owner": {"S": "second"}},
                         "ConditionExpression": "attribute_not_exists(PK)",
                         "ReturnValuesOnConditionCheckFailure": "ALL_OLD"}},
            ]
        )  # fmt: skip
    error: Any = raised.value
    assert error.response["Error"]["Code"] == "TransactionCanceledException"
    assert cancellation_codes(error) == ["None", "ConditionalCheckFailed"]
    assert error.response["CancellationReasons"][1]["Item"]["owner"] == {"S": "first"}
    state = items(client)
    assert "fresh" not in state  # nothing written by the cancelled transaction
    assert state["taken"]["owner"] == {"S": "first"}
    assert len(stream_records(client)) == before  # and nothing on the stream


def test_a_write_that_fails_validation_rolls_back_the_items_already_applied(client: Any) -> None:
    client.put_item(TableName=TABLE, Item={**key("text"), "n": {"S": "not a number"}})
    client.put_item(TableName=TABLE, Item={**key("kept"), "v": {"S": "old"}})
    before = len(stream_records(client))
    with pytest.raises(ClientError):
        client.transact_write_items(
            TransactItems=[
                put("kept", condition=None, v={"S": "new"}),
                put("brand-new"),
                {"Update": {"TableName": TABLE, "Key": key("text"), "UpdateExpression": "ADD n :one",
                            "ExpressionAttributeValues": {":one": {"N": "1"}}}},
            ]
        )  # fmt: skip
    state = items(client)
    assert state["kept"]["v"] == {"S": "old"}
    assert "brand-new" not in state
    assert len(stream_records(client)) == before


def test_two_operations_on_one_item_are_rejected(client: Any) -> None:
    with pytest.raises(ClientError) as raised:
        client.transact_write_items(TransactItems=[put("same"), {"Delete": {"TableName": TABLE, "Key": key("same")}}])
    assert raised.value.response["Error"]["Code"] == "ValidationException"
    assert items(client) == {}
