"""What a booking container remembers of calendars (services/booking/adapters/remembered_calendars.py):
only what reaches the asked time and was read today, at most REMEMBERED_PROVIDERS providers, its own
commits applied, and blocks a failed transaction returned taking the place of what it knew of them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services.booking.adapters.remembered_calendars import RememberedCalendars
from services.common import keys
from services.common.calendar import BookedSpan, Provider, ProviderCalendar
from services.common.calendar_table import span_of

NOW = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
NINE = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def span(booking_id: str, start: datetime, minutes: int) -> BookedSpan:
    return BookedSpan(booking_id, "svc", "cust", start, start, start + timedelta(minutes=minutes), 1, "t")


def sort_key(block: datetime) -> str:
    return keys.busy_block_key("prv", block)["SK"]["S"]


def calendar(*spans: BookedSpan, versions: dict[str, int] | None = None) -> ProviderCalendar:
    provider = Provider("prv", "P", "UTC", "owner", 1, "t")
    return ProviderCalendar(
        provider, None, booked={s.booking_id: s for s in spans}, busy_versions=versions or {}, availability_version=3
    )


def test_a_calendar_is_remembered_only_as_far_and_as_long_as_it_was_read() -> None:
    memory = RememberedCalendars()
    memory.keep("prv", NOW + timedelta(days=7), calendar(), NOW)
    kept = memory.get("prv", NOW + timedelta(days=7), NOW + timedelta(minutes=5))
    assert kept is not None and kept.remembered and kept.availability_version == 3
    assert memory.get("prv", NOW + timedelta(days=9), NOW) is None  # beyond what was read
    assert memory.get("prv", NOW + timedelta(days=7), NOW + timedelta(days=1)) is None  # a new UTC day
    assert memory.get("other", NOW, NOW) is None
    memory.forget("prv")
    assert memory.get("prv", NOW, NOW) is None


def test_the_least_recently_used_provider_is_forgotten_first() -> None:
    memory = RememberedCalendars(size=2)
    memory.keep("a", NOW, calendar(), NOW)
    memory.keep("b", NOW, calendar(), NOW)
    assert memory.get("a", NOW, NOW) is not None  # a is used: b is now the oldest
    memory.keep("c", NOW, calendar(), NOW)
    assert [memory.get(p, NOW, NOW) is not None for p in "abc"] == [True, False, True]


def test_what_is_remembered_is_bounded_by_its_spans_too() -> None:
    memory = RememberedCalendars(spans=3)
    memory.keep("a", NOW, calendar(span("1", NINE, 10), span("2", NINE, 10)), NOW)
    memory.keep("b", NOW, calendar(span("3", NINE, 10)), NOW)
    assert memory.get("a", NOW, NOW) is not None and memory.get("b", NOW, NOW) is not None
    memory.keep("c", NOW, calendar(span("4", NINE, 10)), NOW)  # 4 spans: the least recently used goes
    assert [memory.get(p, NOW, NOW) is not None for p in "abc"] == [False, True, True]
    memory.keep("d", NOW, calendar(*(span(str(n), NINE, 10) for n in range(5))), NOW)  # alone too many
    assert memory.get("d", NOW, NOW) is None


def test_its_own_commits_are_applied_one_version_on() -> None:
    memory = RememberedCalendars()
    old = span("bkg-1", NINE, 30)
    memory.keep("prv", NOW + timedelta(days=7), calendar(old, versions={keys.block_id(NINE): 4}), NOW)
    moved = span("bkg-1", NINE + timedelta(hours=1), 30)
    memory.committed("prv", moved, "bkg-1", [NINE, NINE + timedelta(hours=1)])
    kept = memory.get("prv", NOW, NOW)
    assert kept is not None and kept.booked == {"bkg-1": moved}
    assert kept.busy_versions == {keys.block_id(NINE): 5, keys.block_id(NINE + timedelta(hours=1)): 1}
    memory.committed("prv", None, "bkg-1", [NINE + timedelta(hours=1)])
    kept = memory.get("prv", NOW, NOW)
    assert kept is not None and kept.booked == {} and kept.busy_versions[keys.block_id(NINE + timedelta(hours=1))] == 2


def test_a_returned_block_replaces_what_was_known_of_it() -> None:
    memory = RememberedCalendars()
    # Remembered: a booking over the 09:00 and 09:30 blocks (since cancelled elsewhere), one at 10:00
    gone, kept_elsewhere = (
        span("bkg-gone", NINE + timedelta(minutes=15), 30),
        span("bkg-ten", NINE + timedelta(hours=1), 30),
    )
    versions = {keys.block_id(NINE): 1, keys.block_id(NINE + timedelta(minutes=30)): 1, "2026-12-01T10:00": 1}
    memory.keep("prv", NOW + timedelta(days=7), calendar(gone, kept_elsewhere, versions=versions), NOW)
    # When a failed transaction returns the 09:00 block as it is now: the cancel took the span out,
    # and another container booked 09:00-09:10
    new = span("bkg-new", NINE, 10)
    block = {"SK": sort_key(NINE), "version": 3, "spans": {"bkg-new": span_of(new)}}
    memory.learn("prv", [block])
    kept = memory.get("prv", NOW, NOW)
    # Then the block is as returned, the span that touched it is gone (from the block beside it too),
    # and what no returned block touches is as it was
    assert kept is not None and set(kept.booked) == {"bkg-new", "bkg-ten"}
    assert kept.booked["bkg-new"] == new
    assert kept.busy_versions == {**versions, keys.block_id(NINE): 3}


def test_a_newer_read_replaces_what_was_remembered_even_a_further_one() -> None:
    memory = RememberedCalendars()
    memory.keep("prv", NOW + timedelta(days=8), calendar(versions={"2026-12-07T09:00": 2}), NOW)
    memory.keep("prv", NOW, calendar(), NOW)  # a provider's list of bookings reads only up to now
    assert memory.get("prv", NOW + timedelta(days=8), NOW) is None  # it no longer reaches that far
    kept = memory.get("prv", NOW, NOW)
    assert kept is not None and kept.busy_versions == {}


def test_a_block_of_a_day_over_teaches_its_version_but_not_its_spans() -> None:
    """A change to a booking already past leaves its span in the blocks of ended days (they expire):
    a returned block of such a day must not put that span back over the booking's live one, nor take
    out a live span that also touches it (a read leaves those days' spans out too)."""
    memory = RememberedCalendars()
    late = datetime(2026, 11, 29, 23, 30, tzinfo=UTC)  # yesterday's last block
    moved = span("bkg-moved", NINE, 10)  # moved to Dec 1 09:00 from yesterday 23:30
    across = span("bkg-across", late + timedelta(minutes=10), 40)  # yesterday 23:40 to today 00:20
    memory.keep("prv", NOW + timedelta(days=7), calendar(moved, across), NOW)
    left_behind = {"bkg-moved": span_of(span("bkg-moved", late, 10))}  # its old copy, and not `across`
    memory.learn("prv", [{"SK": sort_key(late), "version": 7, "spans": left_behind}])
    kept = memory.get("prv", NOW, NOW)
    assert kept is not None and kept.booked == {"bkg-moved": moved, "bkg-across": across}
    assert kept.busy_versions[keys.block_id(late)] == 7
