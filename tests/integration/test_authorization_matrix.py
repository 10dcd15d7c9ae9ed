"""Who may do what to a booking: every booking route by every kind of caller, own and other resource.

The lanes (issue 18): a customer reads and changes their own bookings (not once they have started);
the provider's owner and admins read and change any booking of that calendar, and mark no-shows; ops
read everything and change nothing; naming another customer takes an admin or the calendar's owner,
whatever other groups the caller has; only admins erase a customer's words. Anyone who may not see a
booking is told it does not exist.
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import count

import pytest

from local.stack import LocalStack
from tests.integration.conftest import call, token
from tests.integration.test_booking_api import WEEKDAYS, book, future_day, make_provider, slots

CALLERS: dict[str, list[str]] = {
    "the customer": ["customers"],
    "another customer": ["customers"],
    "the owner": ["providers"],
    "another provider": ["providers"],
    "a customer who also owns another provider": ["customers", "providers"],
    "an admin": ["admins"],
    "ops": ["ops"],
}
SUBS = {
    "the customer": "matrix-customer",
    "another customer": "matrix-stranger",
    "the owner": "matrix-owner",
    "another provider": "matrix-other-owner",
    "a customer who also owns another provider": "matrix-both",
    "an admin": "matrix-admin",
    "ops": "matrix-ops",
}
# Expected statuses, in CALLERS' order. A no-show of a booking still ahead is NOT_YET_PAST (422)
# for those who may mark one.
EXPECTED: dict[str, list[int]] = {
    "read": [200, 404, 200, 404, 404, 200, 200],
    "history": [200, 404, 200, 404, 404, 200, 200],
    "cancel": [200, 404, 200, 404, 404, 200, 403],
    "reschedule": [200, 404, 200, 404, 404, 200, 403],
    "no-show": [403, 404, 422, 404, 404, 422, 403],
    "book for oneself": [201, 201, 201, 403, 201, 201, 403],
    "book for someone else": [403, 403, 201, 403, 403, 201, 403],
    "erase the customer's words": [403, 403, 403, 403, 403, 202, 403],
}


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

    def run(action: str, caller: str) -> int:
        who = token(stack, SUBS[caller], CALLERS[caller])
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
    for caller in ("ops", "another customer", "another provider"):
        who = token(stack, SUBS[caller], CALLERS[caller])
        assert call(stack, "POST", f"{path}/cancel", token=who, body={})[0] in (403, 404)
        assert call(stack, "POST", f"{path}/reschedule", token=who, body={"start": free[-2]})[0] in (403, 404)
    status, _, after = call(stack, "GET", path, token=customer)
    assert (status, after["status"], after["version"], after["start"]) == (200, "CONFIRMED", 1, booking["start"])
