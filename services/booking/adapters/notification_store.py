"""Notifications' storage (decision 0031): customers' contacts, the log of messages (each claimed
once), the booking as it stands, and each booking's one reminder schedule."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from services.booking.adapters.one_time_schedules import schedule_once
from services.booking.domain.notifications import BookingNow, Contact, Message, Sent
from services.common import keys
from services.common.auth import Attribution
from services.common.clock import iso_utc
from services.common.dynamodb import attribution, error_code, from_item, to_item, update_of

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_scheduler import EventBridgeSchedulerClient

LOG_KEPT = timedelta(days=90)  # a message's record, then TTL removes it
# A reminder plan, past its reminder (which is at most 14 days before its booking): a late event of
# the booking still finds it, then TTL removes it.
PLAN_KEPT = timedelta(days=30)
REMINDER_KEY = "reminder"  # the function's input from a reminder's schedule: {"reminder": {bookingId, version}}
OPTED_IN_KEY = "optedIn"  # … from an opt-in's: {"optedIn": {customerId}}


def contact_from(values: dict[str, Any]) -> Contact:
    return Contact(
        customer_id=values["customerId"],
        whatsapp=values.get("whatsapp"),
        opted_in=bool(values.get("optIn")),
        consent_at=values["consentAt"],
        consent_source=values["consentSource"],
        version=int(values.get("version", 0)),
    )


class DynamoDBContacts:
    def __init__(self, client: DynamoDBClient, table: str) -> None:
        self.client, self.table = client, table

    def contact(self, customer_id: str) -> Contact | None:
        found = self.client.get_item(TableName=self.table, Key=keys.contact_key(customer_id), ConsistentRead=True)
        values = from_item(dict(found["Item"])) if "Item" in found else None
        return contact_from(values) if values and "consentAt" in values else None

    def save_contact(self, contact: Contact, by: Attribution) -> Contact:
        values: dict[str, Any] = {
            "entityType": "CustomerContact",
            "customerId": contact.customer_id,
            "optIn": contact.opted_in,
            "consentAt": contact.consent_at,
            "consentSource": contact.consent_source,
            **attribution(by, contact.consent_at),
        }
        if contact.whatsapp is not None:
            values["whatsapp"] = contact.whatsapp
        removed = ("whatsapp",) if contact.whatsapp is None else ()
        answer = self.client.update_item(
            TableName=self.table,
            Key=keys.contact_key(contact.customer_id),
            ReturnValues="ALL_NEW",
            **update_of(values, remove=removed, bump_version=True),
        )
        return contact_from(from_item(dict(answer["Attributes"])))

    def erase_contact(self, customer_id: str, by: Attribution, now: datetime) -> None:
        """An erasure takes the number away, and the consent with it."""
        values = {"optIn": False, "consentAt": iso_utc(now), "consentSource": "personal data erased"}
        try:
            self.client.update_item(
                TableName=self.table,
                Key=keys.contact_key(customer_id),
                ConditionExpression="attribute_exists(whatsapp)",
                **update_of({**values, **attribution(by, iso_utc(now))}, remove=("whatsapp",), bump_version=True),
            )
        except ClientError as error:
            if error_code(error) != "ConditionalCheckFailedException":  # no number kept: nothing to erase
                raise


class DynamoDBNotifications:
    """The message log, and the booking as it stands (with its provider's and service's names)."""

    def __init__(self, client: DynamoDBClient, table: str) -> None:
        self.client, self.table = client, table

    def claim(self, message: Message) -> bool:
        now = datetime.now(UTC)
        item = {
            "entityType": "Notification",
            "bookingId": message.booking_id,
            "version": message.version,
            "kind": message.kind.value,
            "template": message.template,
            "status": "SENDING",
            "claimedAt": iso_utc(now),
            "expiresAt": int((now + LOG_KEPT).timestamp()),
        }
        try:
            self.client.put_item(
                TableName=self.table,
                Item={
                    **keys.notification_key(message.booking_id, message.version, message.kind.value),
                    **to_item(item),
                },
                ConditionExpression="attribute_not_exists(PK)",
            )
        except ClientError as error:
            if error_code(error) == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def record(self, message: Message, sent: Sent) -> None:
        values = {"status": sent.outcome.value, "reference": sent.reference, "error": sent.error}
        kept = {name: value for name, value in values.items() if value is not None}
        self.client.update_item(
            TableName=self.table,
            Key=keys.notification_key(message.booking_id, message.version, message.kind.value),
            **update_of({**kept, "doneAt": iso_utc(datetime.now(UTC))}),
        )

    def booking_now(self, booking_id: str) -> BookingNow | None:
        found = self.client.get_item(TableName=self.table, Key=keys.booking_key(booking_id), ConsistentRead=True)
        if "Item" not in found:
            return None
        booking = from_item(dict(found["Item"]))
        provider_id, service_id = booking["providerId"], booking["serviceId"]
        names = self.client.batch_get_item(
            RequestItems={
                self.table: {
                    "Keys": [keys.provider_key(provider_id), keys.service_key(provider_id, service_id)],
                    "ProjectionExpression": "SK, #name, reminderMinutesBefore",
                    "ExpressionAttributeNames": {"#name": "name"},
                }
            }
        )
        # Names and a lead time only: eventually consistent is enough (they change rarely, and a
        # reminder's lead time was fixed when it was planned). An unprocessed key falls back to defaults.
        config = {item["SK"]["S"]: from_item(dict(item)) for item in names["Responses"].get(self.table, [])}
        profile = config.get("CONFIG#PROFILE", {})
        service = config.get(f"CONFIG#SERVICE#{service_id}", {})
        return BookingNow(
            booking_id=booking_id,
            customer_id=booking["customerId"],
            status=booking["status"],
            version=int(booking["version"]),
            start=datetime.fromisoformat(booking["start"]),
            provider_name=str(profile.get("name", "")),
            service_name=str(service.get("name", "")),
            time_zone=booking["timeZone"],
            reminder_minutes_before=int(service.get("reminderMinutesBefore", 1440)),
        )

    def upcoming(self, customer_id: str, after: datetime) -> list[str]:
        request: dict[str, Any] = {
            "TableName": self.table,
            "IndexName": "GSI2",
            "KeyConditionExpression": "GSI2PK = :customer AND GSI2SK > :after",
            "FilterExpression": "#status = :confirmed",
            "ProjectionExpression": "bookingId",
            "ExpressionAttributeNames": {"#status": "status"},
            "ExpressionAttributeValues": {
                ":customer": {"S": keys.customer_bookings_partition(customer_id)},
                ":after": {"S": iso_utc(after)},
                ":confirmed": {"S": "CONFIRMED"},
            },
        }
        found: list[str] = []
        while True:
            page = self.client.query(**request)
            found += [str(item["bookingId"]["S"]) for item in page["Items"]]
            if "LastEvaluatedKey" not in page:
                return found
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def reminder_name(booking_id: str, version: int) -> str:
    """At most 64 characters of [0-9a-zA-Z-_.]: one name per booking version, so a move makes a new
    schedule and removes the old one (never an update, which could race the old one's firing)."""
    return f"reminder-{hashlib.sha256(f'{booking_id}/{version}'.encode()).hexdigest()[:40]}"


class ScheduledOptIns:
    """Asks the notifications function, through a one-time schedule in the reminders' group a minute
    from now, to plan an opted-in customer's reminders (`{"optedIn": {"customerId": …}}`). One
    schedule per customer and minute: saying yes twice in a minute asks once."""

    def __init__(
        self,
        scheduler: EventBridgeSchedulerClient,
        group: str,
        role_arn: str,
        target_arn: str,
        clock: Callable[[], datetime],
    ) -> None:
        self.scheduler, self.group, self.role_arn, self.target_arn, self.clock = (
            scheduler,
            group,
            role_arn,
            target_arn,
            clock,
        )

    def ask_to_plan(self, customer_id: str) -> None:
        at = (self.clock() + timedelta(minutes=1)).replace(second=0, microsecond=0) + timedelta(minutes=1)
        digest = hashlib.sha256(f"{customer_id}/{at.isoformat()}".encode()).hexdigest()[:40]
        schedule_once(
            self.scheduler,
            name=f"opted-in-{digest}",
            group=self.group,
            at=at,
            target_arn=self.target_arn,
            role_arn=self.role_arn,
            payload={OPTED_IN_KEY: {"customerId": customer_id}},
        )


class ScheduledReminders:
    """One reminder schedule per booking, tracked by `NOTIFICATION#<bookingId>` / `REMINDER`: the
    version it was planned for and its schedule's name. Only a newer version replaces it, so events
    of one booking arriving out of order never bring an old time back."""

    def __init__(
        self,
        client: DynamoDBClient,
        table: str,
        scheduler: EventBridgeSchedulerClient,
        group: str,
        role_arn: str,
        target_arn: str,
    ) -> None:
        self.client, self.table, self.scheduler = client, table, scheduler
        self.group, self.role_arn, self.target_arn = group, role_arn, target_arn

    def plan(self, booking_id: str, version: int, at: datetime | None) -> None:
        name = reminder_name(booking_id, version) if at is not None else None
        # Kept until well after the reminder (or, with none, for a month), then TTL removes it.
        kept_until = (at if at is not None else datetime.now(UTC)) + PLAN_KEPT
        values: dict[str, Any] = {
            "entityType": "ReminderPlan",
            "version": version,
            "expiresAt": int(kept_until.timestamp()),
        }
        if at is not None:
            values |= {"scheduleName": name, "remindAt": iso_utc(at)}
        removed = () if at is not None else ("scheduleName", "remindAt")
        try:
            answer = self.client.update_item(
                TableName=self.table,
                Key=keys.reminder_plan_key(booking_id),
                # The same version again (a redelivered event) plans again: its schedule is made once.
                ConditionExpression="attribute_not_exists(#a1) OR #a1 <= :a1",  # #a1: version
                ReturnValues="ALL_OLD",
                **update_of(values, remove=removed),
            )
        except ClientError as error:
            if error_code(error) == "ConditionalCheckFailedException":
                return  # a newer version of the booking is planned already
            raise
        if at is not None and name is not None:
            self._create(name, booking_id, version, at)
        old = from_item(dict(answer.get("Attributes") or {})).get("scheduleName")
        if old and old != name:
            try:
                self.scheduler.delete_schedule(Name=old, GroupName=self.group)
            except ClientError as error:
                if error_code(error) != "ResourceNotFoundException":  # fired and deleted itself already
                    raise

    def _create(self, name: str, booking_id: str, version: int, at: datetime) -> None:
        # The function checks the booking and claims the message: a second firing sends nothing.
        schedule_once(
            self.scheduler,
            name=name,
            group=self.group,
            at=at,
            target_arn=self.target_arn,
            role_arn=self.role_arn,
            payload={REMINDER_KEY: {"bookingId": booking_id, "version": version}},
        )
