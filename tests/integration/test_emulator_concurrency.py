"""Races against the emulated DynamoDB: the serialization lock must make conditional writes exact."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from botocore.exceptions import ClientError

from local.cloudformation.provision import DataStack

RACERS = 50
ROUNDS = 20
ITEMS = 10  # booking-shaped: the booking itself plus nine claims on time


def claim_transaction(table: str, round_id: int, racer: int) -> list[dict[str, Any]]:
    """One racer's attempt to book the round's slot: every item must not exist yet."""
    items: list[dict[str, Any]] = [
        {
            "Put": {
                "TableName": table,
                "Item": {
                    "PK": {"S": f"RACE#{round_id}"},
                    "SK": {"S": f"CLAIM#{index}"},
                    "winner": {"N": str(racer)},
                },
                "ConditionExpression": "attribute_not_exists(PK)",
            }
        }
        for index in range(ITEMS - 1)
    ]
    items.append(
        {
            "Update": {
                "TableName": table,
                "Key": {"PK": {"S": f"RACE#{round_id}"}, "SK": {"S": "COUNTER"}},
                "UpdateExpression": "ADD wins :one SET winner = :racer",
                "ConditionExpression": "attribute_not_exists(wins)",
                "ExpressionAttributeValues": {":one": {"N": "1"}, ":racer": {"N": str(racer)}},
            }
        }
    )
    return items


def test_fifty_threads_racing_one_conditional_transaction_have_exactly_one_winner(
    dynamodb: Any, data_stack: DataStack
) -> None:
    table = data_stack.table_name
    for round_id in range(ROUNDS):
        start = threading.Barrier(RACERS)

        def race(racer: int, round_id: int = round_id, start: threading.Barrier = start) -> str:
            start.wait()
            try:
                dynamodb.transact_write_items(TransactItems=claim_transaction(table, round_id, racer))
                return "won"
            except ClientError as error:
                assert error.response["Error"]["Code"] == "TransactionCanceledException"
                return "lost"

        with ThreadPoolExecutor(RACERS) as pool:
            outcomes = list(pool.map(race, range(RACERS)))

        assert outcomes.count("won") == 1, f"round {round_id}: {outcomes.count('won')} winners"
        items = dynamodb.query(
            TableName=table,
            KeyConditionExpression="PK = :pk",
            ExpressionAttributeValues={":pk": {"S": f"RACE#{round_id}"}},
            ConsistentRead=True,
        )["Items"]
        # Exactly the winner's ten items: no phantom writes from cancelled transactions, no lost update.
        assert len(items) == ITEMS
        winners = {item["winner"]["N"] for item in items}
        assert len(winners) == 1, f"round {round_id}: items written by {winners}"
        counter = next(item for item in items if item["SK"]["S"] == "COUNTER")
        assert counter["wins"]["N"] == "1"
