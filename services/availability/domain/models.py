"""The availability service's domain: providers, their hours and their services."""

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
    """Everything a slot search over a window needs, as one Query reads it."""

    provider: Provider
    schedule: WeeklySchedule | None
    overrides: Mapping[date, Override] = field(default_factory=dict)
    services: Mapping[str, Service] = field(default_factory=dict)
    busy: tuple[Busy, ...] = ()

    def hours(self) -> Hours:
        weekly = self.schedule.weekly if self.schedule else {}
        overrides = {day: override.intervals for day, override in self.overrides.items()}
        return Hours(zone(self.provider.time_zone), weekly, overrides)
