"""How a provider's calendar is stored in the shared table, and the one Query that reads it."""

from __future__ import annotations

import time
from collections.abc import Iterable
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

from msgspec import Struct

from services.common import keys
from services.common.availability import WEEKDAYS, LocalInterval, ServiceRules
from services.common.calendar import (
    BookedSpan,
    Override,
    PendingSeries,
    Provider,
    ProviderCalendar,
    Service,
    WeeklySchedule,
)
from services.common.dynamodb import Item, from_item, to_item

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


def hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def minutes(text: str) -> int:
    hours, mins = text.split(":")
    return int(hours) * 60 + int(mins)


def intervals_out(intervals: tuple[LocalInterval, ...]) -> list[dict[str, str]]:
    return [{"start": hhmm(i.start), "end": hhmm(i.end)} for i in intervals]


def intervals_in(stored: list[dict[str, str]]) -> tuple[LocalInterval, ...]:
    return tuple(LocalInterval(minutes(i["start"]), minutes(i["end"])) for i in stored)


def provider_from(values: dict[str, Any]) -> Provider:
    return Provider(
        provider_id=values["providerId"],
        name=values["name"],
        time_zone=values["timeZone"],
        owner_sub=values.get("ownerSub"),
        version=values["version"],
        created_at=values["createdAt"],
        max_bookings_per_day=values.get("maxBookingsPerDay"),
    )


def service_from(values: dict[str, Any]) -> Service:
    rules = ServiceRules(
        duration_minutes=values["durationMinutes"],
        buffer_before_minutes=values["bufferBeforeMinutes"],
        buffer_after_minutes=values["bufferAfterMinutes"],
        min_notice_minutes=values["minNoticeMinutes"],
        max_advance_days=values["maxAdvanceDays"],
        slot_step_minutes=values["slotStepMinutes"],
        capacity=values["capacity"],
    )
    return Service(
        values["serviceId"],
        values["providerId"],
        values["name"],
        rules,
        values["version"],
        values["createdAt"],
        values.get("holdMinutes", 5),
        values.get("maxPerCustomerPerDay"),
        values.get("maxPerCustomerPerWeek"),
        values.get("requiresApproval", False),
        values.get("approvalTimeoutHours", 24),
        values.get("reminderMinutesBefore", 1440),
    )


def pending_series_from(values: dict[str, Any]) -> PendingSeries:
    occurrences: dict[str, Any] = values.get("occurrences", {})
    counted: dict[str, int] = {}
    for claimed in occurrences.values():
        for key in claimed.get("counted", {}):
            counted[key] = counted.get(key, 0) + 1
    return PendingSeries(
        series_id=values["seriesId"],
        expires_at=datetime.fromtimestamp(values["claimExpiresAt"], UTC),
        killed=bool(values.get("killed")),
        booking_ids=frozenset(occurrences),
        counted=counted,
        request_key=values.get("requestKey"),
    )


DEAD = datetime.fromtimestamp(0, UTC)  # the expiry of a killed series' spans: free for everyone


def with_pending(booked: dict[str, BookedSpan], pending: Iterable[PendingSeries]) -> dict[str, BookedSpan]:
    """`booked`, the spans of series still being claimed held until their series' expiry (as a hold's)."""
    for series in pending:
        for booking_id in series.booking_ids & booked.keys():
            booked[booking_id] = booked[booking_id]._replace(expires_at=DEAD if series.killed else series.expires_at)
    return booked


def schedule_from(values: dict[str, Any]) -> WeeklySchedule:
    weekly = {WEEKDAYS.index(day): intervals_in(intervals) for day, intervals in values["weekly"].items()}
    return WeeklySchedule(weekly, values["version"])


def override_from(values: dict[str, Any]) -> Override:
    return Override(date.fromisoformat(values["date"]), intervals_in(values["intervals"]), values["version"])


# A booked span as a busy block holds it, under its booking id: one string,
# "<sessionStart>|<start>|<end>|<version>|<serviceId>|<createdAt>|<customerId>", instants in epoch
# seconds, the customer's id last (it may hold any character). A hold's span, under its hold id
# (`hld_…`), has its expiry where a booking has its version: a hold has no version, it never
# changes. A booking awaiting approval has "<version>~<deadline>" there: its time is free from then on.
# A span is in every block it touches, and the slot search reads every block of its window:
# one string instead of a map of eight attributes is what keeps that read cheap (botocore parses
# each attribute value on its own; `make bench-slots`, decision 0007).


def booked_from(booking_id: str, stored: str) -> BookedSpan:
    """A booking's (or hold's) span as the busy-block items hold it (`start`/`end` include the buffers)."""
    session, start, end, fourth, service_id, created_at, customer_id = stored.split("|", 6)
    hold = booking_id.startswith(keys.HOLD_ID_PREFIX)
    version, _, pending_until = fourth.partition("~")  # a booking awaiting approval: "<version>~<deadline>"
    return BookedSpan(
        booking_id=booking_id,
        service_id=service_id,
        customer_id=customer_id,
        session_start=_instant(session),
        start=_instant(start),
        end=_instant(end),
        version=0 if hold else int(version),
        created_at=created_at,
        expires_at=_instant(fourth) if hold else (_instant(pending_until) if pending_until else None),
    )


def span_of(booked: BookedSpan) -> str:
    """The stored form of a booked span (the inverse of `booked_from`, with its booking id as the key)."""
    instants = [_epoch(booked.session_start), _epoch(booked.start), _epoch(booked.end)]
    if booked.expires_at is None:
        fourth = str(booked.version)
    elif booked.booking_id.startswith(keys.HOLD_ID_PREFIX):
        fourth = _epoch(booked.expires_at)
    else:  # a booking awaiting approval: free once its deadline passes
        fourth = f"{booked.version}~{_epoch(booked.expires_at)}"
    return "|".join([*instants, fourth, booked.service_id, booked.created_at, booked.customer_id])


