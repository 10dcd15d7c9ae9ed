"""The waitlist's decisions with no I/O: which slot of a window an entry is offered (in elapsed time,
across DST changes), a join refused while its window has free time, a join that met another
counting its customer's entries tries again instead of answering 201 for nothing, a customer holds
one offer of a provider's at a time, and a full limit counter on one day passes to the window's next
day. The store answers from memory; the transactions themselves are the integration tests'."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from msgspec.structs import replace

from services.booking.domain.models import Hold, WaitlistEntry, WaitlistStatus
from services.booking.domain.ports import ClaimOutcome, Committed, Stale
from services.booking.domain.waitlist import (
    WaitlistRequest,
    WaitlistService,
    WindowHasFreeTimeError,
    window_slots,
)
from services.common import keys
from services.common.auth import Attribution, Group, Principal
from services.common.availability import LocalInterval, ServiceRules
from services.common.calendar import BookedSpan, Provider, ProviderCalendar, Service, WeeklySchedule

PROVIDER = "prv_" + "a" * 32
SERVICE = "svc_" + "b" * 32
BY = Attribution("system:waitlist", "request-1", "1-abc-def")
ALL_DAY = {day: (LocalInterval(0, 1440),) for day in range(7)}


def calendar(time_zone: str, duration: int = 60, booked: dict[str, BookedSpan] | None = None) -> ProviderCalendar:
    rules = ServiceRules(duration_minutes=duration, slot_step_minutes=30)
    service = Service(SERVICE, PROVIDER, "Visit", rules, 1, "2026-01-01T00:00:00Z", max_per_customer_per_day=1)
    provider = Provider(PROVIDER, "P", time_zone, "owner", 1, "2026-01-01T00:00:00Z")
    return ProviderCalendar(provider, WeeklySchedule(ALL_DAY, 1), services={SERVICE: service}, booked=booked or {})


def test_an_offer_across_the_spring_change_ends_inside_the_window() -> None:
    # Berlin, 29 March 2026: 02:00 CET becomes 03:00 CEST. The window 01:30 CET to 03:30 CEST is one
    # hour of elapsed time: a 60-minute appointment fits only from 01:30, and ends at 03:30 CEST.
    berlin = ZoneInfo("Europe/Berlin")
    start, end = datetime(2026, 3, 29, 1, 30, tzinfo=berlin), datetime(2026, 3, 29, 3, 30, tzinfo=berlin)
    now = datetime(2026, 3, 1, tzinfo=UTC)
    cal = calendar("Europe/Berlin")
    slots = window_slots(cal, cal.services[SERVICE], start, end, now)
    assert [s.start.astimezone(UTC) for s in slots] == [datetime(2026, 3, 29, 0, 30, tzinfo=UTC)]
    assert all(s.end.astimezone(UTC) <= end.astimezone(UTC) for s in slots)


def test_an_offer_across_the_autumn_change_may_use_the_windows_repeated_hour() -> None:
    # Berlin, 25 October 2026: 03:00 CEST becomes 02:00 CET. The window 01:30 CEST to 02:30 CET is two
    # hours of elapsed time: 60-minute appointments fit from 01:30 CEST to 01:30 CET (four starts).
    berlin = ZoneInfo("Europe/Berlin")
    start = datetime(2026, 10, 24, 23, 30, tzinfo=UTC).astimezone(berlin)  # 01:30 CEST
    end = datetime(2026, 10, 25, 1, 30, tzinfo=UTC).astimezone(berlin)  # 02:30 CET
    cal = calendar("Europe/Berlin")
    slots = window_slots(cal, cal.services[SERVICE], start, end, datetime(2026, 10, 1, tzinfo=UTC))
    starts = [s.start.astimezone(UTC).strftime("%H:%M") for s in slots]
    assert starts == ["23:30", "00:00", "00:30"]  # the last ends at 01:30 UTC, the window's end
    assert all(s.end.astimezone(UTC) <= end.astimezone(UTC) for s in slots)


class MemoryStore:
    """Answers from memory; `outcomes` says what each offer or join commits as, in turn."""

    def __init__(
        self,
        cal: ProviderCalendar,
        line: list[WaitlistEntry],
        outcomes: list[ClaimOutcome],
        counts: dict[str, int] | None = None,
    ) -> None:
        self.cal, self.line, self.outcomes, self.counts = cal, line, outcomes, counts or {}
        self.offers: list[tuple[str, datetime]] = []
        self.joined: list[WaitlistEntry] = []

    def limit_counts(self, provider_id: str, counter_keys: set[str]) -> dict[str, int]:
        return {key: count for key, count in self.counts.items() if key in counter_keys}

    def lapsed_approvals(self, *_: Any) -> list[Any]:
        return []

    def calendar(self, provider_id: str, until: datetime, *, remembered_to: datetime | None = None) -> ProviderCalendar:
        return self.cal

    def waitlist(self, provider_id: str | None = None) -> list[WaitlistEntry]:
        return list(self.line)

    def offer(self, entry: WaitlistEntry, hold: Hold, cal: ProviderCalendar, by: Attribution) -> ClaimOutcome:
        outcome = self.outcomes.pop(0) if self.outcomes else Committed()
        if isinstance(outcome, Committed):
            self.offers.append((entry.waitlist_id, hold.start.astimezone(UTC)))
            span = BookedSpan(
                hold.hold_id,
                SERVICE,
                entry.customer_id,
                hold.start,
                hold.busy_start,
                hold.busy_end,
                0,
                "",
                hold.expires_at,
            )
            self.cal = replace(self.cal, booked={**self.cal.booked, hold.hold_id: span})
        return outcome

    def add_to_waitlist(self, entry: WaitlistEntry, max_live: int, by: Attribution) -> ClaimOutcome:
        outcome = self.outcomes.pop(0) if self.outcomes else Committed()
        if isinstance(outcome, Committed):
            self.joined.append(entry)
        return outcome

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"the waitlist should not call {name}")


NOW = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
DAY = date(2026, 12, 2)


def entry(name: str, customer: str, start: datetime, end: datetime, order: int) -> WaitlistEntry:
    return WaitlistEntry(
        waitlist_id=f"wl_{name}",
        provider_id=PROVIDER,
        service_id=SERVICE,
        customer_id=customer,
        provider_owner="owner",
        time_zone="UTC",
        window_start=start,
        window_end=end,
        status=WaitlistStatus.WAITING,
        version=1,
        created_at=f"2026-11-30T00:00:0{order}.000000Z",
        created_by=customer,
    )


def busy_all_day_but(*free_hours: int) -> dict[str, BookedSpan]:
    """Every hour of DAY and the day after booked but `free_hours` (of DAY)."""
    spans = {}
    for day in (DAY, DAY + timedelta(days=1)):
        for hour in range(24):
            if day == DAY and hour in free_hours:
                continue
            at = datetime(day.year, day.month, day.day, hour, tzinfo=UTC)
            span_id = keys.new_booking_id(PROVIDER)
            spans[span_id] = BookedSpan(span_id, SERVICE, "x", at, at, at + timedelta(hours=1), 1, "")
    return spans


def at(hour: int, day: date = DAY) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=UTC)


def test_a_customer_holds_one_offer_of_a_providers_at_a_time() -> None:
    cal = calendar("UTC", booked=busy_all_day_but(10, 11))
    line = [
        entry("a1", "alice", at(9), at(13), 1),
        entry("a2", "alice", at(9), at(13), 2),
        entry("b1", "bob", at(9), at(13), 3),
    ]
    store = MemoryStore(cal, line, [])
    matched = WaitlistService(store, lambda: NOW).match(PROVIDER, BY)
    assert [e.waitlist_id for e in matched.offered] == ["wl_a1", "wl_b1"]
    assert store.offers == [("wl_a1", at(10)), ("wl_b1", at(11))]


def test_a_day_whose_limit_counter_is_full_is_passed_over_for_the_windows_next_day() -> None:
    cal = calendar("UTC", booked=busy_all_day_but(10))
    tomorrow = DAY + timedelta(days=1)
    free_tomorrow = {k: v for k, v in cal.booked.items() if not (v.start.date() == tomorrow and v.start.hour == 9)}
    cal = replace(cal, booked=free_tomorrow)
    line = [entry("a1", "alice", at(9), at(12, tomorrow), 1)]
    full = {f"CUSTOMER#alice#SERVICE#{SERVICE}#DAY#{DAY.isoformat()}": 1}  # alice's one booking that day
    store = MemoryStore(cal, line, [], counts=full)
    matched = WaitlistService(store, lambda: NOW).match(PROVIDER, BY)
    assert [e.waitlist_id for e in matched.offered] == ["wl_a1"]
    assert store.offers == [("wl_a1", at(9, tomorrow))]


def test_a_refused_offer_keeps_the_customers_other_entries_waiting_for_the_next_match() -> None:
    cal = calendar("UTC", booked=busy_all_day_but(10, 11))
    line = [
        entry("a1", "alice", at(9), at(13), 1),
        entry("a2", "alice", at(9), at(13), 2),
        entry("b1", "bob", at(9), at(13), 3),
    ]
    from services.booking.domain.ports import Refused

    store = MemoryStore(cal, line, [Refused(), Committed()])  # a1 was offered by an overlapping match
    matched = WaitlistService(store, lambda: NOW).match(PROVIDER, BY)
    assert [e.waitlist_id for e in matched.offered] == ["wl_b1"]  # not alice's second entry


def test_a_join_is_not_refused_for_time_its_customers_limits_leave_no_room_in() -> None:
    full = {f"CUSTOMER#alice#SERVICE#{SERVICE}#DAY#{DAY.isoformat()}": 1}
    store = MemoryStore(calendar("UTC", booked=busy_all_day_but(10)), [], [], counts=full)
    service = WaitlistService(store, lambda: NOW)
    request = WaitlistRequest(PROVIDER, SERVICE, at(9), at(12), None)
    joined = service.join(Principal("alice", frozenset({Group.CUSTOMERS})), request, BY)
    assert store.joined == [joined]


def test_days_that_came_into_the_booking_window_after_the_entry_joined_are_not_offered() -> None:
    # The service books 90 days ahead: an entry that joined on 1 December 2026 (its window then reached
    # 1 March) for 1 April 2027 is never offered that day, which came into the window later, free or
    # not; a month before, when it is in the window and all free, nothing is offered.
    cal = calendar("UTC")
    late = date(2027, 4, 1)
    line = [replace(entry("a1", "alice", at(9, late), at(12, late), 1), created_at="2026-12-01T08:00:00.000000Z")]
    store = MemoryStore(cal, line, [])
    later = datetime(late.year, late.month, late.day, tzinfo=UTC) - timedelta(days=30)
    assert WaitlistService(store, lambda: later).match(PROVIDER, BY).offered == []


def test_an_offer_refused_by_a_changed_calendar_is_tried_again_and_one_the_entry_changed_is_not() -> None:
    cal = calendar("UTC", booked=busy_all_day_but(10, 11))
    line = [entry("a1", "alice", at(9), at(13), 1), entry("b1", "bob", at(9), at(13), 2)]
    from services.booking.domain.ports import Refused

    store = MemoryStore(cal, line, [Stale(), Committed(), Refused()])
    matched = WaitlistService(store, lambda: NOW).match(PROVIDER, BY)
    assert [e.waitlist_id for e in matched.offered] == ["wl_a1"]  # bob's entry changed meanwhile: not offered


def test_a_join_is_refused_while_its_window_has_free_time() -> None:
    store = MemoryStore(calendar("UTC", booked=busy_all_day_but(10)), [], [])
    service = WaitlistService(store, lambda: NOW)
    request = WaitlistRequest(PROVIDER, SERVICE, at(9), at(12), None)
    with pytest.raises(WindowHasFreeTimeError) as refused:
        service.join(Principal("alice", frozenset({Group.CUSTOMERS})), request, BY)
    assert refused.value.extensions() == {"slots": [{"start": at(10).isoformat(), "end": at(11).isoformat()}]}
    assert store.joined == []


def test_a_join_that_met_another_counting_tries_again_and_answers_only_what_was_written() -> None:
    store = MemoryStore(calendar("UTC", booked=busy_all_day_but()), [], [Stale(), Stale(), Committed()])
    service = WaitlistService(store, lambda: NOW)
    joined = service.join(
        Principal("alice", frozenset({Group.CUSTOMERS})), WaitlistRequest(PROVIDER, SERVICE, at(9), at(12), None), BY
    )
    assert store.joined == [joined] and joined.status is WaitlistStatus.WAITING
