"""Booking through the local stack: races, idempotency, the slot contract, rules and authorization."""

from __future__ import annotations

import itertools
import random
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta
from threading import Barrier
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

import pytest

from local.stack import LocalStack, aws_client
from services.common.calendar_table import CalendarTable
from tests.integration.conftest import call, token

ZONE = ZoneInfo("America/New_York")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def future_day(weeks: int) -> date:
    today = datetime.now(ZONE).date()
    return today + timedelta(days=7 * weeks - today.weekday())  # a Monday `weeks` weeks ahead


def make_provider(
    stack: LocalStack, owner: str, name: str, weekly: dict[str, Any], services: list[dict[str, Any]]
) -> tuple[str, list[str]]:
    who = token(stack, owner, ["providers"])
    status, _, provider = call(stack, "POST", "/providers", token=who, body={"name": name, "timeZone": ZONE.key})
    assert status == 201, provider
    pid = provider["providerId"]
    assert call(stack, "PUT", f"/providers/{pid}/schedule", token=who, body={"weekly": weekly})[0] == 200
    sids = []
    for service in services:
        status, _, created = call(
            stack, "POST", f"/providers/{pid}/services", token=who, body={"minNoticeMinutes": 0, **service}
        )
        assert status == 201, created
        sids.append(created["serviceId"])
    return pid, sids


def slots(stack: LocalStack, pid: str, sid: str, day: date, days: int = 1) -> list[dict[str, Any]]:
    start = datetime.combine(day, datetime.min.time(), ZONE)
    query = f"serviceId={sid}&from={quote(start.isoformat())}&to={quote((start + timedelta(days=days)).isoformat())}"
    status, _, body = call(stack, "GET", f"/providers/{pid}/slots?{query}", token=token(stack, "reader", ["customers"]))
    assert status == 200, body
    return list(body["slots"])


def book(
    stack: LocalStack, who: str, pid: str, sid: str, start: str, key: str | None = None, **extra: Any
) -> tuple[int, dict[str, str], Any]:
    headers = {"Idempotency-Key": key} if key else {}
    return call(
        stack,
        "POST",
        "/bookings",
        token=who,
        body={"providerId": pid, "serviceId": sid, "start": start, **extra},
        headers=headers,
    )


@pytest.fixture(scope="module")
def clinic(stack: LocalStack) -> tuple[str, list[str]]:
    weekly = {day: [{"start": "08:00", "end": "20:00"}] for day in WEEKDAYS[:5]}
    return make_provider(
        stack, "clinic-owner", "Race Clinic", weekly, [{"name": "Visit", "durationMinutes": 20, "slotStepMinutes": 20}]
    )


def test_fifty_clients_race_for_one_slot_twenty_times(stack: LocalStack, clinic: tuple[str, list[str]]) -> None:
    pid, (sid,) = clinic
    assert stack.lambdas is not None
    stack.lambdas.functions["BookingFunction"].provision(50)  # 50 environments, as Lambda would scale to
    offered = slots(stack, pid, sid, future_day(3))
    assert len(offered) >= 20
    customers = [token(stack, f"racer-{n}", ["customers"]) for n in range(50)]
    for round_number in range(20):
        start = offered[round_number]["start"]
        barrier = Barrier(50)

        def race(who: str, start: str = start, barrier: Barrier = barrier) -> int:
            barrier.wait()
            return book(stack, who, pid, sid, start)[0]

        with ThreadPoolExecutor(50) as pool:
            statuses = list(pool.map(race, customers))
        assert statuses.count(201) == 1, f"round {round_number}: {sorted(statuses)}"
        assert statuses.count(409) == 49, f"round {round_number}: {sorted(statuses)}"


