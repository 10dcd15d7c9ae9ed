"""Capacity: a session of a service takes `capacity` bookings that start together; nothing else shares time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from services.common.availability import Busy, Hours, LocalInterval, ServiceRules, free_slots

ZONE = ZoneInfo("Europe/Berlin")
DAY = datetime(2026, 6, 1, tzinfo=ZONE)  # a Monday
HOURS = Hours(ZONE, {0: (LocalInterval(10 * 60, 14 * 60),)}, {})
CLASS = ServiceRules(60, buffer_after_minutes=15, slot_step_minutes=60, capacity=3, max_advance_days=365)
NOW = datetime(2026, 1, 1, tzinfo=UTC)


def at(hour: int) -> datetime:
    return DAY.replace(hour=hour)


def seat(service: str, hour: int) -> Busy:
    return Busy(at(hour), at(hour) + timedelta(minutes=75), seat_in=(service, at(hour)))


def remaining_by_hour(busy: list[Busy]) -> dict[int, int]:
    slots = free_slots(HOURS, CLASS, busy, DAY, DAY + timedelta(days=1), NOW, "svc_class")
    return {slot.start.hour: slot.remaining for slot in slots}


def test_an_empty_day_offers_every_session_with_full_capacity() -> None:
    assert remaining_by_hour([]) == {10: 3, 11: 3, 12: 3, 13: 3}


def test_seats_in_a_session_reduce_its_remaining_capacity_only() -> None:
    # Two people in the 10:00 class. The 11:00 class would overlap the 10:00 class's after-buffer
    # (to 11:15), which is no seat of the 11:00 session, so 11:00 is not offered.
    assert remaining_by_hour([seat("svc_class", 10), seat("svc_class", 10)]) == {10: 1, 12: 3, 13: 3}


def test_a_full_session_is_not_offered() -> None:
    assert 10 not in remaining_by_hour([seat("svc_class", 10)] * 3)


def test_another_services_booking_blocks_the_time_whatever_the_capacity() -> None:
    assert 12 not in remaining_by_hour([seat("svc_private", 12)])


def test_plain_busy_time_blocks_the_time() -> None:
    blocked = Busy(at(13) + timedelta(minutes=30), at(13) + timedelta(minutes=40))
    assert 13 not in remaining_by_hour([blocked])
