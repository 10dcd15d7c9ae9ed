"""What the booking domain needs from storage; `adapters/dynamodb_store.py` provides it."""

from __future__ import annotations

from datetime import date, datetime
from typing import Protocol

from msgspec import Struct

from services.booking.domain.models import (
    Booking,
    BookingStatus,
    CalendarFeed,
    CustomerHolds,
    Hold,
    Lapse,
    Series,
    StoredResponse,
    WaitlistEntry,
    WaitlistStatus,
)
from services.common.auth import Attribution
from services.common.calendar import ProviderCalendar


class IdempotencyRecord(Struct, frozen=True):
    """The key (scoped to the caller) and the response to keep for replays."""

    key: str
    response: StoredResponse
    expires_at: datetime


class Committed:
    """The booking's transaction went through."""


class Stale(Struct, frozen=True):
    """The calendar changed between the read and the write (another booking, new hours): read again.

    `learnt`: only busy blocks had changed, and the failed transaction told the store what they hold
    now, so the calendar it remembers is worth deciding on again without a read."""

    learnt: bool = False


class AlreadyAnswered(Struct, frozen=True):
    """The idempotency key was used before; here is what that request got."""

    response: StoredResponse


class Refused(Struct, frozen=True):
    """The booking itself changed since it was read (another cancel, reschedule or no-show won)."""


class LimitReached(Struct, frozen=True):
    """A limit counter the change counts in was full (services/common/limits.py): nothing committed."""


ClaimOutcome = Committed | Stale | AlreadyAnswered | Refused | LimitReached


class ListQuery(Struct, frozen=True):
    """Exactly one of the two indexes is read: the customer's when `by_customer`, else the provider's;
    the other id, if given, filters. The index read is the one whose whole partition the caller may
    see, since a page's cursor names the last item read, filtered out or not."""

    provider_id: str | None
    customer_id: str | None
    start: datetime
    end: datetime
    status: BookingStatus | None
    limit: int
    cursor: str | None
    by_customer: bool = False
    now: datetime | None = None  # judges PENDING and EXPIRED, when `status` names one (decision 0025)


class BookingPage(Struct, frozen=True):
    items: list[Booking]
    next_cursor: str | None


