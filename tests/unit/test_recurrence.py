"""A series' starts (services/common/recurrence.py): the same wall-clock time in the provider's zone,
against an oracle that knows nothing of folds or offsets: it walks a day's minutes and takes the
first instant at which the zone's clock reads the time or later (decision 0005's rule)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from services.common.recurrence import Recurrence, occurrences

# Zones with changes of every kind: an hour in spring and autumn (both hemispheres), at midnight
# (Santiago), of half an hour (Lord Howe), and none (Kolkata).
ZONES = [
    "America/New_York",
    "Australia/Sydney",
    "Europe/London",
    "America/Santiago",
    "Australia/Lord_Howe",
    "Pacific/Chatham",
    "Asia/Kolkata",
]


def oracle(day: date, wall: time, zone: ZoneInfo) -> datetime:
    """The first minute of UTC time at which `zone`'s clock shows `day` and `wall` or later."""
    moment = datetime.combine(day, time(), UTC) - timedelta(hours=15)
    while True:
        local = moment.astimezone(zone)
        if local.date() > day or (local.date() == day and local.time().replace(tzinfo=None) >= wall):
            return local
        moment += timedelta(minutes=1)


@settings(max_examples=150, deadline=None)
@given(
    zone_name=st.sampled_from(ZONES),
    first=st.dates(date(2026, 1, 1), date(2028, 12, 31)),
    minute=st.integers(0, 24 * 60 - 1),
    frequency=st.sampled_from(["DAILY", "WEEKLY"]),
    interval=st.integers(1, 3),
    count=st.integers(2, 12),
)
def test_every_occurrence_is_the_first_instant_the_clock_reads_its_wall_time(
    zone_name: str, first: date, minute: int, frequency: str, interval: int, count: int
) -> None:
    zone = ZoneInfo(zone_name)
    wall = time(minute // 60, minute % 60)
    start = oracle(first, wall, zone)
    if start.time().replace(tzinfo=None) != wall:
        return  # the first start itself is in a gap: a client names an instant that exists
    recurrence = Recurrence(frequency, count, interval)  # type: ignore[arg-type]
    step = timedelta(days=interval * (7 if frequency == "WEEKLY" else 1))
    expected = [oracle(first + n * step, wall, zone) for n in range(count)]
    assert [s.astimezone(UTC) for s in occurrences(start, recurrence, zone)] == [e.astimezone(UTC) for e in expected]


def test_new_york_keeps_nine_oclock_across_march_and_november() -> None:
    zone = ZoneInfo("America/New_York")
    march = occurrences(datetime(2027, 3, 7, 9, tzinfo=zone), Recurrence("WEEKLY", 3), zone)
    assert [s.isoformat() for s in march] == [
        "2027-03-07T09:00:00-05:00",
        "2027-03-14T09:00:00-04:00",
        "2027-03-21T09:00:00-04:00",
    ]
    november = occurrences(datetime(2027, 11, 6, 9, tzinfo=zone), Recurrence("DAILY", 2), zone)
    assert [s.isoformat() for s in november] == ["2027-11-06T09:00:00-04:00", "2027-11-07T09:00:00-05:00"]


def test_sydney_keeps_nine_oclock_across_april_and_october() -> None:
    zone = ZoneInfo("Australia/Sydney")
    april = occurrences(datetime(2027, 3, 28, 9, tzinfo=zone), Recurrence("WEEKLY", 2), zone)
    assert [s.isoformat() for s in april] == ["2027-03-28T09:00:00+11:00", "2027-04-04T09:00:00+10:00"]
    october = occurrences(datetime(2027, 9, 26, 9, tzinfo=zone), Recurrence("WEEKLY", 2), zone)
    assert [s.isoformat() for s in october] == ["2027-09-26T09:00:00+10:00", "2027-10-03T09:00:00+11:00"]


def test_a_gap_moves_to_its_end_and_a_repeat_is_its_first_occurrence() -> None:
    zone = ZoneInfo("America/New_York")
    gap = occurrences(datetime(2027, 3, 13, 2, 30, tzinfo=zone), Recurrence("DAILY", 2), zone)
    assert gap[1].isoformat() == "2027-03-14T03:00:00-04:00"  # 02:30 does not exist that day
    repeat = occurrences(datetime(2027, 11, 6, 1, 30, tzinfo=zone), Recurrence("DAILY", 2), zone)
    assert repeat[1].isoformat() == "2027-11-07T01:30:00-04:00"  # the first 01:30, before the clock goes back
    # A series started in the second of two repeated hours keeps the wall time, not the offset.
    second = datetime(2027, 11, 7, 1, 30, tzinfo=zone, fold=1)
    assert occurrences(second, Recurrence("DAILY", 2), zone)[1].isoformat() == "2027-11-08T01:30:00-05:00"
