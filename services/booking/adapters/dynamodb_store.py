"""The booking service's storage in the shared table (keys in `services/common/keys.py`).

Every change of a booking's time is one transaction that (1) writes the booking, (2) changes its span
in every busy block it touches (30 minutes of UTC time, `keys.busy_blocks`), each conditioned on the
block's version read with the calendar, (3) checks that the provider's hours (`availabilityVersion`)
and (4) the service (`version`) are unchanged, and for a new booking (5) puts the idempotency record,
conditioned on the key being unused or expired. Two changes whose spans overlap share a block, so
they can never both commit: the second finds that block's version moved, reads again and decides
again. Changes at times that do not touch a common block do not wait for each other (decision 0007).
"""

from __future__ import annotations

import base64
import json
import random
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError
from msgspec.structs import replace

from services.booking.adapters.remembered_calendars import RememberedCalendars
from services.booking.domain.external import CalendlyConnection, ExternalBlock, ExternalStatus
from services.booking.domain.models import (
    Booking,
    BookingStatus,
    CalendarFeed,
    CustomerHolds,
    Hold,
    Lapse,
    Series,
    SeriesStatus,
    StoredResponse,
    WaitlistEntry,
    WaitlistStatus,
)
from services.booking.domain.ports import (
    AlreadyAnswered,
    BookingPage,
    ClaimOutcome,
    Committed,
    IdempotencyRecord,
    LimitReached,
    ListQuery,
    Refused,
    Stale,
)
from services.common import approval, keys
from services.common.auth import Attribution
from services.common.calendar import BookedSpan, ProviderCalendar
from services.common.calendar_table import CalendarTable, span_of
from services.common.clock import iso_utc
from services.common.dynamodb import (
    attribution,
    cancellation_reasons,
    decode_cursor,
    encode_cursor,
    error_code,
    from_item,
    to_item,
    update_of,
)
from services.common.errors import BusyError
from services.common.limits import KEPT_AFTER, Counter, counters
from services.common.recurrence import Recurrence
from services.common.timezones import zone

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

BUSY_KEPT_AFTER = timedelta(days=2)  # then TTL removes the busy blocks of a past day
ERASURE_KEPT = timedelta(days=7)  # the audit trail keeps the erasure; the item only carries it there
# A series' pending item is removed by TTL once the last of its occurrences' days is over (from then on
# its spans are in past days' blocks, which no reader heeds) and its counters' days and weeks too.
SERIES_KEPT_AFTER = timedelta(days=1) + BUSY_KEPT_AFTER
# Items one transaction of a series may spend on occurrences (spans' blocks, limit counters): the
# rest of DynamoDB's 100 are the two calendar checks, the pending item, and any expired series killed.
MAX_TRANSACTION_ITEMS = 100  # DynamoDB's TransactWriteItems
MAX_SERIES_PART_ITEMS = 97
GIVE_BACK_ATTEMPTS = 5  # a give-back that meets another transaction on the same items tries again
WAITLIST_KEPT_AFTER = timedelta(days=30)  # an entry is kept that long after its window, then TTL removes it
# A marker of what lapses is deleted by the sweep that writes it down; one left behind (a sweep that
# failed for days) is removed by TTL this long after, its lapse long written down by a reader.
LAPSE_MARKER_KEPT = timedelta(days=7)
# The first sweep of a stage (no mark yet) reads back as far as a marker may be: once, about 170 Queries.
LOOK_BACK_WITHOUT_CURSOR = LAPSE_MARKER_KEPT


def day_over(block: datetime, now: datetime) -> bool:
    return datetime.combine(block.astimezone(UTC).date(), datetime.min.time(), UTC) + timedelta(days=1) <= now


def live_blocks(start: datetime, end: datetime, now: datetime) -> list[datetime]:
    """The blocks of a span whose UTC day has not ended: the only ones whose busy time matters to anyone.

    A past day's blocks expire (TTL) two days after it, and may be gone at any moment from then on;
    changing a past booking must neither condition on them (it would fail for ever) nor write them
    (an update would make a new, never-expiring item)."""
    return [block for block in keys.busy_blocks(start, end) if not day_over(block, now)]


def _changed_blocks(reasons: list[dict[str, Any]]) -> list[dict[str, Any]] | None:
    """The busy blocks a cancelled transaction found changed, as they are now, when those are all it
    found: otherwise (the hours, the service, another transaction in flight) None."""
    failed = [reason for reason in reasons if reason.get("Code") not in {"None", None}]
    found = [from_item(reason["Item"]) for reason in failed if "Item" in reason]
    if not failed or len(found) < len(failed) or any(item.get("entityType") != "BusyBlock" for item in found):
        return None
    return found


def booked_span(booking: Booking) -> BookedSpan:
    return BookedSpan(
        booking.booking_id,
        booking.service_id,
        booking.customer_id,
        booking.start,
        booking.busy_start,
        booking.busy_end,
        booking.version,
        booking.created_at,
        booking.approval_expires_at if booking.status is BookingStatus.PENDING else None,
    )


def _counted(found: list[Counter] | tuple[Counter, ...]) -> dict[str, int]:
    """The counters a booking counts in, as its item keeps them: key → when its day or week ends."""
    return {counter.key: int(counter.ends.timestamp()) for counter in found}


def hold_span(hold: Hold) -> BookedSpan:
    return BookedSpan(
        hold.hold_id,
        hold.service_id,
        hold.customer_id,
        hold.start,
        hold.busy_start,
        hold.busy_end,
        0,
        hold.created_at,
        hold.expires_at,
    )


def external_from(values: dict[str, Any]) -> ExternalBlock:
    return ExternalBlock(
        external_id=values["externalId"],
        provider_id=values["providerId"],
        source=values["source"],
        reference=values["reference"],
        event_uri=values["eventUri"],
        start=datetime.fromisoformat(values["start"]),
        end=datetime.fromisoformat(values["end"]),
        status=ExternalStatus(values["status"]),
        created_at=values["createdAt"],
        conflicts_with=tuple(values.get("conflictsWith") or ()),
        released=tuple(values.get("released") or ()),
        declined=tuple(values.get("declined") or ()),
        rescheduled=bool(values.get("rescheduled")),
        replaces=values.get("replaces"),
    )


def _times(values: dict[str, Any]) -> dict[str, datetime]:
    """A booking's or hold's stored instants, in its provider's zone."""
    provider_zone = zone(values["timeZone"])
    names = {"start": "start", "end": "end", "busy_start": "busyStart", "busy_end": "busyEnd"}
    return {name: datetime.fromisoformat(values[stored]).astimezone(provider_zone) for name, stored in names.items()}


def hold_from(values: dict[str, Any]) -> Hold:
    return Hold(
        hold_id=values["holdId"],
        provider_id=values["providerId"],
        service_id=values["serviceId"],
        customer_id=values["customerId"],
        provider_owner=values.get("providerOwner"),
        time_zone=values["timeZone"],
        **_times(values),
        expires_at=datetime.fromtimestamp(values["expiresAt"], UTC),
        created_at=values["createdAt"],
        held_by=values["heldBy"],
        counters=tuple(
            Counter(key, limit, datetime.fromtimestamp(ends, UTC))
            for key, (limit, ends) in values.get("limitCounters", {}).items()
        ),
        approval_hours=values.get("approvalTimeoutHours"),
        ended=values.get("status"),
        waitlist_id=values.get("waitlistId"),
    )


def booking_from(values: dict[str, Any]) -> Booking:
    return Booking(
        booking_id=values["bookingId"],
        provider_id=values["providerId"],
        service_id=values["serviceId"],
        customer_id=values["customerId"],
        provider_owner=values.get("providerOwner"),
        time_zone=values["timeZone"],
        **_times(values),
        status=BookingStatus(values["status"]),
        version=values["version"],
        notes=values.get("notes"),
        created_at=values["createdAt"],
        cancel_reason=values.get("cancelReason"),
        counted=values.get("limitCounters", {}),
        series_id=values.get("seriesId"),
        approval_expires_at=datetime.fromtimestamp(values["approvalExpiresAt"], UTC)
        if "approvalExpiresAt" in values
        else None,
        decline_reason=values.get("declineReason"),
        updated_at=values.get("updatedAt"),
    )


def series_from(values: dict[str, Any]) -> Series:
    recurrence = values["recurrence"]
    return Series(
        series_id=values["seriesId"],
        provider_id=values["providerId"],
        service_id=values["serviceId"],
        customer_id=values["customerId"],
        provider_owner=values.get("providerOwner"),
        time_zone=values["timeZone"],
        recurrence=Recurrence(recurrence["frequency"], recurrence["count"], recurrence["interval"]),
        booking_ids=tuple(values["bookingIds"]),
        status=SeriesStatus(values["status"]),
        version=values["version"],
        created_at=values["createdAt"],
    )


def waitlist_entry_from(values: dict[str, Any]) -> WaitlistEntry:
    provider_zone = zone(values["timeZone"])
    offer_expires = values.get("offerExpiresAt")
    return WaitlistEntry(
        waitlist_id=values["waitlistId"],
        provider_id=values["providerId"],
        service_id=values["serviceId"],
        customer_id=values["customerId"],
        provider_owner=values.get("providerOwner"),
        time_zone=values["timeZone"],
        window_start=datetime.fromisoformat(values["from"]).astimezone(provider_zone),
        window_end=datetime.fromisoformat(values["to"]).astimezone(provider_zone),
        status=WaitlistStatus(values["status"]),
        version=values["version"],
        created_at=values["createdAt"],
        created_by=values["createdBy"],
        hold_id=values.get("holdId"),
        offer_expires_at=datetime.fromtimestamp(offer_expires, UTC) if offer_expires is not None else None,
        booking_id=values.get("bookingId"),
    )


def _time_attributes(booking: Booking) -> dict[str, Any]:
    start = iso_utc(booking.start)
    return {
        "start": start,
        "end": iso_utc(booking.end),
        "busyStart": iso_utc(booking.busy_start),
        "busyEnd": iso_utc(booking.busy_end),
        "GSI1SK": f"{start}#{booking.booking_id}",
        "GSI2SK": f"{start}#{booking.booking_id}",
    }


