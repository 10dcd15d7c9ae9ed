"""The booking service's use cases. No I/O of its own: storage comes in through `BookingStore`."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from http import HTTPStatus

from msgspec import Struct
from msgspec.structs import replace

from services.booking.domain.lapses import APPROVAL_TIMEOUT
from services.booking.domain.models import Booking, BookingStatus, StoredResponse
from services.booking.domain.ports import (
    AlreadyAnswered,
    BookingPage,
    BookingStore,
    ClaimOutcome,
    Committed,
    IdempotencyRecord,
    LimitReached,
    ListQuery,
    Stale,
)
from services.common import keys
from services.common.auth import Attribution, Group, Principal
from services.common.availability import UNAVAILABLE_REASONS, Slot, free_slots, nearest, why_not
from services.common.calendar import BookedSpan, ProviderCalendar, Service
from services.common.clock import Clock, iso_utc
from services.common.errors import (
    BusyError,
    DomainError,
    FieldError,
    ForbiddenError,
    NotFoundError,
    PreconditionFailedError,
    ValidationFailedError,
)
from services.common.timezones import zone
from services.common.tracing import traced

# Each lost race means another booking of that provider's day committed, so attempts are bounded by
# how many bookings race at once; between attempts, a short jittered pause spreads the retries.
MAX_ATTEMPTS = 30
IDEMPOTENCY_LIFETIME = timedelta(hours=24)
ALTERNATIVES_AROUND = timedelta(days=7)
SPAN_REACH = timedelta(days=1)  # longer than the longest span (a 720-minute service, two 240-minute buffers)


class BookingNotFoundError(NotFoundError):
    def __init__(self, booking_id: str) -> None:
        super().__init__(f"Booking {booking_id} does not exist.")


class SlotUnavailableError(DomainError):
    code = "SLOT_UNAVAILABLE"
    status = HTTPStatus.UNPROCESSABLE_ENTITY

    def __init__(self, reason: str) -> None:
        super().__init__(UNAVAILABLE_REASONS[reason])
        self.reason = reason

    def extensions(self) -> dict[str, object]:
        return {"reason": self.reason}


class BookingConflictError(DomainError):
    code = "BOOKING_CONFLICT"
    status = HTTPStatus.CONFLICT

    def __init__(self, alternatives: list[Slot]) -> None:
        super().__init__("The time was taken; these are the nearest free slots.")
        self.alternatives = alternatives

    def extensions(self) -> dict[str, object]:
        slots = [
            {"start": s.start.isoformat(), "end": s.end.isoformat(), "remaining": s.remaining}
            for s in self.alternatives
        ]
        return {"alternatives": slots}


class IdempotencyKeyReusedError(DomainError):
    code = "IDEMPOTENCY_KEY_REUSED"
    status = HTTPStatus.UNPROCESSABLE_ENTITY

    def __init__(self) -> None:
        super().__init__("This Idempotency-Key was used with a different request.")


class ContendedError(BusyError):
    """Other bookings kept changing the provider's day faster than this one could commit."""

    code = "CONTENDED"

    def __init__(self) -> None:
        super().__init__("The provider's calendar is very busy right now; retry shortly.")


class ProviderOrServiceNotFoundError(NotFoundError):
    pass


class BookingStateError(DomainError):
    """The booking is not in a state that allows the change (e.g. cancelling a cancelled booking)."""

    code = "INVALID_STATE"
    status = HTTPStatus.CONFLICT

    def __init__(self, booking: Booking, change: str) -> None:
        super().__init__(f"A {booking.status.value.lower()} booking cannot be {change}.")


class NotYetPastError(DomainError):
    code = "NOT_YET_PAST"
    status = HTTPStatus.UNPROCESSABLE_ENTITY

    def __init__(self) -> None:
        super().__init__("Only a booking that has started can be marked as a no-show.")


