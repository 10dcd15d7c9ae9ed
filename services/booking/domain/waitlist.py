"""The waitlist: customers in line for time of one service within a window, offered that time as a
hold when it frees, oldest entry first (decision 0026).

An entry waits (`WAITING`) for a window that has no free time when it joins (free time is booked, not
waited for). When time in it frees and its turn comes, it is offered the first free slot whose whole
appointment fits in the window (`OFFERED`): a hold for its customer, claimed exactly as any hold
(decision 0007), in the same transaction that moves the entry from the very version read, so two
matches never offer one entry twice, and an offer never takes time that is not free. The customer
books the hold (`POST /bookings` with `holdId`: the entry is `BOOKED`), releases it (`DECLINED`), or
lets it lapse (`EXPIRED`), and the time passes to the next in line.

What frees time is many things (a cancel, a reschedule away, a released or expired hold or offer, a
declined or expired approval, wider hours), some of which write nothing when they happen (an expiry
is judged by the clock). So nothing is offered by the change itself: `match` looks at one provider's
line as it stands and offers what is free, and the waitlist function runs it for every change that may
free time (the table's stream) and for every line once a minute (the sweep).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from http import HTTPStatus

from msgspec import Struct

from services.booking.domain.holds import new_hold
from services.booking.domain.lanes import may_change, may_see
from services.booking.domain.models import ENDED_WAITLIST, Hold, WaitlistEntry, WaitlistStatus
from services.booking.domain.ports import BookingStore, Committed, LimitReached, Refused
from services.booking.domain.use_cases import (
    MAX_ATTEMPTS,
    BookingRequest,
    BookingService,
    ContendedError,
    ProviderOrServiceNotFoundError,
    SlotUnavailableError,
    no_pause,
)
from services.common import keys
from services.common.auth import Attribution, Principal
from services.common.availability import Slot, free_slots
from services.common.calendar import ProviderCalendar, Service
from services.common.clock import Clock
from services.common.errors import DomainError, FieldError, ForbiddenError, NotFoundError, ValidationFailedError
from services.common.limits import counters
from services.common.timezones import zone
from services.common.tracing import traced

# Entries one customer may have in lines at once: enough to wait for a few providers or days, too
# few to queue ahead of everyone on a provider's every window. Counted per customer (not per caller,
# as holds are): entries wait for weeks, and a provider putting clients in line must not run out.
MAX_LIVE_ENTRIES = 10
# The longest window one entry waits for: every match searches each waiting entry's window.
MAX_WINDOW = timedelta(days=31)
ONE_SECOND = timedelta(seconds=1)
FREE_SLOTS_NAMED = 5  # a join refused for free time names this many of its slots


class WaitlistEntryNotFoundError(NotFoundError):
    def __init__(self, waitlist_id: str) -> None:
        super().__init__(f"Waitlist entry {waitlist_id} does not exist.")


class WaitlistLimitReachedError(DomainError):
    code = "WAITLIST_LIMIT_REACHED"
    status = HTTPStatus.UNPROCESSABLE_ENTITY

    def __init__(self) -> None:
        super().__init__(
            f"A customer has at most {MAX_LIVE_ENTRIES} entries in waitlists at once: "
            "leave one, or wait until one ends."
        )

    def extensions(self) -> dict[str, object]:
        return {"reason": "WAITLIST_LIMIT_REACHED"}


class WindowHasFreeTimeError(DomainError):
    """The window has free time now: book it; the line is for time that frees."""

    code = "WINDOW_HAS_FREE_TIME"
    status = HTTPStatus.CONFLICT

    def __init__(self, slots: list[Slot]) -> None:
        super().__init__("The window has free time now: book one of its slots instead of waiting for one.")
        self.slots = slots

    def extensions(self) -> dict[str, object]:
        return {"slots": [{"start": s.start.isoformat(), "end": s.end.isoformat()} for s in self.slots]}


class WaitlistEntryEndedError(DomainError):
    code = "WAITLIST_ENTRY_ENDED"
    status = HTTPStatus.CONFLICT

    def __init__(self, entry: WaitlistEntry) -> None:
        super().__init__(f"Waitlist entry {entry.waitlist_id} is {entry.status.value}: it is no longer in line.")
        self.entry = entry

    def extensions(self) -> dict[str, object]:
        # Not `status`: a problem's `status` is its HTTP status (RFC 9457).
        return {"entryStatus": self.entry.status.value}


class WaitlistRequest(Struct, frozen=True):
    provider_id: str
    service_id: str
    window_start: datetime
    window_end: datetime
    customer_id: str | None


class Matched(Struct, frozen=True):
    """What one match of a line did: the entries offered, and those written EXPIRED."""

    offered: list[WaitlistEntry]
    expired: list[WaitlistEntry]


def place_in_line(moment: datetime) -> str:
    """`2026-03-08T14:00:00.123456Z`: an entry's creation to the microsecond, so that entries made in
    one second keep their order (the line is sorted on it as a string)."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def window_slots(
    calendar: ProviderCalendar, service: Service, start: datetime, end: datetime, now: datetime
) -> list[Slot]:
    """The free slots of `service` whose whole appointment is inside `start` to `end`, by the engine that
    answers search and booking. In elapsed time: across a DST change, the window's wall clock says
    nothing about how long it is."""
    latest_start = end.astimezone(UTC) - timedelta(minutes=service.rules.duration_minutes)
    busy = calendar.busy_at(now)
    return free_slots(calendar.hours(), service.rules, busy, start, latest_start + ONE_SECOND, now, service.service_id)


