"""The audit trail's history items in the shared table: one per event, written exactly once."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from services.common import keys
from services.common.audit import AuditEvent
from services.common.dynamodb import decode_cursor, encode_cursor, error_code, from_item, to_item

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
                    # Within one second, the stream's order decides.
                    "GSI1SK": f"{event.at}#{event.sequence.zfill(SEQUENCE_DIGITS)}",
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


def event_from(values: dict[str, Any]) -> AuditEvent:
    """A history item back into the event it stores."""
    fields = {name: values[name] for name in AuditEvent.model_fields if name in values and name != "entityType"}
    return AuditEvent.model_validate({**fields, "entityType": values["auditedType"]})


@dataclass
class DynamoDBAuditReader:
    client: DynamoDBClient
    table: str

    def booking_people(self, booking_id: str) -> tuple[str, str | None] | None:
        """(customer, provider owner) of a booking, or None if there is none."""
        found = self.client.get_item(TableName=self.table, Key=keys.booking_key(booking_id)).get("Item")
        if not found:
            return None
        values = from_item(dict(found))
        return values["customerId"], values.get("providerOwner")

    def history(self, partition: str, limit: int, cursor: str | None) -> tuple[list[AuditEvent], str | None]:
        request: dict[str, Any] = {
            "TableName": self.table,
            "KeyConditionExpression": "PK = :pk AND begins_with(SK, :history)",
            "ExpressionAttributeValues": {":pk": {"S": partition}, ":history": {"S": "HISTORY#"}},
            "Limit": limit,
        }
        if cursor:
            request["ExclusiveStartKey"] = decode_cursor(cursor, {"PK": partition, "SK": None})
        page = self.client.query(**request)
        return [event_from(from_item(dict(i))) for i in page["Items"]], encode_cursor(
            dict(page.get("LastEvaluatedKey") or {})
        )

    def events(
        self, entity_type: str, entity_id: str | None, start: str, end: str, limit: int, cursor: str | None
    ) -> tuple[list[AuditEvent], str | None]:
        """Events of one type in time order (GSI1), optionally of one entity."""
        values: dict[str, Any] = {":type": f"AUDIT#{entity_type}", ":lo": start, ":hi": end + "~"}
        request: dict[str, Any] = {
            "TableName": self.table,
            "IndexName": "GSI1",
            "KeyConditionExpression": "GSI1PK = :type AND GSI1SK BETWEEN :lo AND :hi",
            "Limit": limit,
        }
        if entity_id:
            request["FilterExpression"] = "entityId = :entity"
            values[":entity"] = entity_id
        request["ExpressionAttributeValues"] = to_item(values)
        if cursor:
            request["ExclusiveStartKey"] = decode_cursor(
                cursor, {"GSI1PK": f"AUDIT#{entity_type}", "GSI1SK": None, "PK": None, "SK": None}
            )
        page = self.client.query(**request)
        return [event_from(from_item(dict(i))) for i in page["Items"]], encode_cursor(
            dict(page.get("LastEvaluatedKey") or {})
        )
