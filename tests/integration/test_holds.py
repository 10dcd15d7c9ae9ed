"""Holds through the local stack: a held time is busy for everyone else (search, booking, holds), its
customer turns it into a booking, it is free again at `expiresAt` on the stack's clock with no request,
a release frees it at once, a caller keeps at most 3 live, and of 20 customers racing to hold one
slot exactly one gets it. And explain names each reason, a hold's among them. A stack of its own,
since its clock only moves forward."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta
from threading import Barrier
from typing import Any
from urllib.parse import quote

import pytest

from local.stack import LocalStack, StackConfig, aws_client
from services.common import keys
from services.common.calendar_table import CalendarTable
from tests.integration.conftest import call, eventually, token

pytestmark = pytest.mark.slow

EVERY_DAY = {day: [{"start": "08:00", "end": "18:00"}] for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    running = LocalStack(StackConfig(port=0, state_dir=tmp_path_factory.mktemp("holds"), echo=None, seed=False))
    running.start()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def clinic(stack: LocalStack) -> tuple[str, str]:
    owner = token(stack, "hold-owner", ["providers"])
    pid = call(stack, "POST", "/providers", token=owner, body={"name": "Hold Clinic", "timeZone": "UTC"})[2][
        "providerId"
    ]
    assert call(stack, "PUT", f"/providers/{pid}/schedule", token=owner, body={"weekly": EVERY_DAY})[0] == 200
    body = {"name": "Visit", "durationMinutes": 30, "slotStepMinutes": 30, "minNoticeMinutes": 0, "holdMinutes": 5}
    status, _, service = call(stack, "POST", f"/providers/{pid}/services", token=owner, body=body)
    assert status == 201 and service["holdMinutes"] == 5, service
    return pid, service["serviceId"]


def a_day(offset: int) -> date:
    return datetime.now(UTC).date() + timedelta(days=offset)


def at(day: date, hour: int, minute: int = 0) -> str:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC).isoformat()


def offered(stack: LocalStack, pid: str, sid: str, day: date) -> list[str]:
    start = datetime.combine(day, datetime.min.time(), UTC)
    query = f"serviceId={sid}&from={quote(start.isoformat())}&to={quote((start + timedelta(days=1)).isoformat())}"
    status, _, body = call(stack, "GET", f"/providers/{pid}/slots?{query}", token=token(stack, "looker", ["customers"]))
    assert status == 200, body
    return [datetime.fromisoformat(slot["start"]).astimezone(UTC).isoformat() for slot in body["slots"]]


def hold(stack: LocalStack, who: str, pid: str, sid: str, start: str) -> tuple[int, Any]:
    status, _, body = call(
        stack,
        "POST",
        "/holds",
        token=token(stack, who, ["customers"]),
        body={"providerId": pid, "serviceId": sid, "start": start},
    )
    return status, body


def book(stack: LocalStack, who: str, pid: str, sid: str, start: str, **extra: Any) -> tuple[int, Any]:
    status, _, body = call(
        stack,
        "POST",
        "/bookings",
        token=token(stack, who, ["customers"]),
        body={"providerId": pid, "serviceId": sid, "start": start, **extra},
    )
    return status, body


def spans_in_blocks(stack: LocalStack, pid: str, start: str) -> set[str]:
    assert stack.data is not None and stack.emulator is not None
    table = CalendarTable(aws_client("dynamodb", stack.emulator.endpoint), stack.data.table_name)
    calendar = table.calendar(pid, datetime.fromisoformat(start) + timedelta(days=1))
    assert calendar is not None
    moment = datetime.fromisoformat(start)
    return {span.booking_id for span in calendar.booked.values() if span.session_start == moment}


def at_once(*requests: Callable[[], int]) -> list[int]:
    """Each request from its own thread, all released together; their statuses in order."""
    barrier = Barrier(len(requests))

    def run(request: Callable[[], int]) -> int:
        barrier.wait()
        return request()

    with ThreadPoolExecutor(len(requests)) as pool:
        return list(pool.map(run, requests))


def test_a_held_time_is_busy_for_everyone_else_and_its_customer_books_it(
    stack: LocalStack, clinic: tuple[str, str]
) -> None:
    pid, sid = clinic
    day = a_day(3)
    start = at(day, 9)
    status, held = hold(stack, "holder-a", pid, sid, start)
    assert status == 201, held
    assert held["customerId"] == "holder-a" and held["holdId"].startswith("hld_")
    now = datetime.fromisoformat(call(stack, "GET", "/_local/clock")[2]["now"])
    assert 295 <= (datetime.fromisoformat(held["expiresAt"]) - now).total_seconds() <= 300
    assert start not in offered(stack, pid, sid, day)
    assert book(stack, "other-b", pid, sid, start)[0] == 409
    assert hold(stack, "other-b", pid, sid, start)[0] == 409
    # Another customer cannot use the hold, nor see it.
    status, problem = book(stack, "other-b", pid, sid, start, holdId=held["holdId"])
    assert (status, problem["code"], problem["reason"]) == (422, "HOLD_UNAVAILABLE", "NOT_FOUND")
    assert call(stack, "GET", f"/holds/{held['holdId']}", token=token(stack, "other-b", ["customers"]))[0] == 404
    # Its customer, for another time than the hold's: refused, and the hold stays.
    status, problem = book(stack, "holder-a", pid, sid, at(day, 10), holdId=held["holdId"])
    assert (status, problem["reason"], problem["errors"][0]["field"]) == (422, "MISMATCH", "body.holdId")
    status, _, seen = call(stack, "GET", f"/holds/{held['holdId']}", token=token(stack, "holder-a", ["customers"]))
    assert status == 200 and seen == held

    status, booking = book(stack, "holder-a", pid, sid, start, holdId=held["holdId"])
    assert status == 201 and booking["start"] == held["start"] and booking["customerId"] == "holder-a", booking
    assert spans_in_blocks(stack, pid, start) == {booking["bookingId"]}  # the booking in the hold's place
    assert call(stack, "GET", f"/holds/{held['holdId']}", token=token(stack, "holder-a", ["customers"]))[0] == 404
    assert start not in offered(stack, pid, sid, day)
    status, problem = book(stack, "holder-a", pid, sid, start, holdId=held["holdId"])
    assert (status, problem["reason"]) == (422, "NOT_FOUND")


def test_a_hold_expires_at_its_time_on_the_stack_clock_with_no_request(
    stack: LocalStack, clinic: tuple[str, str]
) -> None:
    pid, sid = clinic
    day = a_day(4)
    start = at(day, 11)
    status, held = hold(stack, "holder-c", pid, sid, start)
    assert status == 201, held
    assert start not in offered(stack, pid, sid, day)
    status, _, clock = call(stack, "POST", "/_local/clock", body={"advanceSeconds": 5 * 60 + 1})
    assert status == 200, clock
    assert start in offered(stack, pid, sid, day)  # free at expiresAt, before anything removed it
    status, problem = book(stack, "holder-c", pid, sid, start, holdId=held["holdId"])
    # EXPIRED while the item is there; once TTL removed it (locally within 10 s of the clock passing
    # its expiry, which the move did: a busy machine may get there first), it is simply not found.
    assert (status, problem["code"]) == (422, "HOLD_UNAVAILABLE") and problem["reason"] in {"EXPIRED", "NOT_FOUND"}
    status, booking = book(stack, "other-d", pid, sid, start)
    assert status == 201, booking
    assert spans_in_blocks(stack, pid, start) == {booking["bookingId"]}  # the expired span taken out as it went by
    assert stack.data is not None and stack.emulator is not None
    dynamodb = aws_client("dynamodb", stack.emulator.endpoint)
    assert eventually(
        lambda: "Item" not in dynamodb.get_item(TableName=stack.data.table_name, Key=keys.hold_key(held["holdId"]))
    )  # and TTL removes the hold's item


def test_a_release_frees_the_time_at_once(stack: LocalStack, clinic: tuple[str, str]) -> None:
    pid, sid = clinic
    day = a_day(5)
    start = at(day, 13)
    status, held = hold(stack, "holder-e", pid, sid, start)
    assert status == 201, held
    ops = token(stack, "ops-f", ["ops"])
    assert call(stack, "GET", f"/holds/{held['holdId']}", token=ops)[0] == 200
    assert call(stack, "DELETE", f"/holds/{held['holdId']}", token=ops)[0] == 403
    assert call(stack, "DELETE", f"/holds/{held['holdId']}", token=token(stack, "other-g", ["customers"]))[0] == 404
    assert call(stack, "DELETE", f"/holds/{held['holdId']}", token=token(stack, "holder-e", ["customers"]))[0] == 204
    assert start in offered(stack, pid, sid, day)
    assert spans_in_blocks(stack, pid, start) == set()
    assert call(stack, "DELETE", f"/holds/{held['holdId']}", token=token(stack, "holder-e", ["customers"]))[0] == 404
    assert book(stack, "other-g", pid, sid, start)[0] == 201


def test_a_customer_keeps_at_most_three_live_holds(stack: LocalStack, clinic: tuple[str, str]) -> None:
    pid, sid = clinic
    day = a_day(6)
    held = [hold(stack, "hoarder", pid, sid, at(day, hour)) for hour in (8, 9, 10)]
    assert [status for status, _ in held] == [201, 201, 201]
    status, problem = hold(stack, "hoarder", pid, sid, at(day, 11))
    assert (status, problem["code"]) == (422, "HOLD_LIMIT_REACHED")
    assert problem["nextExpiry"] == min(body["expiresAt"] for _, body in held)
    assert sorted(problem["holdIds"]) == sorted(body["holdId"] for _, body in held)
    assert (
        call(stack, "DELETE", f"/holds/{held[0][1]['holdId']}", token=token(stack, "hoarder", ["customers"]))[0] == 204
    )
    assert hold(stack, "hoarder", pid, sid, at(day, 11))[0] == 201
    assert hold(stack, "someone-else", pid, sid, at(day, 12))[0] == 201  # the cap is the caller's, not the provider's
    # An owner holding times for a client uses up the owner's three, not the client's.
    owner = token(stack, "hold-owner", ["providers"])
    for hour in (13, 14, 15):
        body = {"providerId": pid, "serviceId": sid, "start": at(day, hour), "customerId": "hoarder"}
        assert call(stack, "POST", "/holds", token=owner, body=body)[0] == 201
    body = {"providerId": pid, "serviceId": sid, "start": at(day, 16), "customerId": "another-client"}
    status, _, problem = call(stack, "POST", "/holds", token=owner, body=body)
    assert (status, problem["code"]) == (422, "HOLD_LIMIT_REACHED")
    assert hold(stack, "hoarder", pid, sid, at(day, 17))[0] == 422  # the hoarder's own three, still


def test_twenty_customers_race_to_hold_one_slot_and_one_gets_it(stack: LocalStack, clinic: tuple[str, str]) -> None:
    pid, sid = clinic
    assert stack.lambdas is not None
    stack.lambdas.functions["BookingFunction"].provision(20)
    start = at(a_day(7), 15)
    body = {"providerId": pid, "serviceId": sid, "start": start}
    racers = [token(stack, f"racer-{n}", ["customers"]) for n in range(20)]
    statuses = sorted(
        at_once(*[lambda who=who: call(stack, "POST", "/holds", token=who, body=body)[0] for who in racers])
    )
    assert statuses == [201] + [409] * 19
    assert len(spans_in_blocks(stack, pid, start)) == 1


def test_six_holds_at_once_by_one_caller_give_three(stack: LocalStack, clinic: tuple[str, str]) -> None:
    """The cap is checked in the hold's own transaction (the caller's record, by its version), so
    requests at once cannot all read room for one more."""
    pid, sid = clinic
    assert stack.lambdas is not None
    stack.lambdas.functions["BookingFunction"].provision(6)
    day = a_day(8)
    who = token(stack, "eager", ["customers"])
    statuses = sorted(
        at_once(
            *[
                lambda hour=hour: call(
                    stack,
                    "POST",
                    "/holds",
                    token=who,
                    body={"providerId": pid, "serviceId": sid, "start": at(day, hour)},
                )[0]
                for hour in range(9, 15)
            ]
        )
    )
    assert statuses == [201, 201, 201, 422, 422, 422]


def test_at_the_moment_a_hold_expires_its_conversion_and_a_strangers_booking_never_both_win(
    stack: LocalStack, clinic: tuple[str, str]
) -> None:
    pid, sid = clinic
    day = a_day(9)
    for hour in (9, 10, 11, 12):
        start, holder = at(day, hour), f"boundary-{hour}"
        status, held = hold(stack, holder, pid, sid, start)
        assert status == 201, held
        now = datetime.fromisoformat(call(stack, "GET", "/_local/clock")[2]["now"])
        lead = (datetime.fromisoformat(held["expiresAt"]) - now).total_seconds() - 0.3
        assert call(stack, "POST", "/_local/clock", body={"advanceSeconds": lead})[0] == 200
        statuses = at_once(
            lambda: book(stack, holder, pid, sid, start, holdId=held["holdId"])[0],  # noqa: B023 - run before the loop moves on
            lambda: book(stack, f"stranger-{hour}", pid, sid, start)[0],  # noqa: B023
        )
        assert statuses.count(201) == 1, statuses  # exactly one of them has the time
        assert len(spans_in_blocks(stack, pid, start) - {held["holdId"]}) == 1


def test_explain_names_each_reason_from_the_same_engine(stack: LocalStack, clinic: tuple[str, str]) -> None:
    pid, sid = clinic
    owner = token(stack, "hold-owner", ["providers"])
    body = {
        "name": "Buffered",
        "durationMinutes": 30,
        "slotStepMinutes": 15,
        "bufferAfterMinutes": 15,
        "minNoticeMinutes": 120,
    }
    buffered = call(stack, "POST", f"/providers/{pid}/services", token=owner, body=body)[2]["serviceId"]
    day, closed = a_day(20), a_day(21)
    assert (
        call(stack, "PUT", f"/providers/{pid}/overrides/{closed.isoformat()}", token=owner, body={"intervals": []})[0]
        == 200
    )
    assert book(stack, "explained-1", pid, sid, at(day, 9))[0] == 201
    assert hold(stack, "explained-2", pid, sid, at(day, 10))[0] == 201
    assert book(stack, "explained-3", pid, buffered, at(day, 13))[0] == 201  # busy 13:00-13:45

    def reasons(service: str, start: datetime | str) -> list[str]:
        moment = start if isinstance(start, str) else start.isoformat()
        query = f"serviceId={service}&start={quote(moment)}"
        status, _, answer = call(
            stack, "GET", f"/providers/{pid}/slots/explain?{query}", token=token(stack, "why", ["customers"])
        )
        assert status == 200, answer
        assert answer["bookable"] == (answer["reasons"] == [])
        return list(answer["reasons"])

    now = datetime.fromisoformat(call(stack, "GET", "/_local/clock")[2]["now"])
    assert reasons(sid, at(day, 11)) == []
    assert reasons(sid, at(day, 7)) == ["OUTSIDE_HOURS"]
    assert reasons(sid, at(closed, 9)) == ["CLOSED_BY_OVERRIDE"]
    assert "TOO_SOON" in reasons(buffered, now + timedelta(minutes=30))
    assert reasons(sid, at(a_day(120), 9)) == ["TOO_FAR_AHEAD"]
    assert reasons(sid, at(day, 11, 10)) == ["NOT_ON_STEP"]
    assert reasons(sid, at(day, 9)) == ["BOOKED"]
    assert reasons(sid, at(day, 10)) == ["HELD"]
    assert reasons(buffered, at(day, 13, 30)) == ["BUFFER"]
    assert reasons(sid, at(day, 13, 30)) == ["BUFFER"]  # their appointment ends at 13:30, its buffer at 13:45


def test_a_holds_life_is_in_the_trail(stack: LocalStack, clinic: tuple[str, str]) -> None:
    pid, sid = clinic
    day = a_day(11)
    admin = token(stack, "hold-auditor", ["admins"])
    status, released = hold(stack, "trail-holder", pid, sid, at(day, 9))
    assert status == 201, released
    customer = token(stack, "trail-holder", ["customers"])
    assert call(stack, "DELETE", f"/holds/{released['holdId']}", token=customer)[0] == 204
    status, converted = hold(stack, "trail-holder", pid, sid, at(day, 10))
    assert status == 201, converted
    status, booking = book(stack, "trail-holder", pid, sid, at(day, 10), holdId=converted["holdId"])
    assert status == 201, booking

    def trail(hold_id: str) -> list[Any]:
        answer = call(stack, "GET", f"/audit/events?entityType=Hold&entityId={hold_id}", token=admin)[2]
        return list(answer["items"])

    events = eventually(lambda: len(trail(released["holdId"])) == 2 and trail(released["holdId"]))
    assert [(e["action"], e["actor"]) for e in events] == [
        ("HOLD_CREATED", "trail-holder"),
        ("HOLD_RELEASED", "trail-holder"),
    ]
    events = eventually(lambda: len(trail(converted["holdId"])) == 2 and trail(converted["holdId"]))
    assert [e["action"] for e in events] == ["HOLD_CREATED", "HOLD_CONVERTED"]
    assert events[1]["changes"]["bookingId"]["after"] == booking["bookingId"]
    # Ended, it is gone to everyone: not found, not releasable, not bookable again.
    assert call(stack, "GET", f"/holds/{converted['holdId']}", token=customer)[0] == 404
    assert call(stack, "DELETE", f"/holds/{released['holdId']}", token=customer)[0] == 404
