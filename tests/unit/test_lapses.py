"""Writing down what lapsed (decision 0027): each lapse still standing written once and its marker
dropped; what ended in time dropped unwritten; a lost race, an error, or no time left keeps the
marker and holds the sweep's mark at its hour, so the next sweep reads it again; a series' pending
occurrences are written together."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from services.booking.domain.lapses import LapseService
from services.booking.domain.models import Booking, BookingStatus, Hold, Lapse
from services.booking.domain.ports import Committed, Refused
from services.common.auth import Attribution

NOW = datetime(2026, 12, 1, 10, 30, tzinfo=UTC)
BY = Attribution("system:expiry", "r", "", "")
BEFORE = NOW - timedelta(hours=2, minutes=5)  # lapsed two hours ago: its hour is 08


def hold(hold_id: str, expires: datetime = BEFORE, ended: str | None = None) -> Hold:
    return Hold(hold_id, "prv_1", "svc_1", "c", None, "UTC", NOW, NOW, NOW, NOW, expires, "t", "c", ended=ended)


def booking(booking_id: str, status: BookingStatus = BookingStatus.PENDING, deadline: datetime = BEFORE) -> Booking:
    return Booking(
        booking_id, "prv_1", "svc_1", "c", None, "UTC", NOW, NOW, NOW, NOW, status, 1, None, "t",
        approval_expires_at=deadline,
    )  # fmt: skip


@dataclass
class Series:
    booking_ids: tuple[str, ...]


@dataclass
class Store:
    lapses: list[Lapse]
    holds: dict[str, Hold] = field(default_factory=dict)
    bookings: dict[str, Booking] = field(default_factory=dict)
    series: dict[str, Series] = field(default_factory=dict)
    refuse: set[str] = field(default_factory=set)
    broken: set[str] = field(default_factory=set)
    forgotten: list[str] = field(default_factory=list)
    expired: list[str] = field(default_factory=list)
    authors: list[Attribution] = field(default_factory=list)
    mark: str | None = None

    def lapsed(self, now: datetime) -> tuple[list[Lapse], str]:
        return self.lapses, now.strftime("%Y-%m-%dT%H")

    def get_hold(self, hold_id: str) -> Hold | None:
        if hold_id in self.broken:
            raise ConnectionError("the table is unreachable")
        return self.holds.get(hold_id)

    def get_booking(self, booking_id: str) -> Booking | None:
        return self.bookings.get(booking_id)

    def get_series(self, series_id: str) -> Series | None:
        return self.series.get(series_id)

    def get_bookings(self, booking_ids: list[str]) -> list[Booking]:
        return [self.bookings[i] for i in booking_ids if i in self.bookings]

    def expire_hold(self, held: Hold, by: Attribution) -> Any:
        self.authors.append(by)
        return self._write(held.hold_id)

    def expire(self, pending: Booking, by: Attribution) -> Any:
        self.authors.append(by)
        return self._write(pending.booking_id)

    def _write(self, entity_id: str) -> Any:
        if entity_id in self.refuse:
            return Refused()
        self.expired.append(entity_id)
        return Committed()

    def forget_lapse(self, lapse: Lapse) -> None:
        self.forgotten.append(lapse.entity_id)

    def swept_through(self, mark: str) -> None:
        self.mark = mark


def run(store: Store, time_left: Any = lambda: True) -> Any:
    return LapseService(store, lambda: NOW).write_down(BY, time_left)  # type: ignore[arg-type]


def test_what_still_stands_is_written_once_and_what_ended_in_time_is_dropped() -> None:
    store = Store(
        [Lapse("HOLD", "h1", BEFORE), Lapse("HOLD", "h2", BEFORE), Lapse("BOOKING", "b1", BEFORE)],
        holds={"h1": hold("h1"), "h2": hold("h2", ended="CONVERTED")},
        bookings={"b1": booking("b1")},
    )
    written = run(store)
    assert (written.holds, written.bookings, written.ended_before, written.left) == (["h1"], ["b1"], 1, 0)
    assert store.expired == ["h1", "b1"] and store.forgotten == ["h1", "h2", "b1"]
    assert store.mark == "2026-12-01T10"  # every hour before now's is done
    # Once: a sweep that reads them again (a marker whose delete was lost) finds them written down.
    store.holds["h1"] = hold("h1", ended="EXPIRED")
    store.bookings["b1"] = booking("b1", status=BookingStatus.EXPIRED)
    again = run(store)
    assert (again.holds, again.bookings, again.ended_before) == ([], [], 3) and store.expired == ["h1", "b1"]


def test_a_lost_race_keeps_the_marker_and_holds_the_mark_at_its_hour() -> None:
    lapsed = NOW - timedelta(hours=1, minutes=10)  # 09:20
    store = Store([Lapse("BOOKING", "b1", lapsed)], bookings={"b1": booking("b1", deadline=lapsed)}, refuse={"b1"})
    written = run(store)
    assert written.left == 1 and store.forgotten == [] and written.errors == []
    assert store.mark == "2026-12-01T09"


def test_an_error_keeps_the_marker_and_holds_the_mark_and_the_next_lapse_is_still_written() -> None:
    later = NOW - timedelta(minutes=10)
    store = Store(
        [Lapse("HOLD", "broken", BEFORE), Lapse("HOLD", "h1", later)],
        holds={"h1": hold("h1", expires=later)},
        broken={"broken"},
    )
    written = run(store)
    assert written.holds == ["h1"] and written.left == 1 and len(written.errors) == 1
    assert store.forgotten == ["h1"] and store.mark == "2026-12-01T08"


def test_a_gone_hold_is_left_to_its_removal_by_ttl_which_announces_it() -> None:
    # (test_lapsed_hold_events.py: that removal is published as its expiry)
    store = Store([Lapse("HOLD", "gone", BEFORE)])
    assert run(store).ended_before == 1 and store.forgotten == ["gone"] and store.expired == []


def test_with_no_time_left_the_rest_wait_for_the_next_sweep() -> None:
    store = Store(
        [Lapse("HOLD", "h1", BEFORE), Lapse("HOLD", "h2", BEFORE + timedelta(hours=1))],
        holds={"h1": hold("h1"), "h2": hold("h2")},
    )
    answers = iter([True, False])
    written = run(store, lambda: next(answers))
    assert written.holds == ["h1"] and written.left == 1 and store.mark == "2026-12-01T09"


def test_a_series_pending_occurrences_are_written_together_and_decided_ones_left_alone() -> None:
    store = Store(
        [Lapse("SERIES", "ser_1", BEFORE)],
        bookings={
            "b1": booking("b1"),
            "b2": booking("b2", status=BookingStatus.CONFIRMED),
            "b3": booking("b3"),
        },
        series={"ser_1": Series(("b1", "b2", "b3"))},
    )
    written = run(store)
    assert written.bookings == ["ser_1"] and store.expired == ["b1", "b3"]


def test_an_approvals_lapse_is_the_deadlines_whoever_writes_it_and_a_holds_the_sweeps() -> None:
    """A reader that comes upon a lapsed approval writes it as `system:approval-timeout`; the sweep
    must too, or the trail would depend on which came first (it did: a flaky test found it)."""
    store = Store(
        [Lapse("HOLD", "h1", BEFORE), Lapse("BOOKING", "b1", BEFORE)],
        holds={"h1": hold("h1")},
        bookings={"b1": booking("b1")},
    )
    run(store)
    assert [(by.actor, by.request_id) for by in store.authors] == [
        ("system:expiry", "r"),
        ("system:approval-timeout", "r"),  # the sweep's request and trace stay
    ]