class BookingStore(Protocol):
    def calendar(
        self, provider_id: str, until: datetime, *, remembered_to: datetime | None = None
    ) -> ProviderCalendar | None:
        """The provider's calendar up to `until`, strongly consistent, in one request; or, when the
        container remembers it at least up to `remembered_to` (if given), as this container last knew
        it (no request; `ProviderCalendar.remembered` says which)."""
        ...

    def claim(
        self, booking: Booking, calendar: ProviderCalendar, idempotency: IdempotencyRecord | None, by: Attribution
    ) -> ClaimOutcome:
        """One transaction: the booking, its busy time, the checks that the calendar is unchanged, the key."""
        ...

    def stored_response(self, caller: str, key: str, now: datetime) -> StoredResponse | None: ...

    def get_booking(self, booking_id: str) -> Booking | None: ...

    def list_bookings(self, query: ListQuery) -> BookingPage: ...

    def reschedule(
        self, booking: Booking, moved: Booking, calendar: ProviderCalendar, by: Attribution
    ) -> ClaimOutcome: ...

    def cancel(self, booking: Booking, reason: str | None, by: Attribution) -> ClaimOutcome: ...

    def mark_no_show(self, booking: Booking, by: Attribution) -> ClaimOutcome: ...

    # Approval (decision 0025)

    def approve(self, booking: Booking, by: Attribution) -> ClaimOutcome:
        """One transaction: the pending booking confirmed while its deadline has not passed, its span kept."""
        ...

    def decline(self, booking: Booking, reason: str | None, by: Attribution) -> ClaimOutcome:
        """One transaction: the pending booking declined, its time and counts freed."""
        ...

    def expire(self, booking: Booking, by: Attribution) -> ClaimOutcome:
        """One transaction: a pending booking past its deadline written EXPIRED, its time and counts freed."""
        ...

    def lapsed_approvals(self, provider_id: str, start: datetime, end: datetime, now: datetime) -> list[Booking]:
        """The provider's bookings starting in [start, end] still PENDING past their deadline (its index:
        eventually consistent, which a deadline long passed does not mind)."""
        ...

    # Calendar feeds (decision 0028)

    def configuration(self, provider_id: str) -> ProviderCalendar | None:
        """The provider's profile, schedule and services (no busy time): whose it is, what it offers."""
        ...

    def bookings_between(
        self, provider_id: str | None, customer_id: str | None, start: datetime, end: datetime, most: int
    ) -> list[Booking]:
        """A provider's (or, without one, a customer's) bookings starting in [start, end], every status,
        in time order: its index, eventually consistent (a feed is polled, not read after a write)."""
        ...

    def get_feed(self, feed_id: str) -> CalendarFeed | None: ...

    def provider_feed_id(self, provider_id: str) -> str | None: ...

    def replace_feed(self, feed: CalendarFeed, previous: str | None, by: Attribution) -> bool:
        """One transaction: `feed` the provider's live feed, `previous` gone; False if it changed first."""
        ...

    def remove_feed(self, provider_id: str, feed_id: str, by: Attribution) -> bool: ...

    # What lapses without a write: holds' expiries and approvals' deadlines (decision 0027)

    def lapsed(self, now: datetime) -> tuple[list[Lapse], str]:
        """What has lapsed by `now` and is not written down yet, from where the last sweep stopped; and
        the mark to give `swept_through` once these are."""
        ...

    def forget_lapse(self, lapse: Lapse) -> None:
        """Done with: written down, or found ended by something else."""
        ...

    def swept_through(self, mark: str) -> None: ...

    def expire_hold(self, hold: Hold, by: Attribution) -> ClaimOutcome:
        """One write: a hold past its expiry, not ended, written EXPIRED (its time was free already)."""
        ...

    # Holds

    def get_hold(self, hold_id: str) -> Hold | None:
        """The hold as last written, strongly consistent (expired ones too, until TTL removes them)."""
        ...

    def customer_holds(self, customer_id: str) -> CustomerHolds: ...

    def hold(self, hold: Hold, calendar: ProviderCalendar, holds: CustomerHolds, by: Attribution) -> ClaimOutcome:
        """One transaction: the hold, its busy time (claimed as a booking's), the checks that the
        calendar is unchanged, and the customer's holds (`holds` plus this one), conditioned on their version."""
        ...

    def convert(
        self, hold: Hold, booking: Booking, idempotency: IdempotencyRecord | None, by: Attribution
    ) -> ClaimOutcome:
        """One transaction: the booking, in the hold's place in every block, while the hold is still live."""
        ...

    def release(self, hold: Hold, by: Attribution) -> ClaimOutcome:
        """One transaction: the hold gone and its busy time free."""
        ...

    # Waitlist

    def add_to_waitlist(self, entry: WaitlistEntry, max_live: int, by: Attribution) -> ClaimOutcome:
        """One transaction: the entry in line, and its caller's count of live entries raised while below
        `max_live` (`LimitReached` when not)."""
        ...

    def get_waitlist_entry(self, waitlist_id: str) -> WaitlistEntry | None:
        """The entry as last written, strongly consistent."""
        ...

    def waitlist(self, provider_id: str | None = None) -> list[WaitlistEntry]:
        """The entries in line (waiting or offered), of one provider or all, oldest first within a
        provider; eventually consistent."""
        ...

    def offer(self, entry: WaitlistEntry, hold: Hold, calendar: ProviderCalendar, by: Attribution) -> ClaimOutcome:
        """One transaction: the hold (claimed as any hold), and the entry `OFFERED` from the version read."""
        ...

    def end_waitlist_entry(
        self,
        entry: WaitlistEntry,
        status: WaitlistStatus,
        by: Attribution,
        *,
        hold: Hold | None = None,
        lapsed: Hold | None = None,
    ) -> ClaimOutcome:
        """One transaction: the entry out of line from the version read; `hold`, its live offer,
        released; else an offered entry's lapsed offer (`lapsed`, as read) ended as expired, only if it has."""
        ...

    # Recurring series (decision 0024)

    def series_calendar(
        self, provider_id: str, spans: list[tuple[datetime, datetime]], local_days: list[date]
    ) -> ProviderCalendar | None:
        """The provider's configuration, series being claimed, and only the busy blocks `spans` touch and
        the overrides of `local_days`: strongly consistent, in one Query and a BatchGetItem or two."""
        ...

    def limit_counts(self, provider_id: str, counter_keys: set[str]) -> dict[str, int]:
        """How many bookings each of these limit counters counts now (strongly consistent; 0 if absent)."""
        ...

    def claim_series(
        self,
        series: Series,
        occurrences: list[Booking],
        calendar: ProviderCalendar,
        expires_at: datetime,
        request_key: str | None = None,
    ) -> ClaimOutcome:
        """Every occurrence's time claimed, held for the series until `expires_at`; or, if a part of the
        claim fails, nothing (the parts before it given back)."""
        ...

    def commit_series(
        self, series: Series, occurrences: list[Booking], idempotency: IdempotencyRecord | None, by: Attribution
    ) -> ClaimOutcome:
        """One transaction: while the claim is live, the occurrences become bookings and the series exists."""
        ...

    def abandon_series(self, provider_id: str, series_id: str) -> bool:
        """A claim that will not commit given back; False if there was none (committed, or given back already)."""
        ...

    def get_series(self, series_id: str) -> Series | None: ...

    def get_bookings(self, booking_ids: list[str]) -> list[Booking]: ...

    def end_series(self, series: Series, by: Attribution) -> ClaimOutcome:
        """The series marked cancelled, if still at the version read."""
        ...
