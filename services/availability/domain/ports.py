"""What the availability domain needs from storage; `adapters/dynamodb_store.py` provides it."""

from __future__ import annotations

from datetime import date, datetime
from typing import Protocol

from services.common.auth import Attribution
from services.common.availability import LocalInterval
from services.common.calendar import Override, Provider, ProviderCalendar, Service, WeeklySchedule


class ProviderStore(Protocol):
    def create_provider(self, provider: Provider, by: Attribution) -> None: ...

    def get_provider(self, provider_id: str) -> Provider | None: ...

    def list_providers(self, limit: int, cursor: str | None) -> tuple[list[Provider], str | None]:
        """A page of providers by name, and the opaque cursor of the next page (None on the last)."""
        ...

    def save_schedule(
        self,
        provider_id: str,
        weekly: dict[int, tuple[LocalInterval, ...]],
        expected_version: int | None,
        by: Attribution,
    ) -> WeeklySchedule:
        """Replace the weekly hours; raise `PreconditionFailedError` if `expected_version` is stale."""
        ...

    def save_override(
        self,
        provider_id: str,
        day: date,
        intervals: tuple[LocalInterval, ...],
        expected_version: int | None,
        expires_at: datetime,
        by: Attribution,
    ) -> Override: ...

    def delete_override(self, provider_id: str, day: date, expected_version: int | None, by: Attribution) -> None: ...

    def create_service(self, service: Service, by: Attribution) -> None: ...

    def list_services(self, provider_id: str) -> list[Service]: ...

    def calendar(self, provider_id: str, until: datetime) -> ProviderCalendar | None:
        """Profile, schedule, services, overrides and busy time up to `until`, in one request."""
        ...

    def limit_counts(self, provider_id: str, counters: list[str]) -> dict[str, int]:
        """How many bookings each of the provider's limit counters holds now (strongly consistent)."""
        ...

    def lapsed_counts(self, provider_id: str, start: datetime, end: datetime, now: datetime) -> dict[str, int]:
        """How many of the provider's bookings starting in [start, end] still PENDING past their approval
        deadline count in each limit counter (their `limitCounters`; its index, eventually consistent)."""
        ...

    def upcoming_overrides(self, provider_id: str, since: date) -> list[Override]: ...
