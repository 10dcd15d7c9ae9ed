"""The `staleReadsMs` fault: eventually consistent reads answer with data as old as DynamoDB allows,
strongly consistent reads with the latest write (local/emulator/consistency.py)."""

from __future__ import annotations

import json
import time
import urllib.request
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from local.cloudformation.provision import DataStack
from local.emulator.server import EmulatorProcess


def plan(emulator: EmulatorProcess, changes: dict[str, Any] | None = None) -> dict[str, Any]:
    """The emulator's fault plan, after `changes` if given."""
    request = urllib.request.Request(f"{emulator.endpoint}/_faults")
    if changes is not None:
        request = urllib.request.Request(
            f"{emulator.endpoint}/_faults", method="PUT", data=json.dumps(changes).encode()
        )
    with urllib.request.urlopen(request, timeout=10) as answer:
        return dict(json.load(answer)["plan"])


@pytest.fixture
def stale(emulator: EmulatorProcess) -> Iterator[float]:
    """Two seconds of staleness for this test, then the plan as it was."""
    before = plan(emulator)
    plan(emulator, {**before, "staleReadsMs": 2000})
    yield 2.0
    plan(emulator, before)


def test_eventually_consistent_reads_see_the_past_and_consistent_reads_the_present(
    dynamodb: Any, data_stack: DataStack, stale: float
) -> None:
    table = data_stack.table_name
    name = f"STALE#{uuid.uuid4().hex}"
    key = {"PK": {"S": name}, "SK": {"S": "A"}}
    # Given an item written just now, and indexed by GSI1
    dynamodb.put_item(TableName=table, Item={**key, "GSI1PK": {"S": name}, "GSI1SK": {"S": "A"}, "v": {"N": "1"}})
    written_at = time.monotonic()
    by_index = {"TableName": table, "IndexName": "GSI1", "KeyConditionExpression": "GSI1PK = :p",
                "ExpressionAttributeValues": {":p": {"S": name}}}  # fmt: skip
    # Then eventually consistent reads do not see it yet, and strongly consistent ones do
    assert "Item" not in dynamodb.get_item(TableName=table, Key=key)
    assert dynamodb.query(**by_index)["Items"] == []
    assert dynamodb.get_item(TableName=table, Key=key, ConsistentRead=True)["Item"]["v"] == {"N": "1"}
    batch = dynamodb.batch_get_item(RequestItems={table: {"Keys": [key]}})
    assert batch["Responses"][table] == []
    # When it is changed a second later, an eventually consistent read answers what it was
    # staleReadsMs ago: written, not yet changed
    time.sleep(max(0.0, written_at + 1.0 - time.monotonic()))
    dynamodb.update_item(TableName=table, Key=key, UpdateExpression="SET v = :two",
                         ExpressionAttributeValues={":two": {"N": "2"}})  # fmt: skip
    changed_at = time.monotonic()
    time.sleep(max(0.0, written_at + stale + 0.4 - time.monotonic()))
    assert dynamodb.get_item(TableName=table, Key=key)["Item"]["v"] == {"N": "1"}
    assert dynamodb.get_item(TableName=table, Key=key, ConsistentRead=True)["Item"]["v"] == {"N": "2"}
    # and once the window has passed the change too, everyone sees the latest write
    time.sleep(max(0.0, changed_at + stale + 0.3 - time.monotonic()))
    assert dynamodb.get_item(TableName=table, Key=key)["Item"]["v"] == {"N": "2"}
    assert [item["v"] for item in dynamodb.query(**by_index)["Items"]] == [{"N": "2"}]


def test_without_the_fault_every_read_sees_the_latest_write(
    dynamodb: Any, data_stack: DataStack, emulator: EmulatorProcess
) -> None:
    if plan(emulator)["staleReadsMs"]:
        pytest.skip("this run has stale reads on for every test (APPOINTMENTS_STALE_READS_MS)")
    key = {"PK": {"S": f"FRESH#{uuid.uuid4().hex}"}, "SK": {"S": "A"}}
    dynamodb.put_item(TableName=data_stack.table_name, Item=key)
    assert dynamodb.get_item(TableName=data_stack.table_name, Key=key)["Item"] == key
