"""Booking limits through the local stack: per customer and service in the provider's local day and
ISO week, and per provider day, enforced in the booking's own transaction, so requests at once cannot
all find room; a cancel frees its count, a reschedule moves it, a hold is refused as its booking
would be, and explain names LIMIT_REACHED."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from local.stack import LocalStack
from tests.integration.conftest import call, token
from tests.integration.test_holds import at_once

ZONE = ZoneInfo("Europe/Berlin")
EVERY_DAY = {day: [{"start": "08:00", "end": "18:00"}] for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}


def limited_provider(stack: LocalStack, owner: str, service: dict[str, Any], **provider: Any) -> tuple[str, str]:
    who = token(stack, owner, ["providers"])
    body = {"name": f"Limited {owner}", "timeZone": ZONE.key, **provider}
    status, _, made = call(stack, "POST", "/providers", token=who, body=body)
    assert status == 201, made
    pid = made["providerId"]
    assert call(stack, "PUT", f"/providers/{pid}/schedule", token=who, body={"weekly": EVERY_DAY})[0] == 200
    body = {"name": "Visit", "durationMinutes": 30, "slotStepMinutes": 30, "minNoticeMinutes": 0, **service}
    status, _, created = call(stack, "POST", f"/providers/{pid}/services", token=who, body=body)
    assert status == 201, created
    return pid, created["serviceId"]


def a_monday(weeks: int) -> date:
    today = datetime.now(ZONE).date()
    return today + timedelta(days=7 * weeks - today.weekday())


def at(day: date, hour: int) -> str:
    return datetime(day.year, day.month, day.day, hour, tzinfo=ZONE).isoformat()


def book(stack: LocalStack, who: str, pid: str, sid: str, start: str) -> tuple[int, Any]:
    body = {"providerId": pid, "serviceId": sid, "start": start}
    status, _, answer = call(stack, "POST", "/bookings", token=token(stack, who, ["customers"]), body=body)
    return status, answer


def limit_reached(answer: tuple[int, Any]) -> bool:
    status, problem = answer
    return status == 422 and problem["code"] == "SLOT_UNAVAILABLE" and problem["reason"] == "LIMIT_REACHED"


def test_six_bookings_at_once_by_one_customer_under_a_daily_limit_of_one_give_one(stack: LocalStack) -> None:
    pid, sid = limited_provider(stack, "limit-owner-1", {"maxPerCustomerPerDay": 1})
    assert stack.lambdas is not None
    stack.lambdas.functions["BookingFunction"].provision(6)
    day = a_monday(2)
    who = token(stack, "limited-1", ["customers"])
    answers = at_once(
        *[
            lambda hour=hour: call(
                stack,
                "POST",
                "/bookings",
                token=who,
                body={"providerId": pid, "serviceId": sid, "start": at(day, hour)},
            )[0]
            for hour in range(9, 15)
        ]
    )
    assert sorted(answers) == [201, 422, 422, 422, 422, 422]
    assert limit_reached(book(stack, "limited-1", pid, sid, at(day, 16)))
    assert book(stack, "someone-else-1", pid, sid, at(day, 16))[0] == 201  # the limit is one customer's
    assert book(stack, "limited-1", pid, sid, at(day + timedelta(days=1), 9))[0] == 201  # and one day's
    # A cancel frees its count at once
    mine = call(stack, "GET", f"/bookings?providerId={pid}", token=who)[2]["items"]
    first = next(b for b in mine if datetime.fromisoformat(b["start"]).date() == day)
    assert call(stack, "POST", f"/bookings/{first['bookingId']}/cancel", token=who, body={})[0] == 200
    assert book(stack, "limited-1", pid, sid, at(day, 17))[0] == 201


def test_a_weekly_limit_counts_the_providers_iso_week_and_a_reschedule_moves_the_count(stack: LocalStack) -> None:
    pid, sid = limited_provider(stack, "limit-owner-2", {"maxPerCustomerPerWeek": 2})
    monday = a_monday(3)
    assert book(stack, "weekly", pid, sid, at(monday, 9))[0] == 201
    status, sunday = book(stack, "weekly", pid, sid, at(monday + timedelta(days=6), 9))
    assert status == 201, sunday
    assert limit_reached(book(stack, "weekly", pid, sid, at(monday + timedelta(days=3), 9)))
    assert book(stack, "weekly", pid, sid, at(monday + timedelta(days=7), 9))[0] == 201  # the next ISO week
    # Sunday's booking moves to the next week: this week has room again, the next is full
    who = token(stack, "weekly", ["customers"])
    moved = call(
        stack,
        "POST",
        f"/bookings/{sunday['bookingId']}/reschedule",
        token=who,
        body={"start": at(monday + timedelta(days=8), 9)},
    )
    assert moved[0] == 200, moved
    assert book(stack, "weekly", pid, sid, at(monday + timedelta(days=3), 9))[0] == 201
    assert limit_reached(book(stack, "weekly", pid, sid, at(monday + timedelta(days=9), 9)))
    # A reschedule into a full week is refused, and nothing moves
    status, _, problem = call(
        stack,
        "POST",
        f"/bookings/{sunday['bookingId']}/reschedule",
        token=who,
        body={"start": at(monday + timedelta(days=2), 10)},
    )
    assert limit_reached((status, problem))
    kept = call(stack, "GET", f"/bookings/{sunday['bookingId']}", token=who)[2]
    assert kept["start"] == moved[2]["start"] and kept["version"] == moved[2]["version"]


def test_a_providers_daily_limit_a_hold_under_it_and_explain(stack: LocalStack) -> None:
    pid, sid = limited_provider(stack, "limit-owner-3", {}, maxBookingsPerDay=2)
    owner = token(stack, "limit-owner-3", ["providers"])
    assert call(stack, "GET", f"/providers/{pid}", token=owner)[2]["maxBookingsPerDay"] == 2
    day = a_monday(4)
    assert book(stack, "first-customer", pid, sid, at(day, 9))[0] == 201
    status, _, held = call(
        stack,
        "POST",
        "/holds",
        token=token(stack, "holding-customer", ["customers"]),
        body={"providerId": pid, "serviceId": sid, "start": at(day, 10)},
    )
    assert status == 201, held  # the day has room for one more: a hold takes it when booked
    assert book(stack, "second-customer", pid, sid, at(day, 11))[0] == 201
    status, _, problem = call(
        stack,
        "POST",
        "/bookings",
        token=token(stack, "holding-customer", ["customers"]),
        body={"providerId": pid, "serviceId": sid, "start": at(day, 10), "holdId": held["holdId"]},
    )
    assert limit_reached((status, problem))  # counted when booked: the day filled meanwhile
    assert limit_reached(book(stack, "third-customer", pid, sid, at(day, 12)))
    status, _, problem = call(
        stack,
        "POST",
        "/holds",
        token=token(stack, "third-customer", ["customers"]),
        body={"providerId": pid, "serviceId": sid, "start": at(day, 12)},
    )
    assert limit_reached((status, problem))
    query = f"serviceId={sid}&start={quote(at(day, 12))}"
    status, _, explained = call(
        stack, "GET", f"/providers/{pid}/slots/explain?{query}", token=token(stack, "third-customer", ["customers"])
    )
    assert status == 200 and explained["bookable"] is False and explained["reasons"] == ["LIMIT_REACHED"]
    next_day = f"serviceId={sid}&start={quote(at(day + timedelta(days=1), 12))}"
    explained = call(stack, "GET", f"/providers/{pid}/slots/explain?{next_day}", token=owner)[2]
    assert explained == {**explained, "bookable": True, "reasons": []}


def test_explain_counts_the_limits_of_whoever_would_be_booked(stack: LocalStack) -> None:
    """An owner booking with no customerId books for themselves, so their own limit applies to them,
    as explain says; ops book for nobody, and see only the provider's."""
    pid, sid = limited_provider(stack, "limit-owner-5", {"maxPerCustomerPerDay": 1})
    owner = token(stack, "limit-owner-5", ["providers"])
    day = a_monday(5)
    body = {"providerId": pid, "serviceId": sid, "start": at(day, 9)}
    assert call(stack, "POST", "/bookings", token=owner, body=body)[0] == 201
    query = f"serviceId={sid}&start={quote(at(day, 10))}"
    explained = call(stack, "GET", f"/providers/{pid}/slots/explain?{query}", token=owner)[2]
    assert (explained["bookable"], explained["reasons"]) == (False, ["LIMIT_REACHED"])
    status, _, problem = call(stack, "POST", "/bookings", token=owner, body={**body, "start": at(day, 10)})
    assert limit_reached((status, problem))
    explained = call(stack, "GET", f"/providers/{pid}/slots/explain?{query}", token=token(stack, "ops-5", ["ops"]))[2]
    assert (explained["bookable"], explained["reasons"]) == (True, [])