def test_one_idempotency_key_sent_twenty_times_at_once_books_once(
    stack: LocalStack, clinic: tuple[str, list[str]]
) -> None:
    pid, (sid,) = clinic
    start = slots(stack, pid, sid, future_day(4))[0]["start"]
    who = token(stack, "retrying-client", ["customers"])
    barrier = Barrier(20)

    def send(_: int) -> tuple[int, Any]:
        barrier.wait()
        status, _headers, body = book(stack, who, pid, sid, start, key="retry-1")
        return status, body

    with ThreadPoolExecutor(20) as pool:
        answers = list(pool.map(send, range(20)))
    assert {status for status, _ in answers} == {201}
    assert len({body["bookingId"] for _, body in answers}) == 1
    assert all(body == answers[0][1] for _, body in answers)  # identical bodies
    # and the time is booked once: the slot is gone, and nothing else was taken
    assert start not in [s["start"] for s in slots(stack, pid, sid, future_day(4))]
    # the same key with another request is refused
    other = slots(stack, pid, sid, future_day(4))[0]["start"]
    status, _, problem = book(stack, who, pid, sid, other, key="retry-1")
    assert (status, problem["code"]) == (422, "IDEMPOTENCY_KEY_REUSED")


def test_a_start_that_is_not_a_slot_is_refused_with_the_reason(
    stack: LocalStack, clinic: tuple[str, list[str]]
) -> None:
    pid, (sid,) = clinic
    who = token(stack, "picky", ["customers"])
    monday = datetime.combine(future_day(5), datetime.min.time(), ZONE)
    cases = {
        "NOT_ON_STEP": monday.replace(hour=9, minute=10),
        "OUTSIDE_HOURS": monday.replace(hour=21),
        "TOO_FAR_AHEAD": monday + timedelta(days=400),
        "TOO_SOON": datetime.now(UTC) - timedelta(hours=1),
    }
    for reason, start in cases.items():
        status, _, problem = book(stack, who, pid, sid, start.isoformat())
        assert (status, problem["code"], problem["reason"]) == (422, "SLOT_UNAVAILABLE", reason)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_every_slot_offered_is_bookable_and_then_gone(stack: LocalStack, seed: int) -> None:
    generator = random.Random(seed)
    weekly = {
        day: [{"start": f"{h:02d}:{m:02d}", "end": f"{h + generator.randint(1, 3):02d}:{m:02d}"}]
        for day in WEEKDAYS
        for h, m in [(generator.randint(6, 14), generator.choice([0, 15, 30, 45]))]
    }
    service = {
        "name": "Random",
        "durationMinutes": generator.choice([15, 25, 30, 45]),
        "bufferBeforeMinutes": generator.choice([0, 5, 10]),
        "bufferAfterMinutes": generator.choice([0, 5, 15]),
        "slotStepMinutes": generator.choice([5, 10, 15, 30]),
        "capacity": generator.choice([1, 1, 2]),
    }
    pid, (sid,) = make_provider(stack, f"contract-{seed}", f"Contract {seed}", weekly, [service])
    day = future_day(2) + timedelta(days=generator.randint(0, 6))
    who = token(stack, f"contract-customer-{seed}", ["customers"])
    booked = 0
    made: list[tuple[str, str]] = []
    while offered := slots(stack, pid, sid, day):
        slot = generator.choice(offered)
        status, _, body = book(stack, who, pid, sid, slot["start"])
        assert status == 201, (slot, body)
        booked += 1
        after = {s["start"]: s["remaining"] for s in slots(stack, pid, sid, day)}
        assert after.get(slot["start"], 0) == slot["remaining"] - 1, "the booked seat is gone from the next search"
        made.append((body["bookingId"], slot["start"]))
    assert booked > 0
    # cancel one: its seat comes back
    booking_id, start = generator.choice(made)
    before = {s["start"]: s["remaining"] for s in slots(stack, pid, sid, day)}.get(start, 0)
    assert call(stack, "POST", f"/bookings/{booking_id}/cancel", token=who, body={})[0] == 200
    assert {s["start"]: s["remaining"] for s in slots(stack, pid, sid, day)}[start] == before + 1


