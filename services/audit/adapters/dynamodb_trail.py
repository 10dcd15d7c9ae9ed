"""The audit trail's history items in the shared table: one per event, written exactly once."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

from services.common import keys
from services.common.audit import AuditEvent
from services.common.dynamodb import error_code, to_item

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

SEQUENCE_DIGITS = 40  # stream sequence numbers are decimal strings of up to 40 digits: pad to sort them


def entity_partition(event: AuditEvent) -> str:
    """History lives beside the entity: a booking's in its partition, the rest in the provider's."""
    if event.entityType == "Booking":
        return f"BOOKING#{event.entityId}"
    return keys.provider_pk(event.entityId.split("#", 1)[0] if event.entityType == "Override" else event.entityId)


@dataclass
class DynamoDBAuditTrail:
    client: DynamoDBClient
    table: str

    def record(self, event: AuditEvent) -> bool:
        """Store the event; False when it was already stored (a redelivered stream record)."""
        item = {
            "PK": {"S": entity_partition(event)},
            "SK": {"S": f"HISTORY#{event.sequence.zfill(SEQUENCE_DIGITS)}"},
            **to_item(
                {
                    "GSI1PK": f"AUDIT#{event.entityType}",
                    "GSI1SK": f"{event.at}#{event.eventId}",
                    **event.model_dump(mode="json"),
                    # Last, so the event's own "entityType" cannot hide that this item is a record.
                    "entityType": "AuditRecord",
                    "auditedType": event.entityType,
                }
            ),
        }
        try:
            # The key comes from the stream record, so a redelivery finds its own item: exactly once.
            self.client.put_item(TableName=self.table, Item=item, ConditionExpression="attribute_not_exists(PK)")
        except ClientError as error:
            if error_code(error) == "ConditionalCheckFailedException":
                return False
            raise
        return True
