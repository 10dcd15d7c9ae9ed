"""From a change of the table (a stream record) to the domain event it means, or to nothing.

The table's stream is the outbox: every booking, hold, waitlist, series and schedule change is in it
once, in order per item, whatever request or function made it. Each change that means something to
people becomes one event (decision 0027; the schemas are in docs/events/):

- `detail-type`: what happened, e.g. `booking.cancelled`;
- `detail`: `{id, type, timestamp, schemaVersion, data}`, the Standard Webhooks payload plus its id.
  `id` is `evt_` + the stream record's id, the same on every publication of that change, so it is
  the key a consumer dedupes on (publication is at least once). `data` is the entity as the API
  answers it, with its `version` (holds and schedules, which the API does not version, are given
  one here: see `_hold_version` and `schedule.changed`).

Bookkeeping (busy blocks, counters, idempotency records, a series being claimed, lapse markers) and
changes that only touch bookkeeping fields mean nothing; nor does a TTL removal, which is storage,
not a change, with one exception. A hold's TTL is its expiry, so DynamoDB may remove a lapsed hold
before the minute's sweep writes it EXPIRED (domain/lapses.py): its removal, with no `status` in
its old image, is then the hold's expiry. One of the two happens to each lapsed hold (the sweep's
write is conditioned on the item existing unended, and a written EXPIRED is removed with a status),
so it is published once either way.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any, Final

from msgspec import Struct

from services.booking.adapters.dynamodb_store import booking_from, hold_from, series_from, waitlist_entry_from
from services.booking.domain.series import BookedSeries
from services.booking.http_models import booking_json, hold_json, series_json, waitlist_json
from services.common.dynamodb import from_item

SOURCE: Final = "appointments"
SCHEMA_VERSION: Final = 1

_BOOKING_STATUS_EVENTS = {
    "CANCELLED": "booking.cancelled",
    "NO_SHOW": "booking.no_show",
    "CONFIRMED": "booking.approved",  # a booking is CONFIRMED after creation only from PENDING
    "DECLINED": "booking.declined",
    "EXPIRED": "booking.expired",
}
_HOLD_STATUS_EVENTS = {"CONVERTED": "hold.converted", "RELEASED": "hold.released", "EXPIRED": "hold.expired"}

# Every detail-type the publisher sends: the schemas' index (docs/events/README.md) lists the same.
DETAIL_TYPES: Final = frozenset(
    {
        "booking.created",
        "booking.rescheduled",
        *_BOOKING_STATUS_EVENTS.values(),
        "hold.created",
        *_HOLD_STATUS_EVENTS.values(),
        "waitlist.joined",
        *(f"waitlist.{status.lower()}" for status in ("OFFERED", "BOOKED", "DECLINED", "EXPIRED", "CANCELLED")),
        "series.created",
        "series.cancelled",
        "schedule.changed",
    }
)


class DomainEvent(Struct, frozen=True):
    detail_type: str
    detail: dict[str, Any]
    # The X-Ray trace header of the request that made the change (`Root=…;Parent=…`), when it had
    # one: PutEvents' TraceHeader, so the bus's targets continue that trace.
    trace_header: str | None

    @property
    def event_id(self) -> str:
        return str(self.detail["id"])

    def detail_json(self) -> str:
        return json.dumps(self.detail, separators=(",", ":"), sort_keys=True)


def _hold_version(item: dict[str, Any]) -> int:
    """A hold is written twice at most: made (1), then ended (2) by a booking, a release or an expiry."""
    return 2 if item.get("status") else 1


def _hold_data(item: dict[str, Any]) -> dict[str, Any]:
    return {**hold_json(hold_from(item)), "status": item.get("status", "ACTIVE"), "version": _hold_version(item)}


def _series_data(item: dict[str, Any]) -> dict[str, Any]:
    """The series without its occurrences (each has events of its own); their ids instead."""
    data = series_json(BookedSeries(series_from(item), []))
    del data["items"]
    return {**data, "bookingIds": list(item["bookingIds"]), "version": item["version"]}


def _classify(event_name: str, old: dict[str, Any], new: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
    """(detail-type, data) of a change; None when it means nothing to people."""
    kind = (new or old).get("entityType")
    status_changed = event_name == "MODIFY" and old.get("status") != new.get("status")
    if kind == "Booking":
        if event_name == "INSERT":
            return "booking.created", booking_json(booking_from(new))
        if status_changed and new.get("status") in _BOOKING_STATUS_EVENTS:
            return _BOOKING_STATUS_EVENTS[new["status"]], booking_json(booking_from(new))
        if event_name == "MODIFY" and (old.get("start"), old.get("end")) != (new.get("start"), new.get("end")):
            return "booking.rescheduled", {**booking_json(booking_from(new)), "previous": _times(old)}
        return None
    if kind == "Hold":
        if event_name == "INSERT":
            return "hold.created", _hold_data(new)
        if status_changed and new.get("status") in _HOLD_STATUS_EVENTS:
            return _HOLD_STATUS_EVENTS[new["status"]], _hold_data(new)
        return None
    if kind == "WaitlistEntry":
        if event_name == "INSERT":
            return "waitlist.joined", waitlist_json(waitlist_entry_from(new))
        if status_changed:
            return f"waitlist.{new['status'].lower()}", waitlist_json(waitlist_entry_from(new))
        return None
    if kind == "Series":
        if event_name == "INSERT":
            return "series.created", _series_data(new)
        if status_changed and new.get("status") == "CANCELLED":
            return "series.cancelled", _series_data(new)
        return None
    hours_changed = old.get("availabilityVersion") != new.get("availabilityVersion")
    if kind == "Provider" and event_name == "MODIFY" and hours_changed:
        # Every change of hours (schedule, an override set or removed) moves the profile's
        # availabilityVersion in the same transaction: one event per change, whichever item it wrote.
        change, _, date = str(new.get("lastChange", "")).partition(" ")
        data = {"providerId": new["providerId"], "version": new["availabilityVersion"], "change": change}
        return "schedule.changed", {**data, "date": date} if date else data
    return None


def _times(item: dict[str, Any]) -> dict[str, str]:
    """Where a rescheduled booking was, in its provider's zone as the API gives times."""
    before = booking_json(booking_from(item))
    return {"start": str(before["start"]), "end": str(before["end"])}