class AlreadyStartedError(DomainError):
    code = "ALREADY_STARTED"
    status = HTTPStatus.UNPROCESSABLE_ENTITY

    def __init__(self, change: str) -> None:
        super().__init__(
            f"The booking has started: only the provider or an admin can {change} it now. "
            "Ask the provider if you cannot come."
        )

    def extensions(self) -> dict[str, object]:
        return {"reason": "ALREADY_STARTED"}


class BookingRequest(Struct, frozen=True):
    provider_id: str
    service_id: str
    start: datetime
    customer_id: str | None
    notes: str | None
    hold_id: str | None = None  # book the time this hold keeps (same provider, service, start, customer)


HOLD_UNAVAILABLE_REASONS = {
    "EXPIRED": "The hold has expired: its time is free for anyone again (book it without holdId if still free).",
    "NOT_FOUND": "No such hold.",
    "MISMATCH": "The hold keeps another provider, service, start or customer than this request names.",
}


class HoldUnavailableError(DomainError):
    """`holdId` names no live hold this request can turn into a booking."""

    code = "HOLD_UNAVAILABLE"
    status = HTTPStatus.UNPROCESSABLE_ENTITY

    def __init__(self, reason: str) -> None:
        super().__init__(HOLD_UNAVAILABLE_REASONS[reason])
        self.reason = reason

    def extensions(self) -> dict[str, object]:
        return {"reason": self.reason, "errors": [{"field": "body.holdId", "message": self.detail}]}


# Who the trail names for an expiry: nobody decided, the deadline did (written down by whichever
# request came upon it; its request id and trace are on the item too).
EXPIRY = Attribution(actor=APPROVAL_TIMEOUT, request_id="", trace_id="")


def approval_deadline(now: datetime, hours: int) -> datetime:
    """When a booking made at `now` that awaits approval expires, undecided (whole seconds)."""
    return now.replace(microsecond=0) + timedelta(hours=hours)


def kept_answer(
    key: str | None, request_hash: str, response: dict[str, object], now: datetime
) -> IdempotencyRecord | None:
    """The 201 to keep for retries with `key` (none without a key), for IDEMPOTENCY_LIFETIME."""
    if not key:
        return None
    return IdempotencyRecord(key, StoredResponse(request_hash, 201, response), now + IDEMPOTENCY_LIFETIME)


def no_pause(_attempt: int) -> None:
    """Retry at once (tests); the handler injects a jittered backoff."""


