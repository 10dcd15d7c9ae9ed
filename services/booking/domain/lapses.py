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
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum

from services.booking.domain.models import BookingStatus, Lapse
from services.booking.domain.ports import BookingStore, Committed
from services.common import keys
from services.common.auth import Attribution
from services.common.tracing import traced


class Standing(Enum):
    WRITTEN = "written down now"
    ENDED = "ended before (booked, released, decided), or written down by someone else"
    RACED = "the write lost a race and the lapse still stands: next sweep"


@dataclass(frozen=True)
class WrittenDown:
    holds: list[str] = field(default_factory=list)
    bookings: list[str] = field(default_factory=list)
    ended_before: int = 0  # markers of what had ended in time (booked, released, decided): dropped


@dataclass
class LapseService:
    store: BookingStore
    clock: Callable[[], datetime]

    @traced("lapses.write_down")
    def write_down(self, by: Attribution) -> WrittenDown:
        """Every lapse up to now, written down once; each marker dropped once dealt with. A lapse whose
        write lost a race and still stands keeps its marker, and the sweep's mark stays at its hour,
        so the next sweep tries again; so does everything after an error."""
        now = self.clock()
        lapses, mark = self.store.lapsed(now)
        holds: list[str] = []
        bookings: list[str] = []
        ended = 0
        for lapse in lapses:
            outcome = self._write_down(lapse, now, by)
            if outcome is Standing.WRITTEN:
                (holds if lapse.kind == "HOLD" else bookings).append(lapse.entity_id)
            elif outcome is Standing.ENDED:
                ended += 1
            else:
                mark = min(mark, keys.expiry_hour(lapse.lapses_at))
                continue
            self.store.forget_lapse(lapse)
        self.store.swept_through(mark)
        return WrittenDown(holds, bookings, ended)

    def _write_down(self, lapse: Lapse, now: datetime, by: Attribution) -> Standing:
        if lapse.kind == "HOLD":
            hold = self.store.get_hold(lapse.entity_id)
            if hold is None or hold.ended is not None or hold.expires_at > now:
                return Standing.ENDED  # booked or released in time (or gone: TTL's, long after)
            return Standing.WRITTEN if isinstance(self.store.expire_hold(hold, by), Committed) else Standing.RACED
        booking = self.store.get_booking(lapse.entity_id)
        deadline = booking.approval_expires_at if booking is not None else None
        if booking is None or booking.status is not BookingStatus.PENDING or deadline is None or deadline > now:
            return Standing.ENDED  # decided in time, or cancelled, or written down by a reader
        return Standing.WRITTEN if isinstance(self.store.expire(booking, by), Committed) else Standing.RACED
