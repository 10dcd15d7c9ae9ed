"""The audit trail's history items in the audit table: one per event, written exactly once, each the
next link of its entity's hash chain (whose head is an item of its own).

The audit table is the trail's alone: only the audit function's role may write it (the booking and
availability roles have no grant on it), so the trail cannot be forged by the services it records."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError
from msgspec import Struct

from services.audit.domain.chain import GENESIS, ArchivedEvent, ChainHead, link
from services.common import keys
from services.common.audit import AuditEvent
from services.common.dynamodb import (
    cancellation_codes,
    decode_cursor,
    encode_cursor,
    error_code,
    from_item,
    to_item,
)
from services.common.tracing import traced

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

SEQUENCE_DIGITS = 40  # stream sequence numbers are decimal strings of up to 40 digits: pad to sort them


def entity_partition(event: AuditEvent) -> str:
    """An entity's history has the partition the entity has in the shared table: a booking's (so one
    Query reads a booking's whole history), a series', a hold's, a waitlist entry's, a customer's, an external block's,
    else its provider's."""
    if event.entityType == "Booking":
        return f"BOOKING#{event.entityId}"
    if event.entityType == "Series":
        return f"SERIES#{event.entityId}"
    if event.entityType == "Hold":
        return f"HOLD#{event.entityId}"
    if event.entityType == "WaitlistEntry":
        return f"WAITLIST#{event.entityId}"
    if event.entityType == "Customer":
        return f"CUSTOMER#{event.entityId}"
    if event.entityType == "ExternalBlock":
        return f"EXTERNAL#{event.entityId}"
    return keys.provider_pk(event.entityId.split("#", 1)[0] if event.entityType == "Override" else event.entityId)


class ChainContentionError(Exception):
    """Others kept appending to the same chain; the stream record fails and is delivered again."""


CHAIN_ATTEMPTS = 10  # a concurrent append to the same chain is rare and short; beyond this, the record is retried


def chain_key(event: AuditEvent) -> dict[str, Any]:
    """The item that holds the head of an entity's chain: its length and last hash."""
    return {"PK": {"S": entity_partition(event)}, "SK": {"S": f"CHAIN#{event.entityType}#{event.entityId}"}}


def history_key(event: AuditEvent) -> dict[str, Any]:
    return {"PK": {"S": entity_partition(event)}, "SK": {"S": f"HISTORY#{event.sequence.zfill(SEQUENCE_DIGITS)}"}}


class DynamoDBAuditTrail(Struct):
    client: DynamoDBClient
    table: str

    @traced("audit.trail.record")
    def record(self, event: AuditEvent) -> tuple[ArchivedEvent, bool]:
        """Store the event as the next link of its entity's chain, once: (the stored event, whether this
        call stored it). A redelivered stream record finds its history item and gets it back unchanged."""
        for _ in range(CHAIN_ATTEMPTS):
            head = self.client.get_item(TableName=self.table, Key=chain_key(event), ConsistentRead=True).get("Item")
            length = int(head["chainLength"]["N"]) if head else 0
            archived = link(event, length + 1, head["hash"]["S"] if head else GENESIS)
            try:
                self.client.transact_write_items(TransactItems=self._append(archived, length))
                return archived, True
            except ClientError as error:
                if error_code(error) != "TransactionCanceledException":
                    raise
                history_taken, head_moved = (code == "ConditionalCheckFailed" for code in cancellation_codes(error))
                if history_taken:
                    return self._stored(event), False
                if not head_moved:
                    raise
        raise ChainContentionError(f"{event.entityType} {event.entityId}: {CHAIN_ATTEMPTS} concurrent appends")

    def _append(self, archived: ArchivedEvent, length: int) -> list[Any]:
        """One transaction: the history item, only if the stream record is new (exactly once), and the
        chain head, only if no one appended since we read it (one order per chain)."""
        history_item = {
            **history_key(archived),
            **to_item(
                {
                    "GSI1PK": f"AUDIT#{archived.entityType}",
                    # Within one second, the stream's order decides.
                    "GSI1SK": f"{archived.at}#{archived.sequence.zfill(SEQUENCE_DIGITS)}",
                    **archived.model_dump(mode="json"),
                    # Last, so the event's own "entityType" cannot hide that this item is a record.
                    "entityType": "AuditRecord",
                    "auditedType": archived.entityType,
                }
            ),
        }
        head_item = {
            **chain_key(archived),
            **to_item(
                {
                    "entityType": "AuditChain",
                    "chainLength": archived.chainIndex,
                    "hash": archived.hash,
                    "lastEventId": archived.eventId,
                    "lastAt": archived.at,
                }
            ),
        }
        head_unchanged = (
            {"ConditionExpression": "attribute_not_exists(PK)"}
            if length == 0
            else {
                "ConditionExpression": "chainLength = :length",
                "ExpressionAttributeValues": {":length": {"N": str(length)}},
            }
        )
        return [
            {"Put": {"TableName": self.table, "Item": history_item, "ConditionExpression": "attribute_not_exists(PK)"}},
            {"Put": {"TableName": self.table, "Item": head_item, **head_unchanged}},
        ]

    def _stored(self, event: AuditEvent) -> ArchivedEvent:
        item = self.client.get_item(TableName=self.table, Key=history_key(event), ConsistentRead=True)["Item"]
        return archived_from(from_item(dict(item)))


def event_from(values: dict[str, Any]) -> AuditEvent:
    """A history item back into the event it stores."""
    fields = {name: values[name] for name in AuditEvent.model_fields if name in values and name != "entityType"}
    return AuditEvent.model_validate({**fields, "entityType": values["auditedType"]})


def archived_from(values: dict[str, Any]) -> ArchivedEvent:
    """A history item back into the event it stores, with its place in the chain."""
    fields = {name: values[name] for name in ArchivedEvent.model_fields if name in values and name != "entityType"}
    return ArchivedEvent.model_validate({**fields, "entityType": values["auditedType"]})


class DynamoDBBookingPeople(Struct):
    """A booking's people, read from the shared table (which the audit function only reads)."""

    client: DynamoDBClient
    table: str

    def booking_people(self, booking_id: str) -> tuple[str, str | None] | None:
        """(customer, provider owner) of a booking, or None if there is none."""
        # Strongly consistent, like the booking service's own read: a booking just made has its people.
        read = self.client.get_item(TableName=self.table, Key=keys.booking_key(booking_id), ConsistentRead=True)
        found = read.get("Item")
        if not found:
            return None
        values = from_item(dict(found))
        return values["customerId"], values.get("providerOwner")


class DynamoDBAuditReader(Struct):
    """The trail as the audit table holds it."""

    client: DynamoDBClient
    table: str

    def history(self, partition: str, limit: int, cursor: str | None) -> tuple[list[AuditEvent], str | None]:
        request: dict[str, Any] = {
            "TableName": self.table,
            "KeyConditionExpression": "PK = :pk AND begins_with(SK, :history)",
            "ExpressionAttributeValues": {":pk": {"S": partition}, ":history": {"S": "HISTORY#"}},
            "Limit": limit,
            # Strongly consistent: an entity's history, once recorded, is whole in every read of it.
            "ConsistentRead": True,
        }
        if cursor:
            request["ExclusiveStartKey"] = decode_cursor(
                cursor, request, {"PK": partition, "SK": None}, sort_prefix=("SK", "HISTORY#")
            )
        page = self.client.query(**request)
        return [event_from(from_item(dict(i))) for i in page["Items"]], encode_cursor(
            dict(page.get("LastEvaluatedKey") or {}), request
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
                cursor,
                request,
                {"GSI1PK": f"AUDIT#{entity_type}", "GSI1SK": None, "PK": None, "SK": None},
                sort_between=("GSI1SK", start, end + "~"),
            )
        page = self.client.query(**request)
        return [event_from(from_item(dict(i))) for i in page["Items"]], encode_cursor(
            dict(page.get("LastEvaluatedKey") or {}), request
        )

    def chain_heads(self) -> Iterator[ChainHead]:
        """Every chain head: they sit in their entities' partitions, so the verifier scans for them."""
        for item in self._scan("AuditChain"):
            _, entity_type, entity_id = str(item["SK"]).split("#", 2)
            yield ChainHead(entity_type, entity_id, item["chainLength"], item["hash"], item.get("lastAt"))

    def all_history(self) -> Iterator[ArchivedEvent]:
        """Every history item, as the table holds it, not as an index (which may lag) last showed it."""
        yield from map(archived_from, self._scan("AuditRecord"))

    def _scan(self, entity_type: str) -> Iterator[dict[str, Any]]:
        """Every item of one kind: a strongly consistent Scan of the audit table, which holds only the
        trail (an operator's occasional full read, `make audit-verify`)."""
        request: dict[str, Any] = {
            "TableName": self.table,
            "FilterExpression": "entityType = :kind",
            "ExpressionAttributeValues": {":kind": {"S": entity_type}},
            "ConsistentRead": True,
        }
        while True:
            page = self.client.scan(**request)
            yield from (from_item(dict(item)) for item in page["Items"])
            if "LastEvaluatedKey" not in page:
                return
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]