class DynamoDBBookingStore:
    def __init__(self, client: DynamoDBClient, table: str) -> None:
        self.client, self.table = client, table
        self.calendars = CalendarTable(client, table)
        self.remembered = RememberedCalendars()

    # Reads

    def calendar(
        self, provider_id: str, until: datetime, *, remembered_to: datetime | None = None
    ) -> ProviderCalendar | None:
        now = datetime.now(UTC)
        if remembered_to is not None and (kept := self.remembered.get(provider_id, remembered_to, now)) is not None:
            return kept
        calendar = self.calendars.calendar(provider_id, until)
        if calendar is None:
            self.remembered.forget(provider_id)
        else:
            self.remembered.keep(provider_id, until, calendar, now)
        return calendar

    def get_booking(self, booking_id: str) -> Booking | None:
        # Strongly consistent: a client that was just answered 201 or 200 with an ETag reads that version.
        read = self.client.get_item(TableName=self.table, Key=keys.booking_key(booking_id), ConsistentRead=True)
        found = read.get("Item")
        return booking_from(from_item(dict(found))) if found else None

    def stored_response(self, caller: str, key: str, now: datetime) -> StoredResponse | None:
        found = self.client.get_item(TableName=self.table, Key=keys.idempotency_key(caller, key), ConsistentRead=True)
        if "Item" not in found:
            return None
        stored = from_item(dict(found["Item"]))
        if stored["expiresAt"] < now.timestamp():
            return None
        return StoredResponse(stored["requestHash"], stored["statusCode"], json.loads(stored["body"]))

    def list_bookings(self, query: ListQuery) -> BookingPage:
        if query.by_customer or query.provider_id is None:
            index, partition = "GSI2", f"CUSTOMER#{query.customer_id}"
        else:
            index, partition = "GSI1", f"{keys.provider_pk(query.provider_id)}#BOOKINGS"
        values: dict[str, Any] = {":p": partition, ":lo": iso_utc(query.start), ":hi": iso_utc(query.end) + "~"}
        request: dict[str, Any] = {
            "TableName": self.table,
            "IndexName": index,
            "KeyConditionExpression": f"{index}PK = :p AND {index}SK BETWEEN :lo AND :hi",
            "Limit": query.limit,
        }
        filters = []
        # PENDING and EXPIRED as a reader sees them: a pending booking past its deadline is expired,
        # written down or not.
        if query.status is BookingStatus.PENDING and query.now is not None:
            filters.append("#status = :status AND approvalExpiresAt > :now")
            values[":status"], values[":now"] = query.status.value, int(query.now.timestamp())
        elif query.status is BookingStatus.EXPIRED and query.now is not None:
            filters.append("(#status = :status OR (#status = :pending AND approvalExpiresAt <= :now))")
            values[":status"], values[":pending"] = query.status.value, BookingStatus.PENDING.value
            values[":now"] = int(query.now.timestamp())
        elif query.status is not None:
            filters.append("#status = :status")
            values[":status"] = query.status.value
        if index == "GSI1" and query.customer_id is not None:
            filters.append("customerId = :customer")
            values[":customer"] = query.customer_id
        if index == "GSI2" and query.provider_id is not None:
            filters.append("providerId = :provider")
            values[":provider"] = query.provider_id
        if filters:
            request["FilterExpression"] = " AND ".join(filters)
            if query.status is not None:
                request["ExpressionAttributeNames"] = {"#status": "status"}
        request["ExpressionAttributeValues"] = to_item(values)
        # A cursor belongs to the query, not to the instant it was asked at: `:now` moves between pages.
        bound = {**request, "ExpressionAttributeValues": to_item({k: v for k, v in values.items() if k != ":now"})}
        if query.cursor:
            request["ExclusiveStartKey"] = decode_cursor(
                query.cursor,
                bound,
                {f"{index}PK": partition, f"{index}SK": None, "PK": None, "SK": "BOOKING"},
                sort_between=(f"{index}SK", values[":lo"], values[":hi"]),
            )
        page = self.client.query(**request)
        items = [booking_from(from_item(dict(item))) for item in page["Items"]]
        return BookingPage(items, encode_cursor(dict(page.get("LastEvaluatedKey") or {}), bound))

    # Writes

    def claim(
        self, booking: Booking, calendar: ProviderCalendar, idempotency: IdempotencyRecord | None, by: Attribution
    ) -> ClaimOutcome:
        now = iso_utc(datetime.now(UTC))
        service = calendar.services[booking.service_id]
        found = counters(calendar.provider, service, booking.customer_id, booking.start)
        writes = [self._booking_put(booking, idempotency, by, now, _counted(found))]
        writes += self._move_time(booked_span(booking), booking.provider_id, None, calendar)
        writes += self._approval_lapse(booking)
        limits = range(len(writes), len(writes) + len(found))
        writes += self._count(booking.provider_id, found)
        if idempotency is not None:
            writes.append(self._remember(by.actor, idempotency, now))
        return self._commit(
            writes, idempotency is not None, booking.provider_id, added=booked_span(booking), limits=limits
        )

    def _booking_put(
        self,
        booking: Booking,
        idempotency: IdempotencyRecord | None,
        by: Attribution,
        now: str,
        counted: dict[str, int],
    ) -> dict[str, Any]:
        item = {
            **keys.booking_key(booking.booking_id),
            **to_item(
                {
                    "GSI1PK": f"{keys.provider_pk(booking.provider_id)}#BOOKINGS",
                    "GSI2PK": f"CUSTOMER#{booking.customer_id}",
                    "entityType": "Booking",
                    "bookingId": booking.booking_id,
                    "providerId": booking.provider_id,
                    "serviceId": booking.service_id,
                    "customerId": booking.customer_id,
                    "providerOwner": booking.provider_owner,
                    "timeZone": booking.time_zone,
                    "status": booking.status.value,
                    "version": booking.version,
                    "notes": booking.notes,
                    "createdAt": booking.created_at,
                    # Where the first answer (with the notes in it) is kept: an erasure finds it here.
                    "idempotencyRef": from_item(keys.idempotency_key(by.actor, idempotency.key))
                    if idempotency
                    else None,
                    # The limit counters it counts in: its cancel lowers exactly these.
                    "limitCounters": counted or None,
                    "seriesId": booking.series_id,
                    "approvalExpiresAt": int(booking.approval_expires_at.timestamp())
                    if booking.approval_expires_at
                    else None,
                    **_time_attributes(booking),
                    **attribution(by, now),
                }
            ),
        }
        return {"Put": {"TableName": self.table, "Item": item, "ConditionExpression": "attribute_not_exists(PK)"}}

    def reschedule(self, booking: Booking, moved: Booking, calendar: ProviderCalendar, by: Attribution) -> ClaimOutcome:
        """`moved` is `booking` at its new time, one version on."""
        now = iso_utc(datetime.now(UTC))
        found = counters(calendar.provider, calendar.services[moved.service_id], moved.customer_id, moved.start)
        # What it counted before: on the booking item, read only when a limit applies now (a booking seen
        # through its span does not say; with no limit now, an old count matters to nobody).
        old = booking.counted if booking.counted is not None else (self._counted_of(booking) if found else {})
        new = _counted(found)
        fields = {
            **_time_attributes(moved),
            **attribution(by, now),
            "version": moved.version,
            "limitCounters": new or None,
        }
        update = self._update_booking(booking, fields, "RESCHEDULED")
        writes = [update, *self._move_time(booked_span(moved), moved.provider_id, booked_span(booking), calendar)]
        writes += self._uncount(booking.provider_id, {key: ends for key, ends in old.items() if key not in new})
        limits = range(len(writes), len(writes) + len(new.keys() - old.keys()))
        writes += self._count(booking.provider_id, [counter for counter in found if counter.key not in old])
        if len(writes) > MAX_TRANSACTION_ITEMS:
            # Only expired series' kills take a 20-hour move past DynamoDB's limit: give them back, then again.
            for series in calendar.pending_series.values():
                if not series.live(datetime.now(UTC)):
                    self.abandon_series(booking.provider_id, series.series_id)
            return Stale()
        return self._commit(
            writes,
            False,
            booking.provider_id,
            added=booked_span(moved),
            removed=booked_span(booking),
            limits=limits,
        )

    def cancel(self, booking: Booking, reason: str | None, by: Attribution) -> ClaimOutcome:
        now = iso_utc(datetime.now(UTC))
        fields = {"status": BookingStatus.CANCELLED.value, "cancelReason": reason, "version": booking.version + 1}
        writes = [self._update_booking(booking, {**fields, **attribution(by, now)}, "CANCELLED")]
        writes += self._release(booked_span(booking), booking.provider_id)
        writes += self._uncount(booking.provider_id, booking.counted or {})
        return self._commit(writes, False, booking.provider_id, removed=booked_span(booking))

    # Approval (decision 0025)

    def approve(self, booking: Booking, by: Attribution) -> ClaimOutcome:
        """One transaction: the pending booking confirmed, while its deadline has not passed, and its span
        in each live block made a confirmed booking's (no expiry), conditioned on being there: once the
        deadline passed, anyone may have booked over it."""
        now = datetime.now(UTC)
        confirmed = replace(booking, status=BookingStatus.CONFIRMED, version=booking.version + 1)
        fields = {"status": BookingStatus.CONFIRMED.value, "version": confirmed.version, "approvalExpiresAt": None}
        update = self._update_booking(booking, {**fields, **attribution(by, iso_utc(now))}, "APPROVED")
        update["Update"]["ConditionExpression"] += " AND approvalExpiresAt > :now"
        update["Update"]["ExpressionAttributeValues"][":now"] = {"N": str(int(now.timestamp()))}
        span = span_of(booked_span(confirmed))
        writes = [update]
        for block in live_blocks(booking.busy_start, booking.busy_end, now):
            writes.append(
                {
                    "Update": {
                        "TableName": self.table,
                        "Key": keys.busy_block_key(booking.provider_id, block),
                        "UpdateExpression": "SET spans.#booking = :span ADD version :one",
                        "ConditionExpression": "attribute_exists(spans.#booking)",
                        "ExpressionAttributeNames": {"#booking": booking.booking_id},
                        "ExpressionAttributeValues": to_item({":span": span, ":one": 1}),
                    }
                }
            )
        return self._commit(writes, False, booking.provider_id, added=booked_span(confirmed))

    def decline(self, booking: Booking, reason: str | None, by: Attribution) -> ClaimOutcome:
        """One transaction: the pending booking declined, its time and its counts freed."""
        now = iso_utc(datetime.now(UTC))
        fields = {
            "status": BookingStatus.DECLINED.value,
            "declineReason": reason,
            "version": booking.version + 1,
            "approvalExpiresAt": None,
        }
        writes = [self._update_booking(booking, {**fields, **attribution(by, now)}, "DECLINED")]
        writes += self._release(booked_span(booking), booking.provider_id)
        writes += self._uncount(booking.provider_id, booking.counted or {})
        return self._commit(writes, False, booking.provider_id, removed=booked_span(booking))

    def expire(self, booking: Booking, by: Attribution) -> ClaimOutcome:
        """Write down what every reader already sees: a pending booking past its deadline is EXPIRED. Its
        span leaves the live blocks that still hold it (a booking over it may have taken it out already),
        and its counts are lowered. Conditioned on it being pending and past its deadline."""
        now = datetime.now(UTC)
        fields = {
            "status": BookingStatus.EXPIRED.value,
            "version": booking.version + 1,
            "approvalExpiresAt": None,
            **attribution(by, iso_utc(now)),
        }
        update = self._update_booking(booking, fields, "EXPIRED")
        update["Update"]["ConditionExpression"] += " AND approvalExpiresAt <= :now"
        update["Update"]["ExpressionAttributeValues"][":now"] = {"N": str(int(now.timestamp()))}
        writes = [update]
        for block in live_blocks(booking.busy_start, booking.busy_end, now):
            writes.append(
                {
                    "Update": {
                        "TableName": self.table,
                        "Key": keys.busy_block_key(booking.provider_id, block),
                        "UpdateExpression": "REMOVE spans.#booking ADD version :one",
                        "ConditionExpression": "attribute_exists(PK)",
                        "ExpressionAttributeNames": {"#booking": booking.booking_id},
                        "ExpressionAttributeValues": {":one": {"N": "1"}},
                    }
                }
            )
        writes += self._uncount(booking.provider_id, booking.counted or {})
        return self._commit(writes, False, booking.provider_id, removed=booked_span(booking))

    def lapsed_approvals(self, provider_id: str, start: datetime, end: datetime, now: datetime) -> list[Booking]:
        found = approval.lapsed_approvals(self.client, self.table, provider_id, (start, end), now)
        return [booking_from(from_item(item)) for item in found]

    # Calendar feeds (decision 0028)

    def bookings_between(
        self, provider_id: str | None, customer_id: str | None, start: datetime, end: datetime, most: int
    ) -> list[Booking]:
        """A provider's (or, without one, a customer's) bookings starting in [start, end], every status,
        in time order, at most `most` (pages of 100 read until then)."""
        found: list[Booking] = []
        cursor = None
        while len(found) < most:
            query = ListQuery(provider_id, customer_id, start, end, None, 100, cursor, provider_id is None)
            page = self.list_bookings(query)
            found += page.items
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
        return found[:most]

    def get_feed(self, feed_id: str) -> CalendarFeed | None:
        found = self.client.get_item(TableName=self.table, Key=keys.feed_key(feed_id), ConsistentRead=True)
        if "Item" not in found:
            return None
        values = from_item(found["Item"])
        return CalendarFeed(values["feedId"], values["providerId"], values["keyHash"], values["createdAt"])

    def provider_feed_id(self, provider_id: str) -> str | None:
        found = self.client.get_item(TableName=self.table, Key=keys.provider_feed_key(provider_id), ConsistentRead=True)
        return from_item(found["Item"]).get("feedId") if "Item" in found else None

    def replace_feed(self, feed: CalendarFeed, previous: str | None, by: Attribution) -> bool:
        """The provider's live feed becomes `feed`, and `previous` (the one read as live) is gone, in one
        transaction; False when another change of the provider's feed came first."""
        # The pointer keeps who shared (and, when revoked, who revoked): the trail's FEED_SHARED and
        # FEED_REVOKED come from its changes.
        values = {"entityType": "ProviderFeed", "providerId": feed.provider_id, "feedId": feed.feed_id}
        pointer = {
            "TableName": self.table,
            "Item": {
                **keys.provider_feed_key(feed.provider_id),
                **to_item({**values, **attribution(by, feed.created_at)}),
            },
        }
        if previous is None:
            pointer["ConditionExpression"] = "attribute_not_exists(feedId)"
        else:
            pointer["ConditionExpression"] = "feedId = :previous"
            pointer["ExpressionAttributeValues"] = to_item({":previous": previous})
        item = {
            **keys.feed_key(feed.feed_id),
            **to_item(
                {
                    "entityType": "CalendarFeed",
                    "feedId": feed.feed_id,
                    "providerId": feed.provider_id,
                    "keyHash": feed.key_hash,
                    "createdAt": feed.created_at,
                    **attribution(by, feed.created_at),
                }
            ),
        }
        writes: list[dict[str, Any]] = [
            {"Put": pointer},
            {"Put": {"TableName": self.table, "Item": item, "ConditionExpression": "attribute_not_exists(PK)"}},
        ]
        if previous is not None:
            writes.append({"Delete": {"TableName": self.table, "Key": keys.feed_key(previous)}})
        return self._feed_transaction(writes)

    def remove_feed(self, provider_id: str, feed_id: str, by: Attribution) -> bool:
        """The provider's live feed gone (the pointer kept, with who revoked it); False when it was no
        longer `feed_id`."""
        stamp = attribution(by, iso_utc(datetime.now(UTC)))
        names = {f"#f{i}": name for i, name in enumerate(stamp)}
        writes: list[dict[str, Any]] = [
            {
                "Update": {
                    "TableName": self.table,
                    "Key": keys.provider_feed_key(provider_id),
                    "UpdateExpression": "REMOVE feedId SET " + ", ".join(f"#f{i} = :f{i}" for i in range(len(stamp))),
                    "ConditionExpression": "feedId = :feed",
                    "ExpressionAttributeNames": names,
                    "ExpressionAttributeValues": to_item(
                        {":feed": feed_id, **{f":f{i}": value for i, value in enumerate(stamp.values())}}
                    ),
                }
            },
            {"Delete": {"TableName": self.table, "Key": keys.feed_key(feed_id)}},
        ]
        return self._feed_transaction(writes)

    def _feed_transaction(self, writes: list[dict[str, Any]]) -> bool:
        """True once committed; False when the provider's feed was not the one read (a condition
        failed, or another change was on it at that moment). Anything else (a throttle) is raised."""
        try:
            self.client.transact_write_items(TransactItems=writes, ClientRequestToken=str(uuid.uuid4()))  # type: ignore[arg-type]
        except ClientError as error:
            code = error_code(error)
            if code == "TransactionConflictException":
                return False
            if code == "TransactionCanceledException":
                reasons = {reason.get("Code") for reason in cancellation_reasons(error)}
                if reasons & {"ConditionalCheckFailed", "TransactionConflict"}:
                    return False
                raise BusyError("The table is busy right now; retry shortly.") from error  # throttled items
            raise
        return True

    # What lapses without a write (decision 0027): a marker put with it, read by the minute's sweep

    def _lapse_marker(self, lapse: Lapse) -> dict[str, Any]:
        """Put in the transaction that makes the hold, or the pending booking; never conditioned, so it
        cannot refuse the change. The sweep deletes it; TTL, one the sweep never came for."""
        item = {
            **keys.expiry_marker_key(lapse.lapses_at, lapse.kind, lapse.entity_id),
            **to_item(
                {
                    "entityType": "LapseMarker",
                    "kind": lapse.kind,
                    "entityId": lapse.entity_id,
                    "lapsesAt": int(lapse.lapses_at.timestamp()),
                    "expiresAt": int((lapse.lapses_at + LAPSE_MARKER_KEPT).timestamp()),
                }
            ),
        }
        return {"Put": {"TableName": self.table, "Item": item}}

    def _approval_lapse(self, booking: Booking) -> list[dict[str, Any]]:
        if booking.status is not BookingStatus.PENDING or booking.approval_expires_at is None:
            return []
        return [self._lapse_marker(Lapse("BOOKING", booking.booking_id, booking.approval_expires_at))]

    def lapsed(self, now: datetime) -> tuple[list[Lapse], str]:
        """What has lapsed by `now` and is not yet written down, oldest first: the markers of every hour
        from the sweep's cursor (the first hour not yet swept to its end) to now's, each read up to now
        (consistent: a marker is in the same transaction as its hold). Answers now's hour too, the
        cursor's next value once these are written down."""
        cursor = self.client.get_item(TableName=self.table, Key=keys.EXPIRY_CURSOR, ConsistentRead=True).get("Item")
        hour = keys.expiry_hour(now)
        start = from_item(cursor)["through"] if cursor else keys.expiry_hour(now - LOOK_BACK_WITHOUT_CURSOR)
        moment = datetime.strptime(start, "%Y-%m-%dT%H").replace(tzinfo=UTC)
        found: list[Lapse] = []
        upto = iso_utc(now) + "#~"
        while keys.expiry_hour(moment) <= hour:
            partition = keys.EXPIRING_PREFIX + keys.expiry_hour(moment)
            request: dict[str, Any] = {
                "TableName": self.table,
                "KeyConditionExpression": "PK = :hour AND SK <= :upto",
                "ExpressionAttributeValues": to_item({":hour": partition, ":upto": upto}),
                "ConsistentRead": True,
            }
            while True:
                page = self.client.query(**request)
                for item in page["Items"]:
                    values = from_item(dict(item))
                    lapses_at = datetime.fromtimestamp(values["lapsesAt"], UTC)
                    found.append(Lapse(values["kind"], values["entityId"], lapses_at))
                if "LastEvaluatedKey" not in page:
                    break
                request["ExclusiveStartKey"] = page["LastEvaluatedKey"]
            moment += timedelta(hours=1)
        return found, hour

    def forget_lapse(self, lapse: Lapse) -> None:
        key = keys.expiry_marker_key(lapse.lapses_at, lapse.kind, lapse.entity_id)
        self.client.delete_item(TableName=self.table, Key=key)

    def swept_through(self, hour: str) -> None:
        """Every hour before `hour` is written down: the next sweep starts there."""
        item = {**keys.EXPIRY_CURSOR, **to_item({"entityType": "LapseCursor", "through": hour})}
        self.client.put_item(TableName=self.table, Item=item)

    def expire_hold(self, hold: Hold, by: Attribution) -> ClaimOutcome:
        """Write down what every reader already sees: a hold past its expiry is EXPIRED (its time was
        free from then on). Conditioned on it not having ended, and being past its expiry."""
        now = datetime.now(UTC)
        ended = self._end_hold(hold, "EXPIRED", by, now, {}, expired_at=hold.expires_at)
        ended["Update"]["ConditionExpression"] += " AND expiresAt <= :now"
        ended["Update"]["ExpressionAttributeValues"][":now"] = {"N": str(int(now.timestamp()))}
        return self._commit([ended], False, hold.provider_id)

    # Personal data

    def bookings_with_words(self, customer_id: str) -> Iterator[Booking]:
        """The customer's bookings, past and future, that still hold their words: from their index
        (GSI2, eventually consistent), so an erasure cut short is finished by the next one."""
        request: dict[str, Any] = {
            "TableName": self.table,
            "IndexName": "GSI2",
            "KeyConditionExpression": "GSI2PK = :customer",
            "FilterExpression": (
                "attribute_exists(notes) OR attribute_exists(cancelReason) OR attribute_exists(declineReason)"
            ),
            "ExpressionAttributeValues": {":customer": {"S": f"CUSTOMER#{customer_id}"}},
        }
        while True:
            page = self.client.query(**request)
            yield from (booking_from(from_item(dict(item))) for item in page["Items"])
            if "LastEvaluatedKey" not in page:
                return
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def erase_words(self, booking: Booking) -> None:
        """Remove what the customer wrote from the first answer kept for the booking's Idempotency-Key
        (a replay then answers without it), then from the booking. In that order: the booking's words
        are what finds it again, if this is cut short. Neither the status nor the version moves:
        nothing a client acts on changed, so no ETag goes stale."""
        key = keys.booking_key(booking.booking_id)
        found = self.client.get_item(
            TableName=self.table, Key=key, ConsistentRead=True, ProjectionExpression="idempotencyRef"
        ).get("Item", {})
        reference = found.get("idempotencyRef", {}).get("M")
        if reference:
            self._erase_kept_answer(dict(reference))
        try:
            self.client.update_item(
                TableName=self.table,
                Key=key,
                UpdateExpression="REMOVE notes, cancelReason, declineReason",
                ConditionExpression="attribute_exists(PK)",
            )
        except ClientError as error:
            if error_code(error) != "ConditionalCheckFailedException":
                raise

    def _erase_kept_answer(self, key: dict[str, Any]) -> None:
        found = self.client.get_item(TableName=self.table, Key=key, ConsistentRead=True).get("Item")
        if not found or "body" not in found:
            return  # expired and removed by TTL
        body = json.loads(found["body"]["S"])
        if not isinstance(body, dict):
            return
        # A booking's answer, or a series' (its occurrences' answers in `items`, each with the notes).
        answers = [body, *(item for item in body.get("items", []) if isinstance(item, dict))]
        if [answer.pop("notes", None) for answer in answers].count(None) == len(answers):
            return
        try:
            self.client.update_item(
                TableName=self.table,
                Key=key,
                UpdateExpression="SET body = :body",
                ConditionExpression="attribute_exists(PK)",
                ExpressionAttributeValues={":body": {"S": json.dumps(body, ensure_ascii=False)}},
            )
        except ClientError as error:
            if error_code(error) != "ConditionalCheckFailedException":
                raise

    def record_erasure(self, customer_id: str, bookings: int, by: Attribution, now: datetime) -> None:
        """The erasure itself, as an item whose stream record tells the audit service to delete the
        customer's sealing key and record who erased; TTL removes it a week later."""
        item = {
            "PK": {"S": f"CUSTOMER#{customer_id}"},
            "SK": {"S": f"ERASURE#{by.request_id}"},
            **to_item(
                {
                    "entityType": "PersonalDataErasure",
                    "customerId": customer_id,
                    "bookings": bookings,
                    "expiresAt": int((now + ERASURE_KEPT).timestamp()),
                    **attribution(by, iso_utc(now)),
                }
            ),
        }
        self.client.put_item(TableName=self.table, Item=item)

    def mark_no_show(self, booking: Booking, by: Attribution) -> ClaimOutcome:
        now = iso_utc(datetime.now(UTC))
        fields = {"status": BookingStatus.NO_SHOW.value, "version": booking.version + 1, **attribution(by, now)}
        writes = [
            self._update_booking(booking, fields, "NO_SHOW"),
            *self._release(booked_span(booking), booking.provider_id),
        ]
        return self._commit(writes, False, booking.provider_id, removed=booked_span(booking))

    # Holds

    def get_hold(self, hold_id: str) -> Hold | None:
        found = self.client.get_item(TableName=self.table, Key=keys.hold_key(hold_id), ConsistentRead=True).get("Item")
        return hold_from(from_item(dict(found))) if found else None

    def customer_holds(self, customer_id: str) -> CustomerHolds:
        key = keys.customer_holds_key(customer_id)
        found = self.client.get_item(TableName=self.table, Key=key, ConsistentRead=True).get("Item")
        if not found:
            return CustomerHolds({}, 0)
        values = from_item(dict(found))
        expiries = {hold_id: datetime.fromtimestamp(epoch, UTC) for hold_id, epoch in values.get("holds", {}).items()}
        return CustomerHolds(expiries, values["version"])

    def hold(self, hold: Hold, calendar: ProviderCalendar, holds: CustomerHolds, by: Attribution) -> ClaimOutcome:
        item = self._hold_item(hold, by, iso_utc(datetime.now(UTC)))
        kept = {hold_id: int(expires.timestamp()) for hold_id, expires in holds.expiries.items()}
        kept[hold.hold_id] = int(hold.expires_at.timestamp())
        customer: dict[str, Any] = {
            "TableName": self.table,
            "Key": keys.customer_holds_key(hold.held_by),
            "UpdateExpression": "SET entityType = :type, holds = :holds ADD version :one",
            "ExpressionAttributeValues": to_item({":type": "CustomerHolds", ":holds": kept, ":one": 1}),
        }
        if holds.version:
            customer["ConditionExpression"] = "version = :seen"
            customer["ExpressionAttributeValues"][":seen"] = {"N": str(holds.version)}
        else:
            customer["ConditionExpression"] = "attribute_not_exists(PK)"
        writes: list[dict[str, Any]] = [
            {"Put": {"TableName": self.table, "Item": item, "ConditionExpression": "attribute_not_exists(PK)"}},
            {"Update": customer},
            *self._move_time(hold_span(hold), hold.provider_id, None, calendar),
            self._lapse_marker(Lapse("HOLD", hold.hold_id, hold.expires_at)),
        ]
        # A hold counts in no limit, but is refused as its booking would be: the counters must have room.
        limits = range(len(writes), len(writes) + len(hold.counters))
        writes += self._count(hold.provider_id, hold.counters, check_only=True)
        return self._commit(writes, False, hold.provider_id, added=hold_span(hold), limits=limits)

    def _hold_item(self, hold: Hold, by: Attribution, now: str) -> dict[str, Any]:
        return {
            **keys.hold_key(hold.hold_id),
            **to_item(
                {
                    "entityType": "Hold",
                    "holdId": hold.hold_id,
                    "providerId": hold.provider_id,
                    "serviceId": hold.service_id,
                    "customerId": hold.customer_id,
                    "providerOwner": hold.provider_owner,
                    "timeZone": hold.time_zone,
                    "start": iso_utc(hold.start),
                    "end": iso_utc(hold.end),
                    "busyStart": iso_utc(hold.busy_start),
                    "busyEnd": iso_utc(hold.busy_end),
                    # Also the TTL attribute: DynamoDB removes the item some time after; the time is
                    # free at `expiresAt` because every reader judges a hold by it.
                    "expiresAt": int(hold.expires_at.timestamp()),
                    "createdAt": hold.created_at,
                    "heldBy": hold.held_by,
                    "approvalTimeoutHours": hold.approval_hours,
                    "limitCounters": {c.key: [c.limit, int(c.ends.timestamp())] for c in hold.counters} or None,
                    "waitlistId": hold.waitlist_id,
                    **attribution(by, now),
                }
            ),
        }

    def convert(
        self, hold: Hold, booking: Booking, idempotency: IdempotencyRecord | None, by: Attribution
    ) -> ClaimOutcome:
        """The booking takes the hold's place in each of its blocks, conditioned on the hold's span being
        there and the hold live: no block's version is checked, since the hold already kept the time
        from everyone else. Nor are the hours or the service: they were checked when it was held."""
        now = datetime.now(UTC)
        writes: list[dict[str, Any]] = [
            self._booking_put(booking, idempotency, by, iso_utc(now), _counted(hold.counters))
        ]
        ended = self._end_hold(hold, "CONVERTED", by, now, {"bookingId": booking.booking_id})
        ended["Update"]["ConditionExpression"] += " AND expiresAt > :now AND customerId = :customer"
        ended["Update"]["ExpressionAttributeValues"] |= to_item(
            {":now": int(now.timestamp()), ":customer": hold.customer_id}
        )
        writes.append(ended)
        span = span_of(booked_span(booking))
        for block in live_blocks(booking.busy_start, booking.busy_end, now):
            writes.append(
                {
                    "Update": {
                        "TableName": self.table,
                        "Key": keys.busy_block_key(booking.provider_id, block),
                        "UpdateExpression": "SET spans.#booking = :span REMOVE spans.#hold ADD version :one",
                        "ConditionExpression": "attribute_exists(spans.#hold)",
                        "ExpressionAttributeNames": {"#booking": booking.booking_id, "#hold": hold.hold_id},
                        "ExpressionAttributeValues": to_item({":span": span, ":one": 1}),
                    }
                }
            )
        writes += self._forget_hold(hold)
        writes += self._end_offer(hold, WaitlistStatus.BOOKED, by, iso_utc(now), {"bookingId": booking.booking_id})
        writes += self._approval_lapse(booking)
        # Counted now, under the limits of when it was held: another booking since may have filled one.
        limits = range(len(writes), len(writes) + len(hold.counters))
        writes += self._count(hold.provider_id, hold.counters)
        if idempotency is not None:
            writes.append(self._remember(by.actor, idempotency, iso_utc(now)))
        return self._commit(
            writes,
            idempotency is not None,
            hold.provider_id,
            added=booked_span(booking),
            removed=hold_span(hold),
            limits=limits,
        )

    def release(self, hold: Hold, by: Attribution) -> ClaimOutcome:
        now = datetime.now(UTC)
        writes: list[dict[str, Any]] = [
            self._end_hold(hold, "RELEASED", by, now, {}),
            *self._release(hold_span(hold), hold.provider_id),
            *self._forget_hold(hold),
            *self._end_offer(hold, WaitlistStatus.DECLINED, by, iso_utc(now), {}),
        ]
        return self._commit(writes, False, hold.provider_id, removed=hold_span(hold))

    def _end_hold(
        self,
        hold: Hold,
        how: str,
        by: Attribution,
        now: datetime,
        fields: dict[str, Any],
        expired_at: datetime | None = None,
    ) -> dict[str, Any]:
        """The hold ended (`CONVERTED` into a booking, `RELEASED`, or a waitlist offer `EXPIRED` at
        `expired_at`), once: kept, with who ended it, and expired (at once, unless it already had), so
        every reader takes it for gone and TTL removes it. The change is the trail's record of a
        conversion or a release; an offer's expiry is recorded by its entry's (`WAITLIST_EXPIRED`)."""
        expires = int((expired_at or now).timestamp())
        values = {"status": how, "expiresAt": expires, **fields, **attribution(by, iso_utc(now))}
        names = {f"#f{i}": name for i, name in enumerate(values)}
        return {
            "Update": {
                "TableName": self.table,
                "Key": keys.hold_key(hold.hold_id),
                "UpdateExpression": "SET " + ", ".join(f"#f{i} = :f{i}" for i in range(len(values))),
                "ConditionExpression": "attribute_exists(PK) AND attribute_not_exists(#ended)",
                "ExpressionAttributeNames": {**names, "#ended": "status"},
                "ExpressionAttributeValues": to_item({f":f{i}": value for i, value in enumerate(values.values())}),
            }
        }

    # External busy time and the Calendly connection (decision 0030)

    def external_block(self, external_id: str) -> ExternalBlock | None:
        found = self.client.get_item(TableName=self.table, Key=keys.external_key(external_id), ConsistentRead=True)
        return external_from(from_item(dict(found["Item"]))) if "Item" in found else None

    def block_external(
        self,
        block: ExternalBlock,
        calendar: ProviderCalendar,
        by: Attribution,
        holds: list[Hold],
        pending: list[Booking],
    ) -> ClaimOutcome:
        """The block's item and its span, each block it touches guarded by the version the decision read,
        as a booking's claim is: a booking of that time racing it, one of the two fails. No check of the
        hours or of a service: the time is busy whatever our hours say. The holds it overlaps end and
        the bookings awaiting approval it overlaps are declined, in the same transaction, each only
        from the state the decision read; their spans leave every live block."""
        now = datetime.now(UTC)
        evicted = (*(hold_span(hold) for hold in holds), *(booked_span(booking) for booking in pending))
        writes, gone = self._block_writes(block.span, block.provider_id, None, calendar, evicted)
        put = {
            "Put": {
                "TableName": self.table,
                "Item": self._external_item(block, by),
                "ConditionExpression": "attribute_not_exists(PK)",
            }
        }
        writes = [put, *writes, *self._kills(gone, block.provider_id, calendar)]
        for hold in holds:
            writes.append(self._end_hold(hold, "RELEASED", by, now, {"releasedFor": block.external_id}))
            writes += self._forget_hold(hold)
            writes += self._end_offer(hold, WaitlistStatus.DECLINED, by, iso_utc(now), {})
        for booking in pending:
            fields = {
                "status": BookingStatus.DECLINED.value,
                "declineReason": "The provider's Calendly booked this time.",
                "version": booking.version + 1,
                "approvalExpiresAt": None,
            }
            writes.append(self._update_booking(booking, {**fields, **attribution(by, iso_utc(now))}, "DECLINED"))
            writes += self._uncount(booking.provider_id, booking.counted or {})
        if len(writes) > MAX_TRANSACTION_ITEMS:
            raise BusyError("This Calendly event overlaps too much of ours to be taken in one transaction.")
        outcome = self._commit(writes, False, block.provider_id, added=block.span)
        if evicted:
            self.remembered.forget(block.provider_id)  # the evicted spans are gone: read it again next time
        return outcome

    def record_external(self, block: ExternalBlock, by: Attribution) -> bool:
        """A block that takes no time: one cancelled before its create arrived (FREED)."""
        try:
            self.client.put_item(
                TableName=self.table,
                Item=self._external_item(block, by),
                ConditionExpression="attribute_not_exists(PK)",
            )
        except ClientError as error:
            if error_code(error) == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def free_external(self, block: ExternalBlock, freed: ExternalBlock, by: Attribution) -> ClaimOutcome:
        """Only from the status read; its span leaves its live blocks in the same transaction."""
        now = iso_utc(datetime.now(UTC))
        change = update_of({"status": freed.status.value, "rescheduled": freed.rescheduled, **attribution(by, now)})
        change["ExpressionAttributeValues"][":read"] = {"S": block.status.value}
        update = {
            "Update": {
                "TableName": self.table,
                "Key": keys.external_key(block.external_id),
                "ConditionExpression": "#a0 = :read",  # #a0: status
                **change,
            }
        }
        busy = block.status in {ExternalStatus.BUSY, ExternalStatus.CONFLICT}  # both hold their time
        writes = [update, *(self._release(block.span, block.provider_id) if busy else [])]
        return self._commit(writes, False, block.provider_id, removed=block.span if busy else None)

    def _external_item(self, block: ExternalBlock, by: Attribution) -> dict[str, Any]:
        now = iso_utc(datetime.now(UTC))
        return {
            **keys.external_key(block.external_id),
            **to_item(
                {
                    "entityType": "ExternalBlock",
                    "externalId": block.external_id,
                    "providerId": block.provider_id,
                    "source": block.source,
                    "reference": block.reference,
                    "eventUri": block.event_uri,
                    "start": iso_utc(block.start),
                    "end": iso_utc(block.end),
                    "status": block.status.value,
                    "conflictsWith": list(block.conflicts_with) or None,
                    "released": list(block.released) or None,
                    "declined": list(block.declined) or None,
                    "rescheduled": block.rescheduled or None,
                    "replaces": block.replaces,
                    "createdAt": block.created_at,
                    # Kept as long as its span's blocks are, then TTL removes it: nothing refers to it after.
                    "expiresAt": int((block.end + BUSY_KEPT_AFTER + timedelta(days=1)).timestamp()),
                    **attribution(by, now),
                }
            ),
        }

    def owner_of(self, provider_id: str) -> str | None:
        calendar = self.configuration(provider_id)
        return calendar.provider.owner_sub if calendar is not None else None

    def calendly_connection(self, provider_id: str) -> CalendlyConnection | None:
        key = keys.calendly_integration_key(provider_id)
        found = self.client.get_item(TableName=self.table, Key=key, ConsistentRead=True).get("Item")
        values = from_item(dict(found)) if found else {}
        if not values.get("sealedKey"):
            return None  # never connected, or disconnected
        return CalendlyConnection(
            provider_id,
            base64.b64decode(values["sealedKey"]),
            values["connectedAt"],
            values.get("calendlyUser") or None,
        )

    def connect_calendly(self, connection: CalendlyConnection, by: Attribution) -> None:
        values = {
            "entityType": "CalendlyConnection",
            "providerId": connection.provider_id,
            "connectedAt": connection.connected_at,
            "calendlyUser": connection.user_uri or "",  # "": any user's events (no user named)
            **attribution(by, connection.connected_at),
        }
        # Text, not a binary attribute: the stream's readers get it as JSON, where boto3 cannot read a
        # binary value back (local/lambda_runtime/stream_records.py).
        values["sealedKey"] = base64.b64encode(connection.sealed_key).decode()
        self.client.update_item(
            TableName=self.table,
            Key=keys.calendly_integration_key(connection.provider_id),
            **update_of(values, bump_version=True),
        )

    def disconnect_calendly(self, provider_id: str, by: Attribution) -> bool:
        """The key is removed and the item kept, with who removed it, for the trail."""
        now = iso_utc(datetime.now(UTC))
        try:
            self.client.update_item(
                TableName=self.table,
                Key=keys.calendly_integration_key(provider_id),
                ConditionExpression="attribute_exists(sealedKey)",
                **update_of({"disconnectedAt": now, **attribution(by, now)}, remove=("sealedKey",), bump_version=True),
            )
        except ClientError as error:
            if error_code(error) == "ConditionalCheckFailedException":
                return False
            raise
        return True

    # Waitlist

    def add_to_waitlist(self, entry: WaitlistEntry, max_live: int, by: Attribution) -> ClaimOutcome:
        """Put the entry in line, and count it among its customer's live entries, under `max_live`."""
        now = iso_utc(datetime.now(UTC))
        item = {
            **keys.waitlist_key(entry.waitlist_id),
            **keys.active_waitlist_keys(entry.provider_id, entry.created_at, entry.waitlist_id),
            **to_item(
                {
                    "entityType": "WaitlistEntry",
                    "waitlistId": entry.waitlist_id,
                    "providerId": entry.provider_id,
                    "serviceId": entry.service_id,
                    "customerId": entry.customer_id,
                    "providerOwner": entry.provider_owner,
                    "timeZone": entry.time_zone,
                    "from": iso_utc(entry.window_start),
                    "to": iso_utc(entry.window_end),
                    "status": entry.status.value,
                    "version": entry.version,
                    "createdAt": entry.created_at,
                    "createdBy": entry.created_by,
                    # TTL: an entry is kept a while after its window for the trail's readers, then goes
                    # (whatever its status: the sweep ends one left in line when its window passes).
                    "expiresAt": int((entry.window_end + WAITLIST_KEPT_AFTER).timestamp()),
                    **attribution(by, now),
                }
            ),
        }
        counted = {
            "Update": {
                "TableName": self.table,
                "Key": keys.customer_waitlist_key(entry.customer_id),
                "UpdateExpression": "SET entityType = :type ADD live :one",
                "ConditionExpression": "attribute_not_exists(live) OR live < :max",
                "ExpressionAttributeValues": to_item({":type": "CustomerWaitlist", ":one": 1, ":max": max_live}),
            }
        }
        writes = [{"Put": {"TableName": self.table, "Item": item, "ConditionExpression": "attribute_not_exists(PK)"}}]
        return self._commit([*writes, counted], False, entry.provider_id, limits=range(1, 2))

    def get_waitlist_entry(self, waitlist_id: str) -> WaitlistEntry | None:
        key = keys.waitlist_key(waitlist_id)
        found = self.client.get_item(TableName=self.table, Key=key, ConsistentRead=True).get("Item")
        return waitlist_entry_from(from_item(dict(found))) if found else None

    def waitlist(self, provider_id: str | None = None) -> list[WaitlistEntry]:
        """The entries in line (waiting or offered) of one provider, or of all, oldest first within a
        provider. From the index, so eventually consistent: every change of an entry is conditioned
        on the version read here, so a stale entry costs a refused write, never a second offer."""
        values = {":line": keys.ACTIVE_WAITLIST}
        condition = "GSI2PK = :line"
        if provider_id is not None:
            condition += " AND begins_with(GSI2SK, :provider)"
            values[":provider"] = f"{provider_id}#"
        request: dict[str, Any] = {
            "TableName": self.table,
            "IndexName": keys.WAITLIST_INDEX,
            "KeyConditionExpression": condition,
            "ExpressionAttributeValues": to_item(values),
        }
        entries = []
        while True:
            page = self.client.query(**request)
            entries += [waitlist_entry_from(from_item(dict(item))) for item in page["Items"]]
            if "LastEvaluatedKey" not in page:
                return entries
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def offer(self, entry: WaitlistEntry, hold: Hold, calendar: ProviderCalendar, by: Attribution) -> ClaimOutcome:
        """The entry's offer in one transaction: the hold, claimed as any hold is (its blocks, the two
        calendar checks, room in the customer's limits), and the entry `OFFERED` with it, from the
        very version read (`Refused` when the entry changed meanwhile: taken out of line, or offered
        by a sweep running at the same time)."""
        now = iso_utc(datetime.now(UTC))
        offered = self._entry_update(
            entry,
            WaitlistStatus.OFFERED,
            by,
            now,
            {"holdId": hold.hold_id, "offerExpiresAt": int(hold.expires_at.timestamp())},
        )
        writes: list[dict[str, Any]] = [
            offered,
            {
                "Put": {
                    "TableName": self.table,
                    "Item": self._hold_item(hold, by, now),
                    "ConditionExpression": "attribute_not_exists(PK)",
                }
            },
            *self._move_time(hold_span(hold), hold.provider_id, None, calendar),
        ]
        limits = range(len(writes), len(writes) + len(hold.counters))
        writes += self._count(hold.provider_id, hold.counters, check_only=True)
        return self._commit(writes, False, hold.provider_id, added=hold_span(hold), limits=limits)

    def end_waitlist_entry(
        self,
        entry: WaitlistEntry,
        status: WaitlistStatus,
        by: Attribution,
        *,
        hold: Hold | None = None,
        lapsed: Hold | None = None,
    ) -> ClaimOutcome:
        """Take the entry out of line (`EXPIRED` or `CANCELLED`), from the version read; with `hold`,
        its live offer, released in the same transaction. An offered entry whose offer lapsed ends
        that hold (`lapsed`, as read; None once TTL removed it) too, on the condition that it has
        expired, so that the hold's customer, whose clock may run a little behind, is told it expired
        instead of racing the entry for it."""
        now = datetime.now(UTC)
        writes = [self._entry_update(entry, status, by, iso_utc(now), {}), self._uncount_entry(entry.customer_id)]
        if hold is not None:
            writes += [self._end_hold(hold, "RELEASED", by, now, {}), *self._release(hold_span(hold), hold.provider_id)]
        if hold is None and entry.status is WaitlistStatus.OFFERED and entry.hold_id:
            if lapsed is None:  # removed by TTL already
                check = {"TableName": self.table, "Key": keys.hold_key(entry.hold_id)}
                writes.append({"ConditionCheck": {**check, "ConditionExpression": "attribute_not_exists(PK)"}})
            else:
                ended = self._end_hold(lapsed, "EXPIRED", by, now, {}, expired_at=lapsed.expires_at)
                ended["Update"]["ConditionExpression"] += " AND expiresAt <= :now"
                ended["Update"]["ExpressionAttributeValues"][":now"] = {"N": str(int(now.timestamp()))}
                writes.append(ended)
        return self._commit(writes, False, entry.provider_id, removed=hold_span(hold) if hold else None)

    def _end_offer(
        self, hold: Hold, status: WaitlistStatus, by: Attribution, now: str, fields: dict[str, Any]
    ) -> list[dict[str, Any]]:
        """The entry a hold was offered to ends with it (`BOOKED`, `DECLINED`): only while that offer stands."""
        if hold.waitlist_id is None:
            return []
        values = {"status": status.value, **fields, **attribution(by, now)}
        names = {f"#f{i}": name for i, name in enumerate(values)}
        update = {
            "TableName": self.table,
            "Key": keys.waitlist_key(hold.waitlist_id),
            "UpdateExpression": "SET "
            + ", ".join(f"#f{i} = :f{i}" for i in range(len(values)))
            + " REMOVE GSI2PK, GSI2SK ADD version :one",
            "ConditionExpression": "#f0 = :offered AND holdId = :hold",
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": to_item(
                {
                    **{f":f{i}": value for i, value in enumerate(values.values())},
                    ":offered": WaitlistStatus.OFFERED.value,
                    ":hold": hold.hold_id,
                    ":one": 1,
                }
            ),
        }
        return [{"Update": update}, self._uncount_entry(hold.customer_id)]

    def _entry_update(
        self, entry: WaitlistEntry, status: WaitlistStatus, by: Attribution, now: str, fields: dict[str, Any]
    ) -> dict[str, Any]:
        """The entry moved to `status` from the status and version it was read in; an ended entry
        leaves the line (the index); the caller lowers its customer's count in the same transaction."""
        values = {"status": status.value, **fields, **attribution(by, now)}
        names = {f"#f{i}": name for i, name in enumerate(values)}
        expression = "SET " + ", ".join(f"#f{i} = :f{i}" for i in range(len(values)))
        if status is not WaitlistStatus.OFFERED:
            expression += " REMOVE GSI2PK, GSI2SK"
        return {
            "Update": {
                "TableName": self.table,
                "Key": keys.waitlist_key(entry.waitlist_id),
                "UpdateExpression": expression + " ADD version :one",
                "ConditionExpression": "#f0 = :was AND version = :seen",
                "ExpressionAttributeNames": names,
                "ExpressionAttributeValues": to_item(
                    {
                        **{f":f{i}": value for i, value in enumerate(values.values())},
                        ":was": entry.status.value,
                        ":seen": entry.version,
                        ":one": 1,
                    }
                ),
            }
        }

    def _uncount_entry(self, customer_id: str) -> dict[str, Any]:
        return {
            "Update": {
                "TableName": self.table,
                "Key": keys.customer_waitlist_key(customer_id),
                "UpdateExpression": "ADD live :less",
                "ConditionExpression": "attribute_exists(PK)",
                "ExpressionAttributeValues": {":less": {"N": "-1"}},
            }
        }

    # Recurring series (decision 0024)

    def configuration(self, provider_id: str) -> ProviderCalendar | None:
        """The provider's profile, schedule and services alone: one Query of its configuration."""
        return self.calendars.calendar_around(provider_id, [], [])

    def series_calendar(
        self, provider_id: str, spans: list[tuple[datetime, datetime]], local_days: list[date]
    ) -> ProviderCalendar | None:
        blocks = [block for start, end in spans for block in keys.busy_blocks(start, end)]
        return self.calendars.calendar_around(provider_id, blocks, local_days)

    def limit_counts(self, provider_id: str, counter_keys: set[str]) -> dict[str, int]:
        found = self.calendars.get_many([keys.limit_counter_key(provider_id, key) for key in sorted(counter_keys)])
        return {item["SK"]["S"]: int(item["count"]["N"]) for item in found if "count" in item}

    def claim_series(
        self,
        series: Series,
        occurrences: list[Booking],
        calendar: ProviderCalendar,
        expires_at: datetime,
        request_key: str | None = None,
    ) -> ClaimOutcome:
        """Claim every occurrence's time, in as many transactions as it takes, each holding as many
        occurrences as fit in 100 items: their spans, their limit counters, the calendar checks and
        the series' pending item, which lists the occurrences claimed and holds them until
        `expires_at`. If a part fails (or this raises), the parts before it are given back."""
        self.remembered.forget(series.provider_id)  # pending series are read, never remembered
        provider, service = calendar.provider, calendar.services[series.service_id]
        budget = MAX_SERIES_PART_ITEMS - len(calendar.pending_series)  # kills, at most one per series
        parts: list[list[tuple[Booking, list[Counter]]]] = []
        part: list[tuple[Booking, list[Counter]]] = []
        size = 0
        for booking in occurrences:
            found = counters(provider, service, booking.customer_id, booking.start)
            items = len(keys.busy_blocks(booking.busy_start, booking.busy_end)) + len(found)
            if part and size + items > budget:
                parts.append(part)
                part, size = [], 0
            part.append((booking, found))
            size += items
        parts.append(part)
        try:
            for number, part in enumerate(parts):
                outcome = self._claim_part(series, part, calendar, expires_at, number == 0, request_key)
                if not isinstance(outcome, Committed):
                    self.abandon_series(series.provider_id, series.series_id)  # nothing to give back: a no-op
                    return outcome
        except Exception:
            self.abandon_series(series.provider_id, series.series_id)
            raise
        return Committed()

    def _claim_part(
        self,
        series: Series,
        part: list[tuple[Booking, list[Counter]]],
        calendar: ProviderCalendar,
        expires_at: datetime,
        first: bool,
        request_key: str | None,
    ) -> ClaimOutcome:
        now = datetime.now(UTC)
        writes: list[dict[str, Any]] = []
        gone: set[str] = set()
        claimed: dict[str, Any] = {}
        raised: dict[str, Counter] = {}  # each counter once, with how many of this part count in it
        numbers: dict[str, int] = {}
        for booking, found in part:
            block_writes, expired = self._block_writes(booked_span(booking), booking.provider_id, None, calendar)
            writes += block_writes
            gone |= expired
            claimed[booking.booking_id] = {
                "busyStart": int(booking.busy_start.timestamp()),
                "busyEnd": int(booking.busy_end.timestamp()),
                "counted": _counted(found),
            }
            for counter in found:
                raised[counter.key] = counter
                numbers[counter.key] = numbers.get(counter.key, 0) + 1
        writes += self._kills(gone, series.provider_id, calendar)
        writes += self._calendar_checks(series.provider_id, booked_span(part[0][0]), calendar)
        marker = keys.pending_series_key(series.provider_id, series.series_id)
        # TTL: once every occurrence's day is over (its spans are then in past days' blocks, which no
        # reader heeds) and every counter it raised counts nothing any more (a week may end later).
        last = max(booking.busy_end for booking, _ in part).astimezone(UTC).date()
        kept_until = datetime.combine(last, datetime.min.time(), UTC) + SERIES_KEPT_AFTER
        kept_until = max([kept_until, *(counter.ends + KEPT_AFTER for _, found in part for counter in found)])
        if first:
            item = {
                **marker,
                **to_item(
                    {
                        "entityType": "PendingSeries",
                        "seriesId": series.series_id,
                        "claimExpiresAt": int(expires_at.timestamp()),
                        "occurrences": claimed,
                        "expiresAt": int(kept_until.timestamp()),
                        # A retry of the same request finds its own claim by this, and waits for it.
                        "requestKey": request_key,
                    }
                ),
            }
            writes.append(
                {"Put": {"TableName": self.table, "Item": item, "ConditionExpression": "attribute_not_exists(PK)"}}
            )
        else:
            names = {f"#o{i}": booking_id for i, booking_id in enumerate(claimed)}
            values = {f":o{i}": value for i, value in enumerate(claimed.values())}
            expires = int(kept_until.timestamp())  # parts go in time order: the last one's reaches furthest
            writes.append(
                {
                    "Update": {
                        "TableName": self.table,
                        "Key": marker,
                        "UpdateExpression": "SET "
                        + ", ".join(f"occurrences.{name} = {name.replace('#', ':')}" for name in names)
                        + ", expiresAt = :expires",
                        "ConditionExpression": "claimExpiresAt > :now AND attribute_not_exists(killed)",
                        "ExpressionAttributeNames": names,
                        "ExpressionAttributeValues": to_item(
                            {**values, ":now": int(now.timestamp()), ":expires": expires}
                        ),
                    }
                }
            )
        limits = range(len(writes), len(writes) + len(raised))
        for key, counter in sorted(raised.items()):
            writes.append(self._counter_update(series.provider_id, counter, numbers[key]))
        return self._commit(writes, False, series.provider_id, limits=limits)

    def commit_series(
        self, series: Series, occurrences: list[Booking], idempotency: IdempotencyRecord | None, by: Attribution
    ) -> ClaimOutcome:
        """One transaction: the pending item gone (while the series is live), each occurrence's booking
        and the series' item put, the idempotency record kept. From then on the occurrences' spans are
        bookings' spans."""
        now = datetime.now(UTC)
        stamp = iso_utc(now)
        writes: list[dict[str, Any]] = [
            {
                "Delete": {
                    "TableName": self.table,
                    "Key": keys.pending_series_key(series.provider_id, series.series_id),
                    "ConditionExpression": "claimExpiresAt > :now AND attribute_not_exists(killed)",
                    "ExpressionAttributeValues": {":now": {"N": str(int(now.timestamp()))}},
                }
            }
        ]
        for booking in occurrences:
            writes.append(self._booking_put(booking, idempotency, by, stamp, booking.counted or {}))
        writes.append(self._series_put(series, by, stamp))
        # Its pending occurrences share one approval deadline: one marker for the series.
        deadlines = {booking.approval_expires_at for booking in occurrences if booking.status is BookingStatus.PENDING}
        if deadlines:
            writes.append(self._lapse_marker(Lapse("SERIES", series.series_id, min(d for d in deadlines if d))))
        if idempotency is not None:
            writes.append(self._remember(by.actor, idempotency, stamp))
        self.remembered.forget(series.provider_id)
        return self._commit(writes, idempotency is not None, series.provider_id)

    def _series_put(self, series: Series, by: Attribution, now: str) -> dict[str, Any]:
        item = {
            **keys.series_key(series.series_id),
            **to_item(
                {
                    "entityType": "Series",
                    "seriesId": series.series_id,
                    "providerId": series.provider_id,
                    "serviceId": series.service_id,
                    "customerId": series.customer_id,
                    "providerOwner": series.provider_owner,
                    "timeZone": series.time_zone,
                    "recurrence": {
                        "frequency": series.recurrence.frequency,
                        "interval": series.recurrence.interval,
                        "count": series.recurrence.count,
                    },
                    "bookingIds": list(series.booking_ids),
                    "status": series.status.value,
                    "version": series.version,
                    "createdAt": series.created_at,
                    **attribution(by, now),
                }
            ),
        }
        return {"Put": {"TableName": self.table, "Item": item, "ConditionExpression": "attribute_not_exists(PK)"}}

    def abandon_series(self, provider_id: str, series_id: str) -> bool:
        """Give a series that will not commit its time back: kill its pending item (it can no longer
        commit), then, a few occurrences per transaction, take their spans out of the busy blocks and
        their counts out of the limit counters, each only while the item still lists it (so a second
        abandon, or one cut short and done again, lowers nothing twice); then delete the item."""
        marker = keys.pending_series_key(provider_id, series_id)
        try:
            found = self.client.update_item(
                TableName=self.table,
                Key=marker,
                UpdateExpression="SET killed = :true",
                ConditionExpression="attribute_exists(PK)",
                ExpressionAttributeValues={":true": {"BOOL": True}},
                ReturnValues="ALL_NEW",
            )
        except ClientError as error:
            if error_code(error) == "ConditionalCheckFailedException":
                return False  # committed, or abandoned already
            raise
        self.remembered.forget(provider_id)
        occurrences: dict[str, Any] = from_item(dict(found["Attributes"])).get("occurrences", {})
        now = datetime.now(UTC)
        part: list[tuple[str, dict[str, Any]]] = []
        size = 0
        for booking_id, claimed in sorted(occurrences.items()):
            start = datetime.fromtimestamp(claimed["busyStart"], UTC)
            end = datetime.fromtimestamp(claimed["busyEnd"], UTC)
            items = len(live_blocks(start, end, now)) + len(claimed["counted"])
            if part and size + items > MAX_SERIES_PART_ITEMS:
                self._give_back(provider_id, marker, part)
                part, size = [], 0
            part.append((booking_id, claimed))
            size += items
        if part:
            self._give_back(provider_id, marker, part)
        try:
            self.client.delete_item(
                TableName=self.table,
                Key=marker,
                ConditionExpression="attribute_exists(PK) AND size(occurrences) = :none",
                ExpressionAttributeValues={":none": {"N": "0"}},
            )
        except ClientError as error:
            if error_code(error) != "ConditionalCheckFailedException":
                raise
        return True

    def _give_back(self, provider_id: str, marker: keys.Key, part: list[tuple[str, dict[str, Any]]]) -> None:
        now = datetime.now(UTC)
        names = {f"#o{i}": booking_id for i, (booking_id, _) in enumerate(part)}
        writes: list[dict[str, Any]] = [
            {
                "Update": {
                    "TableName": self.table,
                    "Key": marker,
                    "UpdateExpression": "REMOVE " + ", ".join(f"occurrences.{name}" for name in names),
                    "ConditionExpression": " AND ".join(f"attribute_exists(occurrences.{name})" for name in names),
                    "ExpressionAttributeNames": names,
                }
            }
        ]
        lowered: dict[str, tuple[int, int]] = {}
        for booking_id, claimed in part:
            start = datetime.fromtimestamp(claimed["busyStart"], UTC)
            end = datetime.fromtimestamp(claimed["busyEnd"], UTC)
            for block in live_blocks(start, end, now):
                writes.append(
                    {
                        "Update": {
                            "TableName": self.table,
                            "Key": keys.busy_block_key(provider_id, block),
                            "UpdateExpression": "REMOVE spans.#booking ADD version :one",
                            "ConditionExpression": "attribute_exists(PK)",
                            "ExpressionAttributeNames": {"#booking": booking_id},
                            "ExpressionAttributeValues": {":one": {"N": "1"}},
                        }
                    }
                )
            for key, ends in claimed["counted"].items():
                number, _ = lowered.get(key, (0, ends))
                lowered[key] = (number + 1, ends)
        for key, (number, ends) in sorted(lowered.items()):
            if ends > now.timestamp():
                writes.append(
                    {
                        "Update": {
                            "TableName": self.table,
                            "Key": keys.limit_counter_key(provider_id, key),
                            "UpdateExpression": "ADD #count :minus",
                            "ConditionExpression": "attribute_exists(#count)",
                            "ExpressionAttributeNames": {"#count": "count"},
                            "ExpressionAttributeValues": {":minus": {"N": str(-number)}},
                        }
                    }
                )
        for attempt in range(GIVE_BACK_ATTEMPTS):
            try:
                self.client.transact_write_items(TransactItems=writes, ClientRequestToken=str(uuid.uuid4()))  # type: ignore[arg-type]
                return
            except ClientError as error:
                if error_code(error) not in {"TransactionCanceledException", "TransactionConflictException"}:
                    raise
                codes = {reason.get("Code") for reason in cancellation_reasons(error)}
                if error_code(error) == "TransactionConflictException" or "TransactionConflict" in codes:
                    time.sleep(random.uniform(0, 0.05 * 2**attempt))  # another change of those items: again
                    continue
            # An occurrence given back already (an abandon done twice): give back the others one by one.
            if len(part) > 1:
                for one in part:
                    self._give_back(provider_id, marker, [one])
            return

    def get_series(self, series_id: str) -> Series | None:
        found = self.client.get_item(TableName=self.table, Key=keys.series_key(series_id), ConsistentRead=True)
        return series_from(from_item(dict(found["Item"]))) if "Item" in found else None

    def get_bookings(self, booking_ids: list[str]) -> list[Booking]:
        """The bookings of `booking_ids` that exist, strongly consistent, in that order."""
        found = self.calendars.get_many([keys.booking_key(booking_id) for booking_id in booking_ids])
        by_id = {booking.booking_id: booking for booking in (booking_from(from_item(item)) for item in found)}
        return [by_id[booking_id] for booking_id in booking_ids if booking_id in by_id]

    def end_series(self, series: Series, by: Attribution) -> ClaimOutcome:
        """The series marked cancelled (its occurrences are cancelled one by one, before)."""
        now = iso_utc(datetime.now(UTC))
        fields = {"status": SeriesStatus.CANCELLED.value, "version": series.version + 1, **attribution(by, now)}
        names = {f"#f{i}": name for i, name in enumerate(fields)}
        try:
            self.client.update_item(
                TableName=self.table,
                Key=keys.series_key(series.series_id),
                UpdateExpression="SET " + ", ".join(f"#f{i} = :f{i}" for i in range(len(fields))),
                ConditionExpression="#version = :read",
                ExpressionAttributeNames={**names, "#version": "version"},
                ExpressionAttributeValues=to_item(
                    {**{f":f{i}": value for i, value in enumerate(fields.values())}, ":read": series.version}
                ),
            )
        except ClientError as error:
            if error_code(error) == "ConditionalCheckFailedException":
                return Refused()
            raise
        return Committed()

    # Limits (services/common/limits.py)

    def _count(
        self, provider_id: str, found: list[Counter] | tuple[Counter, ...], *, check_only: bool = False
    ) -> list[dict[str, Any]]:
        """Each counter one up, on the condition that it is below its limit (or only that condition)."""
        return [self._counter_update(provider_id, counter, 1, check_only=check_only) for counter in found]

    def _counter_update(
        self, provider_id: str, counter: Counter, number: int, *, check_only: bool = False
    ) -> dict[str, Any]:
        """The counter `number` up, on the condition that it has room for them (or only that condition)."""
        change: dict[str, Any] = {
            "TableName": self.table,
            "Key": keys.limit_counter_key(provider_id, counter.key),
            "ConditionExpression": "attribute_not_exists(#count) OR #count <= :room",
            "ExpressionAttributeNames": {"#count": "count"},
            "ExpressionAttributeValues": {":room": {"N": str(counter.limit - number)}},
        }
        if check_only:
            return {"ConditionCheck": change}
        change["UpdateExpression"] = "SET entityType = :type, expiresAt = :expires ADD #count :n"
        change["ExpressionAttributeValues"] |= to_item(
            {":type": "LimitCounter", ":expires": int((counter.ends + KEPT_AFTER).timestamp()), ":n": number}
        )
        return {"Update": change}

    def _uncount(self, provider_id: str, counted: dict[str, int]) -> list[dict[str, Any]]:
        """Each counter one down, unless its day or week is over (it counts nothing anyone asks about,
        and TTL may have removed it)."""
        now = datetime.now(UTC).timestamp()
        return [
            {
                "Update": {
                    "TableName": self.table,
                    "Key": keys.limit_counter_key(provider_id, key),
                    "UpdateExpression": "ADD #count :minus",
                    "ConditionExpression": "attribute_exists(#count)",
                    "ExpressionAttributeNames": {"#count": "count"},
                    "ExpressionAttributeValues": {":minus": {"N": "-1"}},
                }
            }
            for key, ends in sorted(counted.items())
            if ends > now
        ]

    def _counted_of(self, booking: Booking) -> dict[str, int]:
        found = self.client.get_item(
            TableName=self.table,
            Key=keys.booking_key(booking.booking_id),
            ConsistentRead=True,
            ProjectionExpression="limitCounters",
        ).get("Item", {})
        counted: dict[str, int] = from_item(dict(found)).get("limitCounters", {})
        return counted

    def _forget_hold(self, hold: Hold) -> list[dict[str, Any]]:
        """The hold out of its caller's live holds (no condition: taking one out raises no count); an
        offer from the waitlist was never in them."""
        if hold.waitlist_id is not None:
            return []
        return [
            {
                "Update": {
                    "TableName": self.table,
                    "Key": keys.customer_holds_key(hold.held_by),
                    "UpdateExpression": "REMOVE holds.#hold ADD version :one",
                    "ConditionExpression": "attribute_exists(PK)",
                    "ExpressionAttributeNames": {"#hold": hold.hold_id},
                    "ExpressionAttributeValues": {":one": {"N": "1"}},
                }
            }
        ]

    def _release(self, span: BookedSpan, provider_id: str) -> list[dict[str, Any]]:
        """Take a booking's (or hold's) span out of its live blocks: in those, a span exists exactly
        while its booking is confirmed (`live_blocks` says why the past ones are left alone).

        No version check: removing our own span cannot overlap anything.
        """
        return [
            {
                "Update": {
                    "TableName": self.table,
                    "Key": keys.busy_block_key(provider_id, block),
                    "UpdateExpression": "REMOVE spans.#booking ADD version :one",
                    "ConditionExpression": "attribute_exists(spans.#booking)",
                    "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                    "ExpressionAttributeNames": {"#booking": span.booking_id},
                    "ExpressionAttributeValues": {":one": {"N": "1"}},
                }
            }
            for block in live_blocks(span.start, span.end, datetime.now(UTC))
        ]

    def _update_booking(self, booking: Booking, fields: dict[str, Any], change: str) -> dict[str, Any]:
        """The booking's update, only from the state it was read in (its status, that version)."""
        values = {k: v for k, v in fields.items() if v is not None}
        removed = [k for k, v in fields.items() if v is None]
        names = {f"#f{i}": name for i, name in enumerate([*values, *removed])}
        assignments = ", ".join(f"#f{i} = :f{i}" for i in range(len(values)))
        expression = f"SET {assignments}, lastChange = :change"
        if removed:
            expression += " REMOVE " + ", ".join(f"#f{len(values) + i}" for i in range(len(removed)))
        return {
            "Update": {
                "TableName": self.table,
                "Key": keys.booking_key(booking.booking_id),
                "UpdateExpression": expression,
                "ConditionExpression": "#status = :status AND #version = :read",
                "ExpressionAttributeNames": {**names, "#status": "status", "#version": "version"},
                "ExpressionAttributeValues": to_item(
                    {
                        **{f":f{i}": value for i, value in enumerate(values.values())},
                        ":change": change,
                        ":status": booking.status.value,
                        ":read": booking.version,
                    }
                ),
            }
        }

    def _move_time(
        self, span: BookedSpan, provider_id: str, previous: BookedSpan | None, calendar: ProviderCalendar
    ) -> list[dict[str, Any]]:
        """Busy-block updates that put `span` in (and `previous` out), plus the calendar checks."""
        writes, gone = self._block_writes(span, provider_id, previous, calendar)
        return [*writes, *self._kills(gone, provider_id, calendar), *self._calendar_checks(provider_id, span, calendar)]

    def _block_writes(
        self,
        span: BookedSpan,
        provider_id: str,
        previous: BookedSpan | None,
        calendar: ProviderCalendar,
        evicted: tuple[BookedSpan, ...] = (),
    ) -> tuple[list[dict[str, Any]], set[str]]:
        """Busy-block updates that put `span` in (and `previous` out), and the ids of the expired spans
        they take out.

        Every block the new span touches is conditioned on the version the decision read (or on not
        existing): any booking or hold that overlaps the new span shares one of them with it. A block
        only the old span touches loses that span, unconditioned. Expired spans (holds', and those of
        series given up or not committed in time) are taken out of the blocks written, as they go by
        (the engine already treats them as free). `evicted` spans (an external block's, taking their
        time) leave every live block of theirs: those the new span touches, and the others too."""
        stored = span_of(span)
        now = datetime.now(UTC)
        new_blocks = keys.busy_blocks(span.start, span.end)
        old_blocks = live_blocks(previous.start, previous.end, now) if previous else []
        ours = {span.booking_id, previous.booking_id if previous else None}
        expired = [other for other in calendar.booked.values() if not other.live(now) and other.booking_id not in ours]
        expired += [other for other in evicted if other.live(now)]
        outside: dict[datetime, list[str]] = {}  # blocks only evicted spans touch: theirs taken out
        for other in evicted:
            for block in live_blocks(other.start, other.end, now):
                if block not in new_blocks:
                    outside.setdefault(block, []).append(other.booking_id)
        writes, removed = [], set()
        for block in sorted(set(new_blocks) | set(old_blocks)):
            seen = calendar.busy_versions.get(keys.block_id(block))
            update: dict[str, Any] = {
                "TableName": self.table,
                "Key": keys.busy_block_key(provider_id, block),
                "ExpressionAttributeValues": {":one": {"N": "1"}},
                # A block found changed comes back as it is now: this container learns it (remembered_calendars.py).
                "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
            }
            values = update["ExpressionAttributeValues"]
            if block not in new_blocks or seen is not None:
                update["ExpressionAttributeNames"] = {"#booking": span.booking_id}
            if block not in new_blocks:
                update["UpdateExpression"] = "REMOVE spans.#booking ADD version :one"
            elif seen is None:
                day = block.astimezone(UTC).date()
                expires = datetime.combine(day, datetime.min.time(), UTC) + timedelta(days=1) + BUSY_KEPT_AFTER
                update["UpdateExpression"] = (
                    "SET entityType = :type, expiresAt = :expires, spans = :spans ADD version :one"
                )
                values.update(
                    to_item(
                        {
                            ":type": "BusyBlock",
                            ":expires": int(expires.timestamp()),
                            ":spans": {span.booking_id: stored},
                        }
                    )
                )
            else:
                gone = [other.booking_id for other in expired if block in keys.busy_blocks(other.start, other.end)]
                removed.update(gone)
                update["ExpressionAttributeNames"] |= {f"#gone{i}": hold_id for i, hold_id in enumerate(gone)}
                removal = " REMOVE " + ", ".join(f"spans.#gone{i}" for i in range(len(gone))) if gone else ""
                update["UpdateExpression"] = f"SET spans.#booking = :span{removal} ADD version :one"
                values.update(to_item({":span": stored}))
            if block not in new_blocks:
                update["ConditionExpression"] = "attribute_exists(spans.#booking)"  # ours to remove
            elif seen is None:
                update["ConditionExpression"] = "attribute_not_exists(PK)"
            else:
                update["ConditionExpression"] = "version = :seen"
                values[":seen"] = {"N": str(seen)}
            writes.append({"Update": update})
        for block, gone in sorted(outside.items()):
            names = {f"#gone{i}": span_id for i, span_id in enumerate(gone)}
            writes.append(
                {
                    "Update": {
                        "TableName": self.table,
                        "Key": keys.busy_block_key(provider_id, block),
                        "UpdateExpression": "REMOVE "
                        + ", ".join(f"spans.{name}" for name in names)
                        + " ADD version :one",
                        "ConditionExpression": " AND ".join(f"attribute_exists(spans.{name})" for name in names),
                        "ExpressionAttributeNames": names,
                        "ExpressionAttributeValues": {":one": {"N": "1"}},
                    }
                }
            )
        return writes, removed

    def _kills(self, gone: set[str], provider_id: str, calendar: ProviderCalendar) -> list[dict[str, Any]]:
        """For each series whose expired spans a change takes out: the series killed, so that it can never
        commit (decision 0024). Without this, a series' commit judged live by a clock a moment behind
        ours could turn into bookings spans we have just booked over. Conditioned on the series being
        there and expired or killed: committed or cleaned meanwhile, the change is decided again."""
        now = int(datetime.now(UTC).timestamp())
        return [
            {
                "Update": {
                    "TableName": self.table,
                    "Key": keys.pending_series_key(provider_id, series.series_id),
                    "UpdateExpression": "SET killed = :true",
                    "ConditionExpression": "attribute_exists(PK) AND (claimExpiresAt <= :now OR killed = :true)",
                    "ExpressionAttributeValues": {":true": {"BOOL": True}, ":now": {"N": str(now)}},
                }
            }
            for series in calendar.pending_series.values()
            if series.booking_ids & gone
        ]

    def _calendar_checks(self, provider_id: str, span: BookedSpan, calendar: ProviderCalendar) -> list[dict[str, Any]]:
        """The provider's hours and the span's service as the decision read them."""
        service = calendar.services[span.service_id]
        return [
            {
                "ConditionCheck": {
                    "TableName": self.table,
                    "Key": keys.provider_key(provider_id),
                    "ConditionExpression": "availabilityVersion = :seen",
                    "ExpressionAttributeValues": {":seen": {"N": str(calendar.availability_version)}},
                }
            },
            {
                "ConditionCheck": {
                    "TableName": self.table,
                    "Key": keys.service_key(provider_id, span.service_id),
                    "ConditionExpression": "version = :seen",
                    "ExpressionAttributeValues": {":seen": {"N": str(service.version)}},
                }
            },
        ]

    def _remember(self, caller: str, record: IdempotencyRecord, now: str) -> dict[str, Any]:
        values = {
            "entityType": "IdempotencyRecord",
            "requestHash": record.response.request_hash,
            "statusCode": record.response.status,
            # As UTF-8, not \u escapes: a series' answer holds its notes 52 times, and an emoji escaped
            # is 12 bytes where UTF-8 needs 4 (the item must stay under DynamoDB's 400 KB).
            "body": json.dumps(record.response.body, ensure_ascii=False),
            "createdAt": now,
            "expiresAt": int(record.expires_at.timestamp()),
        }
        return {
            "Put": {
                "TableName": self.table,
                "Item": {**keys.idempotency_key(caller, record.key), **to_item(values)},
                # An expired key is free again, judged by its own timestamp: TTL deletes late.
                "ConditionExpression": "attribute_not_exists(PK) OR expiresAt < :now",
                "ExpressionAttributeValues": {":now": {"N": str(int(datetime.now(UTC).timestamp()))}},
                "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
            }
        }

    def _commit(
        self,
        writes: list[dict[str, Any]],
        last_is_idempotency: bool,
        provider_id: str,
        *,
        added: BookedSpan | None = None,
        removed: BookedSpan | None = None,
        limits: range = range(0),
    ) -> ClaimOutcome:
        """Commit a change that puts the span `added` in and takes `removed` out, and keep what it
        tells about the provider's calendar: the change when it went through; the blocks it found
        changed, as they are now, when only those had; else nothing (the calendar is forgotten)."""
        try:
            # A token per change: when botocore sends it again (no answer in time), DynamoDB answers the
            # retry as it answered the first, instead of cancelling it on the change it already made.
            self.client.transact_write_items(TransactItems=writes, ClientRequestToken=str(uuid.uuid4()))  # type: ignore[arg-type]
        except ClientError as error:
            if limits and error_code(error) == "TransactionCanceledException":
                reasons = cancellation_reasons(error)
                if any(i < len(reasons) and reasons[i].get("Code") == "ConditionalCheckFailed" for i in limits):
                    return LimitReached()  # decided by the counters themselves: nothing remembered is wrong
                failed = {i for i, reason in enumerate(reasons) if reason.get("Code") not in {"None", None}}
                if (
                    failed
                    and failed <= set(limits)
                    and all(reasons[i]["Code"] == "TransactionConflict" for i in failed)
                ):
                    # Another booking was counting in the same counter at that moment (on AWS, not in
                    # the one-at-a-time emulator): the calendar is as it was, so decide again on it.
                    return Stale(learnt=True)
            outcome = self._outcome(error, last_is_idempotency)
            blocks = _changed_blocks(cancellation_reasons(error)) if isinstance(outcome, Stale) else None
            if blocks is not None:
                self.remembered.learn(provider_id, blocks)
                return Stale(learnt=True)
            if not isinstance(outcome, AlreadyAnswered):
                self.remembered.forget(provider_id)
            return outcome
        now = datetime.now(UTC)
        blocks_changed = set(keys.busy_blocks(added.start, added.end)) if added else set()
        blocks_changed |= set(live_blocks(removed.start, removed.end, now)) if removed else set()
        self.remembered.committed(provider_id, added, removed.booking_id if removed else None, blocks_changed)
        return Committed()

    @staticmethod
    def _outcome(error: ClientError, last_is_idempotency: bool) -> ClaimOutcome:
        code = error_code(error)
        if code == "TransactionConflictException":
            return Stale()  # another transaction was touching the same items: read and decide again
        if code != "TransactionCanceledException":
            raise error
        reasons = cancellation_reasons(error)
        failed = [reason.get("Code") for reason in reasons]
        last = reasons[-1] if reasons else {}
        if last_is_idempotency and last.get("Code") == "ConditionalCheckFailed" and "Item" in last:
            stored = from_item(last["Item"])
            body = json.loads(stored["body"])
            return AlreadyAnswered(StoredResponse(stored["requestHash"], stored["statusCode"], body))
        if failed and failed[0] == "ConditionalCheckFailed" and all(code in {"None", None} for code in failed[1:]):
            return Refused()  # only the booking's own condition failed: it changed since it was read
        if any(code in {"ConditionalCheckFailed", "TransactionConflict"} for code in failed):
            return Stale()
        raise error
