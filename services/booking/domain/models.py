"""The booking service's domain: bookings and what a request to create one may end in."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from msgspec import Struct
from msgspec.structs import replace

from services.common.limits import Counter
from services.common.recurrence import Recurrence


class BookingStatus(StrEnum):
    PENDING = "PENDING"  # awaiting the provider's approval (a service with requiresApproval); holds its time
    CONFIRMED = "CONFIRMED"
    CANCELLED = "CANCELLED"
    NO_SHOW = "NO_SHOW"
    DECLINED = "DECLINED"  # the provider's owner or an admin said no; its time is free
    EXPIRED = "EXPIRED"  # nobody decided within the service's approvalTimeoutHours; its time is free


class Booking(Struct, frozen=True):
    booking_id: str
    provider_id: str
    service_id: str
    customer_id: str
    provider_owner: str | None  # who may see it as the provider, kept on the booking for one-read checks
    time_zone: str
    start: datetime
    end: datetime
    busy_start: datetime  # start minus the service's buffer before
    busy_end: datetime  # end plus the buffer after
    status: BookingStatus
    version: int
    notes: str | None
    created_at: str
    cancel_reason: str | None = None
    # The limit counters it counts in (key → when its day or week ends, epoch s); None: not read (a
    # booking seen through its calendar span).
    counted: dict[str, int] | None = None
    series_id: str | None = None  # the recurring series it is an occurrence of
    approval_expires_at: datetime | None = None  # a pending booking's deadline: undecided then, it is EXPIRED
    decline_reason: str | None = None
    updated_at: str | None = None  # when it last changed (as stored; None: not read, e.g. through its span)

    def as_of(self, now: datetime) -> Booking:
        """The booking as it stands at `now`: a pending one whose deadline has passed is EXPIRED, and its
        time free, whether that has been written yet or not (decision 0025)."""
        pending = self.status is BookingStatus.PENDING and self.approval_expires_at is not None
        if pending and now >= self.approval_expires_at:  # type: ignore[operator]
            return replace(self, status=BookingStatus.EXPIRED)
        return self


class StoredResponse(Struct, frozen=True):
    """What the first request with an idempotency key answered, kept for its replays."""

    request_hash: str
    status: int
    body: dict[str, object]
    replayed: bool = False  # this answer is a stored one, given again: nothing was booked now


class Hold(Struct, frozen=True):
    """A time kept for one customer until `expires_at`: busy for everyone else, and turned into a
    booking by its customer (`POST /bookings` with `holdId`) without being lost in between."""

    hold_id: str
    provider_id: str
    service_id: str
    customer_id: str
    provider_owner: str | None
    time_zone: str
    start: datetime
    end: datetime
    busy_start: datetime  # buffers included, as a booking's
    busy_end: datetime
    expires_at: datetime
    created_at: str
    held_by: str  # who asked for it (the customer, or staff for them): their live holds are capped
    counters: tuple[Counter, ...] = ()  # the limits a booking of it counts in, as they were when it was held
    approval_hours: int | None = None  # its booking awaits approval that long (the service's, when it was held)
    ended: str | None = None  # CONVERTED or RELEASED: kept a moment for the trail, gone to every reader
    # The waitlist entry it was offered to (the offer is this hold): its end ends the entry, and it
    # counts in no caller's live holds, since nobody asked for it then.
    waitlist_id: str | None = None

    def live(self, now: datetime) -> bool:
        return self.ended is None and now < self.expires_at


class CustomerHolds(Struct, frozen=True):
    """The holds one caller asked for, as the table last recorded them (id → expiry, expired ones included until the
    next hold prunes them), and the record's version, which that hold's transaction is conditioned on."""

    expiries: dict[str, datetime]
    version: int  # 0: no record yet

    def live(self, now: datetime) -> dict[str, datetime]:
        return {hold_id: expires for hold_id, expires in self.expiries.items() if now < expires}


class SeriesStatus(StrEnum):
    ACTIVE = "ACTIVE"
    CANCELLED = "CANCELLED"  # its occurrences that had not started were cancelled together


class Series(Struct, frozen=True):
    """A recurring series: its occurrences are bookings (`booking_ids`, in time order), booked all
    or none (decision 0024)."""

    series_id: str
    provider_id: str
    service_id: str
    customer_id: str
    provider_owner: str | None
    time_zone: str
    recurrence: Recurrence
    booking_ids: tuple[str, ...]
    status: SeriesStatus
    version: int
    created_at: str


class WaitlistStatus(StrEnum):
    WAITING = "WAITING"  # in line: offered the first free time of its window when its turn comes
    OFFERED = "OFFERED"  # a hold on a time of its window is kept for its customer until `offerExpiresAt`
    BOOKED = "BOOKED"  # its customer booked the offered hold
    DECLINED = "DECLINED"  # the offered hold was released (by its customer, or staff)
    EXPIRED = "EXPIRED"  # the offer lapsed unclaimed, or the window passed without one
    CANCELLED = "CANCELLED"  # taken out of line (`DELETE /waitlist/{id}`), its offer released


ENDED_WAITLIST = frozenset(
    {WaitlistStatus.BOOKED, WaitlistStatus.DECLINED, WaitlistStatus.EXPIRED, WaitlistStatus.CANCELLED}
)


class WaitlistEntry(Struct, frozen=True):
    """A customer waiting for time of one service in a window (`window_start` to `window_end`: the
    whole appointment inside it): when such time is free and its turn comes, it is offered as a hold."""

    waitlist_id: str
    provider_id: str
    service_id: str
    customer_id: str
    provider_owner: str | None
    time_zone: str
    window_start: datetime
    window_end: datetime
    status: WaitlistStatus
    version: int
    created_at: str  # its place in line: the oldest waiting entry that fits is offered first
    created_by: str  # who put it in line (the customer, or staff for them)
    hold_id: str | None = None
    offer_expires_at: datetime | None = None
    booking_id: str | None = None

    def as_of(self, now: datetime) -> WaitlistEntry:
        """The entry as it stands at `now`: an offer past its expiry, or a wait past its window, is
        EXPIRED whether the sweep has written that yet or not."""
        offer_lapsed = self.status is WaitlistStatus.OFFERED and self.offer_expires_at is not None
        if offer_lapsed and now >= self.offer_expires_at:  # type: ignore[operator]
            return replace(self, status=WaitlistStatus.EXPIRED)
        if self.status is WaitlistStatus.WAITING and now >= self.window_end:
            return replace(self, status=WaitlistStatus.EXPIRED)
        return self


class Lapse(Struct, frozen=True):
    """Something that lapses without a write when its time comes, as the marker put with it says: a
    hold's expiry (`HOLD`), a pending booking's approval deadline (`BOOKING`). The minute's sweep
    writes it down, so that it is a change like any other, and its domain event is published."""

    kind: str
    entity_id: str
    lapses_at: datetime


class CalendarFeed(Struct, frozen=True):
    """A provider's secret feed URL (decision 0028): its id names it in the URL, and only the hash of
    its key is kept, so the table never holds what opens it."""

    feed_id: str
    provider_id: str
    key_hash: str
    created_at: str
