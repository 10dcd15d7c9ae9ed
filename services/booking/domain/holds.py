"""Holds: a time kept for one customer for a few minutes (the service's `holdMinutes`), busy for
everyone else, then either turned into a booking by its customer or free again at `expiresAt`.

A hold is claimed exactly as a booking is (its span in the same busy blocks, conditioned on their
versions, the hours and the service: decision 0007), so holds, bookings and other holds of the same
time exclude one another under concurrent requests. Expiry needs no request: every reader judges a
hold's span by its `expiresAt`, so an expired hold is free at once; the next change that writes its
blocks takes its span out, and TTL removes the hold's item.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from http import HTTPStatus

from msgspec import Struct

from services.booking.domain.lanes import may_change, may_see
from services.booking.domain.models import CustomerHolds, Hold
from services.booking.domain.ports import BookingStore, Committed, LimitReached
from services.booking.domain.use_cases import (
    ALTERNATIVES_AROUND,
    MAX_ATTEMPTS,
    BookingConflictError,
    BookingRequest,
    BookingService,
    ContendedError,
    ProviderOrServiceNotFoundError,
    SlotUnavailableError,
    no_pause,
)
from services.common import keys
from services.common.auth import Attribution, Principal
from services.common.availability import why_not
from services.common.calendar import ProviderCalendar, Service
from services.common.clock import Clock, iso_utc
from services.common.errors import DomainError, ForbiddenError, NotFoundError
from services.common.limits import counters
from services.common.tracing import traced

# Live holds one caller may have asked for at once, across providers: enough to keep a time while
# comparing two or three, too few to keep a provider's day from everyone else. Expired holds do not
# count. Counted per caller, not per customer: an owner holding times for a client uses up the
# owner's three, never the client's (nor learns how many the client holds elsewhere).
MAX_LIVE_HOLDS = 3


class HoldNotFoundError(NotFoundError):
    def __init__(self, hold_id: str) -> None:
        super().__init__(f"Hold {hold_id} does not exist, or has expired.")


class HoldLimitReachedError(DomainError):
    code = "HOLD_LIMIT_REACHED"
    status = HTTPStatus.UNPROCESSABLE_ENTITY

    def __init__(self, expiries: dict[str, datetime]) -> None:
        super().__init__(
            f"A caller holds at most {MAX_LIVE_HOLDS} times at once: release one, or wait until one expires."
        )
        self.expiries = expiries

    def extensions(self) -> dict[str, object]:
        live = sorted(self.expiries.items(), key=lambda held: held[1])
        return {
            "reason": "HOLD_LIMIT_REACHED",
            "nextExpiry": iso_utc(live[0][1]),
            "holdIds": [hold_id for hold_id, _ in live],
        }


def new_hold(
    calendar: ProviderCalendar,
    service: Service,
    request: BookingRequest,
    customer: str,
    held_by: str,
    now: datetime,
    waitlist_id: str | None = None,
) -> Hold:
    """A hold of `request`'s time for `customer`, shaped as its booking would be (buffers, the limits
    it counts in, whether it awaits approval), for the service's `holdMinutes` from `now`."""
    shape = BookingService._new_booking(calendar, service, request, customer, now)
    return Hold(
        hold_id=keys.new_hold_id(calendar.provider.provider_id),
        provider_id=shape.provider_id,
        service_id=shape.service_id,
        customer_id=customer,
        provider_owner=shape.provider_owner,
        time_zone=shape.time_zone,
        start=shape.start,
        end=shape.end,
        busy_start=shape.busy_start,
        busy_end=shape.busy_end,
        expires_at=now.replace(microsecond=0) + timedelta(minutes=service.hold_minutes),
        created_at=iso_utc(now),
        held_by=held_by,
        counters=tuple(counters(calendar.provider, service, customer, shape.start)),
        approval_hours=service.approval_timeout_hours if service.requires_approval else None,
        waitlist_id=waitlist_id,
    )


class HoldService(Struct):
    store: BookingStore
    clock: Clock
    pause: Callable[[int], None] = no_pause

    @traced("booking.hold")
    def hold(self, principal: Principal, request: BookingRequest, by: Attribution) -> Hold:
        """Keep `request`'s time for its customer: refused exactly as a booking of it would be."""
        looked_back = False  # for counts held by what holds no time any more (BookingService.give_back_lapsed)
        for attempt in range(MAX_ATTEMPTS):
            now = self.clock()
            calendar = self.store.calendar(request.provider_id, max(request.start, now) + ALTERNATIVES_AROUND)
            if calendar is None:
                raise ProviderOrServiceNotFoundError(f"Provider {request.provider_id} does not exist.")
            customer = BookingService._customer(principal, request, calendar.provider.owner_sub)
            service = calendar.services.get(request.service_id)
            if service is None:
                raise ProviderOrServiceNotFoundError(f"Service {request.service_id} does not exist for this provider.")
            reason = why_not(
                calendar.hours(), service.rules, calendar.busy_at(now), request.start, now, service.service_id
            )
            if reason == "TAKEN":
                raise BookingConflictError(BookingService._alternatives(calendar, service, request.start, now))
            if reason is not None:
                raise SlotUnavailableError(reason)
            holds = self.store.customer_holds(principal.sub)
            live = holds.live(now)
            if len(live) >= MAX_LIVE_HOLDS:
                raise HoldLimitReachedError(live)
            hold = new_hold(calendar, service, request, customer, principal.sub, now)
            # The caller's record keeps its live holds only: expired ones are pruned as it is written.
            outcome = self.store.hold(hold, calendar, CustomerHolds(live, holds.version), by)
            if isinstance(outcome, Committed):
                return hold
            if isinstance(outcome, LimitReached):
                if not looked_back:  # counts held by what no longer holds time are given back: try again
                    looked_back = True
                    gives_back = BookingService(self.store, self.clock)
                    if gives_back.give_back_lapsed(calendar, now, request.start) or attempt < MAX_ATTEMPTS - 1:
                        continue
                raise SlotUnavailableError("LIMIT_REACHED")
            self.pause(attempt)
        raise ContendedError()

    @traced("booking.get_hold")
    def get(self, principal: Principal, hold_id: str) -> Hold:
        """A live hold, to its customer, its provider's owner, admins and ops; to anyone else it does not exist."""
        hold = self.store.get_hold(hold_id)
        if hold is None or not hold.live(self.clock()) or not may_see(principal, hold):
            raise HoldNotFoundError(hold_id)
        return hold

    @traced("booking.release_hold")
    def release(self, principal: Principal, hold_id: str, by: Attribution) -> None:
        """Free a live hold's time at once: its customer, its provider's owner or an admin."""
        for attempt in range(MAX_ATTEMPTS):
            hold = self.get(principal, hold_id)
            if not may_change(principal, hold):
                raise ForbiddenError("Ops and support read holds; they cannot release them.")
            if isinstance(self.store.release(hold, by), Committed):
                return
            self.pause(attempt)  # converted, released or expired meanwhile: the next read says which
        raise ContendedError()