def removed_by_ttl(record: dict[str, Any]) -> bool:
    """DynamoDB's TTL removed the item (its stream record says who removed it), not anyone's request."""
    identity = record.get("userIdentity") or {}
    return identity.get("type") == "Service" and identity.get("principalId") == "dynamodb.amazonaws.com"


def _lapsed_hold_removed(record: dict[str, Any], old: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
    """A hold TTL removed before anyone wrote it down: its expiry (see the module's docstring)."""
    if not removed_by_ttl(record) or old.get("entityType") != "Hold" or old.get("status"):
        return None
    return "hold.expired", {**_hold_data(old), "status": "EXPIRED", "version": 2}


def domain_event(record: dict[str, Any]) -> DomainEvent | None:
    """The event a stream record (as Lambda delivers it) means, or None."""
    stream = record["dynamodb"]
    old = from_item(stream.get("OldImage", {}))
    new = from_item(stream.get("NewImage", {}))
    if record["eventName"] == "REMOVE":
        classified = _lapsed_hold_removed(record, old)  # else storage: TTL's, or a claim deleted
    else:
        classified = _classify(record["eventName"], old, new)
    if classified is None:
        return None
    detail_type, data = classified
    made = stream.get("ApproximateCreationDateTime")
    # When the change was made: the item says (every write stamps it), else the stream does; a lapsed
    # hold's removal, when it lapsed (its expiry), and it is nobody's request.
    when = new.get("updatedAt") if new else None
    moment = float(made or 0) if new else float(old["expiresAt"])
    detail: dict[str, Any] = {
        "id": f"evt_{record['eventID']}",
        "type": detail_type,
        "timestamp": when or datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "schemaVersion": SCHEMA_VERSION,
        "data": data,
    }
    trace_id, span_id = new.get("traceId"), new.get("spanId")
    # The write's own span, when it stamped one with this trace (a span left from an earlier write
    # would name another trace's parent). No sampling decision is forced on the targets.
    stale_span = old.get("spanId") == span_id and old.get("traceId") != trace_id
    trace_header = None
    if trace_id:
        trace_header = f"Root={trace_id};Parent={span_id}" if span_id and not stale_span else f"Root={trace_id}"
    return DomainEvent(detail_type, detail, trace_header)
