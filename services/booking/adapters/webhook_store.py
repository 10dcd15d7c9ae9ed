"""Webhook subscriptions and their delivery log in the table (decision 0029, docs/data-model.md).

- A subscription: `WEBHOOKS` / `<scope><webhookId>` (scope `ALL#` or `PROVIDER#<id>#`), and a
  pointer `WEBHOOK#<id>` / `SUBSCRIPTION` naming its provider, put and deleted together.
- A delivery: `WEBHOOK#<id>` / `DELIVERY#<message id>`, put once per event (the message id is the
  event's), with a TTL 30 days after its last change.

Neither is a domain event nor in the audit trail's filter: their `entityType`s are their own.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError
from msgspec.structs import replace

from services.booking.domain.deliveries import KEPT_FOR, Delivery, DeliveryStatus
from services.booking.domain.ports import BookingStore
from services.booking.domain.webhooks import MOST_SUBSCRIPTIONS, SealedSecret, Subscription, SubscriptionStatus
from services.common import keys
from services.common.dynamodb import decode_cursor, encode_cursor, error_code, from_item, to_item
from services.common.errors import BusyError

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


def _expires(changed_at: str) -> int:
    return int((datetime.fromisoformat(changed_at.replace("Z", "+00:00")) + KEPT_FOR).timestamp())


def _subscription(values: dict[str, Any]) -> Subscription:
    return Subscription(
        webhook_id=values["webhookId"],
        url=values["url"],
        events=tuple(values["events"]),
        provider_id=values.get("providerId"),
        secrets=tuple(
            SealedSecret(
                bytes(secret["sealed"]),
                secret["createdAt"],
                secret.get("retiresAt"),
            )
            for secret in values["secrets"]
        ),
        created_at=values["createdAt"],
        created_by=values["createdBy"],
        status=SubscriptionStatus(values["status"]),
        disabled_at=values.get("disabledAt"),
        disabled_reason=values.get("disabledReason"),
        version=values["version"],
        admin_made=bool(values.get("adminMade", False)),
    )


def _secrets(secrets: tuple[SealedSecret, ...]) -> list[dict[str, Any]]:
    return [
        {"sealed": secret.sealed, "createdAt": secret.created_at}
        | ({"retiresAt": secret.retires_at} if secret.retires_at else {})
        for secret in secrets
    ]


_DELIVERY_FIELDS = {
    "status": "status",
    "attempts": "attempts",
    "last_attempt": "lastAttempt",
    "next_attempt_at": "nextAttemptAt",
    "last_attempt_at": "lastAttemptAt",
    "last_status": "lastStatus",
    "last_error": "lastError",
    "last_response": "lastResponse",
    "last_duration_ms": "lastDurationMs",
    "delivered_at": "deliveredAt",
}


def _delivery(values: dict[str, Any]) -> Delivery:
    return Delivery(
        webhook_id=values["webhookId"],
        delivery_id=values["deliveryId"],
        event_id=values["eventId"],
        event_type=values["eventType"],
        body=values["body"],
        created_at=values["createdAt"],
        status=DeliveryStatus(values["status"]),
        attempts=values["attempts"],
        last_attempt=values["lastAttempt"],
        next_attempt_at=values.get("nextAttemptAt"),
        last_attempt_at=values.get("lastAttemptAt"),
        last_status=values.get("lastStatus"),
        last_error=values.get("lastError"),
        last_response=values.get("lastResponse"),
        last_duration_ms=values.get("lastDurationMs"),
        delivered_at=values.get("deliveredAt"),
        trace_id=values.get("traceId", ""),
        span_id=values.get("spanId", ""),
    )


class DynamoDBWebhookStore:
    def __init__(self, client: DynamoDBClient, table: str) -> None:
        self.client, self.table = client, table

    # Subscriptions

    def add_subscription(self, subscription: Subscription) -> bool:
        scope = keys.webhook_scope(subscription.provider_id)
        counted = self.client.query(
            TableName=self.table,
            KeyConditionExpression="PK = :pk AND begins_with(SK, :scope)",
            ExpressionAttributeValues=to_item({":pk": keys.WEBHOOKS_PK, ":scope": scope}),
            Select="COUNT",
            Limit=MOST_SUBSCRIPTIONS,
        )
        if counted["Count"] >= MOST_SUBSCRIPTIONS:
            return False
        item = {
            "entityType": "WebhookSubscription",
            "webhookId": subscription.webhook_id,
            "url": subscription.url,
            "events": list(subscription.events),
            "providerId": subscription.provider_id,
            "secrets": _secrets(subscription.secrets),
            "status": subscription.status.value,
            "createdAt": subscription.created_at,
            "createdBy": subscription.created_by,
            "version": subscription.version,
            "adminMade": subscription.admin_made,
        }
        pointer = {"entityType": "WebhookPointer", "webhookId": subscription.webhook_id}
        self._transact(
            [
                {
                    "Put": {
                        "TableName": self.table,
                        "Item": keys.webhook_key(subscription.provider_id, subscription.webhook_id) | to_item(item),
                        "ConditionExpression": "attribute_not_exists(PK)",
                    }
                },
                {
                    "Put": {
                        "TableName": self.table,
                        "Item": keys.webhook_pointer_key(subscription.webhook_id)
                        | to_item(pointer | {"providerId": subscription.provider_id}),
                        "ConditionExpression": "attribute_not_exists(PK)",
                    }
                },
            ]
        )
        return True

    def _main_key(self, webhook_id: str) -> keys.Key | None:
        found = self.client.get_item(TableName=self.table, Key=keys.webhook_pointer_key(webhook_id))
        if "Item" not in found:
            return None
        return keys.webhook_key(from_item(found["Item"]).get("providerId"), webhook_id)

    def subscription(self, webhook_id: str) -> Subscription | None:
        key = self._main_key(webhook_id)
        if key is None:
            return None
        found = self.client.get_item(TableName=self.table, Key=key, ConsistentRead=True)
        return _subscription(from_item(found["Item"])) if "Item" in found else None

    def _scope(self, prefix: str) -> list[Subscription]:
        request: dict[str, Any] = {
            "TableName": self.table,
            "KeyConditionExpression": "PK = :pk AND begins_with(SK, :scope)",
            "ExpressionAttributeValues": to_item({":pk": keys.WEBHOOKS_PK, ":scope": prefix}),
        }
        found: list[Subscription] = []
        while True:
            page = self.client.query(**request)
            found += [_subscription(from_item(item)) for item in page.get("Items", [])]
            if "LastEvaluatedKey" not in page:
                return found
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def subscriptions(self) -> list[Subscription]:
        return self._scope(keys.WEBHOOKS_ALL) + self._scope(keys.PROVIDER_PREFIX)

    def subscribers(self, provider_id: str | None) -> list[Subscription]:
        own = self._scope(keys.webhook_scope(provider_id)) if provider_id is not None else []
        return self._scope(keys.WEBHOOKS_ALL) + own

    def replace_secrets(self, subscription: Subscription, secrets: tuple[SealedSecret, ...]) -> bool:
        try:
            self.client.update_item(
                TableName=self.table,
                Key=keys.webhook_key(subscription.provider_id, subscription.webhook_id),
                UpdateExpression="SET secrets = :secrets, version = :next",
                ConditionExpression="version = :version",
                ExpressionAttributeValues=to_item(
                    {
                        ":secrets": _secrets(secrets),
                        ":next": subscription.version + 1,
                        ":version": subscription.version,
                    }
                ),
            )
        except ClientError as error:
            if error_code(error) == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def remove_subscription(self, subscription: Subscription) -> None:
        webhook_id = subscription.webhook_id
        self._transact(
            [
                {
                    "Delete": {
                        "TableName": self.table,
                        "Key": keys.webhook_key(subscription.provider_id, subscription.webhook_id),
                    }
                },
                {"Delete": {"TableName": self.table, "Key": keys.webhook_pointer_key(webhook_id)}},
            ]
        )

    def disable(self, subscription: Subscription, at: str, reason: str) -> None:
        try:
            self.client.update_item(
                TableName=self.table,
                Key=keys.webhook_key(subscription.provider_id, subscription.webhook_id),
                UpdateExpression=(
                    "SET #status = :disabled, disabledAt = :at, disabledReason = :reason, version = version + :one"
                ),
                ConditionExpression="attribute_exists(PK)",
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues=to_item(
                    {":disabled": SubscriptionStatus.DISABLED.value, ":at": at, ":reason": reason, ":one": 1}
                ),
            )
        except ClientError as error:
            if error_code(error) != "ConditionalCheckFailedException":  # deleted meanwhile: nothing to disable
                raise

    def _transact(self, writes: list[dict[str, Any]]) -> None:
        try:
            self.client.transact_write_items(TransactItems=writes, ClientRequestToken=str(uuid.uuid4()))  # type: ignore[arg-type]
        except ClientError as error:
            if error_code(error) in {"TransactionCanceledException", "TransactionConflictException"}:
                raise BusyError("The table is busy right now; retry shortly.") from error
            raise

    # Deliveries

    def add_delivery(self, delivery: Delivery) -> bool:
        values = {
            "entityType": "WebhookDelivery",
            "webhookId": delivery.webhook_id,
            "deliveryId": delivery.delivery_id,
            "eventId": delivery.event_id,
            "eventType": delivery.event_type,
            "body": delivery.body,
            "createdAt": delivery.created_at,
            "traceId": delivery.trace_id or None,
            "spanId": delivery.span_id or None,
            "expiresAt": _expires(delivery.created_at),
            **{name: getattr(delivery, field) for field, name in _DELIVERY_FIELDS.items()},
        }
        try:
            self.client.put_item(
                TableName=self.table,
                Item=keys.delivery_key(delivery.webhook_id, delivery.delivery_id) | to_item(values),
                ConditionExpression="attribute_not_exists(PK)",
            )
        except ClientError as error:
            if error_code(error) == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def delivery(self, webhook_id: str, delivery_id: str) -> Delivery | None:
        found = self.client.get_item(
            TableName=self.table, Key=keys.delivery_key(webhook_id, delivery_id), ConsistentRead=True
        )
        return _delivery(from_item(found["Item"])) if "Item" in found else None

    def deliveries(self, webhook_id: str, limit: int, cursor: str | None) -> tuple[list[Delivery], str | None]:
        pk = f"WEBHOOK#{webhook_id}"
        request: dict[str, Any] = {
            "TableName": self.table,
            "KeyConditionExpression": "PK = :pk AND begins_with(SK, :deliveries)",
            "ExpressionAttributeValues": to_item({":pk": pk, ":deliveries": keys.DELIVERY_PREFIX}),
            "ScanIndexForward": False,
            "Limit": limit,
        }
        if cursor is not None:
            request["ExclusiveStartKey"] = decode_cursor(
                cursor, request, {"PK": pk, "SK": None}, sort_prefix=("SK", keys.DELIVERY_PREFIX)
            )
        page = self.client.query(**request)
        found = [_delivery(from_item(item)) for item in page.get("Items", [])]
        return found, encode_cursor(page.get("LastEvaluatedKey"), request)

    def claim_attempt(self, delivery: Delivery, attempt: int, at: str, next_due: str) -> bool:
        return self._update(
            delivery,
            "SET attempts = :attempt, lastAttemptAt = :at, nextAttemptAt = :due",
            "attempts = :before AND #status = :pending",
            {
                ":attempt": attempt,
                ":at": at,
                ":due": next_due,
                ":before": attempt - 1,
                ":pending": DeliveryStatus.PENDING.value,
            },
        )

    def record(self, before: Delivery, after: Delivery) -> bool:
        # Every field of the outcome, whatever it was: the claim changed some (the next attempt's time).
        changed = {name: getattr(after, field) for field, name in _DELIVERY_FIELDS.items() if name != "attempts"}
        changed["expiresAt"] = _expires(after.last_attempt_at or after.created_at)
        sets = {name: value for name, value in changed.items() if value is not None}
        removes = [name for name, value in changed.items() if value is None]
        names = {f"#a{i}": name for i, name in enumerate([*sets, *removes])}
        by_name = {name: alias for alias, name in names.items()}
        expression = "SET " + ", ".join(f"{by_name[name]} = :v{i}" for i, name in enumerate(sets))
        if removes:
            expression += " REMOVE " + ", ".join(by_name[name] for name in removes)
        return self._update(
            replace(before, attempts=after.attempts),
            expression,
            "attempts = :attempts",
            {":attempts": after.attempts} | {f":v{i}": value for i, value in enumerate(sets.values())},
            names,
        )

    def reopen(self, delivery: Delivery, last_attempt: int, due: str) -> bool:
        return self._update(
            delivery,
            "SET #status = :pending, lastAttempt = :last, nextAttemptAt = :due",
            "#status = :was AND attempts = :attempts",
            {
                ":pending": DeliveryStatus.PENDING.value,
                ":last": last_attempt,
                ":due": due,
                ":was": delivery.status.value,
                ":attempts": delivery.attempts,
            },
        )

    def _update(
        self,
        delivery: Delivery,
        update: str,
        condition: str,
        values: dict[str, Any],
        names: dict[str, str] | None = None,
    ) -> bool:
        aliases = dict(names or {})
        if "#status" in update or "#status" in condition:
            aliases["#status"] = "status"
        request: dict[str, Any] = {
            "TableName": self.table,
            "Key": keys.delivery_key(delivery.webhook_id, delivery.delivery_id),
            "UpdateExpression": update,
            "ConditionExpression": condition,
            "ExpressionAttributeValues": to_item(values),
        }
        if aliases:
            request["ExpressionAttributeNames"] = aliases
        try:
            self.client.update_item(**request)
        except ClientError as error:
            if error_code(error) == "ConditionalCheckFailedException":
                return False
            raise
        return True


class ProviderOwners:
    """Whose a provider is, from its configuration (the `Owners` webhooks authorize with)."""

    def __init__(self, store: BookingStore) -> None:
        self.store = store

    def owner_of(self, provider_id: str) -> str | None:
        calendar = self.store.configuration(provider_id)
        return calendar.provider.owner_sub if calendar is not None else None
