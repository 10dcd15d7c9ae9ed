"""The claim scheme under random interleavings (decision 0007), against DynamoDB's conditional
transactions (in-process moto) and an oracle of what committed.

Each round, several changes (book, reschedule, cancel) of one provider's day read the calendar and
decide on it, as concurrent requests would, then commit in a random order. Whatever the lengths,
buffers, capacities and order: what committed never overlaps (buffers included; only a session of
one service shares time, up to its capacity), the table holds exactly what committed, and a change
whose busy blocks nobody touched since its read is never turned away (no contention between times
that do not touch a common block).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import count
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from msgspec.structs import replace

from services.availability import handler as availability
from services.booking.adapters.dynamodb_store import DynamoDBBookingStore
from services.booking.domain.models import Booking, BookingStatus
from services.booking.domain.ports import Committed
from services.booking.domain.use_cases import (
    BookingConflictError,
    BookingRequest,
    BookingService,
    SlotUnavailableError,
)
from services.common import keys
from services.common.auth import Attribution, Group, Principal
from services.common.availability import why_not
from services.common.aws import dynamodb_client
from services.common.calendar import ProviderCalendar
from tests.integration.conftest import invoke_handler

TABLE = "appointments-inproc"
BY = Attribution("property", "r", "1-00000000-000000000000000000000000")
OPEN = 6 * 60  # the provider opens at 06:00 UTC, every day, until 22:00
SERVICES = st.tuples(
    st.sampled_from([15, 30, 45, 60, 90]),  # duration
    st.sampled_from([0, 5, 10, 15]),  # buffer before
    st.sampled_from([0, 5, 10, 15]),  # buffer after
    st.integers(1, 3),  # capacity
)
# Starts within the first three hours: crowded enough that changes in one round often compete.
STARTS = st.integers(0, 11)
OPERATION = st.one_of(
    st.tuples(st.just("book"), st.integers(0, 2), STARTS),
    st.tuples(st.just("move"), st.integers(0, 50), STARTS),
    st.tuples(st.just("cancel"), st.integers(0, 50), st.just(0)),
)
serial = count()


@dataclass(frozen=True)
class Held:
    """What the oracle knows of a confirmed booking: the time it holds, and with whom it may share it."""

    service_id: str
    session_start: datetime
    start: datetime  # buffers included
    end: datetime
    capacity: int


def overlaps(committed: dict[str, Held]) -> list[str]:
    """Every booking that shares time with a stranger, or whose session holds more than its capacity."""
    found = []
    for booking_id, a in committed.items():
        sharing = [b for b in committed.values() if b.start < a.end and a.start < b.end]
        strangers = [b for b in sharing if (b.service_id, b.session_start) != (a.service_id, a.session_start)]
        if strangers or len(sharing) > a.capacity:
            found.append(booking_id)
    return found


def blocks_of(booking: Booking) -> set[datetime]:
    return set(keys.busy_blocks(booking.busy_start, booking.busy_end))


def invoke(method: str, path: str, body: Any = None) -> Any:
    """The availability service's handler, in-process, as the provider's owner."""
    status, answer = invoke_handler(availability, method, path, body, "owner", "providers")
    assert status in (200, 201), answer
    return answer


def open_provider(name: str, start: str, end: str) -> str:
    """A new provider (UTC) open from `start` to `end` every day; its id."""
    pid = str(invoke("POST", "/providers", {"name": f"{name} {next(serial)}", "timeZone": "UTC"})["providerId"])
    weekly = {day: [{"start": start, "end": end}] for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
    invoke("PUT", f"/providers/{pid}/schedule", {"weekly": weekly})
    return pid


def drawn_services(pid: str, services: list[tuple[int, int, int, int]]) -> list[str]:
    """The drawn services (duration, buffers, capacity) made on the provider, bookable at once; their ids."""
    sids = []
    for duration, before, after, capacity in services:
        rules = {"bufferBeforeMinutes": before, "bufferAfterMinutes": after, "capacity": capacity}
        body = {"name": "S", "durationMinutes": duration, "minNoticeMinutes": 0, "slotStepMinutes": 15, **rules}
        sids.append(invoke("POST", f"/providers/{pid}/services", body)["serviceId"])
    return sids


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    services=st.lists(SERVICES, min_size=1, max_size=3),
    rounds=st.lists(st.lists(OPERATION, min_size=2, max_size=5), min_size=1, max_size=4),
    data=st.data(),
)
def test_random_interleavings_never_commit_an_overlap_and_never_turn_away_an_untouched_time(
    inproc: Any, services: list[tuple[int, int, int, int]], rounds: list[list[tuple[str, int, int]]], data: Any
) -> None:
    # Given a provider open 06:00-22:00 UTC every day, with the drawn services
    pid = open_provider("Property", "06:00", "22:00")
    sids = drawn_services(pid, services)
    store = DynamoDBBookingStore(inproc, TABLE)
    now = datetime.now(UTC)
    day = datetime.combine(now.date() + timedelta(days=10), datetime.min.time(), UTC)
    until = day + timedelta(days=2)
    committed: dict[str, Held] = {}
    made: list[str] = []  # every booking id ever committed, for moves and cancels to name

    for operations in rounds:
        # When each change reads the calendar and decides on it, before any of them commits
        planned: list[tuple[str, Any, ProviderCalendar]] = []
        for kind, which, slot in operations:
            calendar = store.calendar(pid, until)
            assert calendar is not None
            start = day + timedelta(minutes=OPEN + 15 * slot)
            if kind == "book":
                service = calendar.services[sids[which % len(sids)]]
                if why_not(calendar.hours(), service.rules, calendar.busy_at(now), start, now, service.service_id):
                    continue
                request = BookingRequest(pid, service.service_id, start, f"customer-{next(serial)}", None)
                booking = BookingService._new_booking(calendar, service, request, request.customer_id or "", now)
                planned.append(("book", booking, calendar))
                continue
            if not made:
                continue
            current = store.get_booking(made[which % len(made)])
            if current is None or current.status is not BookingStatus.CONFIRMED:
                continue
            if kind == "cancel":
                planned.append(("cancel", current, calendar))
                continue
            service = calendar.services[current.service_id]
            busy = calendar.busy_except(current.booking_id, now)
            if why_not(calendar.hours(), service.rules, busy, start, now, service.service_id):
                continue
            request = BookingRequest(pid, service.service_id, start, current.customer_id, None)
            fresh = BookingService._new_booking(calendar, service, request, current.customer_id, now)
            moved = replace(fresh, booking_id=current.booking_id, version=current.version + 1)
            planned.append(("move", (current, moved), calendar))

        # and they commit in any order
        order = data.draw(st.permutations(range(len(planned))), label="commit order")
        touched: set[datetime] = set()  # the blocks written by this round's commits so far
        changed: set[str] = set()  # and the bookings
        for index in order:
            kind, subject, calendar = planned[index]
            if kind == "book":
                outcome = store.claim(subject, calendar, None, BY)
                target, guarded, writes = subject.booking_id, blocks_of(subject), blocks_of(subject)
            elif kind == "move":
                current, moved = subject
                outcome = store.reschedule(current, moved, calendar, BY)
                target, guarded = current.booking_id, blocks_of(moved)
                writes = blocks_of(moved) | blocks_of(current)
            else:
                outcome = store.cancel(subject, None, BY)
                target, guarded, writes = subject.booking_id, set(), blocks_of(subject)
            if target not in changed and not (guarded & touched):
                # Then a change whose booking and blocks nobody wrote since its read is never turned away
                assert isinstance(outcome, Committed), (kind, outcome)
            if not isinstance(outcome, Committed):
                continue
            touched |= writes
            changed.add(target)
            booking = subject if kind == "book" else subject[1] if kind == "move" else subject
            service = calendar.services[booking.service_id]
            if kind == "cancel":
                committed.pop(booking.booking_id, None)
                continue
            if kind == "book":
                made.append(booking.booking_id)
            committed[booking.booking_id] = Held(
                booking.service_id, booking.start, booking.busy_start, booking.busy_end, service.rules.capacity
            )
            # and what committed never overlaps
            assert overlaps(committed) == [], committed

        # and the table holds exactly what committed: the bookings, and their spans in the blocks
        confirmed = {
            booking_id
            for booking_id in made
            if (found := store.get_booking(booking_id)) is not None and found.status is BookingStatus.CONFIRMED
        }
        assert confirmed == set(committed)
        calendar = store.calendar(pid, until)
        assert calendar is not None and set(calendar.booked) == set(committed)
        for booking_id, held in committed.items():
            span = calendar.booked[booking_id]
            assert (span.start, span.end, span.session_start) == (held.start, held.end, held.session_start)


def test_the_longest_span_books_and_moves_within_one_transaction(inproc: Any) -> None:
    """The block size's reason (decision 0007): a 20-hour span touches 41 blocks, so its reschedule
    writes 82 of them beside the booking and two checks, 85 items, under DynamoDB's 100."""

    pid = open_provider("Longest", "00:00", "24:00")
    longest = {"name": "All day", "durationMinutes": 720, "bufferBeforeMinutes": 240, "bufferAfterMinutes": 240,
               "minNoticeMinutes": 0, "slotStepMinutes": 15}  # fmt: skip
    sid = invoke("POST", f"/providers/{pid}/services", longest)["serviceId"]
    store = DynamoDBBookingStore(inproc, TABLE)
    sizes: list[int] = []
    inproc.meta.events.register(
        "before-parameter-build.dynamodb.TransactWriteItems",
        lambda params, **_: sizes.append(len(params["TransactItems"])),
    )
    now = datetime.now(UTC)
    day = datetime.combine(now.date() + timedelta(days=5), datetime.min.time(), UTC)

    def decided(start: datetime, moving: Booking | None = None) -> tuple[Booking, ProviderCalendar]:
        calendar = store.calendar(pid, start + timedelta(days=2))
        assert calendar is not None
        service = calendar.services[sid]
        busy = calendar.busy_except(moving.booking_id, now) if moving else calendar.busy_at(now)
        assert why_not(calendar.hours(), service.rules, busy, start, now, sid) is None
        request = BookingRequest(pid, sid, start, "longest-customer", None)
        return BookingService._new_booking(calendar, service, request, "longest-customer", now), calendar

    # Given the longest booking, its busy time (buffers included) 00:15 to 20:15: 41 half-hours
    booking, calendar = decided(day + timedelta(hours=4, minutes=15))
    assert len(keys.busy_blocks(booking.busy_start, booking.busy_end)) == 41
    assert isinstance(store.claim(booking, calendar, None, BY), Committed)
    # When it moves to the next day, away from every block it held
    fresh, calendar = decided(day + timedelta(days=1, hours=4, minutes=15), booking)
    moved = replace(fresh, booking_id=booking.booking_id, version=booking.version + 1)
    assert isinstance(store.reschedule(booking, moved, calendar, BY), Committed)
    # Then both went in one transaction each: 41 blocks + booking + 2 checks, then 82 blocks + 3
    assert sizes == [44, 85]
    after = store.calendar(pid, day + timedelta(days=3))
    assert after is not None and after.booked[booking.booking_id].start == moved.busy_start