class WaitlistService(Struct):
    store: BookingStore
    clock: Clock
    pause: Callable[[int], None] = no_pause

    @traced("waitlist.join")
    def join(self, principal: Principal, request: WaitlistRequest, by: Attribution) -> WaitlistEntry:
        """Put a customer in the line for `request`'s window: only a window with no free time now (the
        caller books free time; the line is for time that frees) that starts within the service's
        booking window."""
        self._check_window(request, self.clock())
        for attempt in range(MAX_ATTEMPTS):
            now = self.clock()
            calendar = self.store.calendar(request.provider_id, request.window_end)
            if calendar is None:
                raise ProviderOrServiceNotFoundError(f"Provider {request.provider_id} does not exist.")
            service = calendar.services.get(request.service_id)
            if service is None:
                raise ProviderOrServiceNotFoundError(f"Service {request.service_id} does not exist for this provider.")
            rules = service.rules
            if request.window_end - request.window_start < timedelta(minutes=rules.duration_minutes):
                message = f"the window is shorter than the service's {rules.duration_minutes} minutes"
                raise ValidationFailedError(
                    f"The window cannot hold an appointment: {message}.", [FieldError("body.to", message)]
                )
            as_booking = BookingRequest(
                request.provider_id, request.service_id, request.window_start, request.customer_id, None
            )
            customer = BookingService._customer(principal, as_booking, calendar.provider.owner_sub)
            if request.window_start > now + timedelta(days=rules.max_advance_days):
                raise SlotUnavailableError("TOO_FAR_AHEAD")  # nothing in it can be offered until then
            slots = window_slots(calendar, service, request.window_start, request.window_end, now)
            free = self._within_limits(calendar, service, customer, slots)
            if free:
                raise WindowHasFreeTimeError(free[:FREE_SLOTS_NAMED])
            entry = self._new_entry(calendar, service.service_id, request, customer, principal.sub, now)
            outcome = self.store.add_to_waitlist(entry, MAX_LIVE_ENTRIES, by)
            if isinstance(outcome, Committed):
                return entry
            if isinstance(outcome, LimitReached):
                raise WaitlistLimitReachedError()
            self.pause(attempt)  # another of the customer's entries was counted at that moment: again
        raise ContendedError()

    @traced("waitlist.get")
    def get(self, principal: Principal, waitlist_id: str) -> WaitlistEntry:
        """An entry as it stands now, to its customer, its provider's owner, admins and ops; to anyone
        else it does not exist."""
        entry = self.store.get_waitlist_entry(waitlist_id)
        if entry is None or not may_see(principal, entry):
            raise WaitlistEntryNotFoundError(waitlist_id)
        return entry.as_of(self.clock())

    @traced("waitlist.leave")
    def leave(self, principal: Principal, waitlist_id: str, by: Attribution) -> None:
        """Take an entry out of line (`CANCELLED`), its live offer released with it: its customer, its
        provider's owner or an admin."""
        for attempt in range(MAX_ATTEMPTS):
            entry = self.store.get_waitlist_entry(waitlist_id)
            if entry is None or not may_see(principal, entry):
                raise WaitlistEntryNotFoundError(waitlist_id)
            if not may_change(principal, entry):
                raise ForbiddenError("Ops and support read waitlist entries; they cannot take them out of line.")
            now = self.clock()
            if entry.status in ENDED_WAITLIST:
                raise WaitlistEntryEndedError(entry)
            # A live offer is released with it; a lapsed one not yet written down is ended as expired.
            offer = self._offer_of(entry)
            live = offer if offer is not None and offer.live(now) else None
            lapsed = offer if live is None else None
            outcome = self.store.end_waitlist_entry(entry, WaitlistStatus.CANCELLED, by, hold=live, lapsed=lapsed)
            if isinstance(outcome, Committed):
                return
            self.pause(attempt)  # offered, booked or expired meanwhile: the next read says which
        raise ContendedError()

    @traced("waitlist.match")
    def match(
        self,
        provider_id: str,
        by: Attribution,
        seen: Iterable[WaitlistEntry] = (),
        line: list[WaitlistEntry] | None = None,
    ) -> Matched:
        """Offer one provider's free time to its line, as it stands now: lapsed offers and passed
        windows are written `EXPIRED`, then each waiting entry, oldest first, is offered the first
        free slot its window holds, if any. `seen`: entries known from the stream, which the index
        may not show yet; `line`: the line, when the caller has just read it (the sweep)."""
        now = self.clock()
        waiting, expired, offered_to = [], [], set()
        for entry in self._line(provider_id, seen, line):
            if entry.as_of(now).status is WaitlistStatus.EXPIRED:
                # Refused when it changed meanwhile (booked at the last moment, or expired by another match).
                hold = self._offer_of(entry)
                if isinstance(self.store.end_waitlist_entry(entry, WaitlistStatus.EXPIRED, by, lapsed=hold), Committed):
                    expired.append(entry)
            elif entry.status is WaitlistStatus.OFFERED:
                offered_to.add(entry.customer_id)
            else:
                waiting.append(entry)
        return Matched(self._offer(provider_id, waiting, offered_to, by), expired)

    def lines(self) -> dict[str, list[WaitlistEntry]]:
        """Every provider's line (what the sweep matches), in one read of the index."""
        found: dict[str, list[WaitlistEntry]] = {}
        for entry in self.store.waitlist():
            found.setdefault(entry.provider_id, []).append(entry)
        return found

    def _offer(
        self, provider_id: str, waiting: list[WaitlistEntry], offered_to: set[str], by: Attribution
    ) -> list[WaitlistEntry]:
        """Offer each waiting entry, oldest first, the first free slot of its window. A customer holds
        one offer of a provider's at a time: their other entries wait for their turn after it."""
        offered: list[WaitlistEntry] = []
        if not waiting:
            return offered
        until = max(entry.window_end for entry in waiting)
        calendar: ProviderCalendar | None = None
        gave_back = False  # lapsed approvals' counts given back once a match, where a full counter refused
        for entry in waiting:
            if entry.customer_id in offered_to:
                continue
            for attempt in range(MAX_ATTEMPTS):
                now = self.clock()
                if calendar is None:
                    # Read afresh, never the container's remembered calendar: that one is kept true for
                    # this container's own changes, and a time freed by another's would look busy here.
                    calendar = self.store.calendar(provider_id, until)
                    if calendar is None:
                        return offered  # the provider is gone: its entries expire with their windows
                hold, limited = self._offer_for(entry, calendar, now)
                if hold is None or limited is not None:
                    # Free time that a full limit counter refuses may be counted by approvals that
                    # lapsed undecided: their time is free, their counts not until written back.
                    if limited is not None and not gave_back:
                        gave_back = True
                        # (A series' dead claim is left to the bookings it refuses: decision 0026.)
                        bookings = BookingService(self.store, self.clock)
                        if bookings.expire_lapsed_approvals(provider_id, now, limited):
                            calendar = None  # the expiries took spans out of blocks the offer conditions on
                        # Decided again on counts read after the look (`_within_limits` reads them), whatever
                        # it gave back: the sweep may have given one back since, and the index not show it.
                        continue
                    if hold is None:
                        break  # nothing in its window is free (within its customer's limits): it waits on
                assert hold is not None
                outcome = self.store.offer(entry, hold, calendar, by)
                if isinstance(outcome, Committed):
                    offered.append(entry)
                    offered_to.add(entry.customer_id)
                    calendar = None  # the next entry sees this offer's hold
                    break
                if isinstance(outcome, Refused):
                    # The entry changed since it was read: another match (the stream's and the sweep's
                    # overlap) may have offered it; its customer's other entries wait for the next one.
                    offered_to.add(entry.customer_id)
                    break
                if isinstance(outcome, LimitReached):
                    break  # a counter filled since it was read: the next match decides again
                calendar = None  # the calendar changed since it was read: read it again
                self.pause(attempt)
        return offered

    def _within_limits(
        self, calendar: ProviderCalendar, service: Service, customer: str, slots: list[Slot]
    ) -> list[Slot]:
        """The slots a booking by `customer` would not be refused for a full limit counter (one read of
        the counters the slots count in, when the service or provider has limits)."""
        wanted = {slot.start: counters(calendar.provider, service, customer, slot.start) for slot in slots}
        counter_keys = {counter.key for found in wanted.values() for counter in found}
        if not counter_keys:
            return slots
        counts = self.store.limit_counts(calendar.provider.provider_id, counter_keys)
        return [slot for slot in slots if all(counts.get(c.key, 0) < c.limit for c in wanted[slot.start])]

    def _line(
        self, provider_id: str, seen: Iterable[WaitlistEntry], line: list[WaitlistEntry] | None
    ) -> list[WaitlistEntry]:
        read = line if line is not None else self.store.waitlist(provider_id)
        latest = {entry.waitlist_id: entry for entry in read}
        for entry in seen:
            known = latest.get(entry.waitlist_id)
            if entry.provider_id == provider_id and (known is None or known.version < entry.version):
                latest[entry.waitlist_id] = entry
        live = (entry for entry in latest.values() if entry.status not in ENDED_WAITLIST)
        return sorted(live, key=lambda entry: (entry.created_at, entry.waitlist_id))

    def _offer_for(
        self, entry: WaitlistEntry, calendar: ProviderCalendar, now: datetime
    ) -> tuple[Hold | None, datetime | None]:
        """A hold on the first free slot of the entry's window whose appointment ends inside it and
        that its customer's limits leave room for, or None; and the first free slot a full limit
        counter refused, if one came before it (None if none did).

        Only time inside the booking window as it was when the entry joined: the line waits for time
        that frees, not for days that come into the window (those are anyone's, first come)."""
        service = calendar.services.get(entry.service_id)
        if service is None:
            return None, None
        joined = datetime.fromisoformat(entry.created_at.replace("Z", "+00:00"))
        reach = joined + timedelta(days=service.rules.max_advance_days)
        found = [
            s for s in window_slots(calendar, service, entry.window_start, entry.window_end, now) if s.start <= reach
        ]
        allowed = self._within_limits(calendar, service, entry.customer_id, found)
        limited = found[0].start if found and (not allowed or allowed[0].start != found[0].start) else None
        if not allowed:
            return None, limited
        slot = allowed[0]
        request = BookingRequest(entry.provider_id, entry.service_id, slot.start, entry.customer_id, None)
        hold = new_hold(calendar, service, request, entry.customer_id, entry.created_by, now, entry.waitlist_id)
        return hold, limited

    def _offer_of(self, entry: WaitlistEntry) -> Hold | None:
        """The hold an offered entry was offered, as last written (None for a waiting entry)."""
        if entry.status is not WaitlistStatus.OFFERED or entry.hold_id is None:
            return None
        return self.store.get_hold(entry.hold_id)

    @staticmethod
    def _check_window(request: WaitlistRequest, now: datetime) -> None:
        errors = []
        if request.window_end <= request.window_start:
            errors.append(FieldError("body.to", "must be after from"))
        elif request.window_end - request.window_start > MAX_WINDOW:
            errors.append(FieldError("body.to", f"must be at most {MAX_WINDOW.days} days after from"))
        elif request.window_end <= now:
            errors.append(FieldError("body.to", "must be in the future"))
        if errors:
            raise ValidationFailedError("The waiting window is not one that can be offered.", errors)

    @staticmethod
    def _new_entry(
        calendar: ProviderCalendar,
        service_id: str,
        request: WaitlistRequest,
        customer: str,
        caller: str,
        now: datetime,
    ) -> WaitlistEntry:
        provider_zone = zone(calendar.provider.time_zone)
        return WaitlistEntry(
            waitlist_id=keys.new_waitlist_id(calendar.provider.provider_id),
            provider_id=calendar.provider.provider_id,
            service_id=service_id,
            customer_id=customer,
            provider_owner=calendar.provider.owner_sub,
            time_zone=calendar.provider.time_zone,
            window_start=request.window_start.astimezone(provider_zone),
            window_end=request.window_end.astimezone(provider_zone),
            status=WaitlistStatus.WAITING,
            version=1,
            created_at=place_in_line(now),
            created_by=caller,
        )
