"""Recurring series: up to 52 occurrences booked all or none, though that is more than one DynamoDB
transaction holds (decision 0024).

The occurrences are decided together on one read (`ProviderCalendar` around just their times), each
by the engine that answers search and booking (`explain`), and by the limits as if all were booked.
Any that is not free refuses the series, naming every one (`409`, `conflicts`). Otherwise:

1. **Claim**: their spans go into the busy blocks, in as many transactions as it takes, each
   conditioned as a booking's is; a pending item in the provider's calendar lists them and holds them
   until `expiresAt` (a minute), so every reader judges them as held and nobody books over them.
2. **Commit**: one transaction deletes the pending item, while live, and puts the series' item and
   every occurrence's booking (52 + 3 items): from that instant they are bookings.

A part that loses a race gives back the parts before it and the series is decided again. A function
killed half-way gives nothing back, and need not: once `expiresAt` passes its spans are free to every
reader, and the next change that writes their blocks takes them out.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from http import HTTPStatus

from msgspec import Struct
from msgspec.structs import replace

from services.booking.domain.lanes import may_change, may_see
from services.booking.domain.models import Booking, BookingStatus, Series, SeriesStatus, StoredResponse
from services.booking.domain.ports import AlreadyAnswered, BookingStore, Committed
from services.booking.domain.use_cases import (
    AlreadyStartedError,
    BookingNotFoundError,
    BookingRequest,
    BookingService,
    BookingStateError,
    ContendedError,
    ProviderOrServiceNotFoundError,
    kept_answer,
    no_pause,
)
from services.common import keys
from services.common.auth import Attribution, Principal
from services.common.availability import explain, why_not
from services.common.calendar import ProviderCalendar, Service
from services.common.clock import Clock, iso_utc
from services.common.errors import DomainError, ForbiddenError, NotFoundError
from services.common.limits import counters
from services.common.recurrence import Recurrence, occurrences
from services.common.timezones import zone
from services.common.tracing import traced

# How long a series' claimed time is held for its commit: far longer than claiming 52 occurrences
# takes (a few transactions), short enough that a function killed half-way keeps nobody out for long.
CLAIM_HOLD = timedelta(seconds=60)
# A series decided again after a part lost a race: each attempt reads, claims and gives back.
SERIES_ATTEMPTS = 5
# The engine's words for a refused time, as explain names them (a series names every reason).
TAKEN_REASONS = {"TAKEN": "BOOKED"}


class SeriesNotFoundError(NotFoundError):
    def __init__(self, series_id: str) -> None:
        super().__init__(f"Series {series_id} does not exist.")


class SeriesConflictError(DomainError):
    """Some occurrences are not free: nothing was booked."""

    code = "BOOKING_CONFLICT"
    status = HTTPStatus.CONFLICT

    def __init__(self, conflicts: list[tuple[datetime, list[str]]]) -> None:
        super().__init__(
            f"{len(conflicts)} of the series' occurrences cannot be booked, so none was: each is named with why."
        )
        self.conflicts = conflicts

    def extensions(self) -> dict[str, object]:
        return {
            "conflicts": [
                {"start": start.isoformat(), "reason": reasons[0], "reasons": reasons}
                for start, reasons in self.conflicts
            ]
        }


class BookedSeries(Struct, frozen=True):
    series: Series
    bookings: list[Booking]


class SeriesService(Struct):
    store: BookingStore
    clock: Clock
    pause: Callable[[int], None] = no_pause

    @traced("booking.book_series")
    def book(
        self,
        principal: Principal,
        request: BookingRequest,
        recurrence: Recurrence,
        idempotency_key: str | None,
        request_hash: str,
        render: Callable[[BookedSeries], dict[str, object]],
        by: Attribution,
    ) -> StoredResponse:
        """Book every occurrence of `recurrence` from `request.start`, or none."""
        looked_around: set[datetime] = set()  # occurrences lapsed counts were looked for around (below)
        for attempt in range(SERIES_ATTEMPTS):
            now = self.clock()
            profile = self.store.series_calendar(request.provider_id, [], [])
            if profile is None:
                raise ProviderOrServiceNotFoundError(f"Provider {request.provider_id} does not exist.")
            customer = BookingService._customer(principal, request, profile.provider.owner_sub)
            service = profile.services.get(request.service_id)
            if service is None:
                raise ProviderOrServiceNotFoundError(f"Service {request.service_id} does not exist for this provider.")
            for pending in profile.pending_series.values():
                if not pending.live(now):  # cut short (a function killed half-way): its counts back first
                    self.store.abandon_series(request.provider_id, pending.series_id)
            provider_zone = zone(profile.provider.time_zone)
            starts = occurrences(request.start, recurrence, provider_zone)
            shapes = [
                BookingService._new_booking(profile, service, replace(request, start=start), customer, now)
                for start in starts
            ]
            # The calendar around exactly those times (those the booking window reaches: the others are
            # TOO_FAR_AHEAD whatever is there); decided on only if the service it read is the one the
            # spans were drawn with.
            reach = now + timedelta(days=service.rules.max_advance_days + 1)
            near = [shape for shape in shapes if shape.start <= reach]
            spans = [(shape.busy_start, shape.busy_end) for shape in near]
            days = sorted({day for shape in near for day in (shape.start.date(), shape.end.date())})
            calendar = self.store.series_calendar(request.provider_id, spans, days)
            if calendar is None or calendar.services.get(service.service_id) != service:
                self.pause(attempt)
                continue
            conflicts = self._conflicts(calendar, service, customer, starts, now)
            request_key = f"{by.actor}#{idempotency_key}" if idempotency_key else None
            if conflicts and self._own_claim_in_the_way(calendar, conflicts, request_key, now):
                self.pause(attempt)  # a retry of this very request while it is being claimed: wait for it
                continue
            # Counts held by what holds no time any more may be all that refuses it: give them back around
            # the first refused occurrences (a week either side of each), then decide again. Only when
            # nothing else refuses it, and never twice around the same occurrence: refused on a read
            # made after a look around it, the first one is refused for real, and so is the series.
            limited = [start for start, reasons in conflicts if reasons == ["LIMIT_REACHED"]]
            if limited and len(limited) == len(conflicts) and limited[0] not in looked_around:
                looked_around.update(limited[:3])
                gave_back = BookingService(self.store, self.clock).give_back_lapsed(calendar, now, *limited[:3])
                if gave_back or attempt < SERIES_ATTEMPTS - 1:
                    continue
            if conflicts:
                replay = BookingService(self.store, self.clock)._replay(principal, idempotency_key, request_hash, now)
                if replay is not None:
                    return replay
                raise SeriesConflictError(conflicts)
            series_id = keys.new_series_id(calendar.provider.provider_id)
            bookings = [
                replace(
                    shape,
                    series_id=series_id,
                    counted={
                        c.key: int(c.ends.timestamp())
                        for c in counters(calendar.provider, service, customer, shape.start)
                    },
                )
                for shape in shapes
            ]
            series = Series(
                series_id=series_id,
                provider_id=calendar.provider.provider_id,
                service_id=service.service_id,
                customer_id=customer,
                provider_owner=calendar.provider.owner_sub,
                time_zone=calendar.provider.time_zone,
                recurrence=recurrence,
                booking_ids=tuple(booking.booking_id for booking in bookings),
                status=SeriesStatus.ACTIVE,
                version=1,
                created_at=iso_utc(now),
            )
            response = render(BookedSeries(series, bookings))
            expires = now.replace(microsecond=0) + CLAIM_HOLD
            claimed = self.store.claim_series(series, bookings, calendar, expires, request_key)
            if isinstance(claimed, Committed):
                record = kept_answer(idempotency_key, request_hash, response, now)
                try:
                    outcome = self.store.commit_series(series, bookings, record, by)
                except BaseException:
                    # Whatever became of the commit: committed, giving back finds nothing; else it frees the time now.
                    self.store.abandon_series(series.provider_id, series.series_id)
                    raise
                if isinstance(outcome, Committed):
                    return StoredResponse(request_hash, 201, response)
                self.store.abandon_series(series.provider_id, series.series_id)
                if isinstance(outcome, AlreadyAnswered):
                    return BookingService._checked_replay(outcome.response, request_hash)
            # A part lost a race (or the commit came too late): its time is given back; decide again.
            self.pause(attempt)
        raise ContendedError()

    @staticmethod
    def _own_claim_in_the_way(
        calendar: ProviderCalendar,
        conflicts: list[tuple[datetime, list[str]]],
        request_key: str | None,
        now: datetime,
    ) -> bool:
        """Only held times stand in the way, and a live claim of this same request (caller and
        Idempotency-Key) holds times: its first try is still claiming, and its answer will be the answer."""
        # Its own claim holds those times and has counted them: HELD, and LIMIT_REACHED where a limit applies.
        if request_key is None or any(not set(reasons) <= {"HELD", "LIMIT_REACHED"} for _, reasons in conflicts):
            return False
        return any(p.live(now) and p.request_key == request_key for p in calendar.pending_series.values())

    def _conflicts(
        self, calendar: ProviderCalendar, service: Service, customer: str, starts: list[datetime], now: datetime
    ) -> list[tuple[datetime, list[str]]]:
        """Every occurrence that cannot be booked, with every reason: the engine's, and LIMIT_REACHED
        when a limit would be passed with the occurrences before it booked."""
        hours, busy = calendar.hours(), calendar.busy_explained(now)
        found = [counters(calendar.provider, service, customer, start) for start in starts]
        wanted = {counter.key for each in found for counter in each}
        counts = self.store.limit_counts(calendar.provider.provider_id, wanted) if wanted else {}
        conflicts = []
        for start, each in zip(starts, found, strict=True):
            bookable, reasons = explain(hours, service.rules, busy, start, now, service.service_id)
            if not bookable and not reasons:  # explain names causes; the decision may see one it does not
                reason = why_not(hours, service.rules, busy, start, now, service.service_id) or "TAKEN"
                reasons = [TAKEN_REASONS.get(reason, reason)]
            full = False
            for counter in each:
                counts[counter.key] = counts.get(counter.key, 0) + 1
                full = full or counts[counter.key] > counter.limit
            if full:
                reasons.append("LIMIT_REACHED")
            if reasons:
                conflicts.append((start, reasons))
        return conflicts

    # Reading and cancelling

    @traced("booking.get_series")
    def get(self, principal: Principal, series_id: str) -> BookedSeries:
        """A series, to whoever may see its bookings: its customer, its provider's owner, admins, ops."""
        series = self.store.get_series(series_id)
        if series is None or not may_see(principal, series):
            raise SeriesNotFoundError(series_id)
        now = self.clock()
        return BookedSeries(
            series, [booking.as_of(now) for booking in self.store.get_bookings(list(series.booking_ids))]
        )

    @traced("booking.cancel_series")
    def cancel(
        self, principal: Principal, series_id: str, reason: str | None, by: Attribution
    ) -> tuple[BookedSeries, int]:
        """Cancel every confirmed (or pending) occurrence that has not started, one by one (each frees
        its own time), then mark the series cancelled; the series, and how many were cancelled now.
        Done again, it cancels what is left and changes nothing else."""
        series = self.get(principal, series_id).series
        if not may_change(principal, series):
            raise ForbiddenError("Ops and support read series; they cannot cancel them.")
        bookings = BookingService(self.store, self.clock, self.pause)
        cancelled = 0
        for booking in self.store.get_bookings(list(series.booking_ids)):
            booking = booking.as_of(self.clock())
            if booking.status not in (BookingStatus.CONFIRMED, BookingStatus.PENDING) or booking.start <= self.clock():
                continue
            try:
                bookings.cancel(principal, booking.booking_id, None, reason, by)
                cancelled += 1
            except (BookingStateError, BookingNotFoundError, AlreadyStartedError):
                continue  # cancelled, decided or expired, or started, meanwhile
        for attempt in range(SERIES_ATTEMPTS):
            current = self.store.get_series(series_id)
            if current is None or current.status is SeriesStatus.CANCELLED:
                break
            if isinstance(self.store.end_series(current, by), Committed):
                break
            self.pause(attempt)
        return self.get(principal, series_id), cancelled
