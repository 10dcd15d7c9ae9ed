"""The booking service's storage in the shared table (keys in `services/common/keys.py`).

A booking commits in one transaction that (1) puts the booking, (2) appends its busy span to every
UTC day it touches, each conditioned on the day's version read with the calendar, (3) checks that
the provider's hours (`availabilityVersion`) and (4) the service (`version`) are unchanged, and
(5) puts the idempotency record, conditioned on the key being unused or expired. Two bookings
validated against the same day can never both commit: the second finds the day's version moved.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from services.booking.domain.models import Booking, BookingStatus, StoredResponse
from services.booking.domain.ports import AlreadyAnswered, ClaimOutcome, Committed, IdempotencyRecord, Stale
from services.common import keys
from services.common.auth import Attribution
from services.common.calendar import ProviderCalendar
from services.common.calendar_table import CalendarTable
from services.common.clock import iso_utc
from services.common.dynamodb import attribution, cancellation_reasons, error_code, from_item, to_item
from services.common.timezones import zone

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

BUSY_DAY_KEPT_AFTER = timedelta(days=2)  # then TTL removes a past day's busy time


def booking_key(booking_id: str) -> keys.Key:
    return {"PK": {"S": f"BOOKING#{booking_id}"}, "SK": {"S": "BOOKING"}}


def idempotency_key(caller: str, key: str) -> keys.Key:
    return {"PK": {"S": f"IDEMPOTENCY#{caller}#{key}"}, "SK": {"S": "IDEMPOTENCY"}}


def utc_days(start: datetime, end: datetime) -> list[date]:
    """The UTC days a span [start, end) touches."""
    first, last = start.astimezone(UTC).date(), (end - timedelta(microseconds=1)).astimezone(UTC).date()
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


def _booking_from(values: dict[str, Any]) -> Booking:
    zone_name = values["timeZone"]
    provider_zone = zone(zone_name)

    def local(text: str) -> datetime:
        return datetime.fromisoformat(text).astimezone(provider_zone)

    return Booking(
        booking_id=values["bookingId"],
        provider_id=values["providerId"],
        service_id=values["serviceId"],
        customer_id=values["customerId"],
        provider_owner=values.get("providerOwner"),
        time_zone=zone_name,
        start=local(values["start"]),
        end=local(values["end"]),
        busy_start=local(values["busyStart"]),
        busy_end=local(values["busyEnd"]),
        status=BookingStatus(values["status"]),
        version=values["version"],
        notes=values.get("notes"),
        created_at=values["createdAt"],
    )


@dataclass
class DynamoDBBookingStore:
    client: DynamoDBClient
    table: str

    def __post_init__(self) -> None:
        self.calendars = CalendarTable(self.client, self.table)

    def calendar(self, provider_id: str, until: datetime) -> ProviderCalendar | None:
        return self.calendars.calendar(provider_id, until, consistent=True)

    def claim(
        self, booking: Booking, calendar: ProviderCalendar, idempotency: IdempotencyRecord | None, by: Attribution
    ) -> ClaimOutcome:
        now = iso_utc(datetime.now(UTC))
        start, end = iso_utc(booking.start), iso_utc(booking.end)
        item = {
            **booking_key(booking.booking_id),
            **to_item(
                {
                    "GSI1PK": f"{keys.provider_pk(booking.provider_id)}#BOOKINGS",
                    "GSI1SK": f"{start}#{booking.booking_id}",
                    "GSI2PK": f"CUSTOMER#{booking.customer_id}",
                    "GSI2SK": f"{start}#{booking.booking_id}",
                    "entityType": "Booking",
                    "bookingId": booking.booking_id,
                    "providerId": booking.provider_id,
                    "serviceId": booking.service_id,
                    "customerId": booking.customer_id,
                    "providerOwner": booking.provider_owner,
                    "timeZone": booking.time_zone,
                    "start": start,
                    "end": end,
                    "busyStart": iso_utc(booking.busy_start),
                    "busyEnd": iso_utc(booking.busy_end),
                    "status": booking.status.value,
                    "version": booking.version,
                    "notes": booking.notes,
                    "createdAt": booking.created_at,
                    **attribution(by, now),
                }
            ),
        }
        writes: list[dict[str, Any]] = [
            {"Put": {"TableName": self.table, "Item": item, "ConditionExpression": "attribute_not_exists(PK)"}}
        ]
        span = {
            "bookingId": booking.booking_id,
            "serviceId": booking.service_id,
            "sessionStart": start,
            "start": iso_utc(booking.busy_start),
            "end": iso_utc(booking.busy_end),
        }
        for day in utc_days(booking.busy_start, booking.busy_end):
            writes.append(self._claim_day(booking.provider_id, day, span, calendar.busy_versions.get(day.isoformat())))
        writes.append(
            {
                "ConditionCheck": {
                    "TableName": self.table,
                    "Key": keys.provider_key(booking.provider_id),
                    "ConditionExpression": "availabilityVersion = :seen",
                    "ExpressionAttributeValues": {":seen": {"N": str(calendar.availability_version)}},
                }
            }
        )
        writes.append(
            {
                "ConditionCheck": {
                    "TableName": self.table,
                    "Key": keys.service_key(booking.provider_id, booking.service_id),
                    "ConditionExpression": "version = :seen",
                    "ExpressionAttributeValues": {":seen": {"N": str(calendar.services[booking.service_id].version)}},
                }
            }
        )
        if idempotency is not None:
            writes.append(self._remember(by.actor, idempotency, now))
        try:
            self.client.transact_write_items(TransactItems=writes)  # type: ignore[arg-type]
        except ClientError as error:
            return self._outcome(error, idempotency is not None)
        return Committed()

    def _claim_day(self, provider_id: str, day: date, span: dict[str, str], seen: int | None) -> dict[str, Any]:
        expires = datetime.combine(day, datetime.min.time(), UTC) + timedelta(days=1) + BUSY_DAY_KEPT_AFTER
        update: dict[str, Any] = {
            "TableName": self.table,
            "Key": keys.busy_day_key(provider_id, day),
            "UpdateExpression": "SET entityType = :type, #day = :day, expiresAt = :expires, "
            "spans = list_append(if_not_exists(spans, :none), :span) ADD version :one",
            "ExpressionAttributeNames": {"#day": "day"},
            "ExpressionAttributeValues": to_item(
                {
                    ":type": "BusyDay",
                    ":day": day.isoformat(),
                    ":expires": int(expires.timestamp()),
                    ":none": [],
                    ":span": [span],
                    ":one": 1,
                }
            ),
        }
        if seen is None:
            update["ConditionExpression"] = "attribute_not_exists(PK)"
        else:
            update["ConditionExpression"] = "version = :seen"
            update["ExpressionAttributeValues"][":seen"] = {"N": str(seen)}
        return {"Update": update}

    def _remember(self, caller: str, record: IdempotencyRecord, now: str) -> dict[str, Any]:
        values = {
            "entityType": "IdempotencyRecord",
            "requestHash": record.response.request_hash,
            "statusCode": record.response.status,
            "body": json.dumps(record.response.body),
            "createdAt": now,
            "expiresAt": int(record.expires_at.timestamp()),
        }
        return {
            "Put": {
                "TableName": self.table,
                "Item": {**idempotency_key(caller, record.key), **to_item(values)},
                # An expired key is free again, judged by its own timestamp: TTL deletes late.
                "ConditionExpression": "attribute_not_exists(PK) OR expiresAt < :now",
                "ExpressionAttributeValues": {":now": {"N": str(int(datetime.now(UTC).timestamp()))}},
                "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
            }
        }

    @staticmethod
    def _outcome(error: ClientError, has_key: bool) -> ClaimOutcome:
        code = error_code(error)
        if code == "TransactionConflictException":
            return Stale()  # another transaction was touching the same items: read and decide again
        if code != "TransactionCanceledException":
            raise error
        reasons = cancellation_reasons(error)
        last = reasons[-1] if reasons else {}
        if has_key and last.get("Code") == "ConditionalCheckFailed" and "Item" in last:
            stored = from_item(last["Item"])
            return AlreadyAnswered(
                StoredResponse(stored["requestHash"], stored["statusCode"], json.loads(stored["body"]))
            )
        if any(reason.get("Code") in {"ConditionalCheckFailed", "TransactionConflict"} for reason in reasons):
            return Stale()
        raise error

    def stored_response(self, caller: str, key: str, now: datetime) -> StoredResponse | None:
        found = self.client.get_item(TableName=self.table, Key=idempotency_key(caller, key), ConsistentRead=True)
        if "Item" not in found:
            return None
        stored = from_item(dict(found["Item"]))
        if stored["expiresAt"] < now.timestamp():
            return None
        return StoredResponse(stored["requestHash"], stored["statusCode"], json.loads(stored["body"]))

    def get_booking(self, booking_id: str) -> Booking | None:
        found = self.client.get_item(TableName=self.table, Key=booking_key(booking_id)).get("Item")
        return _booking_from(from_item(dict(found))) if found else None
