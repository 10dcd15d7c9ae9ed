"""Each business outcome is counted once, in valid EMF, in namespace `Appointments` with the
dimensions `service` and `stage` and never an id: the handlers in-process, their stdout read back."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from services.availability import handler as availability
from services.booking import handler as booking
from services.booking.adapters.dynamodb_store import DynamoDBBookingStore
from services.booking.domain.models import Booking, BookingStatus
from services.common import keys
from services.common.auth import Attribution
from services.common.calendar_table import CalendarTable
from services.common.observability import Metric
from tests import emf
from tests.integration.conftest import invoke_handler
from tests.integration.test_booking_round_trips import a_bookable_slot


def counted(capsys: pytest.CaptureFixture[str]) -> dict[str, list[float]]:
    """The metrics the calls since the last look emitted; every document checked against the spec."""
    documents = emf.documents(capsys.readouterr().out.splitlines())
    for document in documents:
        assert emf.problems(document) == [], document
        (directive,) = document["_aws"]["CloudWatchMetrics"]
        assert directive["Namespace"] == "Appointments"
        if directive["Metrics"] != [{"Name": "ColdStart", "Unit": "Count"}]:
            assert [sorted(names) for names in directive["Dimensions"]] == [["service", "stage"]]
            assert document["stage"] == "inproc"
    values = emf.metric_values(documents)
    values.pop("ColdStart", None)  # once per container: which test pays it depends on the order
    return values


def a_started_booking(client: Any, pid: str, sid: str) -> str:
    """A booking that started an hour ago, written as the service wrote it then; answers its id."""
    store = DynamoDBBookingStore(client, "appointments-inproc")
    calendar = CalendarTable(client, "appointments-inproc").calendar(pid, datetime.now(UTC))
    assert calendar is not None
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    past = Booking(
        keys.new_booking_id(pid), pid, sid, "gina", "owner", "UTC", start, start + timedelta(minutes=30),
        start, start + timedelta(minutes=30), BookingStatus.CONFIRMED, 1, None, "2026-01-01T00:00:00Z",
    )  # fmt: skip
    assert type(store.claim(past, calendar, None, Attribution("test", "test", ""))).__name__ == "Committed"
    return past.booking_id


def test_each_booking_outcome_is_counted_once(inproc: Any, capsys: pytest.CaptureFixture[str]) -> None:
    pid, sid, (first, second, _) = a_bookable_slot()
    capsys.readouterr()
    body = {"providerId": pid, "serviceId": sid, "start": first}
    key = {"Idempotency-Key": "metrics-1"}

    status, created = invoke_handler(booking, "POST", "/bookings", body, "cust", "customers", headers=key)
    assert status == 201 and counted(capsys) == {Metric.BOOKING_CREATED: [1.0]}
    assert invoke_handler(booking, "POST", "/bookings", body, "cust", "customers", headers=key)[0] == 201
    assert counted(capsys) == {Metric.IDEMPOTENT_REPLAY: [1.0]}
    assert invoke_handler(booking, "POST", "/bookings", body, "other", "customers")[0] == 409
    assert counted(capsys) == {Metric.BOOKING_CONFLICT: [1.0]}
    closed = {**body, "start": (datetime.now(UTC) - timedelta(days=1)).replace(microsecond=0).isoformat()}
    assert invoke_handler(booking, "POST", "/bookings", closed, "cust", "customers")[0] == 422
    assert counted(capsys) == {Metric.BOOKING_REFUSED: [1.0]}
    assert invoke_handler(booking, "POST", "/bookings", {**body, "start": "soon"}, "cust", "customers")[0] == 400
    assert counted(capsys) == {Metric.VALIDATION_FAILED: [1.0]}
    path = f"/bookings/{created['bookingId']}"
    assert invoke_handler(booking, "POST", f"{path}/reschedule", {"start": second}, "cust", "customers")[0] == 200
    assert counted(capsys) == {Metric.BOOKING_RESCHEDULED: [1.0]}
    # someone else's booking does not exist for a stranger: not found, and not counted as a denial
    assert invoke_handler(booking, "POST", f"{path}/cancel", {}, "stranger", "customers")[0] == 404
    assert counted(capsys) == {}
    assert invoke_handler(booking, "POST", f"{path}/cancel", {}, "cust", "customers")[0] == 200
    assert counted(capsys) == {Metric.BOOKING_CANCELLED: [1.0]}


def test_a_denied_request_and_a_no_show_are_counted(inproc: Any, capsys: pytest.CaptureFixture[str]) -> None:
    pid, sid, _ = a_bookable_slot()
    capsys.readouterr()
    # a customer may not change a provider's hours
    weekly = {"mon": [{"start": "09:00", "end": "10:00"}]}
    assert (
        invoke_handler(availability, "PUT", f"/providers/{pid}/schedule", {"weekly": weekly}, "c", "customers")[0]
        == 403
    )
    assert counted(capsys) == {Metric.AUTH_DENIED: [1.0]}
    # a booking that started an hour ago, marked as a no-show by its provider
    started = a_started_booking(inproc, pid, sid)
    assert invoke_handler(booking, "POST", f"/bookings/{started}/no-show")[0] == 200
    assert counted(capsys) == {Metric.BOOKING_NO_SHOW: [1.0]}


def test_a_slot_search_counts_itself_and_the_slots_it_found(inproc: Any, capsys: pytest.CaptureFixture[str]) -> None:
    pid, sid, (first, _, _) = a_bookable_slot()
    capsys.readouterr()
    start = datetime.fromisoformat(first)
    window = f"from={(start - timedelta(hours=1)).isoformat()}&to={(start + timedelta(hours=2)).isoformat()}"
    status, found = invoke_handler(
        availability,
        "GET",
        f"/providers/{pid}/slots?serviceId={sid}&{window.replace('+', '%2B')}",
        None,
        "c",
        "customers",
    )
    assert status == 200, found
    assert counted(capsys) == {Metric.SLOT_SEARCH: [1.0], Metric.SLOTS_RETURNED: [float(len(found["slots"]))]}
    assert len(found["slots"]) > 0
