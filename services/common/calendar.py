"""A provider's calendar as both services read it: profile, hours, services and busy time.

The availability service writes it and searches it; the booking service validates a requested start
against it with the same engine, and claims time in it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import NamedTuple

from services.common.availability import Busy, Hours, LocalInterval, ServiceRules
from services.common.timezones import zone


@dataclass(frozen=True)
class Provider:
    provider_id: str
    name: str
    time_zone: str
    owner_sub: str | None
    version: int
    created_at: str


@dataclass(frozen=True)
class WeeklySchedule:
    """Intervals per weekday (0 = Monday); a missing weekday is closed."""

    weekly: Mapping[int, tuple[LocalInterval, ...]]
    version: int


@dataclass(frozen=True)
class Override:
    day: date
    intervals: tuple[LocalInterval, ...]
    version: int


@dataclass(frozen=True)
class Service:
    service_id: str
    provider_id: str
    name: str
    rules: ServiceRules
    version: int
    created_at: str


class BookedSpan(NamedTuple):
    """A confirmed booking's time in the calendar: enough to validate, authorize and move it in one read.
    (A named tuple: immutable, and made several times faster than a frozen dataclass; a 62-day slot
    search reads hundreds.)"""

    booking_id: str
    service_id: str
    customer_id: str
    session_start: datetime
    start: datetime  # buffers included
    end: datetime
    version: int  # the booking's version: a span exists exactly while its booking is confirmed
    created_at: str

    def busy(self) -> Busy:
        return Busy(self.start, self.end, (self.service_id, self.session_start), self.booking_id)


@dataclass(frozen=True)
class ProviderCalendar:
    """Everything a slot search over a window needs, as one Query reads it.

    `availability_version` moves with every change of hours; `busy_versions` holds the version of
    each busy block read, by block id (`keys.block_id`; absent: no booking ever touched it). A
    booking's transaction requires both to be unchanged for the blocks its span touches, so it can
    only commit against the calendar it was validated on.
    """

    provider: Provider
    schedule: WeeklySchedule | None
    overrides: Mapping[date, Override] = field(default_factory=dict)
    services: Mapping[str, Service] = field(default_factory=dict)
    booked: Mapping[str, BookedSpan] = field(default_factory=dict)
    availability_version: int = 0
    busy_versions: Mapping[str, int] = field(default_factory=dict)
    # From a booking container's memory rather than a read just made: good enough to commit on (the
    # versions above condition the transaction), not to refuse on (services/booking/adapters/remembered_calendars.py).
    remembered: bool = False

    @property
    def busy(self) -> tuple[Busy, ...]:
        return tuple(span.busy() for span in self.booked.values())

    def busy_except(self, booking_id: str) -> tuple[Busy, ...]:
        """Busy time without one booking's own (what a reschedule of that booking competes with)."""
        return tuple(span.busy() for span in self.booked.values() if span.booking_id != booking_id)

    def hours(self) -> Hours:
        weekly = self.schedule.weekly if self.schedule else {}
        overrides = {day: override.intervals for day, override in self.overrides.items()}
        return Hours(zone(self.provider.time_zone), weekly, overrides)
