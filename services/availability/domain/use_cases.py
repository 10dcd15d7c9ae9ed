"""The availability service's use cases: who may do what, and what happens. No I/O of its own."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

from msgspec import Struct

from services.availability.domain.ports import ProviderStore
from services.common import keys
from services.common.auth import Attribution, Group, Principal
from services.common.availability import MAX_WINDOW, LocalInterval, ServiceRules, Slot, explain, free_slots
from services.common.calendar import Override, Provider, Service, WeeklySchedule
from services.common.clock import Clock, iso_utc
from services.common.errors import FieldError, ForbiddenError, NotFoundError, ValidationFailedError
from services.common.limits import counters
from services.common.timezones import zone
from services.common.tracing import traced

EVERYONE = (Group.CUSTOMERS, Group.PROVIDERS, Group.ADMINS, Group.OPS)
OVERRIDE_DAYS_BACK = 1  # a provider's "today" may still be yesterday somewhere
OVERRIDE_DAYS_AHEAD = 400
OVERRIDE_KEPT_AFTER = timedelta(days=2)  # then TTL removes it


class ProviderNotFoundError(NotFoundError):
    def __init__(self, provider_id: str) -> None:
        super().__init__(f"Provider {provider_id} does not exist.")


class ServiceNotFoundError(NotFoundError):
    def __init__(self, service_id: str) -> None:
        super().__init__(f"Service {service_id} does not exist for this provider.")


class OverrideNotFoundError(NotFoundError):
    def __init__(self, day: date) -> None:
        super().__init__(f"There is no override for {day.isoformat()}.")


class SlotSearch(Struct, frozen=True):
    provider: Provider
    service: Service
    slots: list[Slot]


class Explanation(Struct, frozen=True):
    bookable: bool
    reasons: list[str]  # services.common.availability.EXPLAIN_REASONS, in that order; none when bookable


class AvailabilityService(Struct):
    store: ProviderStore
    clock: Clock

    # Providers

    @traced("availability.create_provider")
    def create_provider(
        self,
        principal: Principal,
        name: str,
        time_zone: str,
        owner_sub: str | None,
        by: Attribution,
        *,
        max_bookings_per_day: int | None = None,
    ) -> Provider:
        """Providers create their own profile; admins create any, optionally on behalf of `owner_sub`."""
        principal.require(Group.PROVIDERS, Group.ADMINS)
        if owner_sub is not None and not principal.is_in(Group.ADMINS):
            raise ForbiddenError("Only admins may create a provider for someone else.")
        owner = owner_sub if principal.is_in(Group.ADMINS) and owner_sub is not None else principal.sub
        provider = Provider(keys.new_id("prv"), name, time_zone, owner, 1, iso_utc(self.clock()), max_bookings_per_day)
        self.store.create_provider(provider, by)
        return provider

    @traced("availability.get_provider")
    def get_provider(self, principal: Principal, provider_id: str) -> Provider:
        principal.require(*EVERYONE)
        provider = self.store.get_provider(provider_id)
        if provider is None:
            raise ProviderNotFoundError(provider_id)
        return provider

    @traced("availability.list_providers")
    def list_providers(self, principal: Principal, limit: int, cursor: str | None) -> tuple[list[Provider], str | None]:
        principal.require(*EVERYONE)
        return self.store.list_providers(limit, cursor)

    def _managed_provider(self, principal: Principal, provider_id: str) -> Provider:
        """The provider, if the caller may change it: admins, or the provider user who owns it."""
        provider = self.get_provider(principal, provider_id)
        if principal.is_in(Group.ADMINS):
            return provider
        if principal.is_in(Group.PROVIDERS) and provider.owner_sub == principal.sub:
            return provider
        raise ForbiddenError("Only the provider's owner or an admin may change it.")

    # Hours

    @traced("availability.set_schedule")
    def set_schedule(
        self,
        principal: Principal,
        provider_id: str,
        weekly: dict[int, tuple[LocalInterval, ...]],
        expected_version: int | None,
        by: Attribution,
    ) -> WeeklySchedule:
        self._managed_provider(principal, provider_id)
        return self.store.save_schedule(provider_id, weekly, expected_version, by)

    @traced("availability.get_schedule")
    def get_schedule(self, principal: Principal, provider_id: str) -> tuple[WeeklySchedule | None, list[Override]]:
        """The weekly hours and the overrides from yesterday on (in the provider's zone)."""
        principal.require(*EVERYONE)
        calendar = self.store.calendar(provider_id, self.clock())
        if calendar is None:
            raise ProviderNotFoundError(provider_id)
        today = self.clock().astimezone(zone(calendar.provider.time_zone)).date()
        overrides = self.store.upcoming_overrides(provider_id, today - timedelta(days=OVERRIDE_DAYS_BACK))
        return calendar.schedule, sorted(overrides, key=lambda o: o.day)

    @traced("availability.set_override")
    def set_override(
        self,
        principal: Principal,
        provider_id: str,
        day: date,
        intervals: tuple[LocalInterval, ...],
        expected_version: int | None,
        by: Attribution,
    ) -> Override:
        provider = self._managed_provider(principal, provider_id)
        self._check_override_date(provider, day)
        expires_at = datetime.combine(day, time(), zone(provider.time_zone)) + OVERRIDE_KEPT_AFTER
        return self.store.save_override(provider_id, day, intervals, expected_version, expires_at, by)

    @traced("availability.remove_override")
    def remove_override(
        self, principal: Principal, provider_id: str, day: date, expected_version: int | None, by: Attribution
    ) -> None:
        self._managed_provider(principal, provider_id)
        self.store.delete_override(provider_id, day, expected_version, by)

    def _check_override_date(self, provider: Provider, day: date) -> None:
        today = self.clock().astimezone(zone(provider.time_zone)).date()
        if not today - timedelta(days=OVERRIDE_DAYS_BACK) <= day <= today + timedelta(days=OVERRIDE_DAYS_AHEAD):
            raise ValidationFailedError(
                "The override date is out of range.",
                [FieldError("path.date", f"must be between yesterday and {OVERRIDE_DAYS_AHEAD} days ahead")],
            )

    # Services

    @traced("availability.create_service")
    def create_service(
        self,
        principal: Principal,
        provider_id: str,
        name: str,
        rules: ServiceRules,
        by: Attribution,
        *,
        hold_minutes: int = 5,
        limits: tuple[int | None, int | None] = (None, None),
        approval: tuple[bool, int] = (False, 24),
        reminder_minutes_before: int = 1440,
    ) -> Service:
        """`limits`: the most bookings one customer may have of it in a local day, and in an ISO week;
        `approval`: whether its bookings await approval, and for how many hours at most."""
        self._managed_provider(principal, provider_id)
        created = iso_utc(self.clock())
        service = Service(
            keys.new_id("svc"),
            provider_id,
            name,
            rules,
            1,
            created,
            hold_minutes,
            *limits,
            *approval,
            reminder_minutes_before,
        )
        self.store.create_service(service, by)
        return service

    @traced("availability.list_services")
    def list_services(self, principal: Principal, provider_id: str) -> list[Service]:
        self.get_provider(principal, provider_id)
        return self.store.list_services(provider_id)

    # Slots

    @traced("availability.find_slots")
    def find_slots(
        self, principal: Principal, provider_id: str, service_id: str, window_start: datetime, window_end: datetime
    ) -> SlotSearch:
        principal.require(*EVERYONE)
        if window_end <= window_start:
            raise ValidationFailedError("The window is empty.", [FieldError("query.to", "must be after from")])
        if window_end - window_start > MAX_WINDOW:
            raise ValidationFailedError(
                "The window is too long.", [FieldError("query.to", "must be at most 62 days after from")]
            )
        calendar = self.store.calendar(provider_id, window_end)
        if calendar is None:
            raise ProviderNotFoundError(provider_id)
        service = calendar.services.get(service_id)
        if service is None:
            raise ServiceNotFoundError(service_id)
        hours, now = calendar.hours(), self.clock()
        slots = free_slots(hours, service.rules, calendar.busy_at(now), window_start, window_end, now, service_id)
        return SlotSearch(calendar.provider, service, slots)

    @traced("availability.explain_slot")
    def explain_slot(self, principal: Principal, provider_id: str, service_id: str, start: datetime) -> Explanation:
        """Whether `start` is bookable, and every reason it is not: the engine of the search and the booking."""
        principal.require(*EVERYONE)
        calendar = self.store.calendar(provider_id, start + timedelta(days=1))  # the blocks a span can reach
        if calendar is None:
            raise ProviderNotFoundError(provider_id)
        service = calendar.services.get(service_id)
        if service is None:
            raise ServiceNotFoundError(service_id)
        now = self.clock()
        bookable, reasons = explain(
            calendar.hours(), service.rules, calendar.busy_explained(now), start, now, service_id
        )
        # The limits a booking of it by the caller would count in: as `POST /bookings` without a
        # customerId books for the caller when a customer, an admin or the provider's owner does, the
        # caller's own; and the provider's.
        owner = principal.is_in(Group.PROVIDERS) and calendar.provider.owner_sub == principal.sub
        customer = principal.sub if principal.is_in(Group.CUSTOMERS, Group.ADMINS) or owner else None
        found = counters(calendar.provider, service, customer, start)
        counts = self.store.limit_counts(provider_id, [counter.key for counter in found]) if found else {}
        # Counts held by what no longer holds any time (a series cut short, an approval past its
        # deadline) are given back as soon as a booking needs them (decisions 0024, 0025): not counted here.
        lapsed: dict[str, int] = {}
        if found:
            for series in calendar.pending_series.values():
                if not series.live(now):
                    for key, number in series.counted.items():
                        lapsed[key] = lapsed.get(key, 0) + number
            if any(counts[counter.key] >= counter.limit for counter in found):  # only then can they matter
                week = timedelta(days=7)
                for key, number in self.store.lapsed_counts(provider_id, start - week, start + week, now).items():
                    lapsed[key] = lapsed.get(key, 0) + number
                # Read the counts again, after the index: an expiry written down between the first
                # read and the index's (the minute's sweep) is gone from the index and would still be
                # in the first counts. The index never runs ahead of the table, so these counts hold
                # every expiry the index no longer shows.
                counts = self.store.limit_counts(provider_id, [counter.key for counter in found])
        if any(counts[counter.key] - lapsed.get(counter.key, 0) >= counter.limit for counter in found):
            bookable, reasons = False, [*reasons, "LIMIT_REACHED"]
        return Explanation(bookable, reasons)