def _instant(epoch: str) -> datetime:
    return datetime.fromtimestamp(int(epoch) if epoch.isdigit() else float(epoch), UTC)


def _epoch(instant: datetime) -> str:
    seconds = instant.timestamp()
    return str(int(seconds)) if seconds.is_integer() else repr(seconds)


class CalendarTable(Struct):
    client: DynamoDBClient
    table: str

    def calendar(self, provider_id: str, until: datetime) -> ProviderCalendar | None:
        """Profile, schedule, services, overrides and busy time up to `until`: one Query."""
        low, high = keys.slot_query_range(until)
        items = self.query_partition(provider_id, "SK BETWEEN :lo AND :hi", {":lo": low, ":hi": high})
        return calendar_from(items, datetime.now(UTC).date().isoformat())

    def calendar_around(
        self, provider_id: str, blocks: Iterable[datetime], local_days: Iterable[date]
    ) -> ProviderCalendar | None:
        """Profile, schedule, services and series being claimed (one Query of the configuration), and
        only the named busy blocks and local dates' overrides (BatchGetItem, strongly consistent): what
        a recurring series is decided on. Its occurrences may reach a year ahead, and the Query of
        `calendar` would read every day in between."""
        items = self.query_partition(provider_id, "begins_with(SK, :config)", {":config": keys.CONFIG_PREFIX})
        wanted = [keys.busy_block_key(provider_id, block) for block in sorted(set(blocks))]
        wanted += [keys.override_key(provider_id, day) for day in sorted(set(local_days))]
        items += self.get_many(wanted)
        return calendar_from(items, datetime.now(UTC).date().isoformat())

    def get_many(self, wanted: list[keys.Key]) -> list[Item]:
        """The items of `wanted` that exist, strongly consistent: BatchGetItem, 100 keys a request, keys
        DynamoDB left unprocessed (throttling, 16 MB) asked again after a pause that doubles."""
        found: list[Item] = []
        for first in range(0, len(wanted), 100):
            pending: list[Any] = wanted[first : first + 100]
            pause = 0.05
            while pending:
                answer = self.client.batch_get_item(
                    RequestItems={self.table: {"Keys": pending, "ConsistentRead": True}}
                )
                found.extend(dict(item) for item in answer["Responses"].get(self.table, []))
                unprocessed: dict[str, Any] = dict(answer.get("UnprocessedKeys") or {})
                pending = list(unprocessed.get(self.table, {}).get("Keys", []))
                if pending:
                    time.sleep(pause)
                    pause = min(1.0, pause * 2)
        return found

    def query_partition(self, provider_id: str, sk_condition: str, values: dict[str, str]) -> list[Item]:
        """One strongly consistent Query over a provider's partition; it pages only past DynamoDB's 1 MB.

        Strongly consistent because a slot search must not offer a time booked a moment ago (promise
        2: every slot listed is accepted by `POST /bookings`), and an edit must be seen by the next
        read of its author. It costs twice the read units of an eventually consistent read.
        """
        request: dict[str, Any] = {
            "TableName": self.table,
            "KeyConditionExpression": f"PK = :pk AND {sk_condition}",
            "ExpressionAttributeValues": to_item({":pk": keys.provider_pk(provider_id), **values}),
            "ConsistentRead": True,
        }
        items: list[Item] = []
        while True:
            page = self.client.query(**request)
            items.extend(dict(item) for item in page["Items"])
            if "LastEvaluatedKey" not in page:
                return items
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def calendar_from(items: list[Item], today: str) -> ProviderCalendar | None:
    """The calendar a provider's partition holds (the items of `CalendarTable.calendar`'s Query), on
    the UTC day `today`; None without a profile."""
    by_type: dict[str, list[dict[str, Any]]] = {}
    busy_versions: dict[str, int] = {}
    spans: dict[str, str] = {}
    first_live = f"{keys.CALENDAR_PREFIX}{today}"
    for item in items:
        if item["entityType"]["S"] == "BusyBlock":
            # Most of the items (a 62-day search: hundreds); read straight from their attribute
            # values (strings, a number and a map of strings), without the generic deserializer.
            sort_key = item["SK"]["S"]
            busy_versions[keys.busy_block_of(sort_key)[1]] = int(item["version"]["N"])
            # A span sits in every block it touches: keep one per booking. Only blocks of days not
            # yet over count: a change to a past booking leaves its ended days alone (they expire,
            # and may be gone already), so what they hold may no longer be the booking.
            if sort_key >= first_live:
                for booking_id, value in item.get("spans", {}).get("M", {}).items():
                    spans[booking_id] = value["S"]
            continue
        values = from_item(item)
        by_type.setdefault(values["entityType"], []).append(values)
    profiles = by_type.get("Provider", [])
    if not profiles:
        return None
    pending = [pending_series_from(values) for values in by_type.get("PendingSeries", [])]
    booked = {booking_id: booked_from(booking_id, span) for booking_id, span in spans.items()}
    schedules = by_type.get("Schedule", [])
    overrides = [override_from(values) for values in by_type.get("Override", [])]
    return ProviderCalendar(
        provider=provider_from(profiles[0]),
        schedule=schedule_from(schedules[0]) if schedules else None,
        overrides={override.day: override for override in overrides},
        services={values["serviceId"]: service_from(values) for values in by_type.get("Service", [])},
        booked=with_pending(booked, pending),
        availability_version=profiles[0].get("availabilityVersion", 0),
        busy_versions=busy_versions,
        pending_series={series.series_id: series for series in pending},
    )