class BookingService(Struct):
    store: BookingStore
    clock: Clock
    pause: Callable[[int], None] = no_pause

    @traced("booking.book")
    def book(
        self,
        principal: Principal,
        request: BookingRequest,
        idempotency_key: str | None,
        request_hash: str,
        render: Callable[[Booking], dict[str, object]],
        by: Attribution,
    ) -> StoredResponse:
        """Book `request`, once: a retried request with the same key gets the first answer back.

        `render` turns the new booking into the API's body (kept for replays), so the domain stays
        free of HTTP. When the container remembers the provider's calendar, one transaction and no
        read: the transaction is conditioned on every version the decision used, so a calendar
        remembered wrongly fails it, and the blocks it found changed come back with the failure.
        Otherwise, or when the decision would refuse (never decided on a remembered calendar), one
        strongly consistent read and one transaction. When another booking changes the same time
        in between, it decides again.
        """
        if request.hold_id is not None:
            return self._convert(principal, request, request.hold_id, idempotency_key, request_hash, render, by)
        read_again = False  # a refusal, an unknown service, or a change the failure did not tell
        looked_back = False  # for counts held by what holds no time any more (give_back_lapsed)
        for attempt in range(MAX_ATTEMPTS):
            now = self.clock()
            until = max(request.start, now) + ALTERNATIVES_AROUND
            # A decision to book needs the calendar only as far as the new span reaches (at most 20
            # hours); the week of alternatives is for a refusal, which is always decided on a read.
            reach = None if read_again else request.start + SPAN_REACH
            calendar = self.store.calendar(request.provider_id, until, remembered_to=reach)
            if calendar is None:
                raise ProviderOrServiceNotFoundError(f"Provider {request.provider_id} does not exist.")
            customer = self._customer(principal, request, calendar.provider.owner_sub)  # owners never change
            service = calendar.services.get(request.service_id)
            if service is None:
                if calendar.remembered:  # perhaps a service made since: ask the table
                    read_again = True
                    continue
                raise ProviderOrServiceNotFoundError(f"Service {request.service_id} does not exist for this provider.")
            reason = why_not(
                calendar.hours(), service.rules, calendar.busy_at(now), request.start, now, service.service_id
            )
            if reason is not None and calendar.remembered:  # a refusal is decided on what the table holds now
                read_again = True
                continue
            if reason is not None:
                replay = self._replay(principal, idempotency_key, request_hash, now)
                if replay is not None:
                    return replay
                if reason == "TAKEN":
                    raise BookingConflictError(self._alternatives(calendar, service, request.start, now))
                raise SlotUnavailableError(reason)
            booking = self._new_booking(calendar, service, request, customer, now)
            response = render(booking)
            record = kept_answer(idempotency_key, request_hash, response, now)
            outcome = self.store.claim(booking, calendar, record, by)
            if isinstance(outcome, Committed):
                return StoredResponse(request_hash, 201, response)
            if isinstance(outcome, AlreadyAnswered):
                return self._checked_replay(outcome.response, request_hash)
            if isinstance(outcome, LimitReached):
                # A refusal is never decided on memory, nor before the counts held by what no longer
                # holds time (a series cut short, an approval past its deadline) were given back.
                if calendar.remembered:
                    read_again = True
                    continue
                if not looked_back:
                    looked_back = True
                    if self.give_back_lapsed(calendar, now, request.start) or attempt < MAX_ATTEMPTS - 1:
                        read_again = True
                        continue
                return self._limit_reached(principal, idempotency_key, request_hash, now)
            # Stale: the calendar moved under us. Decide again: on what the failure told, when it told
            # all that moved (the blocks' new state), else on a new read.
            read_again = not (isinstance(outcome, Stale) and outcome.learnt)
            self.pause(attempt)
        raise ContendedError()

    def give_back_lapsed(self, calendar: ProviderCalendar, now: datetime, *around: datetime) -> bool:
        """Give back what holds limit counts but no time any more, where changes refused at `around`
        count: the claims of series that will never commit (a function killed half-way, decision 0024),
        and the provider's bookings within a week of those times whose approval deadline passed
        undecided (decision 0025; found in the provider's index, whether their span is still in the
        calendar or was booked over). Their time is free already; their counts are not until written
        back. True if anything was given back.

        A full counter refuses a change only on a claim (or a read of the counters) made after this,
        whatever it gave back: the minute's sweep (domain/lapses.py) may have given a count back after
        the claim that was refused, and then the index no longer shows it here. Only a change with no
        attempt left after the look is refused on the look alone."""
        given_back = False
        for series in calendar.pending_series.values():
            if not series.live(now):
                given_back |= self.store.abandon_series(calendar.provider.provider_id, series.series_id)
        return self.expire_lapsed_approvals(calendar.provider.provider_id, now, *around) or given_back

    def expire_lapsed_approvals(self, provider_id: str, now: datetime, *around: datetime) -> bool:
        """Write down as EXPIRED the provider's bookings within a week of any of `around` whose approval
        deadline passed undecided (decision 0025): their counts go back. True if any was. (A week either
        side holds the day and the ISO week a refused time counts in; overlapping weeks are read once.)"""
        week = timedelta(days=7)
        windows: list[tuple[datetime, datetime]] = []
        for time in sorted(around):
            if windows and time - week <= windows[-1][1]:
                windows[-1] = (windows[-1][0], time + week)
            else:
                windows.append((time - week, time + week))
        given_back = False
        for start, end in windows:
            for booking in self.store.lapsed_approvals(provider_id, start, end, now):
                given_back |= isinstance(self.store.expire(booking, EXPIRY), Committed)
        return given_back

    def _limit_reached(
        self, principal: Principal, idempotency_key: str | None, request_hash: str, now: datetime
    ) -> StoredResponse:
        """A full limit counter refused it: unless this is the retry of a request that succeeded (its own
        booking filled the counter), 422 LIMIT_REACHED."""
        replay = self._replay(principal, idempotency_key, request_hash, now)
        if replay is not None:
            return replay
        raise SlotUnavailableError("LIMIT_REACHED")

    def _convert(
        self,
        principal: Principal,
        request: BookingRequest,
        hold_id: str,
        idempotency_key: str | None,
        request_hash: str,
        render: Callable[[Booking], dict[str, object]],
        by: Attribution,
    ) -> StoredResponse:
        """Book the time a live hold keeps, in the hold's place: one read of the hold, one transaction.
        Nobody else could take the time meanwhile, so there is nothing to decide again but whether the
        hold is still there and still live."""
        looked_back = False  # for counts held by what holds no time any more (give_back_lapsed)
        for attempt in range(MAX_ATTEMPTS):
            now = self.clock()
            hold = self.store.get_hold(hold_id)
            # Converted (by the first request with this key?), released, or gone; an expired offer from the
            # waitlist, ended by the sweep, is told as expired below.
            if hold is None or (hold.ended and hold.ended != "EXPIRED"):
                replay = self._replay(principal, idempotency_key, request_hash, now)
                if replay is not None:
                    return replay
                raise HoldUnavailableError("NOT_FOUND")
            # Who may book for whom, as without a hold (403 before anything about the hold is said).
            customer = self._customer(principal, request, hold.provider_owner)
            visible = (
                principal.is_in(Group.ADMINS)
                or (principal.is_in(Group.PROVIDERS) and hold.provider_owner == principal.sub)
                or hold.customer_id == principal.sub
            )
            if not visible or not hold.live(now):
                raise HoldUnavailableError("EXPIRED" if visible else "NOT_FOUND")
            same_time = abs((hold.start - request.start).total_seconds()) < 1
            if (hold.provider_id, hold.service_id, hold.customer_id) != (
                request.provider_id,
                request.service_id,
                customer,
            ) or not same_time:
                raise HoldUnavailableError("MISMATCH")
            booking = Booking(
                booking_id=keys.new_booking_id(hold.provider_id),
                provider_id=hold.provider_id,
                service_id=hold.service_id,
                customer_id=hold.customer_id,
                provider_owner=hold.provider_owner,
                time_zone=hold.time_zone,
                start=hold.start,
                end=hold.end,
                busy_start=hold.busy_start,
                busy_end=hold.busy_end,
                status=BookingStatus.CONFIRMED if hold.approval_hours is None else BookingStatus.PENDING,
                version=1,
                notes=request.notes,
                created_at=iso_utc(now),
                approval_expires_at=None
                if hold.approval_hours is None
                else approval_deadline(now, hold.approval_hours),
            )
            response = render(booking)
            record = kept_answer(idempotency_key, request_hash, response, now)
            outcome = self.store.convert(hold, booking, record, by)
            if isinstance(outcome, Committed):
                return StoredResponse(request_hash, 201, response)
            if isinstance(outcome, AlreadyAnswered):
                return self._checked_replay(outcome.response, request_hash)
            if isinstance(outcome, LimitReached):
                calendar = self.store.calendar(hold.provider_id, hold.start + SPAN_REACH)
                if calendar is not None and not looked_back:
                    looked_back = True
                    if self.give_back_lapsed(calendar, now, hold.start) or attempt < MAX_ATTEMPTS - 1:
                        continue
                return self._limit_reached(principal, idempotency_key, request_hash, now)
            self.pause(attempt)  # the hold expired, or was released or turned into a booking: read it again
        raise ContendedError()

    @staticmethod
    def _customer(principal: Principal, request: BookingRequest, owner_sub: str | None) -> str:
        """Whom the booking is for. Customers book for themselves into any calendar; naming someone
        else takes an admin, or the owner of this calendar (a provider booking a client in). Whatever
        other groups a caller has, a provider's own group never reaches another provider's calendar."""
        owner = principal.is_in(Group.PROVIDERS) and owner_sub == principal.sub
        if request.customer_id not in (None, principal.sub):
            if not (principal.is_in(Group.ADMINS) or owner):
                raise ForbiddenError(
                    "Only an admin or the owner of this provider books for someone else: leave customerId out."
                )
            return request.customer_id
        if not (principal.is_in(Group.ADMINS, Group.CUSTOMERS) or owner):
            raise ForbiddenError("Providers book only into calendars they own.")
        return principal.sub

    def _replay(self, principal: Principal, key: str | None, request_hash: str, now: datetime) -> StoredResponse | None:
        """A refused request may be the retry of one that succeeded: then its first answer is the answer."""
        if not key:
            return None
        stored = self.store.stored_response(principal.sub, key, now)
        return self._checked_replay(stored, request_hash) if stored else None

    @staticmethod
    def _checked_replay(stored: StoredResponse, request_hash: str) -> StoredResponse:
        if stored.request_hash != request_hash:
            raise IdempotencyKeyReusedError()
        return replace(stored, replayed=True)

    @staticmethod
    def _alternatives(calendar: ProviderCalendar, service: Service, start: datetime, now: datetime) -> list[Slot]:
        window = (max(now, start - ALTERNATIVES_AROUND), max(now, start) + ALTERNATIVES_AROUND)
        offered = free_slots(calendar.hours(), service.rules, calendar.busy_at(now), *window, now, service.service_id)
        return nearest(offered, start)

    @staticmethod
    def _new_booking(
        calendar: ProviderCalendar, service: Service, request: BookingRequest, customer: str, now: datetime
    ) -> Booking:
        rules = service.rules
        provider_zone = zone(calendar.provider.time_zone)
        # Whole seconds, as the engine judges a start and the table stores one: a fraction kept here
        # would reach a busy block the stored span does not name, and stay there after a cancel.
        start = request.start.astimezone(provider_zone).replace(microsecond=0)
        end = datetime.fromtimestamp(start.timestamp() + rules.duration_minutes * 60, provider_zone)
        return Booking(
            booking_id=keys.new_booking_id(calendar.provider.provider_id),
            provider_id=calendar.provider.provider_id,
            service_id=service.service_id,
            customer_id=customer,
            provider_owner=calendar.provider.owner_sub,
            time_zone=calendar.provider.time_zone,
            start=start,
            end=end,
            busy_start=datetime.fromtimestamp(start.timestamp() - rules.buffer_before_minutes * 60, provider_zone),
            busy_end=datetime.fromtimestamp(end.timestamp() + rules.buffer_after_minutes * 60, provider_zone),
            status=BookingStatus.PENDING if service.requires_approval else BookingStatus.CONFIRMED,
            version=1,
            notes=request.notes,
            created_at=iso_utc(now),
            approval_expires_at=approval_deadline(now, service.approval_timeout_hours)
            if service.requires_approval
            else None,
        )

    @traced("booking.get")
    def get(self, principal: Principal, booking_id: str) -> Booking:
        """A booking its customer, its provider's owner, admins and ops may read; for anyone else it does not exist."""
        booking = self.store.get_booking(booking_id)
        if booking is None or not self._may_see(principal, booking):
            raise BookingNotFoundError(booking_id)
        return booking.as_of(self.clock())

    @staticmethod
    def _staff_of(principal: Principal, booking: Booking) -> bool:
        """Admins, and the owner of the booking's provider: who may change a booking at any time."""
        return principal.is_in(Group.ADMINS) or (
            principal.is_in(Group.PROVIDERS) and booking.provider_owner == principal.sub
        )

    def _may_change(self, principal: Principal, booking: Booking, change: str) -> None:
        """Its customer until it starts, its provider's owner and admins always; ops read only (403)."""
        if self._staff_of(principal, booking):
            return
        if not (principal.is_in(Group.CUSTOMERS) and booking.customer_id == principal.sub):
            raise ForbiddenError(f"Ops and support read bookings; they cannot {change} them.")
        if booking.start <= self.clock():
            raise AlreadyStartedError(change)

    @staticmethod
    def _may_see(principal: Principal, booking: Booking) -> bool:
        if principal.is_in(Group.ADMINS, Group.OPS):
            return True
        if principal.is_in(Group.PROVIDERS) and booking.provider_owner == principal.sub:
            return True
        return principal.is_in(Group.CUSTOMERS) and booking.customer_id == principal.sub

    # Changes to an existing booking

    def _changeable(self, principal: Principal, booking_id: str, expected_version: int | None, change: str) -> Booking:
        """The booking, if the caller may change it and names its current version (when it names one)."""
        booking = self.get(principal, booking_id)
        self._may_change(principal, booking, change)
        self._check_version(booking, expected_version)
        return booking

    @staticmethod
    def _check_version(booking: Booking, expected_version: int | None) -> None:
        """A change that names the version it is based on (If-Match) applies only to that version."""
        if expected_version is not None and expected_version != booking.version:
            raise PreconditionFailedError(f"Version {expected_version} is not the current version {booking.version}.")

    @staticmethod
    def _settle(outcome: ClaimOutcome) -> bool:
        """True when the change committed; False when something moved underneath and it must read again."""
        return isinstance(outcome, Committed)

    @traced("booking.cancel")
    def cancel(
        self, principal: Principal, booking_id: str, expected_version: int | None, reason: str | None, by: Attribution
    ) -> Booking:
        """Cancel and free the time, in one transaction."""
        for attempt in range(MAX_ATTEMPTS):
            booking = self._changeable(principal, booking_id, expected_version, "cancel")
            self._write_down_expiry(booking)
            if booking.status not in (BookingStatus.CONFIRMED, BookingStatus.PENDING):
                raise BookingStateError(booking, "cancelled")
            if self._settle(self.store.cancel(booking, reason, by)):
                return replace(
                    booking, status=BookingStatus.CANCELLED, version=booking.version + 1, cancel_reason=reason
                )
            self.pause(attempt)
        raise ContendedError()

    @traced("booking.approve")
    def approve(self, principal: Principal, booking_id: str, expected_version: int | None, by: Attribution) -> Booking:
        """The provider's owner (or an admin) confirms a pending booking: it keeps its time."""
        for attempt in range(MAX_ATTEMPTS):
            booking = self._pending(principal, booking_id, expected_version, "approved")
            if self._settle(self.store.approve(booking, by)):
                return replace(
                    booking, status=BookingStatus.CONFIRMED, version=booking.version + 1, approval_expires_at=None
                )
            self.pause(attempt)  # decided, cancelled or expired meanwhile: the next read says which
        raise ContendedError()

    @traced("booking.decline")
    def decline(
        self, principal: Principal, booking_id: str, expected_version: int | None, reason: str | None, by: Attribution
    ) -> Booking:
        """The provider's owner (or an admin) refuses a pending booking: its time is free again at once."""
        for attempt in range(MAX_ATTEMPTS):
            booking = self._pending(principal, booking_id, expected_version, "declined")
            if self._settle(self.store.decline(booking, reason, by)):
                return replace(
                    booking,
                    status=BookingStatus.DECLINED,
                    version=booking.version + 1,
                    approval_expires_at=None,
                    decline_reason=reason,
                )
            self.pause(attempt)
        raise ContendedError()

    def _write_down_expiry(self, booking: Booking) -> None:
        """A booking every reader sees as EXPIRED but the table still holds PENDING: written down (its
        counts given back, the trail told) by whoever acts on it."""
        if booking.status is BookingStatus.EXPIRED and booking.approval_expires_at is not None:
            stored = self.store.get_booking(booking.booking_id)
            if stored is not None and stored.status is BookingStatus.PENDING:
                self.store.expire(stored, EXPIRY)

    def _pending(self, principal: Principal, booking_id: str, expected_version: int | None, change: str) -> Booking:
        """A booking awaiting approval that the caller may decide on: its provider's owner or an admin."""
        booking = self.get(principal, booking_id)
        if not self._staff_of(principal, booking):
            raise ForbiddenError("Only the provider's owner or an admin approves or declines a booking.")
        self._check_version(booking, expected_version)
        self._write_down_expiry(booking)
        if booking.status is not BookingStatus.PENDING:
            raise BookingStateError(booking, change)
        return booking

    @traced("booking.mark_no_show")
    def mark_no_show(
        self, principal: Principal, booking_id: str, expected_version: int | None, by: Attribution
    ) -> Booking:
        """The provider (or an admin) records that the customer did not come."""
        for attempt in range(MAX_ATTEMPTS):
            booking = self.get(principal, booking_id)
            if not self._staff_of(principal, booking):
                raise ForbiddenError("Only the provider or an admin marks no-shows.")
            self._check_version(booking, expected_version)
            if booking.status is not BookingStatus.CONFIRMED:
                raise BookingStateError(booking, "marked as a no-show")
            if booking.start > self.clock():
                raise NotYetPastError()
            if self._settle(self.store.mark_no_show(booking, by)):
                return replace(booking, status=BookingStatus.NO_SHOW, version=booking.version + 1)
            self.pause(attempt)
        raise ContendedError()

    @traced("booking.reschedule")
    def reschedule(
        self, principal: Principal, booking_id: str, new_start: datetime, expected_version: int | None, by: Attribution
    ) -> Booking:
        """Move a booking: the new time is claimed and the old released in one transaction, or nothing changes.

        One read: the booking id names its provider, and the provider's calendar holds the booking's
        span (its customer, service, times and version) beside everything the new time is checked against.
        """
        provider_id = keys.provider_of_booking(booking_id)
        looked_back = False  # for counts held by what holds no time any more (give_back_lapsed)
        for attempt in range(MAX_ATTEMPTS):
            now = self.clock()
            calendar = self.store.calendar(provider_id, max(new_start, now) + ALTERNATIVES_AROUND)
            span = calendar.booked.get(booking_id) if calendar else None
            if calendar is not None and span is not None and span.expires_at is None:  # a confirmed booking's
                service = calendar.services.get(span.service_id)
                if service is None:
                    raise ProviderOrServiceNotFoundError("The booking's service no longer exists.")
                booking = self._from_span(calendar, service, span)
                if not self._may_see(principal, booking):
                    raise BookingNotFoundError(booking_id)
                self._may_change(principal, booking, "reschedule")
                self._check_version(booking, expected_version)
            else:
                # Not confirmed, not there, in the past (its days are not read), or beyond the window
                # just read: the booking itself says which.
                booking = self._changeable(principal, booking_id, expected_version, "reschedule")
                if booking.status is not BookingStatus.CONFIRMED:
                    raise BookingStateError(booking, "rescheduled")
                if booking.busy_end > now:  # its span is in days still kept: read far enough to see it
                    calendar = self.store.calendar(provider_id, max(new_start, booking.busy_end) + ALTERNATIVES_AROUND)
                    if calendar is None or booking_id not in calendar.booked:
                        self.pause(attempt)  # it changed while we looked: read again
                        continue
                elif calendar is None:
                    raise ProviderOrServiceNotFoundError(f"Provider {provider_id} does not exist.")
                service = calendar.services.get(booking.service_id)
                if service is None:
                    raise ProviderOrServiceNotFoundError("The booking's service no longer exists.")
            busy = calendar.busy_except(booking_id, now)
            reason = why_not(calendar.hours(), service.rules, busy, new_start, now, service.service_id)
            if reason == "TAKEN":
                others = replace(calendar, booked={k: v for k, v in calendar.booked.items() if k != booking_id})
                raise BookingConflictError(self._alternatives(others, service, new_start, now))
            if reason is not None:
                raise SlotUnavailableError(reason)
            request = BookingRequest(provider_id, service.service_id, new_start, booking.customer_id, None)
            moved = replace(
                self._new_booking(calendar, service, request, booking.customer_id, now),
                booking_id=booking_id,
                version=booking.version + 1,
                created_at=booking.created_at,
                # A confirmed booking moves confirmed, whatever the service asks of new bookings now.
                status=booking.status,
                approval_expires_at=None,
            )
            outcome = self.store.reschedule(booking, moved, calendar, by)
            if isinstance(outcome, LimitReached):
                if not looked_back:
                    looked_back = True
                    if self.give_back_lapsed(calendar, now, new_start) or attempt < MAX_ATTEMPTS - 1:
                        continue
                raise SlotUnavailableError("LIMIT_REACHED")
            if self._settle(outcome):
                return moved
            self.pause(attempt)
        raise ContendedError()

    @staticmethod
    def _from_span(calendar: ProviderCalendar, service: Service, span: BookedSpan) -> Booking:
        """A confirmed booking as its span in the calendar describes it (notes are not in the calendar)."""
        provider_zone = zone(calendar.provider.time_zone)
        start = span.session_start.astimezone(provider_zone)
        return Booking(
            booking_id=span.booking_id,
            provider_id=calendar.provider.provider_id,
            service_id=span.service_id,
            customer_id=span.customer_id,
            provider_owner=calendar.provider.owner_sub,
            time_zone=calendar.provider.time_zone,
            start=start,
            end=datetime.fromtimestamp(start.timestamp() + service.rules.duration_minutes * 60, provider_zone),
            busy_start=span.start.astimezone(provider_zone),
            busy_end=span.end.astimezone(provider_zone),
            status=BookingStatus.CONFIRMED,
            version=span.version,
            notes=None,
            created_at=span.created_at,
        )

    # Lists

    @staticmethod
    def _lists_by_provider(principal: Principal) -> bool:
        """Admins, ops and providers may read a provider's whole index; customers only their own."""
        return principal.is_in(Group.ADMINS, Group.OPS, Group.PROVIDERS)

    @traced("booking.list")
    def list(
        self,
        principal: Principal,
        provider_id: str | None,
        customer_id: str | None,
        window: tuple[datetime, datetime],
        status: BookingStatus | None,
        limit: int,
        cursor: str | None,
    ) -> BookingPage:
        """Customers list their own; providers their providers'; admins and ops by provider or customer."""
        if principal.is_in(Group.ADMINS, Group.OPS):
            if provider_id is None and customer_id is None:
                raise ValidationFailedError(
                    "Say whose bookings to list.",
                    [FieldError("query.providerId", "providerId or customerId is required")],
                )
        elif principal.is_in(Group.PROVIDERS) and provider_id is not None:
            calendar = self.store.calendar(provider_id, self.clock())
            if calendar is None or calendar.provider.owner_sub != principal.sub:
                raise ForbiddenError("Providers list only the bookings of providers they own.")
        elif principal.is_in(Group.CUSTOMERS):
            if customer_id not in (None, principal.sub):
                raise ForbiddenError("Customers list only their own bookings.")
            customer_id = principal.sub
        else:
            raise ForbiddenError("Providers must name one of their providers (providerId).")
        # A customer reads their own index even when naming a provider: a page's cursor names the last
        # item read, and in the provider's index that may be another customer's booking.
        by_customer = customer_id is not None and (provider_id is None or not self._lists_by_provider(principal))
        now = self.clock()
        query = ListQuery(provider_id, customer_id, window[0], window[1], status, limit, cursor, by_customer, now)
        page = self.store.list_bookings(query)
        return replace(page, items=[booking.as_of(now) for booking in page.items])
