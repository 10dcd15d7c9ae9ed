"""The booking service's use cases. No I/O of its own: storage comes in through `BookingStore`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from http import HTTPStatus

from services.booking.domain.models import Booking, BookingStatus, StoredResponse
from services.booking.domain.ports import AlreadyAnswered, BookingStore, Committed, IdempotencyRecord
from services.common import keys
from services.common.auth import Attribution, Group, Principal
from services.common.availability import UNAVAILABLE_REASONS, Slot, free_slots, nearest, why_not
from services.common.calendar import ProviderCalendar, Service
from services.common.clock import Clock, iso_utc
from services.common.errors import DomainError, ForbiddenError, NotFoundError
from services.common.timezones import zone

MAX_ATTEMPTS = 4  # reads and writes of one request when other bookings keep changing the day
IDEMPOTENCY_LIFETIME = timedelta(hours=24)
ALTERNATIVES_AROUND = timedelta(days=7)


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


class ContendedError(DomainError):
    """Other bookings kept changing the provider's day faster than this one could commit."""

    code = "CONTENDED"
    status = HTTPStatus.SERVICE_UNAVAILABLE

    def __init__(self) -> None:
        super().__init__("The provider's calendar is very busy right now; retry shortly.")


class ProviderOrServiceNotFoundError(NotFoundError):
    pass


@dataclass(frozen=True)
class BookingRequest:
    provider_id: str
    service_id: str
    start: datetime
    customer_id: str | None
    notes: str | None


@dataclass
class BookingService:
    store: BookingStore
    clock: Clock

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
        free of HTTP. One strongly consistent read and one transaction, unless another booking changes
        the provider's day in between: then it reads and decides again.
        """
        customer = self._customer(principal, request)
        for _ in range(MAX_ATTEMPTS):
            now = self.clock()
            calendar = self.store.calendar(request.provider_id, max(request.start, now) + ALTERNATIVES_AROUND)
            if calendar is None:
                raise ProviderOrServiceNotFoundError(f"Provider {request.provider_id} does not exist.")
            self._authorize_for_provider(principal, calendar)
            service = calendar.services.get(request.service_id)
            if service is None:
                raise ProviderOrServiceNotFoundError(f"Service {request.service_id} does not exist for this provider.")
            reason = why_not(calendar.hours(), service.rules, calendar.busy, request.start, now, service.service_id)
            if reason is not None:
                replay = self._replay(principal, idempotency_key, request_hash, now)
                if replay is not None:
                    return replay
                if reason == "TAKEN":
                    raise BookingConflictError(self._alternatives(calendar, service, request.start, now))
                raise SlotUnavailableError(reason)
            booking = self._new_booking(calendar, service, request, customer, now)
            response = render(booking)
            record = None
            if idempotency_key:
                record = IdempotencyRecord(
                    idempotency_key, StoredResponse(request_hash, 201, response), now + IDEMPOTENCY_LIFETIME
                )
            outcome = self.store.claim(booking, calendar, record, by)
            if isinstance(outcome, Committed):
                return StoredResponse(request_hash, 201, response)
            if isinstance(outcome, AlreadyAnswered):
                return self._checked_replay(outcome.response, request_hash)
            # Stale: the calendar moved under us; read it again and decide again.
        raise ContendedError()

    def _customer(self, principal: Principal, request: BookingRequest) -> str:
        """Customers book for themselves; providers and admins name the customer."""
        if principal.is_in(Group.ADMINS, Group.PROVIDERS):
            return request.customer_id or principal.sub
        principal.require(Group.CUSTOMERS)
        if request.customer_id not in (None, principal.sub):
            raise ForbiddenError("Customers book for themselves: customerId must be your own id or left out.")
        return principal.sub

    @staticmethod
    def _authorize_for_provider(principal: Principal, calendar: ProviderCalendar) -> None:
        if principal.is_in(Group.ADMINS, Group.CUSTOMERS):
            return
        if calendar.provider.owner_sub != principal.sub:
            raise ForbiddenError("Providers book only into calendars they own.")

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
        return stored

    @staticmethod
    def _alternatives(calendar: ProviderCalendar, service: Service, start: datetime, now: datetime) -> list[Slot]:
        window = (max(now, start - ALTERNATIVES_AROUND), max(now, start) + ALTERNATIVES_AROUND)
        offered = free_slots(calendar.hours(), service.rules, calendar.busy, *window, now, service.service_id)
        return nearest(offered, start)

    @staticmethod
    def _new_booking(
        calendar: ProviderCalendar, service: Service, request: BookingRequest, customer: str, now: datetime
    ) -> Booking:
        rules = service.rules
        provider_zone = zone(calendar.provider.time_zone)
        start = request.start.astimezone(provider_zone)
        end = datetime.fromtimestamp(start.timestamp() + rules.duration_minutes * 60, provider_zone)
        return Booking(
            booking_id=keys.new_id("bkg"),
            provider_id=calendar.provider.provider_id,
            service_id=service.service_id,
            customer_id=customer,
            provider_owner=calendar.provider.owner_sub,
            time_zone=calendar.provider.time_zone,
            start=start,
            end=end,
            busy_start=datetime.fromtimestamp(start.timestamp() - rules.buffer_before_minutes * 60, provider_zone),
            busy_end=datetime.fromtimestamp(end.timestamp() + rules.buffer_after_minutes * 60, provider_zone),
            status=BookingStatus.CONFIRMED,
            version=1,
            notes=request.notes,
            created_at=iso_utc(now),
        )

    def get(self, principal: Principal, booking_id: str) -> Booking:
        """A booking its customer, its provider's owner, admins and ops may read; for anyone else it does not exist."""
        booking = self.store.get_booking(booking_id)
        if booking is None or not self._may_see(principal, booking):
            raise BookingNotFoundError(booking_id)
        return booking

    @staticmethod
    def _may_see(principal: Principal, booking: Booking) -> bool:
        if principal.is_in(Group.ADMINS, Group.OPS):
            return True
        if principal.is_in(Group.PROVIDERS) and booking.provider_owner == principal.sub:
            return True
        return principal.is_in(Group.CUSTOMERS) and booking.customer_id == principal.sub
