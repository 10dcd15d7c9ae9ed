"""The availability engine on days whose clocks change, with expected slots written out by hand.

Rule under test (docs/decisions/0005-dst-and-time-zones.md): a boundary means the first instant the
provider's clock reads that time or later; slots step through elapsed time and last their real
duration.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from services.common.availability import Hours, LocalInterval, ServiceRules, free_slots

LONG_AGO = datetime(2026, 1, 1, tzinfo=UTC)  # "now" far enough back that notice and advance never bite


def hhmm(text: str) -> int:
    hours, minutes = text.split(":")
    return int(hours) * 60 + int(minutes)


def slots_on(
    zone: str, day: date, start: str, end: str, duration: int, step: int | None = None
) -> list[tuple[str, str]]:
    tz = ZoneInfo(zone)
    hours = Hours(tz, {}, {day: [LocalInterval(hhmm(start), hhmm(end))]})
    rules = ServiceRules(duration, slot_step_minutes=step or duration, max_advance_days=400)
    window_start = datetime.combine(day, datetime.min.time(), tz) - timedelta(hours=6)
    found = free_slots(hours, rules, [], window_start, window_start + timedelta(days=2), LONG_AGO)
    return [(slot.start.isoformat(), slot.end.isoformat()) for slot in found]


@pytest.mark.parametrize(
    ("zone", "day", "expected"),
    [
        # Spring forward: the clock skips 02:00-03:00 (New York, Berlin) or 02:00-03:00 (Sydney).
        # 01:00-04:00 on the wall is two real hours.
        (
            "America/New_York",
            date(2026, 3, 8),
            [("2026-03-08T01:00:00-05:00", "2026-03-08T03:00:00-04:00"),
             ("2026-03-08T03:00:00-04:00", "2026-03-08T04:00:00-04:00")],
        ),
        (
            "Europe/Berlin",
            date(2026, 3, 29),
            [("2026-03-29T01:00:00+01:00", "2026-03-29T03:00:00+02:00"),
             ("2026-03-29T03:00:00+02:00", "2026-03-29T04:00:00+02:00")],
        ),
        (
            "Australia/Sydney",  # southern hemisphere: daylight time begins in October
            date(2026, 10, 4),
            [("2026-10-04T01:00:00+10:00", "2026-10-04T03:00:00+11:00"),
             ("2026-10-04T03:00:00+11:00", "2026-10-04T04:00:00+11:00")],
        ),
        # Fall back: an hour repeats, so 01:00-04:00 on the wall is four real hours.
        (
            "America/New_York",
            date(2026, 11, 1),
            [("2026-11-01T01:00:00-04:00", "2026-11-01T01:00:00-05:00"),
             ("2026-11-01T01:00:00-05:00", "2026-11-01T02:00:00-05:00"),
             ("2026-11-01T02:00:00-05:00", "2026-11-01T03:00:00-05:00"),
             ("2026-11-01T03:00:00-05:00", "2026-11-01T04:00:00-05:00")],
        ),
        (
            "Europe/Berlin",
            date(2026, 10, 25),
            [("2026-10-25T01:00:00+02:00", "2026-10-25T02:00:00+02:00"),
             ("2026-10-25T02:00:00+02:00", "2026-10-25T02:00:00+01:00"),
             ("2026-10-25T02:00:00+01:00", "2026-10-25T03:00:00+01:00"),
             ("2026-10-25T03:00:00+01:00", "2026-10-25T04:00:00+01:00")],
        ),
        (
            "Australia/Sydney",  # daylight time ends in April
            date(2026, 4, 5),
            [("2026-04-05T01:00:00+11:00", "2026-04-05T02:00:00+11:00"),
             ("2026-04-05T02:00:00+11:00", "2026-04-05T02:00:00+10:00"),
             ("2026-04-05T02:00:00+10:00", "2026-04-05T03:00:00+10:00"),
             ("2026-04-05T03:00:00+10:00", "2026-04-05T04:00:00+10:00")],
        ),
    ],
)  # fmt: skip
def test_hourly_slots_across_each_transition(zone: str, day: date, expected: list[tuple[str, str]]) -> None:
    assert slots_on(zone, day, "01:00", "04:00", 60) == expected


def test_adelaide_half_hour_offset_spring_forward() -> None:
    # Adelaide is UTC+09:30 and jumps to +10:30 at 02:00 on 4 October 2026: 01:30-03:30 is one real hour.
    assert slots_on("Australia/Adelaide", date(2026, 10, 4), "01:30", "03:30", 30) == [
        ("2026-10-04T01:30:00+09:30", "2026-10-04T03:00:00+10:30"),
        ("2026-10-04T03:00:00+10:30", "2026-10-04T03:30:00+10:30"),
    ]


def test_adelaide_half_hour_offset_fall_back() -> None:
    # At 03:00 ACDT on 5 April 2026 the clock goes back to 02:00 ACST: 02:00-03:30 is 2.5 real hours.
    assert slots_on("Australia/Adelaide", date(2026, 4, 5), "02:00", "03:30", 30) == [
        ("2026-04-05T02:00:00+10:30", "2026-04-05T02:30:00+10:30"),
        ("2026-04-05T02:30:00+10:30", "2026-04-05T02:00:00+09:30"),
        ("2026-04-05T02:00:00+09:30", "2026-04-05T02:30:00+09:30"),
        ("2026-04-05T02:30:00+09:30", "2026-04-05T03:00:00+09:30"),
        ("2026-04-05T03:00:00+09:30", "2026-04-05T03:30:00+09:30"),
    ]


def test_kolkata_half_hour_offset_without_dst() -> None:
    assert slots_on("Asia/Kolkata", date(2026, 3, 8), "09:00", "10:00", 30) == [
        ("2026-03-08T09:00:00+05:30", "2026-03-08T09:30:00+05:30"),
        ("2026-03-08T09:30:00+05:30", "2026-03-08T10:00:00+05:30"),
    ]


def test_a_boundary_in_the_skipped_hour_moves_to_the_end_of_the_gap() -> None:
    # 02:30 does not exist in New York on 8 March 2026: the interval starts at 03:00 EDT.
    assert slots_on("America/New_York", date(2026, 3, 8), "02:30", "04:00", 60, step=30) == [
        ("2026-03-08T03:00:00-04:00", "2026-03-08T04:00:00-04:00"),
    ]
    # An interval wholly inside the gap is empty that day.
    assert slots_on("America/New_York", date(2026, 3, 8), "02:00", "02:45", 15) == []


def test_a_repeated_boundary_means_its_first_occurrence() -> None:
    # 01:30 happens twice in New York on 1 November 2026; an interval ending then ends at 01:30 EDT.
    assert slots_on("America/New_York", date(2026, 11, 1), "00:30", "01:30", 30) == [
        ("2026-11-01T00:30:00-04:00", "2026-11-01T01:00:00-04:00"),
        ("2026-11-01T01:00:00-04:00", "2026-11-01T01:30:00-04:00"),
    ]


def test_a_slot_straddling_the_change_lasts_its_real_duration() -> None:
    # A 45-minute slot from 01:30 EST ends at 03:15 EDT: 45 real minutes, each end with its own offset.
    found = slots_on("America/New_York", date(2026, 3, 8), "01:30", "04:00", 45, step=45)
    assert found[0] == ("2026-03-08T01:30:00-05:00", "2026-03-08T03:15:00-04:00")
    for start, end in found:
        assert datetime.fromisoformat(end) - datetime.fromisoformat(start) == timedelta(minutes=45)


def test_24_00_ends_at_the_next_local_midnight() -> None:
    assert slots_on("Europe/Berlin", date(2026, 6, 1), "23:00", "24:00", 60) == [
        ("2026-06-01T23:00:00+02:00", "2026-06-02T00:00:00+02:00"),
    ]
