"""The availability engine: which slots a provider offers, as a pure function (no I/O, no clock).

Both the availability service (`GET …/slots`) and the booking service (`POST /bookings`) call it, so
a slot that is offered is a slot that is accepted. Everything is computed in UTC epoch seconds; only
the slots it returns are turned back into datetimes with the provider's offset for each instant.

Wall-clock rule (docs/decisions/0005-dst-and-time-zones.md): a schedule boundary `HH:MM` on a local
date means **the first instant at which the provider's clock reads that time or later**. So a time
skipped by a spring-forward change means the end of the gap, a time repeated by a fall-back change
means its first occurrence, and `24:00` means the next local midnight. Slots step through *elapsed*
time from an interval's start, and a slot lasts its real duration even across a change.

Arithmetic happens on epoch seconds, never on zone-aware datetimes: Python adds to and subtracts
datetimes of one zone by wall clock, which is wrong across a change.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import NamedTuple
from zoneinfo import ZoneInfo

from msgspec import Struct

MINUTES_PER_DAY = 24 * 60
MAX_WINDOW = timedelta(days=62)
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")  # index = date.weekday()


class LocalInterval(Struct, frozen=True, order=True):
    """Working time on a local date, in minutes after local midnight; `end` may be 1440 (24:00)."""

    start: int
    end: int

    def __post_init__(self) -> None:
        if not 0 <= self.start < self.end <= MINUTES_PER_DAY:
            raise ValueError(f"invalid interval {self.start}..{self.end}")


class Hours(Struct, frozen=True):
    """A provider's working hours: weekly intervals (index 0 = Monday) and per-date overrides."""

    time_zone: ZoneInfo
    weekly: Mapping[int, Sequence[LocalInterval]]
    overrides: Mapping[date, Sequence[LocalInterval]]

    def intervals_on(self, day: date) -> Sequence[LocalInterval]:
        """An override replaces the weekly hours of its date; an empty override closes the day."""
        if day in self.overrides:
            return self.overrides[day]
        return self.weekly.get(day.weekday(), ())


class ServiceRules(Struct, frozen=True):
    duration_minutes: int
    buffer_before_minutes: int = 0
    buffer_after_minutes: int = 0
    min_notice_minutes: int = 0
    max_advance_days: int = 90
    slot_step_minutes: int = 15
    capacity: int = 1


class Busy(NamedTuple):
    """Time already taken: a booking's span including its own buffers. (A named tuple, as `Slot`:
    immutable, and quick to make, hundreds to a search.)

    `seat_in` names the session the booking holds a seat in (service id, session start): a session of
    a service with `capacity` n takes n bookings that start together. Any other overlap blocks.
    """

    start: datetime
    end: datetime
    seat_in: tuple[str, datetime] | None = None
    booking_id: str | None = None  # which booking holds it (a reschedule leaves its own time aside)
    core_end: datetime | None = None  # where the appointment itself ends, before its buffer after
    held: bool = False  # a hold's time, not a booking's
    external: bool = False  # time another calendar (Calendly) booked: no seat, nothing shares it


class Slot(NamedTuple):
    start: datetime
    end: datetime
    remaining: int


def _epoch(moment: datetime) -> int:
    if moment.tzinfo is None:
        raise ValueError("instants must carry an offset")
    return int(moment.timestamp())


