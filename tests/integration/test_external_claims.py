"""External blocks against the claim scheme in-process (moto, one table; decision 0030): the two
interleavings a race can take, made to happen, rather than hoped for.

- A Calendly block decided on a calendar read before our booking committed: its transaction fails on
  the block's version, it reads again, and knows it is a conflict (recorded, alarmed).
- Our booking decided on a calendar a container remembers from before the block: its transaction
  fails, it reads again, and is refused. The block alone holds the time.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from services.booking.adapters.dynamodb_store import DynamoDBBookingStore
from services.booking.domain.calendly import InviteeCreated
from services.booking.domain.external import ExternalCalendar, ExternalStatus
from services.booking.domain.use_cases import BookingConflictError, BookingRequest, BookingService
from services.common.auth import Attribution, Group, Principal
from services.common.calendar import ProviderCalendar
from tests.integration.test_claim_properties import BY, TABLE, drawn_services, open_provider

CALENDLY = Attribution("calendly", "r-calendly", "1-00000000-000000000000000000000001")


def customer(sub: str) -> Principal:
    return Principal(sub, frozenset({Group.CUSTOMERS}))


def invitee(name: str, start: datetime, minutes: int = 30) -> InviteeCreated:
    uri = f"https://api.calendly.com/scheduled_events/e/invitees/{name}"
    return InviteeCreated(
        uri, "https://api.calendly.com/scheduled_events/e", start, start + timedelta(minutes=minutes), None
    )


def holders(store: DynamoDBBookingStore, pid: str, moment: datetime) -> list[str]:
    calendar = store.calendar(pid, moment + timedelta(days=1))
    assert calendar is not None
    return sorted(s.booking_id[:4] for s in calendar.booked.values() if s.start <= moment < s.end)


def test_a_block_decided_before_our_booking_committed_becomes_a_conflict_over_it(inproc: Any) -> None:
    pid = open_provider("External after booking", "06:00", "22:00")
    (sid,) = drawn_services(pid, [(30, 0, 0, 1)])
    ten = datetime.combine(datetime.now(UTC).date() + timedelta(days=3), datetime.min.time(), UTC) + timedelta(hours=10)
    ours, theirs = DynamoDBBookingStore(inproc, TABLE), DynamoDBBookingStore(inproc, TABLE)
    bookings = BookingService(ours, lambda: datetime.now(UTC))
    render = lambda booking: {"bookingId": booking.booking_id}  # noqa: E731
    reads: list[ProviderCalendar | None] = []
    read = theirs.calendar

    def read_then_lose_the_race(provider_id: str, until: datetime, **kwargs: Any) -> ProviderCalendar | None:
        calendar = read(provider_id, until, **kwargs)
        if not reads:  # between the block's read and its write, our booking of the same time commits
            bookings.book(customer("first"), BookingRequest(pid, sid, ten, None, None), None, "h", render, BY)
        reads.append(calendar)
        return calendar

    theirs.calendar = read_then_lose_the_race  # type: ignore[method-assign]
    calls: list[str] = []
    inproc.meta.events.register("before-call.dynamodb.TransactWriteItems", lambda model, **_: calls.append(model.name))
    applied = ExternalCalendar(theirs, lambda: datetime.now(UTC), lambda _: None).apply(
        pid, invitee("late", ten), CALENDLY
    )

    assert applied.block.status is ExternalStatus.CONFLICT and applied.changed
    assert len(reads) == 2  # decided twice: the first decision's transaction failed on the block's version
    assert calls.count("TransactWriteItems") == 3  # ours, the block's that failed, the block's again
    assert applied.block.conflicts_with[0].startswith("bkg_")
    # Both hold the time now: ours came first (the conflict is the alarm's), and the provider's
    # Calendly booking keeps anyone else from booking it a third time.
    assert holders(ours, pid, ten) == ["bkg_", "ext_"]


def test_our_booking_decided_on_a_remembered_calendar_loses_to_a_block_made_since(inproc: Any) -> None:
    pid = open_provider("Booking after external", "06:00", "22:00")
    (sid,) = drawn_services(pid, [(30, 0, 0, 1)])
    day = datetime.combine(datetime.now(UTC).date() + timedelta(days=3), datetime.min.time(), UTC)
    ours, theirs = DynamoDBBookingStore(inproc, TABLE), DynamoDBBookingStore(inproc, TABLE)
    bookings = BookingService(ours, lambda: datetime.now(UTC))
    render = lambda booking: {"bookingId": booking.booking_id}  # noqa: E731
    # Our container remembers the day (it booked 09:00 there) ...
    bookings.book(
        customer("early"), BookingRequest(pid, sid, day + timedelta(hours=9), None, None), None, "a", render, BY
    )
    assert ours.remembered.get(pid, day + timedelta(days=1), datetime.now(UTC)) is not None
    # ... when Calendly books 09:30, which it does not know of.
    half_past = day + timedelta(hours=9, minutes=30)
    applied = ExternalCalendar(theirs, lambda: datetime.now(UTC), lambda _: None).apply(
        pid, invitee("elsewhere", half_past), CALENDLY
    )
    assert applied.block.status is ExternalStatus.BUSY

    with pytest.raises(BookingConflictError):
        bookings.book(customer("late"), BookingRequest(pid, sid, half_past, None, None), None, "b", render, BY)
    assert holders(ours, pid, half_past) == ["ext_"]
