"""Every change the services make becomes the right audit event, read from the table's real stream."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import boto3

from local.lambda_runtime.stream_records import stream_event
from services.audit.domain.events import audit_event
from services.availability import handler as availability
from services.booking import handler as booking
from tests.integration.conftest import LAMBDA_TRACE, invoke_handler


def stream_records(client: Any, table: str) -> list[dict[str, Any]]:
    streams = boto3.client("dynamodbstreams", region_name="us-east-1")
    arn = client.describe_table(TableName=table)["Table"]["LatestStreamArn"]
    shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
    iterator = streams.get_shard_iterator(StreamArn=arn, ShardId=shard, ShardIteratorType="TRIM_HORIZON")
    records = streams.get_records(ShardIterator=iterator["ShardIterator"], Limit=1000)["Records"]
    return list(stream_event([dict(r) for r in records], arn)["Records"])


# What `live_a_day` changes, as (entity type, action), in order.
A_DAY = [
    ("Provider", "PROVIDER_CREATED"),
    ("Schedule", "SCHEDULE_UPDATED"),
    ("Service", "SERVICE_CREATED"),
    ("Override", "OVERRIDE_SET"),
    ("Override", "OVERRIDE_REMOVED"),
    ("Booking", "BOOKING_CREATED"),
    ("Booking", "BOOKING_RESCHEDULED"),
    ("Booking", "BOOKING_CANCELLED"),
]


def a_monday_ahead(weeks: int = 5) -> date:
    today = datetime.now(UTC).date()
    return today + timedelta(days=7 * weeks - today.weekday())


def live_a_day(day: date, between: Callable[[], None] = lambda: None) -> tuple[str, str]:
    """A provider's life and a booking's, through the real handlers (wherever TABLE_NAME points):
    create, schedule, service, override set and removed, booking created, rescheduled, cancelled.
    `between` runs after the provider's changes, before the booking's. Answers (providerId, bookingId)."""
    pid = invoke_handler(availability, "POST", "/providers", {"name": "Audited", "timeZone": "UTC"}, "dr-a")[1][
        "providerId"
    ]
    weekly = {day: [{"start": "00:00", "end": "24:00"}] for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
    invoke_handler(availability, "PUT", f"/providers/{pid}/schedule", {"weekly": weekly}, "dr-a")
    service = invoke_handler(
        availability,
        "POST",
        f"/providers/{pid}/services",
        {"name": "S", "durationMinutes": 30, "minNoticeMinutes": 0},
        "dr-a",
    )[1]
    holiday = (day - timedelta(days=4)).isoformat()
    invoke_handler(availability, "PUT", f"/providers/{pid}/overrides/{holiday}", {"intervals": []}, "dr-a")
    invoke_handler(availability, "DELETE", f"/providers/{pid}/overrides/{holiday}", None, "dr-a")
    between()
    body = {"providerId": pid, "serviceId": service["serviceId"], "start": f"{day}T10:00:00Z"}
    status, created = invoke_handler(booking, "POST", "/bookings", body, "cust-a", "customers")
    assert status == 201, created
    bid = created["bookingId"]
    moved = {"start": f"{day}T11:00:00Z"}
    assert invoke_handler(booking, "POST", f"/bookings/{bid}/reschedule", moved, "cust-a", "customers")[0] == 200
    assert invoke_handler(booking, "POST", f"/bookings/{bid}/cancel", {"reason": "ill"}, "dr-a", "admins")[0] == 200
    return pid, bid


def test_a_scripted_day_becomes_one_event_per_change_with_its_actor(inproc: Any) -> None:
    # Given a provider's life and a booking's, through the real handlers
    day = a_monday_ahead()
    pid, bid = live_a_day(day)

    # When the stream is read and mapped
    records = stream_records(inproc, "appointments-inproc")
    events = [event for event in map(audit_event, records) if event is not None]

    # Then each business change is there once, in order, with who did it; internal items are not
    assert [(e.entityType, e.action) for e in events] == A_DAY
    assert [e.actor for e in events] == ["dr-a"] * 5 + ["cust-a", "cust-a", "dr-a"]
    assert all(e.requestId == "r" and e.traceId == LAMBDA_TRACE for e in events)  # the request continued it
    assert len({e.eventId for e in events}) == len(events)
    assert [int(e.sequence) for e in events] == sorted(int(e.sequence) for e in events)
    cancelled = events[-1]
    assert cancelled.entityId == bid
    assert cancelled.changes["status"].before == "CONFIRMED" and cancelled.changes["status"].after == "CANCELLED"
    assert cancelled.changes["cancelReason"].after == "ill"
    moved = events[-2]
    assert moved.changes["start"].before == f"{day}T10:00:00Z" and moved.changes["start"].after == f"{day}T11:00:00Z"
    assert "PK" not in moved.changes and "actor" not in moved.changes
    assert events[4].entityId == f"{pid}#{day - timedelta(days=4)}"
    # the records that meant nothing to people: busy blocks, the profile's version bumps
    skipped = [r for r in records if audit_event(r) is None]
    kinds = {
        r["dynamodb"].get("NewImage", r["dynamodb"].get("OldImage", {})).get("entityType", {}).get("S") for r in skipped
    }
    # None: moto's key-only INSERT before an UpdateItem that creates an item (decision 0002); AWS sends none
    assert kinds <= {"BusyBlock", "Provider", "Override", None}
