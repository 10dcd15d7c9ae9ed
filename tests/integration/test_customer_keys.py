"""Each customer's sealing key in the audit table (services/audit/adapters/dynamodb_customer_keys.py),
against DynamoDB's conditional writes: an erasure is never undone by an event recorded after it."""

from __future__ import annotations

from typing import Any

from services.audit.adapters.dynamodb_customer_keys import DynamoDBCustomerKeys, key_item

TABLE = "appointments-inproc-audit"  # made by the moto_table fixture, from cloudformation/data.yaml


def stored(client: Any, customer: str) -> dict[str, Any]:
    return dict(client.get_item(TableName=TABLE, Key=key_item(customer), ConsistentRead=True).get("Item", {}))


def test_a_key_is_made_once_and_an_erasure_ends_it_for_what_came_before(moto_table: tuple[Any, str]) -> None:
    client, _ = moto_table
    keys = DynamoDBCustomerKeys(client, TABLE)
    first = keys.key_for("cust", "2026-12-01T10:00:00Z")
    assert first is not None and len(first) == 32
    assert keys.key_for("cust", "2026-12-01T11:00:00Z") == first  # the same key seals all their words
    keys.erase("cust", "2026-12-01T12:00:00Z")
    assert "key" not in stored(client, "cust")
    # An event made before the erasure, recorded after it, gets no key; one made after gets a new one
    assert keys.key_for("cust", "2026-12-01T11:30:00Z") is None
    assert keys.key_for("cust", "2026-12-01T12:00:00Z") is None  # the same second: on the safe side
    after = keys.key_for("cust", "2026-12-01T12:00:01Z")
    assert after is not None and after != first
    # An older erasure recorded later changes nothing; a newer one erases again
    keys.erase("cust", "2026-12-01T09:00:00Z")
    assert stored(client, "cust")["erasedAt"]["S"] == "2026-12-01T12:00:00Z" and "key" in stored(client, "cust")
    keys.erase("cust", "2026-12-01T13:00:00Z")
    assert "key" not in stored(client, "cust")


def test_an_erasure_between_reading_and_making_the_key_wins(moto_table: tuple[Any, str]) -> None:
    client, _ = moto_table
    eraser = DynamoDBCustomerKeys(client, TABLE)

    class ErasedRightAfterTheRead:
        """A client whose first read is answered as it was, then another consumer erases at once."""

        def __init__(self) -> None:
            self.reads = 0

        def get_item(self, **request: Any) -> Any:
            answer = client.get_item(**request)
            self.reads += 1
            if self.reads == 1:
                eraser.erase("racer", "2026-12-01T12:00:00Z")
            return answer

        def update_item(self, **request: Any) -> Any:
            return client.update_item(**request)

    racing = DynamoDBCustomerKeys(ErasedRightAfterTheRead(), TABLE)  # type: ignore[arg-type]
    # An event made before the erasure read "no key, no erasure", but must not make a key now
    assert racing.key_for("racer", "2026-12-01T11:00:00Z") is None
    assert "key" not in stored(client, "racer")
