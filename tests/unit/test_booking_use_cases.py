"""The booking use cases against a store that answers from memory: what they decide, with no I/O."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from services.booking.domain.models import Booking, BookingStatus
from services.booking.domain.use_cases import MAX_ATTEMPTS, AlreadyStartedError, BookingService, ContendedError
from services.common import keys
from services.common.auth import Attribution, Group, Principal
from services.common.calendar import Provider, ProviderCalendar
from services.common.errors import ForbiddenError

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
PROVIDER = "prv_" + "a" * 32
BY = Attribution("someone", "request-1", "1-abc-def")


class VanishingSpanStore:
    """A confirmed booking whose span is never in the calendar read: as if it changed every time."""

    def __init__(self, booking: Booking) -> None:
        self.booking = booking
        self.calendars = 0

    def calendar(self, provider_id: str, until: datetime, *, remembered_to: datetime | None = None) -> ProviderCalendar:
        self.calendars += 1
        provider = Provider(PROVIDER, "P", "UTC", "owner", 1, "2026-01-01T00:00:00Z")
        return ProviderCalendar(provider=provider, schedule=None)

    def get_booking(self, booking_id: str) -> Booking:
        return self.booking

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"the use case should not call {name}")


def booking(start: datetime) -> Booking:
    return Booking(
        booking_id=keys.new_booking_id(PROVIDER),
        provider_id=PROVIDER,
        service_id="svc_" + "b" * 32,
        customer_id="customer",
        provider_owner="owner",
        time_zone="UTC",
        start=start,
        end=start + timedelta(minutes=30),
        busy_start=start,
        busy_end=start + timedelta(minutes=30),
        status=BookingStatus.CONFIRMED,
        version=1,
        notes=None,
        created_at="2026-11-01T00:00:00Z",
    )


def test_a_reschedule_that_keeps_missing_its_span_pauses_between_reads_then_gives_up() -> None:
    ahead = booking(NOW + timedelta(days=2))
    store = VanishingSpanStore(ahead)
    pauses: list[int] = []
    service = BookingService(store, lambda: NOW, pauses.append)
    owner = Principal("owner", frozenset({Group.PROVIDERS}))
    with pytest.raises(ContendedError):
        service.reschedule(owner, ahead.booking_id, NOW + timedelta(days=3), None, BY)
    assert pauses == list(range(MAX_ATTEMPTS))  # a pause after every lost read, never a tight loop


@pytest.mark.parametrize(
    ("who", "groups", "expected"),
    [
        ("customer", {Group.CUSTOMERS}, AlreadyStartedError),
        ("ops", {Group.OPS}, ForbiddenError),
        ("customer", {Group.CUSTOMERS, Group.OPS}, AlreadyStartedError),  # ops adds reading, not changing
    ],
)
def test_who_may_not_cancel_a_booking_that_has_started(who: str, groups: set[Group], expected: type) -> None:
    started = booking(NOW - timedelta(minutes=10))
    service = BookingService(VanishingSpanStore(started), lambda: NOW)
    with pytest.raises(expected):
        service.cancel(Principal(who, frozenset(groups)), started.booking_id, None, None, BY)
