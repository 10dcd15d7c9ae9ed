"""Holds against the claim scheme in-process (moto, one table): a booking container deciding on a
calendar it remembers from before another container's hold never books over the hold, and learns it
from the failed transaction; a conversion needs the hold's own span in every block."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from services.booking.adapters.dynamodb_store import DynamoDBBookingStore
from services.booking.domain.holds import HoldService
from services.booking.domain.ports import Stale
from services.booking.domain.use_cases import BookingConflictError, BookingRequest, BookingService
from services.common import keys
from services.common.auth import Group, Principal
from tests.integration.test_claim_properties import BY, TABLE, drawn_services, open_provider


def customer(sub: str) -> Principal:
    return Principal(sub, frozenset({Group.CUSTOMERS}))


def test_a_remembered_calendar_never_books_over_another_containers_hold(inproc: Any) -> None:
    pid = open_provider("Remembering holds", "06:00", "22:00")
    (sid,) = drawn_services(pid, [(30, 0, 0, 1)])
    day = datetime.combine(datetime.now(UTC).date() + timedelta(days=3), datetime.min.time(), UTC)
    first, second = DynamoDBBookingStore(inproc, TABLE), DynamoDBBookingStore(inproc, TABLE)
    bookings = BookingService(first, lambda: datetime.now(UTC))
    holds = HoldService(second, lambda: datetime.now(UTC))
    render = lambda booking: {"bookingId": booking.booking_id}  # noqa: E731

    # Given the first container remembers the day (it booked 09:00 there)
    bookings.book(
        customer("early"), BookingRequest(pid, sid, day + timedelta(hours=9), None, None), None, "h", render, BY
    )
    assert first.remembered.get(pid, day + timedelta(days=1), datetime.now(UTC)) is not None
    # and the second container holds 09:30, which the first does not know of
    held = holds.hold(
        customer("holder"), BookingRequest(pid, sid, day + timedelta(hours=9, minutes=30), None, None), BY
    )
    # When the first container is asked to book 09:30 for someone else
    calls: list[str] = []
    inproc.meta.events.register("before-call.dynamodb.*", lambda model, **_: calls.append(model.name))
    with pytest.raises(BookingConflictError):
        bookings.book(
            customer("late"),
            BookingRequest(pid, sid, day + timedelta(hours=9, minutes=30), None, None),
            None,
            "h2",
            render,
            BY,
        )
    # Then it was refused after its remembered decision's transaction failed and a fresh read (a refusal
    # is never decided on memory), and the hold is still the only span at 09:30
    assert calls[0] == "TransactWriteItems" and "Query" in calls
    calendar = DynamoDBBookingStore(inproc, TABLE).calendar(pid, day + timedelta(days=1))
    assert calendar is not None
    at_half_past = [span.booking_id for span in calendar.booked.values() if span.session_start == held.start]
    assert at_half_past == [held.hold_id]


def test_a_conversion_needs_the_holds_span_in_every_block(inproc: Any) -> None:
    """A container whose clock is a moment ahead may take an expiring hold's span out of a block (as
    it writes a booking there) while the hold's item still reads live elsewhere: the conversion then
    must not commit, and the time stays the other booking's."""
    pid = open_provider("Expiring holds", "06:00", "22:00")
    (sid,) = drawn_services(pid, [(30, 0, 0, 1)])
    start = datetime.combine(datetime.now(UTC).date() + timedelta(days=4), datetime.min.time(), UTC)
    start += timedelta(hours=10)
    store = DynamoDBBookingStore(inproc, TABLE)
    held = HoldService(store, lambda: datetime.now(UTC)).hold(
        customer("holder"), BookingRequest(pid, sid, start, None, None), BY
    )
    (block,) = keys.busy_blocks(held.busy_start, held.busy_end)
    inproc.update_item(
        TableName=TABLE,
        Key=keys.busy_block_key(pid, block),
        UpdateExpression="REMOVE spans.#hold ADD version :one",
        ExpressionAttributeNames={"#hold": held.hold_id},
        ExpressionAttributeValues={":one": {"N": "1"}},
    )
    calendar = store.calendars.calendar(pid, start + timedelta(days=1))
    assert calendar is not None
    request = BookingRequest(pid, sid, start, "holder", None)
    booking = BookingService._new_booking(calendar, calendar.services[sid], request, "holder", datetime.now(UTC))
    assert isinstance(store.convert(held, booking, None, BY), Stale)
    assert store.get_booking(booking.booking_id) is None
    assert store.get_hold(held.hold_id) == held  # nothing of the transaction happened