CONTAINER_STEPS = st.lists(
    st.one_of(
        # (container, service, start slot): a customer books through that container
        st.tuples(st.just("book"), st.integers(0, 2), st.integers(0, 2), STARTS),
        # (container, booking, _): an admin cancels one of the bookings made so far
        st.tuples(st.just("cancel"), st.integers(0, 2), st.integers(0, 50), st.just(0)),
        # (container, booking, start slot): an admin moves one
        st.tuples(st.just("move"), st.integers(0, 2), st.integers(0, 50), STARTS),
    ),
    min_size=4,
    max_size=24,
)


@settings(
    max_examples=8,  # up to 24 steps of three containers each; a final remembered refusal fails within a few
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(services=st.lists(SERVICES, min_size=1, max_size=3), steps=CONTAINER_STEPS)
def test_containers_that_remember_calendars_answer_as_a_fresh_read_would(
    inproc: Any, services: list[tuple[int, int, int, int]], steps: list[tuple[str, int, int, int]]
) -> None:
    """Three booking containers, each remembering the calendars it read and changed, take turns at
    one provider's day, so each often decides on a calendar another has changed since: every create
    is answered as a decision on a fresh read would answer it (201 exactly when the time is free, 409
    when it is taken), and what committed never overlaps."""
    pid = open_provider("Remembering", "06:00", "22:00")
    sids = drawn_services(pid, services)
    containers = [BookingService(DynamoDBBookingStore(inproc, TABLE), lambda: datetime.now(UTC)) for _ in range(3)]
    reader = DynamoDBBookingStore(inproc, TABLE)  # the oracle's fresh reads
    admin = Principal("admin", frozenset({Group.ADMINS}))
    day = datetime.combine(datetime.now(UTC).date() + timedelta(days=10), datetime.min.time(), UTC)
    made: list[str] = []
    committed: dict[str, Held] = {}

    for kind, container, which, slot in steps:
        service_of = containers[container]
        start = day + timedelta(minutes=OPEN + 15 * slot)
        if kind == "book":
            sid = sids[which % len(sids)]
            fresh = reader.calendar(pid, start + timedelta(days=8))
            assert fresh is not None
            service_rules = fresh.services[sid].rules
            now = datetime.now(UTC)
            expected = why_not(fresh.hours(), service_rules, fresh.busy_at(now), start, now, sid)
            customer = Principal(f"customer-{next(serial)}", frozenset({Group.CUSTOMERS}))
            request = BookingRequest(pid, sid, start, None, None)
            try:
                answer = service_of.book(customer, request, None, "h", lambda b: {"bookingId": b.booking_id}, BY)
            except BookingConflictError:
                assert expected == "TAKEN", expected
                continue
            except SlotUnavailableError as refused:
                assert expected == refused.reason, (expected, refused.reason)
                continue
            assert expected is None, expected
            booking_id = str(answer.body["bookingId"])
            made.append(booking_id)
            booked = reader.get_booking(booking_id)
            assert booked is not None
            committed[booking_id] = Held(sid, booked.start, booked.busy_start, booked.busy_end, service_rules.capacity)
        elif made:
            booking_id = made[which % len(made)]
            current = reader.get_booking(booking_id)
            if current is None or current.status is not BookingStatus.CONFIRMED:
                continue
            if kind == "cancel":
                service_of.cancel(admin, booking_id, None, None, BY)
                committed.pop(booking_id)
                continue
            try:
                moved = service_of.reschedule(admin, booking_id, start, None, BY)
            except (BookingConflictError, SlotUnavailableError):
                continue
            held = committed[booking_id]
            committed[booking_id] = Held(held.service_id, moved.start, moved.busy_start, moved.busy_end, held.capacity)
        assert overlaps(committed) == [], committed
    calendar = reader.calendar(pid, day + timedelta(days=2))
    assert calendar is not None and set(calendar.booked) == set(committed)


def test_a_past_days_block_learnt_after_a_failure_never_lets_a_warm_create_double_book(
    inproc: Any, monkeypatch: Any
) -> None:
    """Found by review: a booking moved after its time had passed leaves its old span in the block of
    an ended day. A container that learnt that block from a failed transaction must not take the old
    span for the booking's live one, or its next warm create lands on the booking's new time."""
    import services.booking.adapters.dynamodb_store as store_module
    import services.common.calendar_table as table_module

    now = [datetime(2030, 1, 1, 20, 0, tzinfo=UTC)]

    class Clock(datetime):
        @classmethod
        def now(cls, tz: Any = None) -> Any:
            return now[0]

    monkeypatch.setattr(store_module, "datetime", Clock)
    monkeypatch.setattr(table_module, "datetime", Clock)
    pid = open_provider("Past days", "00:00", "24:00")
    rules = {"minNoticeMinutes": 0, "slotStepMinutes": 5}
    short = invoke("POST", f"/providers/{pid}/services", {"name": "Short", "durationMinutes": 10, **rules})
    group = invoke(
        "POST",
        f"/providers/{pid}/services",
        {"name": "Group", "durationMinutes": 30, "bufferBeforeMinutes": 105, "capacity": 2, **rules},
    )
    x, y, c = (BookingService(DynamoDBBookingStore(dynamodb_client(), TABLE), lambda: now[0]) for _ in range(3))
    admin = Principal("admin", frozenset({Group.ADMINS}))

    def book(service: BookingService, sid: str, start: datetime) -> str:
        who = Principal(f"customer-{next(serial)}", frozenset({Group.CUSTOMERS}))
        answer = service.book(
            who, BookingRequest(pid, sid, start, None, None), None, "h", lambda b: {"id": b.booking_id}, BY
        )
        return str(answer.body["id"])

    # Given a booking on Jan 1 at 23:00, moved by an admin on Jan 2 (its time past) to Jan 3 10:00
    moved_to = datetime(2030, 1, 3, 10, 0, tzinfo=UTC)
    booked = book(x, short["serviceId"], datetime(2030, 1, 1, 23, 0, tzinfo=UTC))
    now[0] = datetime(2030, 1, 2, 0, 30, tzinfo=UTC)
    x.reschedule(admin, booked, moved_to, None, BY)
    # and a container that read the calendar since, and one that took a seat of a 01:00 session whose
    # buffer reaches into Jan 1's last block
    book(c, short["serviceId"], datetime(2030, 1, 2, 12, 0, tzinfo=UTC))
    book(y, group["serviceId"], datetime(2030, 1, 2, 1, 0, tzinfo=UTC))
    # When the first container takes the session's other seat (its transaction fails on the blocks
    # the seat changed, and learns them, Jan 1's among them), then books the booking's new time
    book(c, group["serviceId"], datetime(2030, 1, 2, 1, 0, tzinfo=UTC))
    with pytest.raises(BookingConflictError):
        book(c, short["serviceId"], moved_to)
    # Then the booking is alone at its time
    calendar = DynamoDBBookingStore(dynamodb_client(), TABLE).calendar(pid, moved_to + timedelta(days=2))
    assert calendar is not None
    assert [span.booking_id for span in calendar.booked.values() if span.session_start == moved_to] == [booked]
