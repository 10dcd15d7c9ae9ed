"""Property tests: the engine agrees with a brute-force oracle on random schedules, zones and bookings.

The oracle shares no code with the engine: it finds each boundary by walking the clock minute by
minute ("the first instant the clock reads that time or later") and counts overlaps one by one.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.common.availability import Busy, Hours, LocalInterval, ServiceRules, Slot, free_slots

SERVICE = "svc_this"
ZONES = ["America/New_York", "Europe/Berlin", "Australia/Sydney", "Australia/Adelaide", "Asia/Kolkata", "UTC"]
# Days around every transition of the test zones in 2026, and two quiet ones.
INTERESTING_DAYS = [
    date(2026, 3, 7), date(2026, 3, 28), date(2026, 4, 4), date(2026, 10, 3),
    date(2026, 10, 24), date(2026, 10, 31), date(2026, 6, 15), date(2026, 12, 30),
]  # fmt: skip


@st.composite
def day_intervals(draw: st.DrawFn) -> list[LocalInterval]:
    """0-3 sorted, non-overlapping intervals on a 15-minute grid (gaps between them are breaks)."""
    points = sorted(draw(st.sets(st.integers(0, 96), max_size=6)))
    if len(points) % 2:
        points = points[:-1]
    return [LocalInterval(points[i] * 15, points[i + 1] * 15) for i in range(0, len(points), 2)]


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[Hours, ServiceRules, list[Busy], datetime, datetime, datetime]:
    zone = ZoneInfo(draw(st.sampled_from(ZONES)))
    weekly = {weekday: draw(day_intervals()) for weekday in range(7)}
    first_day = draw(st.sampled_from(INTERESTING_DAYS))
    override_days = draw(st.sets(st.integers(0, 3), max_size=2))
    overrides = {first_day + timedelta(days=offset): draw(day_intervals()) for offset in override_days}
    rules = ServiceRules(
        duration_minutes=draw(st.integers(1, 36)) * 5,
        buffer_before_minutes=draw(st.sampled_from([0, 5, 10, 15, 30])),
        buffer_after_minutes=draw(st.sampled_from([0, 5, 10, 15, 30])),
        min_notice_minutes=draw(st.integers(0, 48)) * 15,
        max_advance_days=draw(st.integers(1, 5)),
        slot_step_minutes=draw(st.sampled_from([5, 10, 15, 20, 30, 45, 60])),
        capacity=draw(st.integers(1, 3)),
    )
    window_start = datetime.combine(first_day, datetime.min.time(), UTC) + timedelta(minutes=draw(st.integers(0, 1439)))
    window_end = window_start + timedelta(minutes=draw(st.integers(1, 3 * 1440)))
    now = window_start - timedelta(minutes=draw(st.integers(0, 2 * 1440)))
    busy = []
    for _ in range(draw(st.integers(0, 12))):
        start = window_start + timedelta(minutes=draw(st.integers(-300, 3 * 1440)))
        busy.append(Busy(start, start + timedelta(minutes=draw(st.integers(1, 24)) * 10)))
    # Seats in sessions (of this service, or of another), on the 15-minute grid the intervals use.
    for _ in range(draw(st.integers(0, 8))):
        session = window_start.replace(minute=0) + timedelta(minutes=15 * draw(st.integers(-8, 3 * 96)))
        before = timedelta(minutes=rules.buffer_before_minutes)
        after = timedelta(minutes=rules.duration_minutes + rules.buffer_after_minutes)
        service = draw(st.sampled_from([SERVICE, SERVICE, "svc_other"]))
        busy.append(Busy(session - before, session + after, seat_in=(service, session)))
    return Hours(zone, weekly, overrides), rules, busy, window_start, window_end, now


def oracle_boundary(day: date, minute: int, zone: ZoneInfo) -> datetime:
    """Walk the clock minute by minute: the first instant whose local wall time is at least the target."""
    target = datetime.combine(day, datetime.min.time()) + timedelta(minutes=minute)
    instant = (target - timedelta(hours=15)).replace(tzinfo=UTC)
    while instant.astimezone(zone).replace(tzinfo=None) < target:
        instant += timedelta(minutes=1)
    return instant


def oracle(
    hours: Hours, rules: ServiceRules, busy: list[Busy], lo: datetime, hi: datetime, now: datetime
) -> list[tuple[datetime, int]]:
    expected = []
    step, duration = timedelta(minutes=rules.slot_step_minutes), timedelta(minutes=rules.duration_minutes)
    before, after = timedelta(minutes=rules.buffer_before_minutes), timedelta(minutes=rules.buffer_after_minutes)
    day = (lo - timedelta(days=2)).date()
    while day <= (hi + timedelta(days=2)).date():
        intervals = hours.overrides[day] if day in hours.overrides else hours.weekly[day.weekday()]
        for interval in intervals:
            start = oracle_boundary(day, interval.start, hours.time_zone)
            end = oracle_boundary(day, interval.end, hours.time_zone)
            candidate = start
            while candidate + duration <= end:
                allowed = (
                    lo <= candidate < hi
                    and candidate >= now + timedelta(minutes=rules.min_notice_minutes)
                    and candidate <= now + timedelta(days=rules.max_advance_days)
                )
                overlapping = [b for b in busy if b.start < candidate + duration + after and b.end > candidate - before]
                seats = [b for b in overlapping if b.seat_in == (SERVICE, candidate)]
                remaining = rules.capacity - len(seats) if len(overlapping) == len(seats) else 0
                if allowed and remaining > 0:
                    expected.append((candidate, remaining))
                candidate += step
        day += timedelta(days=1)
    return sorted(expected)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios())
def test_engine_matches_the_brute_force_oracle(
    scenario: tuple[Hours, ServiceRules, list[Busy], datetime, datetime, datetime],
) -> None:
    hours, rules, busy, lo, hi, now = scenario
    slots = free_slots(hours, rules, busy, lo, hi, now, SERVICE)
    # Compared as epoch seconds: PEP 495 makes == between zones false for times in a repeated hour.
    found = [(s.start.timestamp(), s.remaining) for s in slots]
    assert found == [(start.timestamp(), remaining) for start, remaining in oracle(hours, rules, busy, lo, hi, now)]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios())
def test_every_slot_keeps_every_rule(
    scenario: tuple[Hours, ServiceRules, list[Busy], datetime, datetime, datetime],
) -> None:
    hours, rules, busy, lo, hi, now = scenario
    slots: list[Slot] = free_slots(hours, rules, busy, lo, hi, now, SERVICE)
    starts = [slot.start.timestamp() for slot in slots]
    assert starts == sorted(set(starts)), "sorted and unique"
    for slot in slots:
        # epoch seconds: Python subtracts two datetimes of one zone by wall clock, ignoring the change
        assert slot.end.timestamp() - slot.start.timestamp() == rules.duration_minutes * 60
        # each instant carries the provider's offset in force at that instant
        for moment in (slot.start, slot.end):
            assert moment.tzinfo is hours.time_zone
            assert (
                moment.utcoffset()
                == datetime.fromtimestamp(moment.timestamp(), UTC).astimezone(hours.time_zone).utcoffset()
            )
        assert lo <= slot.start < hi
        assert slot.start >= now + timedelta(minutes=rules.min_notice_minutes)
        assert slot.start <= now + timedelta(days=rules.max_advance_days)
        # in UTC: adding to a datetime of the provider's zone would drop `fold` in a repeated hour
        occupied_start = slot.start.astimezone(UTC) - timedelta(minutes=rules.buffer_before_minutes)
        occupied_end = slot.end.astimezone(UTC) + timedelta(minutes=rules.buffer_after_minutes)
        overlapping = [b for b in busy if b.start < occupied_end and b.end > occupied_start]
        # never overlaps busy time, buffers included, except seats in this very session
        assert all(
            b.seat_in is not None and b.seat_in[0] == SERVICE and b.seat_in[1] == slot.start for b in overlapping
        )
        assert slot.remaining == rules.capacity - len(overlapping) > 0