def test_bookings_are_private_to_their_people(stack: LocalStack, clinic: tuple[str, list[str]]) -> None:
    pid, (sid,) = clinic
    start = slots(stack, pid, sid, future_day(6))[0]["start"]
    alice, bob = token(stack, "alice", ["customers"]), token(stack, "bob", ["customers"])
    status, headers, booking = book(stack, alice, pid, sid, start, notes="allergic to latex")
    assert (
        status == 201
        and booking["customerId"] == "alice"
        and headers["Location"] == f"/bookings/{booking['bookingId']}"
    )
    path = f"/bookings/{booking['bookingId']}"
    status, headers, read = call(stack, "GET", path, token=alice)
    assert (status, read, headers["ETag"]) == (200, booking, '"1"')
    assert call(stack, "GET", path, token=bob)[0] == 404  # not 403: bob learns nothing
    assert call(stack, "GET", path, token=token(stack, "clinic-owner", ["providers"]))[0] == 200
    assert call(stack, "GET", path, token=token(stack, "another-provider", ["providers"]))[0] == 404
    assert call(stack, "GET", path, token=token(stack, "oncall", ["ops"]))[0] == 200
    other_start = slots(stack, pid, sid, future_day(6))[0]["start"]
    status, _, problem = book(stack, bob, pid, sid, other_start, customerId="alice")
    assert (status, problem["code"]) == (403, "FORBIDDEN")
    status, _, problem = book(stack, token(stack, "another-provider", ["providers"]), pid, sid, other_start)
    assert (status, problem["code"]) == (403, "FORBIDDEN")


def test_fifty_clients_book_fifty_different_times_of_one_day_at_once_and_all_get_them(stack: LocalStack) -> None:
    # A clinic's Monday morning: one provider, 15-minute visits from 08:00 to 20:30, all asked at once
    weekly = {day: [{"start": "08:00", "end": "20:30"}] for day in WEEKDAYS}
    visit = {"name": "Visit", "durationMinutes": 15, "slotStepMinutes": 15}
    pid, (sid,) = make_provider(stack, "storm-owner", "Monday Morning", weekly, [visit])
    assert stack.lambdas is not None
    stack.lambdas.functions["BookingFunction"].provision(50)  # 50 environments, as Lambda would scale to
    day = future_day(6)
    starts = [slot["start"] for slot in slots(stack, pid, sid, day)]
    assert len(starts) == 50
    barrier = Barrier(50)

    def send(n: int) -> tuple[int, Any]:
        who = token(stack, f"storm-customer-{n}", ["customers"])
        barrier.wait()
        status, _headers, body = book(stack, who, pid, sid, starts[n])
        return status, body

    with ThreadPoolExecutor(50) as pool:
        answers = list(pool.map(send, range(50)))
    # Then every one of them is booked: different times do not wait for each other's claims
    assert [status for status, _ in answers] == [201] * 50, [body for status, body in answers if status != 201]
    # and the day holds exactly those fifty, none overlapping, and no slot is left
    # (the table checker: the provider's calendar, read strongly consistent, as the claims see it)
    assert stack.emulator is not None
    window = datetime.combine(day, datetime.min.time(), ZONE)
    table = CalendarTable(aws_client("dynamodb", stack.emulator.endpoint), "appointments-local")
    calendar = table.calendar(pid, window + timedelta(days=2))
    assert calendar is not None
    booked = sorted((span.start, span.end) for span in calendar.booked.values())
    assert [start for start, _ in booked] == sorted(datetime.fromisoformat(start) for start in starts)
    assert all(end <= later for (_, end), (later, _) in itertools.pairwise(booked))
    assert slots(stack, pid, sid, day) == []


def test_a_start_with_a_fraction_of_a_second_books_the_whole_second_and_its_cancel_frees_it(
    stack: LocalStack, clinic: tuple[str, list[str]]
) -> None:
    pid, (sid,) = clinic
    who = token(stack, "fractional", ["customers"])
    start = datetime.fromisoformat(slots(stack, pid, sid, future_day(7))[0]["start"])
    # Given a start half a second past a slot: the engine judges whole seconds, so it is that slot
    status, _, booking = book(stack, who, pid, sid, (start + timedelta(milliseconds=500)).isoformat())
    assert status == 201 and datetime.fromisoformat(booking["start"]) == start, booking
    # When it is cancelled, the time is free again, with no busy block left behind
    assert call(stack, "POST", f"/bookings/{booking['bookingId']}/cancel", token=who, body={})[0] == 200
    status, _, again = book(stack, who, pid, sid, start.isoformat())
    assert status == 201, again
