"""Writing down what lapsed without a write: a hold past its expiry, a pending booking past its
approval deadline (decision 0027).

Every reader already judges both by the clock, so the time is free at once either way. Writing them
down makes them changes like any other: in the stream, so in the audit trail and on the bus
(`hold.expired`, `booking.expired`), within the minute the sweep takes. The transaction that makes a
hold or a pending booking also files a marker under the hour it lapses; the waitlist function's
sweep (services/booking/waitlist_handler.py), once a minute, reads the markers up to now and writes
each lapse down, conditioned on it still standing. A hold booked or released in time, or a booking
decided, is found ended and its marker dropped.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from enum import Enum

from msgspec import Struct, field
from msgspec.structs import replace

from services.booking.domain.models import BookingStatus, Lapse
from services.booking.domain.ports import BookingStore, Committed
from services.common import keys
from services.common.auth import Attribution
from services.common.tracing import traced

APPROVAL_TIMEOUT = "system:approval-timeout"  # who the trail names for an approval nobody decided in time


class Standing(Enum):
    WRITTEN = "written down now"
    ENDED = "ended before (booked, released, decided), or written down by someone else"
    RACED = "the write lost a race and the lapse still stands: next sweep"


class WrittenDown(Struct, frozen=True):
    holds: list[str] = field(default_factory=list)
    bookings: list[str] = field(default_factory=list)  # (a series' pending occurrences: the series' id)
    ended_before: int = 0  # markers of what had ended in time (booked, released, decided): dropped
    left: int = 0  # lapses left for the next sweep: a lost race, an error, or no time left
    errors: list[str] = field(default_factory=list)  # what failed, for the log


class LapseService(Struct):
    store: BookingStore
    clock: Callable[[], datetime]

    @traced("lapses.write_down")
    def write_down(self, by: Attribution, time_left: Callable[[], bool] = lambda: True) -> WrittenDown:
        """Every lapse up to now, written down once; each marker dropped once dealt with. A lapse whose
        write lost a race or failed, and those there was no time left for, keep their markers, and the
        sweep's mark stays at the first one's hour: the next sweep reads them again."""
        now = self.clock()
        lapses, mark = self.store.lapsed(now)
        holds: list[str] = []
        bookings: list[str] = []
        errors: list[str] = []
        ended = left = 0
        for number, lapse in enumerate(lapses):
            if not time_left():
                left += len(lapses) - number
                mark = min([mark, *(keys.expiry_hour(later.lapses_at) for later in lapses[number:])])
                break
            try:
                outcome = self._write_down(lapse, now, by)
            except Exception as error:  # one lapse failing does not stop the others, nor the lines
                errors.append(f"{lapse.kind} {lapse.entity_id}: {error!r}")
                outcome = Standing.RACED
            if outcome is Standing.WRITTEN:
                (holds if lapse.kind == "HOLD" else bookings).append(lapse.entity_id)  # a series: its id
            elif outcome is Standing.ENDED:
                ended += 1
            else:
                left += 1
                mark = min(mark, keys.expiry_hour(lapse.lapses_at))
                continue
            self.store.forget_lapse(lapse)
        self.store.swept_through(mark)
        return WrittenDown(holds, bookings, ended, left, errors)

    def _write_down(self, lapse: Lapse, now: datetime, by: Attribution) -> Standing:
        if lapse.kind == "HOLD":
            hold = self.store.get_hold(lapse.entity_id)
            if hold is None or hold.ended is not None or hold.expires_at > now:
                return Standing.ENDED  # booked or released in time (or gone: TTL's, long after)
            return Standing.WRITTEN if isinstance(self.store.expire_hold(hold, by), Committed) else Standing.RACED
        if lapse.kind == "SERIES":  # its occurrences awaiting approval share one deadline
            series = self.store.get_series(lapse.entity_id)
            found = self.store.get_bookings(list(series.booking_ids)) if series is not None else []
        else:
            found = [booking for booking in [self.store.get_booking(lapse.entity_id)] if booking is not None]
        lapsed = [
            booking
            for booking in found
            if booking.status is BookingStatus.PENDING
            and booking.approval_expires_at is not None
            and booking.approval_expires_at <= now
        ]
        if not lapsed:
            return Standing.ENDED  # decided in time, or cancelled, or written down by a reader
        # An approval's lapse has one author in the trail whoever comes upon it first (a reader, or
        # this sweep): the deadline. The sweep's request and trace stay on the item.
        by = replace(by, actor=APPROVAL_TIMEOUT)
        outcomes = [self.store.expire(booking, by) for booking in lapsed]
        return Standing.WRITTEN if all(isinstance(o, Committed) for o in outcomes) else Standing.RACED
