"""Who may do what to a booking: every booking route by every kind of caller, own and other resource.

The lanes (issue 18): a customer reads and changes their own bookings (not once they have started);
the provider's owner and admins read and change any booking of that calendar, and mark no-shows; ops
read everything and change nothing; naming another customer takes an admin or the calendar's owner,
whatever other groups the caller has; only admins erase a customer's words. Anyone who may not see a
booking is told it does not exist. Admins and ops count only from the staff user pool, which requires
MFA (decision 0018): the same group names in a customer-pool token grant nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from itertools import count
from typing import Any
from urllib.parse import quote

import pytest

from local.stack import LocalStack
from tests.integration.conftest import call, token
from tests.integration.test_booking_api import WEEKDAYS, book, future_day, make_provider, slots

WEEKLY_TWICE = {"frequency": "WEEKLY", "count": 2}  # the second a week past the times the matrix uses
CALLERS: dict[str, list[str]] = {
    "the customer": ["customers"],
    "another customer": ["customers"],
    "the owner": ["providers"],
    "another provider": ["providers"],
    "a customer who also owns another provider": ["customers", "providers"],
    "an admin": ["admins"],
    "ops": ["ops"],
    "a customer in an admins group of the customer pool": ["customers", "admins"],
    "ops of the customer pool": ["ops"],
}
# Callers whose token is not from the pool that holds their groups (the staff pool for admins and ops)
# but from the customer pool, as a group of that name made there would make it.
CUSTOMER_POOL_TOKEN = {"a customer in an admins group of the customer pool", "ops of the customer pool"}
SUBS = {
    "the customer": "matrix-customer",
    "another customer": "matrix-stranger",
    "the owner": "matrix-owner",
    "another provider": "matrix-other-owner",
    "a customer who also owns another provider": "matrix-both",
    "an admin": "matrix-admin",
    "ops": "matrix-ops",
    "a customer in an admins group of the customer pool": "matrix-fake-admin",
    "ops of the customer pool": "matrix-fake-ops",
}
# Expected statuses, in CALLERS' order. A no-show of a booking still ahead is NOT_YET_PAST (422)
# for those who may mark one.
EXPECTED: dict[str, list[int]] = {
    "read": [200, 404, 200, 404, 404, 200, 200, 404, 403],
    "history": [200, 404, 200, 404, 404, 200, 200, 404, 403],
    "cancel": [200, 404, 200, 404, 404, 200, 403, 404, 403],
    "reschedule": [200, 404, 200, 404, 404, 200, 403, 404, 403],
    "no-show": [403, 404, 422, 404, 404, 422, 403, 404, 403],
    "book for oneself": [201, 201, 201, 403, 201, 201, 403, 201, 403],
    "book for someone else": [403, 403, 201, 403, 403, 201, 403, 403, 403],
    "erase the customer's words": [403, 403, 403, 403, 403, 202, 403, 403, 403],
    # Holds (issue 20): the customer's hold, as the customer's booking.
    "hold for oneself": [201, 201, 201, 403, 201, 201, 403, 201, 403],
    "hold for someone else": [403, 403, 201, 403, 403, 201, 403, 403, 403],
    "read the hold": [200, 404, 200, 404, 404, 200, 200, 404, 403],
    "release the hold": [204, 404, 204, 404, 404, 204, 403, 404, 403],
    # Booking a hold's time for oneself: only its customer's time is theirs (422 HOLD_UNAVAILABLE for
    # the rest who may book: another's hold is not found, the owner's and an admin's own is another customer).
    "book the hold": [201, 422, 422, 403, 422, 422, 403, 422, 403],
    "book the hold for its customer": [201, 403, 201, 403, 403, 201, 403, 403, 403],
    # Explain, as the slot search: anyone signed in with a group.
    "explain a slot": [200, 200, 200, 200, 200, 200, 200, 200, 403],
    # Recurring series (issue 20): booked, read and cancelled as their occurrences are.
    "book a series for oneself": [201, 201, 201, 403, 201, 201, 403, 201, 403],
    "book a series for someone else": [403, 403, 201, 403, 403, 201, 403, 403, 403],
    "read the series": [200, 404, 200, 404, 404, 200, 200, 404, 403],
    "cancel the series": [200, 404, 200, 404, 404, 200, 403, 404, 403],
    # Approval (issue 20): only the provider's owner and admins decide; the customer sees, and may not.
    "approve a pending booking": [403, 404, 200, 404, 404, 200, 403, 404, 403],
    "decline a pending booking": [403, 404, 200, 404, 404, 200, 403, 404, 403],
    # Waitlist (issue 20): joined as a booking is made; read and left as the customer's hold.
    "join the waitlist for oneself": [201, 201, 201, 403, 201, 201, 403, 201, 403],
    "join the waitlist for someone else": [403, 403, 201, 403, 403, 201, 403, 403, 403],
    "read the waitlist entry": [200, 404, 200, 404, 404, 200, 200, 404, 403],
    "leave the waitlist": [204, 404, 204, 404, 404, 204, 403, 404, 403],
}


def caller_token(stack: LocalStack, caller: str) -> str:
    pool = "customers" if caller in CUSTOMER_POOL_TOKEN else None
    return token(stack, SUBS[caller], CALLERS[caller], pool)


@pytest.fixture(scope="module")
def calendar(stack: LocalStack) -> tuple[str, str, list[str]]:
    weekly = {day: [{"start": "08:00", "end": "20:00"}] for day in WEEKDAYS}
    pid, (sid,) = make_provider(stack, SUBS["the owner"], "Matrix", weekly, [{"name": "Cut", "durationMinutes": 15}])
    both = SUBS["a customer who also owns another provider"]
    make_provider(stack, both, "Theirs", weekly, [{"name": "X", "durationMinutes": 15}])
    return pid, sid, [s["start"] for s in slots(stack, pid, sid, future_day(2), days=5)]


def test_every_booking_route_answers_each_caller_by_its_lane(
    stack: LocalStack, calendar: tuple[str, str, list[str]]
) -> None:
    pid, sid, free = calendar
    times = iter(free)
    serial = count()
    customer = token(stack, SUBS["the customer"], CALLERS["the customer"])

    def new_booking() -> str:
        status, _, booking = book(stack, customer, pid, sid, next(times))
        assert status == 201, booking
        return str(booking["bookingId"])

    def new_hold() -> str:
        status, _, held = call(
            stack, "POST", "/holds", token=customer, body={"providerId": pid, "serviceId": sid, "start": next(times)}
        )
        assert status == 201, held
        holds.append(str(held["holdId"]))
        return holds[-1]

    def book_hold(who: str, **extra: str) -> int:
        held = new_hold()
        status, _, answer = call(stack, "GET", f"/holds/{held}", token=customer)
        assert status == 200, answer
        return book(stack, who, pid, sid, answer["start"], holdId=held, **extra)[0]

    def series(who: str, **extra: str) -> tuple[int, dict[str, str], Any]:
        body = {"providerId": pid, "serviceId": sid, "start": next(times), "recurrence": WEEKLY_TWICE, **extra}
        return call(stack, "POST", "/bookings", token=who, body=body)

    approval = call(
        stack,
        "POST",
        f"/providers/{pid}/services",
        token=token(stack, SUBS["the owner"], ["providers"]),
        body={"name": "Consult", "durationMinutes": 15, "minNoticeMinutes": 0, "requiresApproval": True},
    )[2]["serviceId"]

    def new_pending() -> str:
        status, _, booking = book(stack, customer, pid, approval, next(times))
        assert status == 201 and booking["status"] == "PENDING", booking
        return str(booking["bookingId"])

    def new_series() -> str:
        status, _, booked = series(customer)
        assert status == 201, booked
        return str(booked["seriesId"])

    # A window on a Saturday, when the calendar is closed: its entries wait, and are never offered the
    # times the other rows book.
    saturday = future_day(3) + timedelta(days=5)
    window = {"providerId": pid, "serviceId": sid, "from": f"{saturday}T10:00:00Z", "to": f"{saturday}T11:00:00Z"}

    def join(who: str, **extra: str) -> tuple[int, dict[str, str], Any]:
        return call(stack, "POST", "/waitlist", token=who, body={**window, **extra})

    def new_entry() -> str:
        status, _, entry = join(customer)
        assert status == 201, entry
        entries.append(str(entry["waitlistId"]))
        return entries[-1]

    holds: list[str] = []
    entries: list[str] = []

    def run(action: str, caller: str) -> int:
        who = caller_token(stack, caller)
        for held in holds:  # the customer keeps at most 3 live holds: what the last action left goes
            call(stack, "DELETE", f"/holds/{held}", token=customer)
        holds.clear()
        for entry in entries:  # and at most 10 waitlist entries
            call(stack, "DELETE", f"/waitlist/{entry}", token=customer)
        entries.clear()
        routes: dict[str, Callable[[], int]] = {
            "read": lambda: call(stack, "GET", f"/bookings/{new_booking()}", token=who)[0],
            "history": lambda: call(stack, "GET", f"/bookings/{new_booking()}/history", token=who)[0],
            "cancel": lambda: call(stack, "POST", f"/bookings/{new_booking()}/cancel", token=who, body={})[0],
            "reschedule": lambda: call(
                stack, "POST", f"/bookings/{new_booking()}/reschedule", token=who, body={"start": next(times)}
            )[0],
            "no-show": lambda: call(stack, "POST", f"/bookings/{new_booking()}/no-show", token=who)[0],
            "book for oneself": lambda: book(stack, who, pid, sid, next(times))[0],
            "book for someone else": lambda: book(
                stack, who, pid, sid, next(times), customerId=f"someone-{next(serial)}"
            )[0],
            "erase the customer's words": lambda: call(
                stack, "DELETE", f"/customers/{SUBS['the customer']}/personal-data", token=who
            )[0],
            "hold for oneself": lambda: call(
                stack, "POST", "/holds", token=who, body={"providerId": pid, "serviceId": sid, "start": next(times)}
            )[0],
            "hold for someone else": lambda: call(
                stack,
                "POST",
                "/holds",
                token=who,
                body={
                    "providerId": pid,
                    "serviceId": sid,
                    "start": next(times),
                    "customerId": f"someone-{next(serial)}",
                },
            )[0],
            "read the hold": lambda: call(stack, "GET", f"/holds/{new_hold()}", token=who)[0],
            "release the hold": lambda: call(stack, "DELETE", f"/holds/{new_hold()}", token=who)[0],
            "book the hold": lambda: book_hold(who),
            "explain a slot": lambda: call(
                stack, "GET", f"/providers/{pid}/slots/explain?serviceId={sid}&start={quote(next(times))}", token=who
            )[0],
            "book the hold for its customer": lambda: book_hold(who, customerId=SUBS["the customer"]),
            "book a series for oneself": lambda: series(who)[0],
            "book a series for someone else": lambda: series(who, customerId=f"someone-{next(serial)}")[0],
            "read the series": lambda: call(stack, "GET", f"/series/{new_series()}", token=who)[0],
            "cancel the series": lambda: call(stack, "POST", f"/series/{new_series()}/cancel", token=who, body={})[0],
            "approve a pending booking": lambda: call(
                stack, "POST", f"/bookings/{new_pending()}/approve", token=who, body={}
            )[0],
            "decline a pending booking": lambda: call(
                stack, "POST", f"/bookings/{new_pending()}/decline", token=who, body={}
            )[0],
            "join the waitlist for oneself": lambda: join(who)[0],
            "join the waitlist for someone else": lambda: join(who, customerId=f"someone-{next(serial)}")[0],
            "read the waitlist entry": lambda: call(stack, "GET", f"/waitlist/{new_entry()}", token=who)[0],
            "leave the waitlist": lambda: call(stack, "DELETE", f"/waitlist/{new_entry()}", token=who)[0],
        }
        return routes[action]()

    found = {action: [run(action, caller) for caller in CALLERS] for action in EXPECTED}
    assert found == EXPECTED


def test_what_ops_and_strangers_were_refused_changed_nothing(
    stack: LocalStack, calendar: tuple[str, str, list[str]]
) -> None:
    pid, sid, free = calendar
    customer = token(stack, SUBS["the customer"], CALLERS["the customer"])
    status, _, booking = book(stack, customer, pid, sid, free[-1])
    assert status == 201, booking
    path = f"/bookings/{booking['bookingId']}"
    for caller in ("ops", "another customer", "another provider", *sorted(CUSTOMER_POOL_TOKEN)):
        who = caller_token(stack, caller)
        assert call(stack, "POST", f"{path}/cancel", token=who, body={})[0] in (403, 404)
        assert call(stack, "POST", f"{path}/reschedule", token=who, body={"start": free[-2]})[0] in (403, 404)
    status, _, after = call(stack, "GET", path, token=customer)
    assert (status, after["status"], after["version"], after["start"]) == (200, "CONFIRMED", 1, booking["start"])


def test_admins_and_ops_of_the_customer_pool_get_none_of_the_staffs_routes(
    stack: LocalStack, calendar: tuple[str, str, list[str]]
) -> None:
    """A group named admins or ops made in the customer pool (where MFA is optional) must not open what
    the staff pool's do: the services honour those groups only from the staff pool's issuer."""
    pid = calendar[0]
    trail = f"/audit/events?entityType=Provider&entityId={pid}"
    for_someone = {"name": "Not theirs", "timeZone": "UTC", "ownerSub": "matrix-victim"}
    fake_admin = token(stack, "matrix-fake-root", ["providers", "admins"], "customers")
    fake_ops = token(stack, "matrix-fake-oncall", ["ops"], "customers")
    admin = token(stack, "matrix-root", ["admins"])
    # Given the same requests by the staff pool's admin (the control) and by the customer pool's
    assert call(stack, "GET", trail, token=admin)[0] == 200
    assert "ownerSub" in call(stack, "GET", f"/providers/{pid}", token=admin)[2]
    assert call(stack, "POST", "/providers", token=admin, body=for_someone)[0] == 201
    # Then the customer pool's "admin" is a provider and nothing more, and its "ops" nobody
    assert call(stack, "GET", trail, token=fake_admin)[0] == 403
    assert call(stack, "GET", trail, token=fake_ops)[0] == 403
    assert "ownerSub" not in call(stack, "GET", f"/providers/{pid}", token=fake_admin)[2]
    status, _, problem = call(stack, "POST", "/providers", token=fake_admin, body=for_someone)
    assert (status, problem["code"]) == (403, "FORBIDDEN")
    status, _, problem = call(stack, "GET", "/me", token=fake_ops)
    assert (status, problem["code"]) == (403, "FORBIDDEN") and "staff user pool" in problem["detail"]
    assert call(stack, "GET", "/me", token=fake_admin)[2]["groups"] == ["providers"]
