"""A provider's calendar as both services read it: profile, hours, services and busy time.

The availability service writes it and searches it; the booking service validates a requested start
against it with the same engine, and claims time in it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date

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


@dataclass(frozen=True)
class ProviderCalendar:
    """Everything a slot search over a window needs, as one Query reads it.

    `availability_version` moves with every change of hours; `busy_versions` holds the version of
    each UTC day's busy-time item read (absent: no booking that day yet). A booking's transaction
    requires both to be unchanged, so it can only commit against the calendar it was validated on.
    """

    provider: Provider
    schedule: WeeklySchedule | None
    overrides: Mapping[date, Override] = field(default_factory=dict)
    services: Mapping[str, Service] = field(default_factory=dict)
    busy: tuple[Busy, ...] = ()
    availability_version: int = 0
    busy_versions: Mapping[str, int] = field(default_factory=dict)

    def hours(self) -> Hours:
        weekly = self.schedule.weekly if self.schedule else {}
        overrides = {day: override.intervals for day, override in self.overrides.items()}
        return Hours(zone(self.provider.time_zone), weekly, overrides)
