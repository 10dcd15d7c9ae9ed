"""A provider's calendar as both services read it: profile, hours, services and busy time.

The availability service writes it and searches it; the booking service validates a requested start
against it with the same engine, and claims time in it.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime, timedelta
from typing import NamedTuple

from msgspec import Struct, field

from services.common.availability import Busy, Hours, LocalInterval, ServiceRules
from services.common.keys import EXTERNAL_ID_PREFIX
from services.common.timezones import zone


class Provider(Struct, frozen=True):
    provider_id: str
    name: str
    time_zone: str
    owner_sub: str | None
    version: int
    created_at: str
    max_bookings_per_day: int | None = None  # in the provider's local day (services/common/limits.py)


class WeeklySchedule(Struct, frozen=True):
    """Intervals per weekday (0 = Monday); a missing weekday is closed."""

    weekly: Mapping[int, tuple[LocalInterval, ...]]
    version: int


class Override(Struct, frozen=True):
    day: date
    intervals: tuple[LocalInterval, ...]
    version: int


class Service(Struct, frozen=True):
    service_id: str
    provider_id: str
    name: str
    rules: ServiceRules
    version: int
    created_at: str
    hold_minutes: int = 5  # how long a hold on this service's time lasts (POST /holds)
    # Per customer, in the provider's local day and ISO week (services/common/limits.py); None: none.
    max_per_customer_per_day: int | None = None
    max_per_customer_per_week: int | None = None
    # A booking of it starts PENDING, holding its time, until the provider's owner or an admin approves
    # or declines it, or `approval_timeout_hours` pass (then EXPIRED, its time free).
    requires_approval: bool = False
    approval_timeout_hours: int = 24
    # A WhatsApp reminder this long before a booking starts (its customer opted in); 0: none.
    reminder_minutes_before: int = 1440


class BookedSpan(NamedTuple):
    """A confirmed booking's time in the calendar, or a hold's: enough to validate, authorize and move
    it in one read. (A named tuple: immutable, and quick to make; a 62-day slot search reads hundreds.)"""

    booking_id: str  # the booking's id (`bkg_…`), the hold's (`hld_…`), or the external block's (`ext_…`)
    service_id: str
    customer_id: str
    session_start: datetime
    start: datetime  # buffers included
    end: datetime
    version: int  # the booking's version: a span exists exactly while its booking is confirmed (0: a hold)
    created_at: str
    expires_at: datetime | None = None  # a hold's end: from then on its time is free, whether removed yet or not

    def busy(self, duration: timedelta | None = None) -> Busy:
        """Its busy time; with its service's `duration`, also where the appointment itself ends (explain)."""
        if self.external:  # no service, no buffers, no seat: all of it is taken
            return Busy(self.start, self.end, None, self.booking_id, self.end, external=True)
        core_end = self.session_start + duration if duration is not None else None
        seat = (self.service_id, self.session_start)
        return Busy(self.start, self.end, seat, self.booking_id, core_end, self.expires_at is not None)

    @property
    def external(self) -> bool:
        """Time the provider's other calendar booked (decision 0030), not a booking or hold of ours."""
        return self.booking_id.startswith(EXTERNAL_ID_PREFIX)

    def live(self, now: datetime) -> bool:
        """A booking's span always; a hold's until it expires."""
        return self.expires_at is None or now < self.expires_at


class PendingSeries(Struct, frozen=True):
    """A recurring series while it is being claimed (decision 0024): the spans of `booking_ids` are in
    the busy blocks already, and are held for it until `expires_at`, unless it is `killed` (given up,
    or booked over once expired). Its commit deletes this item, which turns them into bookings at once;
    until then nothing else may."""

    series_id: str
    expires_at: datetime
    killed: bool
    booking_ids: frozenset[str]
    counted: Mapping[str, int] = field(default_factory=dict)  # limit counter → occurrences it raised
    request_key: str | None = None  # "<caller>#<Idempotency-Key>" of the request claiming it, if it had one

    def live(self, now: datetime) -> bool:
        return not self.killed and now < self.expires_at


class ProviderCalendar(Struct, frozen=True):
    """Everything a slot search over a window needs, as one Query reads it.

    `booked` holds every span the busy blocks read hold, bookings' and holds' alike, by id; a hold's
    span carries `expires_at`, and so does the span of an occurrence of a series still being claimed
    (`pending_series`). `availability_version` moves with every change of hours;
    `busy_versions` holds the version of each busy block read, by block id (`keys.block_id`; absent:
    no booking ever touched it). A booking's transaction requires both to be unchanged for the
    blocks its span touches, so it can only commit against the calendar it was validated on.
    """

    provider: Provider
    schedule: WeeklySchedule | None
    overrides: Mapping[date, Override] = field(default_factory=dict)
    services: Mapping[str, Service] = field(default_factory=dict)
    booked: Mapping[str, BookedSpan] = field(default_factory=dict)
    availability_version: int = 0
    busy_versions: Mapping[str, int] = field(default_factory=dict)
    # Series being claimed, by id: their spans in `booked` carry the series' expiry, as a hold's do.
    pending_series: Mapping[str, PendingSeries] = field(default_factory=dict)
    # From a booking container's memory rather than a read just made: good enough to commit on (the
    # versions above condition the transaction), not to refuse on (services/booking/adapters/remembered_calendars.py).
    remembered: bool = False

    def busy_explained(self, now: datetime) -> tuple[Busy, ...]:
        """`busy_at(now)`, each span knowing where its appointment ends: what explain needs to tell a
        collision of appointments from one of buffers."""
        durations = {sid: timedelta(minutes=s.rules.duration_minutes) for sid, s in self.services.items()}
        return tuple(span.busy(durations.get(span.service_id)) for span in self.booked.values() if span.live(now))

    def busy_at(self, now: datetime) -> tuple[Busy, ...]:
        """Busy time at `now`: every booking's span and every hold not yet expired. An expired hold
        is free at once, before anything removes it."""
        return tuple(span.busy() for span in self.booked.values() if span.live(now))

    def busy_except(self, booking_id: str, now: datetime) -> tuple[Busy, ...]:
        """Busy time without one booking's (or hold's) own: what a reschedule or a hold's conversion
        competes with."""
        return tuple(span.busy() for span in self.booked.values() if span.booking_id != booking_id and span.live(now))

    def hours(self) -> Hours:
        weekly = self.schedule.weekly if self.schedule else {}
        overrides = {day: override.intervals for day, override in self.overrides.items()}
        return Hours(zone(self.provider.time_zone), weekly, overrides)
