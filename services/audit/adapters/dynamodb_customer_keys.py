"""Each customer's sealing key (domain/personal_data.py), kept in the audit table beside the trail.

One item per customer, `CUSTOMER#<customerId>` / `PERSONAL_DATA_KEY`: `key` (32 random bytes), made
by the first event that needs it, and `erasedAt`, the time of the customer's latest erasure. Erasing
deletes the key; an event from before `erasedAt` gets no key (it is recorded as `ERASED`), one from
after it gets a new key. Only the audit function's role can reach this table.
"""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError
from msgspec import Struct

from services.common.dynamodb import error_code
from services.common.tracing import traced

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


def key_item(customer_id: str) -> dict[str, Any]:
    return {"PK": {"S": f"CUSTOMER#{customer_id}"}, "SK": {"S": "PERSONAL_DATA_KEY"}}


class DynamoDBCustomerKeys(Struct):
    client: DynamoDBClient
    table: str

    @traced("audit.customer_key")
    def key_for(self, customer_id: str, at: str) -> bytes | None:
        """The key that seals the customer's words in an event made `at`; None if an erasure came later."""
        for _ in range(2):  # a concurrent consumer may make the key, or erase, between our read and our write
            found = self.client.get_item(TableName=self.table, Key=key_item(customer_id), ConsistentRead=True)
            item = found.get("Item", {})
            erased_at = item.get("erasedAt", {}).get("S")
            if erased_at is not None and at <= erased_at:
                return None
            if "key" in item:
                return bytes(item["key"]["B"])
            try:
                key = secrets.token_bytes(32)
                self.client.update_item(
                    TableName=self.table,
                    Key=key_item(customer_id),
                    UpdateExpression="SET #key = :key, entityType = :type",
                    # Not over a key made meanwhile, and not if an erasure at or after `at` came in
                    # between our read and this write: the event would be sealed with a key that
                    # outlives the erasure it precedes.
                    ConditionExpression=(
                        "attribute_not_exists(#key) AND (attribute_not_exists(erasedAt) OR erasedAt < :at)"
                    ),
                    ExpressionAttributeNames={"#key": "key"},
                    ExpressionAttributeValues={
                        ":key": {"B": key},
                        ":type": {"S": "PersonalDataKey"},
                        ":at": {"S": at},
                    },
                )
                return key
            except ClientError as error:
                if error_code(error) != "ConditionalCheckFailedException":
                    raise
        raise RuntimeError(f"customer {customer_id}: the sealing key changed twice while it was read")  # retried

    @traced("audit.customer_key.erase")
    def erase(self, customer_id: str, at: str) -> None:
        """Delete the customer's key, and remember the erasure's time.

        An erasure recorded after a later one changes nothing: the later one deleted every key made
        before it, and a key made since seals only events made after it, so after this one too."""
        try:
            self.client.update_item(
                TableName=self.table,
                Key=key_item(customer_id),
                UpdateExpression="REMOVE #key SET erasedAt = :at, entityType = :type",
                ConditionExpression="attribute_not_exists(erasedAt) OR erasedAt < :at",
                ExpressionAttributeNames={"#key": "key"},
                ExpressionAttributeValues={":at": {"S": at}, ":type": {"S": "PersonalDataKey"}},
            )
        except ClientError as error:
            if error_code(error) != "ConditionalCheckFailedException":
                raise