def local_boundary(day: date, minute: int, zone: ZoneInfo) -> int:
    """Epoch seconds of the first instant at which the clock in `zone` reads `minute` on `day` or later."""
    if minute >= MINUTES_PER_DAY:
        day, minute = day + timedelta(days=1), minute - MINUTES_PER_DAY
    wall = datetime.combine(day, time(minute // 60, minute % 60))
    # fold=0 is the earlier of two repeated instants, which is the rule; a skipped time round-trips
    # to a different wall time, and then the first wall minute after it that exists is the gap's end.
    for _ in range(MINUTES_PER_DAY):
        instant = wall.replace(tzinfo=zone, fold=0)
        if instant.astimezone(UTC).astimezone(zone).replace(tzinfo=None) == wall:
            return int(instant.timestamp())
        wall += timedelta(minutes=1)
    raise ValueError(f"no wall time on or after {day} {minute} min exists in {zone.key}")


def working_spans(hours: Hours, first_day: date, last_day: date) -> Iterator[tuple[int, int]]:
    """Working time of each local date from `first_day` to `last_day`, as epoch-second spans in order."""
    day = first_day
    while day <= last_day:
        for interval in hours.intervals_on(day):
            start = local_boundary(day, interval.start, hours.time_zone)
            end = local_boundary(day, interval.end, hours.time_zone)
            if end > start:  # an interval inside a skipped hour is empty
                yield start, end
        day += timedelta(days=1)


def free_slots(
    hours: Hours,
    rules: ServiceRules,
    busy: Sequence[Busy],
    window_start: datetime,
    window_end: datetime,
    now: datetime,
    service_id: str = "",
) -> list[Slot]:
    """Every slot of service `service_id` starting in [window_start, window_end) that `rules` allow and
    `busy` leaves room for: a slot overlapping busy time is offered only when all of that time is seats
    in the very same session, and then with `remaining` = capacity minus those seats."""
    zone = hours.time_zone
    lo, hi = _epoch(window_start), _epoch(window_end)
    earliest = _epoch(now) + rules.min_notice_minutes * 60
    latest = _epoch(now) + rules.max_advance_days * 86_400
    first_start, last_start = max(lo, earliest), min(hi - 1, latest)
    if first_start > last_start:
        return []

    step, duration = rules.slot_step_minutes * 60, rules.duration_minutes * 60
    before, after = rules.buffer_before_minutes * 60, rules.buffer_after_minutes * 60
    # Busy time comes from the calendar, always with an offset: no check per span (hundreds a search).
    busy_starts = sorted(int(b.start.timestamp()) for b in busy)
    busy_ends = sorted(int(b.end.timestamp()) for b in busy)
    seats = Counter(_epoch(b.seat_in[1]) for b in busy if b.seat_in is not None and b.seat_in[0] == service_id)

    # Local dates that can hold a slot starting in the window (an offset is at most ±26 h).
    first_day = (datetime.fromtimestamp(first_start, UTC) - timedelta(days=2)).date()
    last_day = (datetime.fromtimestamp(last_start, UTC) + timedelta(days=2)).date()

    slots: list[Slot] = []
    for span_start, span_end in working_spans(hours, first_day, last_day):
        if span_end <= first_start or span_start > last_start:
            continue
        skip = max(0, -(-(first_start - span_start) // step))  # ceil: first step at or after first_start
        for start in range(span_start + skip * step, span_end - duration + 1, step):
            if start > last_start:
                break
            # Overlapping busy spans: those starting before our end, minus those ending by our start.
            overlapping = bisect_left(busy_starts, start + duration + after) - bisect_right(busy_ends, start - before)
            taken = seats.get(start, 0)
            remaining = rules.capacity - taken if overlapping <= taken else 0
            if remaining > 0:
                slots.append(
                    Slot(
                        datetime.fromtimestamp(start, zone),
                        datetime.fromtimestamp(start + duration, zone),
                        remaining,
                    )
                )
    return slots


UNAVAILABLE_REASONS = {
    "TOO_SOON": "The start is sooner than the service's minimum notice.",
    "TOO_FAR_AHEAD": "The start is further ahead than the service's booking window.",
    "OUTSIDE_HOURS": "The provider does not work then, or the appointment would not fit before the hours end.",
    "NOT_ON_STEP": "The start is within working hours but not on the service's slot step.",
    "TAKEN": "The time is already booked.",
    "LIMIT_REACHED": (
        "A booking limit is reached: the customer's for this service that day or week, or the provider's that day."
    ),
}


def why_not(
    hours: Hours, rules: ServiceRules, busy: Sequence[Busy], start: datetime, now: datetime, service_id: str
) -> str | None:
    """None if `start` is a slot `free_slots` offers; otherwise the first rule it breaks (a key of
    `UNAVAILABLE_REASONS`). The very same function decides, so an offered slot is never refused."""
    just_after = start + timedelta(seconds=1)
    if free_slots(hours, rules, busy, start, just_after, now, service_id):
        return None
    if _epoch(start) < _epoch(now) + rules.min_notice_minutes * 60:
        return "TOO_SOON"
    if _epoch(start) > _epoch(now) + rules.max_advance_days * 86_400:
        return "TOO_FAR_AHEAD"
    if free_slots(hours, rules, (), start, just_after, now, service_id):
        return "TAKEN"
    moment, duration = _epoch(start), rules.duration_minutes * 60
    day = datetime.fromtimestamp(moment, UTC).date()
    fits = any(
        s <= moment and moment + duration <= e
        for s, e in working_spans(hours, day - timedelta(days=2), day + timedelta(days=2))
    )
    return "NOT_ON_STEP" if fits else "OUTSIDE_HOURS"


def nearest(slots: Sequence[Slot], start: datetime, count: int = 5) -> list[Slot]:
    """The `count` slots closest to `start`, in time order."""
    moment = _epoch(start)
    closest = sorted(slots, key=lambda slot: abs(_epoch(slot.start) - moment))[:count]
    return sorted(closest, key=lambda slot: _epoch(slot.start))


EXPLAIN_REASONS = (
    "OUTSIDE_HOURS",  # the provider does not work then (or the appointment would not fit before the hours end)
    "CLOSED_BY_OVERRIDE",  # as OUTSIDE_HOURS, on a local date whose hours an override replaced
    "TOO_SOON",
    "TOO_FAR_AHEAD",
    "NOT_ON_STEP",
    "BOOKED",  # the appointment itself overlaps a booking's (or its session has no seat left)
    "HELD",  # ... a live hold's
    "EXTERNAL",  # ... time the provider's other calendar (Calendly) booked
    "BUFFER",  # only buffers collide: the appointments themselves would not overlap
)


def explain(
    hours: Hours, rules: ServiceRules, busy: Sequence[Busy], start: datetime, now: datetime, service_id: str
) -> tuple[bool, list[str]]:
    """Whether `start` is a slot `free_slots` offers (the very same function decides), and every
    reason in EXPLAIN_REASONS that applies to it, in that order: none when it is bookable."""
    bookable = bool(free_slots(hours, rules, busy, start, start + timedelta(seconds=1), now, service_id))
    moment, duration = _epoch(start), rules.duration_minutes * 60
    reasons = []
    day = datetime.fromtimestamp(moment, UTC).date()
    spans = list(working_spans(hours, day - timedelta(days=2), day + timedelta(days=2)))
    fitting = [s for s, e in spans if s <= moment and moment + duration <= e]
    if not fitting:
        local_day = datetime.fromtimestamp(moment, hours.time_zone).date()
        reasons.append("CLOSED_BY_OVERRIDE" if local_day in hours.overrides else "OUTSIDE_HOURS")
    if moment < _epoch(now) + rules.min_notice_minutes * 60:
        reasons.append("TOO_SOON")
    if moment > _epoch(now) + rules.max_advance_days * 86_400:
        reasons.append("TOO_FAR_AHEAD")
    if fitting and all((moment - s) % (rules.slot_step_minutes * 60) for s in fitting):
        reasons.append("NOT_ON_STEP")
    padded = (moment - rules.buffer_before_minutes * 60, moment + duration + rules.buffer_after_minutes * 60)

    def same_session(other: Busy) -> bool:  # in whole seconds, as free_slots counts seats
        return other.seat_in is not None and other.seat_in[0] == service_id and _epoch(other.seat_in[1]) == moment

    seats = sum(1 for b in busy if same_session(b) and _overlap(b, padded))
    found = set()
    for other in busy:
        if not _overlap(other, padded):
            continue
        if same_session(other) and seats < rules.capacity:
            continue  # a seat of the same session, with room for one more
        core = (other.seat_in[1] if other.seat_in else other.start, other.core_end or other.end)
        touches_core = _epoch(core[0]) < moment + duration and moment < _epoch(core[1])
        taken = "EXTERNAL" if other.external else "HELD" if other.held else "BOOKED"
        found.add(taken if touches_core else "BUFFER")
    reasons += [reason for reason in ("BOOKED", "HELD", "EXTERNAL", "BUFFER") if reason in found]
    return bookable, reasons


def _overlap(busy: Busy, span: tuple[int, int]) -> bool:
    return _epoch(busy.start) < span[1] and span[0] < _epoch(busy.end)
