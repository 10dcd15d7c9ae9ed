"""The availability service's storage in the shared table (keys in `services/common/keys.py`)."""

from __future__ import annotations

from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from services.availability.domain.use_cases import OverrideNotFoundError, ProviderNotFoundError
from services.common import approval, keys
from services.common.auth import Attribution
from services.common.availability import WEEKDAYS, LocalInterval
from services.common.calendar import Override, Provider, ProviderCalendar, Service, WeeklySchedule
from services.common.calendar_table import (
    CalendarTable,
    intervals_out,
    override_from,
    provider_from,
    service_from,
)
from services.common.clock import Clock, iso_utc
from services.common.dynamodb import (
    Item,
    attribution,
    cancellation_codes,
    decode_cursor,
    encode_cursor,
    error_code,
    from_item,
    to_item,
)
from services.common.errors import BusyError, PreconditionFailedError

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


BLIND_WRITE_ATTEMPTS = 10  # a write without If-Match retries this often while another keeps winning


class DynamoDBProviderStore:
    def __init__(self, client: DynamoDBClient, table: str, clock: Clock) -> None:
        self.client, self.table, self.clock = client, table, clock
        self.calendars = CalendarTable(client, table)

    def create_provider(self, provider: Provider, by: Attribution) -> None:
        item = {
            **keys.provider_key(provider.provider_id),
            **keys.provider_list_keys(provider.provider_id, provider.name),
            **to_item(
                {
                    "entityType": "Provider",
                    "providerId": provider.provider_id,
                    "name": provider.name,
                    "timeZone": provider.time_zone,
                    "ownerSub": provider.owner_sub,
                    "maxBookingsPerDay": provider.max_bookings_per_day,
                    "version": provider.version,
                    "availabilityVersion": 0,
                    "createdAt": provider.created_at,
                    **attribution(by, provider.created_at),
                }
            ),
        }
        # The id is new, so the condition only guards against the impossible; it costs nothing.
        self.client.put_item(TableName=self.table, Item=item, ConditionExpression="attribute_not_exists(PK)")

    def limit_counts(self, provider_id: str, counters: list[str]) -> dict[str, int]:
        counts = {}
        for counter in counters:  # at most three
            key = keys.limit_counter_key(provider_id, counter)
            found = self.client.get_item(TableName=self.table, Key=key, ConsistentRead=True).get("Item", {})
            counts[counter] = int(found["count"]["N"]) if "count" in found else 0
        return counts

    def lapsed_counts(self, provider_id: str, start: datetime, end: datetime, now: datetime) -> dict[str, int]:
        counted: dict[str, int] = {}
        for item in approval.lapsed_approvals(self.client, self.table, provider_id, (start, end), now):
            for key in item.get("limitCounters", {}).get("M", {}):
                counted[key] = counted.get(key, 0) + 1
        return counted

    def get_provider(self, provider_id: str) -> Provider | None:
        # Strongly consistent: a provider just created is found by its creator's next request.
        read = self.client.get_item(TableName=self.table, Key=keys.provider_key(provider_id), ConsistentRead=True)
        found = read.get("Item")
        return provider_from(from_item(dict(found))) if found else None

    def list_providers(self, limit: int, cursor: str | None) -> tuple[list[Provider], str | None]:
        request: dict[str, Any] = {
            "TableName": self.table,
            "IndexName": keys.PROVIDERS_INDEX,
            "KeyConditionExpression": "GSI1PK = :all",
            "ExpressionAttributeValues": {":all": {"S": keys.ALL_PROVIDERS}},
            "Limit": limit,
        }
        if cursor:
            request["ExclusiveStartKey"] = decode_cursor(
                cursor, request, {"GSI1PK": keys.ALL_PROVIDERS, "GSI1SK": None, "PK": None, "SK": keys.PROFILE_SK}
            )
        page = self.client.query(**request)
        providers = [provider_from(from_item(dict(item))) for item in page["Items"]]
        return providers, encode_cursor(dict(page.get("LastEvaluatedKey") or {}), request)

    def _bump_availability(self, provider_id: str, by: Attribution, change: str, now: str) -> dict[str, Any]:
        """The transaction item that moves the provider's availability version on every change of hours.

        Bookings check this version in their own transaction (issue 4); the change note and the
        attribution also tell the audit trail who removed an override (a delete carries neither).
        """
        return {
            "Update": {
                "TableName": self.table,
                "Key": keys.provider_key(provider_id),
                "UpdateExpression": "ADD availabilityVersion :one SET lastChange = :change, actor = :actor, "
                "requestId = :request, traceId = :trace, spanId = :span, updatedAt = :now",
                "ConditionExpression": "attribute_exists(PK)",
                "ExpressionAttributeValues": to_item(
                    {
                        ":one": 1,
                        ":change": change,
                        ":actor": by.actor,
                        ":request": by.request_id,
                        ":trace": by.trace_id,
                        ":span": by.span_id,
                        ":now": now,
                    }
                ),
            }
        }

    def _versioned_write(
        self, provider_id: str, write: dict[str, Any], expected_version: int | None, by: Attribution, change: str
    ) -> None:
        now = iso_utc(self.clock())
        try:
            self.client.transact_write_items(
                TransactItems=[write, self._bump_availability(provider_id, by, change, now)]  # type: ignore[list-item]
            )
        except ClientError as error:
            if error_code(error) != "TransactionCanceledException":
                raise
            codes = cancellation_codes(error)
            if codes[1] == "ConditionalCheckFailed":
                raise ProviderNotFoundError(provider_id) from error
            if codes[0] == "ConditionalCheckFailed":
                raise PreconditionFailedError(
                    f"Version {expected_version} is not the current version; read it again and retry."
                    if expected_version is not None
                    else "The item does not exist."
                ) from error
            raise

    def _upsert(
        self, key: Item, values: dict[str, Any], expected_version: int | None, by: Attribution, absent: bool = False
    ) -> dict[str, Any]:
        """A conditional update: `version` moves by one; with `expected_version`, only from that version;
        `absent`, only if there is no such item yet."""
        now = iso_utc(self.clock())
        fields = {**values, **attribution(by, now)}
        names = {f"#f{i}": name for i, name in enumerate(fields)}
        assignments = ", ".join(f"#f{i} = :f{i}" for i in range(len(fields)))
        attribute_values = {f":f{i}": value for i, value in enumerate(fields.values())}
        update: dict[str, Any] = {
            "TableName": self.table,
            "Key": key,
            "UpdateExpression": f"SET {assignments} ADD #version :one",
            "ExpressionAttributeNames": {**names, "#version": "version"},
            "ExpressionAttributeValues": to_item({**attribute_values, ":one": 1}),
        }
        if expected_version is not None:
            update["ConditionExpression"] = "#version = :expected"
            update["ExpressionAttributeValues"][":expected"] = {"N": str(expected_version)}
        elif absent:
            update["ConditionExpression"] = "attribute_not_exists(PK)"
        return {"Update": update}

    def _blind_write(self, provider_id: str, key: Item, values: dict[str, Any], by: Attribution, change: str) -> int:
        """A write without If-Match, made at the version it finds, so it knows the version it made;
        answers it. Reading it back instead raced a concurrent delete (a 500 under `make load`); a
        writer in between means read again and retry."""
        for _ in range(BLIND_WRITE_ATTEMPTS):
            found = self.client.get_item(
                TableName=self.table,
                Key=key,
                ConsistentRead=True,
                ProjectionExpression="#version",
                ExpressionAttributeNames={"#version": "version"},
            ).get("Item")
            current = int(found["version"]["N"]) if found else None
            write = self._upsert(key, values, current, by, absent=current is None)
            try:
                self._versioned_write(provider_id, write, current, by, change)
            except PreconditionFailedError:
                continue
            return (current or 0) + 1
        raise BusyError

    def save_schedule(
        self,
        provider_id: str,
        weekly: dict[int, tuple[LocalInterval, ...]],
        expected_version: int | None,
        by: Attribution,
    ) -> WeeklySchedule:
        stored = {WEEKDAYS[day]: intervals_out(intervals) for day, intervals in sorted(weekly.items())}
        values = {"entityType": "Schedule", "providerId": provider_id, "weekly": stored}
        key = keys.schedule_key(provider_id)
        if expected_version is None:
            return WeeklySchedule(weekly, self._blind_write(provider_id, key, values, by, "SCHEDULE_UPDATED"))
        self._versioned_write(
            provider_id, self._upsert(key, values, expected_version, by), expected_version, by, "SCHEDULE_UPDATED"
        )
        return WeeklySchedule(weekly, expected_version + 1)

    def save_override(
        self,
        provider_id: str,
        day: date,
        intervals: tuple[LocalInterval, ...],
        expected_version: int | None,
        expires_at: datetime,
        by: Attribution,
    ) -> Override:
        values = {
            "entityType": "Override",
            "providerId": provider_id,
            "date": day.isoformat(),
            "intervals": intervals_out(intervals),
            "expiresAt": int(expires_at.timestamp()),
        }
        key = keys.override_key(provider_id, day)
        change = f"OVERRIDE_SET {day.isoformat()}"
        if expected_version is None:
            return Override(day, intervals, self._blind_write(provider_id, key, values, by, change))
        write = self._upsert(key, values, expected_version, by)
        self._versioned_write(provider_id, write, expected_version, by, change)
        return Override(day, intervals, expected_version + 1)

    def delete_override(self, provider_id: str, day: date, expected_version: int | None, by: Attribution) -> None:
        delete: dict[str, Any] = {
            "TableName": self.table,
            "Key": keys.override_key(provider_id, day),
            "ConditionExpression": "attribute_exists(PK)",
        }
        if expected_version is not None:
            delete["ConditionExpression"] += " AND version = :expected"
            delete["ExpressionAttributeValues"] = {":expected": {"N": str(expected_version)}}
        try:
            self._versioned_write(provider_id, {"Delete": delete}, expected_version, by, f"OVERRIDE_REMOVED {day}")
        except PreconditionFailedError:
            if expected_version is None or self._override_missing(provider_id, day):
                raise OverrideNotFoundError(day) from None
            raise

    def _override_missing(self, provider_id: str, day: date) -> bool:
        key = keys.override_key(provider_id, day)
        return "Item" not in self.client.get_item(TableName=self.table, Key=key, ConsistentRead=True)

    def create_service(self, service: Service, by: Attribution) -> None:
        rules = service.rules
        item = {
            **keys.service_key(service.provider_id, service.service_id),
            **to_item(
                {
                    "entityType": "Service",
                    "providerId": service.provider_id,
                    "serviceId": service.service_id,
                    "name": service.name,
                    "durationMinutes": rules.duration_minutes,
                    "bufferBeforeMinutes": rules.buffer_before_minutes,
                    "bufferAfterMinutes": rules.buffer_after_minutes,
                    "minNoticeMinutes": rules.min_notice_minutes,
                    "maxAdvanceDays": rules.max_advance_days,
                    "slotStepMinutes": rules.slot_step_minutes,
                    "capacity": rules.capacity,
                    "holdMinutes": service.hold_minutes,
                    "maxPerCustomerPerDay": service.max_per_customer_per_day,
                    "maxPerCustomerPerWeek": service.max_per_customer_per_week,
                    "requiresApproval": service.requires_approval,
                    "approvalTimeoutHours": service.approval_timeout_hours,
                    "reminderMinutesBefore": service.reminder_minutes_before,
                    "version": service.version,
                    "createdAt": service.created_at,
                    **attribution(by, service.created_at),
                }
            ),
        }
        try:
            self.client.transact_write_items(
                TransactItems=[
                    {
                        "ConditionCheck": {
                            "TableName": self.table,
                            "Key": keys.provider_key(service.provider_id),
                            "ConditionExpression": "attribute_exists(PK)",
                        }
                    },
                    {"Put": {"TableName": self.table, "Item": item, "ConditionExpression": "attribute_not_exists(PK)"}},
                ]
            )
        except ClientError as error:
            if error_code(error) == "TransactionCanceledException" and cancellation_codes(error)[0] != "None":
                raise ProviderNotFoundError(service.provider_id) from error
            raise

    def list_services(self, provider_id: str) -> list[Service]:
        items = self.calendars.query_partition(
            provider_id, "SK BETWEEN :lo AND :hi", {":lo": keys.SERVICE_PREFIX, ":hi": keys.SERVICE_PREFIX + "~"}
        )
        return [service_from(from_item(item)) for item in items]

    def calendar(self, provider_id: str, until: datetime) -> ProviderCalendar | None:
        return self.calendars.calendar(provider_id, until)

    def upcoming_overrides(self, provider_id: str, since: date) -> list[Override]:
        """Overrides from `since` on (busy blocks in the same range are read and left aside)."""
        low = f"{keys.CALENDAR_PREFIX}{since.isoformat()}"
        items = self.calendars.query_partition(
            provider_id, "SK BETWEEN :lo AND :hi", {":lo": low, ":hi": keys.CALENDAR_PREFIX + "~"}
        )
        return [override_from(values) for values in map(from_item, items) if values["entityType"] == "Override"]
