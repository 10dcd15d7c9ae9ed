"""Bookings that await approval, through the local stack: a pending booking holds its time (search,
bookings, explain); only the provider's owner or an admin approves or declines it; approve and
decline at once, one wins; undecided past `approvalTimeoutHours` on the stack's clock it is EXPIRED
with no request, its time free and its limit count given back when needed; a hold or a series of
such a service books pending. A stack of its own, since its clock only moves forward."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import quote

import pytest

from local.stack import LocalStack, StackConfig
from tests.integration.conftest import call, eventually, token
from tests.integration.test_holds import EVERY_DAY, at, at_once, offered

pytestmark = pytest.mark.slow

OWNER = "approving-owner"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    running = LocalStack(StackConfig(port=0, state_dir=tmp_path_factory.mktemp("approval"), echo=None, seed=False))
    running.start()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def clinic(stack: LocalStack) -> tuple[str, str]:
    owner = token(stack, OWNER, ["providers"])
    pid = call(stack, "POST", "/providers", token=owner, body={"name": "Approval Clinic", "timeZone": "UTC"})[2][
        "providerId"
    ]
    assert call(stack, "PUT", f"/providers/{pid}/schedule", token=owner, body={"weekly": EVERY_DAY})[0] == 200
    body = {
        "name": "Consultation",
        "durationMinutes": 30,
        "slotStepMinutes": 30,
        "minNoticeMinutes": 0,
        "requiresApproval": True,
        "approvalTimeoutHours": 2,
        "maxPerCustomerPerDay": 1,
    }
    status, _, service = call(stack, "POST", f"/providers/{pid}/services", token=owner, body=body)
    assert status == 201 and service["requiresApproval"] is True and service["approvalTimeoutHours"] == 2, service
    return pid, service["serviceId"]


def a_day(offset: int) -> date:
    return datetime.now(UTC).date() + timedelta(days=offset)


def book(stack: LocalStack, who: str, pid: str, sid: str, start: str, **extra: Any) -> tuple[int, Any]:
    body = {"providerId": pid, "serviceId": sid, "start": start, **extra}
    status, _, answer = call(stack, "POST", "/bookings", token=token(stack, who, ["customers"]), body=body)
    return status, answer


def decide(stack: LocalStack, who: str, groups: list[str], booking_id: str, verdict: str) -> tuple[int, Any]:
    body = {} if verdict == "approve" else {"reason": "fully booked that week"}
    status, _, answer = call(
        stack, "POST", f"/bookings/{booking_id}/{verdict}", token=token(stack, who, groups), body=body
    )
    return status, answer


def explain(stack: LocalStack, pid: str, sid: str, start: str) -> list[str]:
    query = f"serviceId={sid}&start={quote(start)}"
    status, _, body = call(
        stack, "GET", f"/providers/{pid}/slots/explain?{query}", token=token(stack, "why", ["customers"])
    )
    assert status == 200, body
    return list(body["reasons"])


def test_a_pending_booking_holds_its_time_until_its_owner_approves_it(
    stack: LocalStack, clinic: tuple[str, str]
) -> None:
    pid, sid = clinic
    day = a_day(3)
    start = at(day, 9)
    status, pending = book(stack, "patient-a", pid, sid, start)
    assert status == 201 and pending["status"] == "PENDING", pending
    now = datetime.fromisoformat(call(stack, "GET", "/_local/clock")[2]["now"])
    assert abs((datetime.fromisoformat(pending["approvalExpiresAt"]) - now).total_seconds() - 7200) < 5
    assert start not in offered(stack, pid, sid, day)
    assert book(stack, "patient-b", pid, sid, start)[0] == 409
    assert explain(stack, pid, sid, start) == ["HELD"]
    booking_id = pending["bookingId"]
    # Only the provider's owner or an admin decides: not the customer, not ops, not another provider.
    assert decide(stack, "patient-a", ["customers"], booking_id, "approve")[0] == 403
    assert decide(stack, "ops-x", ["ops"], booking_id, "approve")[0] == 403
    assert decide(stack, "other-owner", ["providers"], booking_id, "approve")[0] == 404
    status, approved = decide(stack, OWNER, ["providers"], booking_id, "approve")
    assert status == 200 and approved["status"] == "CONFIRMED" and approved["version"] == 2, approved
    assert "approvalExpiresAt" not in approved
    assert start not in offered(stack, pid, sid, day)
    assert explain(stack, pid, sid, start) == ["BOOKED"]
    assert decide(stack, OWNER, ["providers"], booking_id, "decline")[0] == 409  # decided already

    def history() -> list[str]:
        answer = call(stack, "GET", f"/bookings/{booking_id}/history", token=token(stack, "auditor", ["admins"]))[2]
        return [event["action"] for event in answer["items"]]

    assert eventually(lambda: history() == ["BOOKING_CREATED", "BOOKING_APPROVED"])


def test_a_declined_booking_frees_its_time_at_once(stack: LocalStack, clinic: tuple[str, str]) -> None:
    pid, sid = clinic
    day = a_day(4)
    start = at(day, 10)
    status, pending = book(stack, "patient-c", pid, sid, start)
    assert status == 201, pending
    status, declined = decide(stack, "approving-admin", ["admins"], pending["bookingId"], "decline")
    assert status == 200 and declined["status"] == "DECLINED", declined
    assert declined["declineReason"] == "fully booked that week"
    assert start in offered(stack, pid, sid, day)
    assert book(stack, "patient-d", pid, sid, start)[0] == 201


def test_approve_and_decline_at_once_one_wins(stack: LocalStack, clinic: tuple[str, str]) -> None:
    pid, sid = clinic
    day = a_day(5)
    for hour in range(8, 14):
        status, pending = book(stack, f"racer-{hour}", pid, sid, at(day, hour))
        assert status == 201, pending
        answers = at_once(
            lambda: decide(stack, OWNER, ["providers"], pending["bookingId"], "approve")[0],  # noqa: B023 - run before the loop moves on
            lambda: decide(stack, "approving-admin", ["admins"], pending["bookingId"], "decline")[0],  # noqa: B023
        )
        assert sorted(answers) == [200, 409], answers
        final = call(stack, "GET", f"/bookings/{pending['bookingId']}", token=token(stack, OWNER, ["providers"]))[2]
        assert final["status"] == ("CONFIRMED" if answers[0] == 200 else "DECLINED")
        assert (at(day, hour) in offered(stack, pid, sid, day)) == (final["status"] == "DECLINED")


def test_six_at_once_for_a_pending_slot_give_one_201(stack: LocalStack, clinic: tuple[str, str]) -> None:
    pid, sid = clinic
    start = at(a_day(6), 15)
    statuses = at_once(*[lambda n=n: book(stack, f"crowd-{n}", pid, sid, start)[0] for n in range(6)])
    assert sorted(statuses) == [201, 409, 409, 409, 409, 409], statuses


def test_undecided_past_its_timeout_it_is_expired_and_its_time_and_count_are_free(
    stack: LocalStack, clinic: tuple[str, str]
) -> None:
    pid, sid = clinic
    day = a_day(8)
    start = at(day, 11)
    status, pending = book(stack, "patient-e", pid, sid, start)
    assert status == 201, pending
    booking_id = pending["bookingId"]
    # The customer's limit of one a day is used by the pending booking.
    status, problem = book(stack, "patient-e", pid, sid, at(day, 13))
    assert (status, problem["reason"]) == (422, "LIMIT_REACHED"), problem
    owner = token(stack, OWNER, ["providers"])
    assert [
        b["bookingId"]
        for b in call(stack, "GET", f"/bookings?providerId={pid}&status=PENDING", token=owner)[2]["items"]
    ].count(booking_id) == 1

    assert call(stack, "POST", "/_local/clock", body={"advanceSeconds": 2 * 3600 + 1})[0] == 200
    owner = token(stack, OWNER, ["providers"])  # one valid at the new time

    mine = call(stack, "GET", f"/bookings/{booking_id}", token=token(stack, "patient-e", ["customers"]))[2]
    assert mine["status"] == "EXPIRED" and "approvalExpiresAt" not in mine
    assert start in offered(stack, pid, sid, day)
    that_day = f"providerId={pid}&from={quote(at(day, 0))}&to={quote(at(day, 23))}"
    expired = call(stack, "GET", f"/bookings?{that_day}&status=EXPIRED", token=owner)[2]["items"]
    assert [(b["bookingId"], b["status"]) for b in expired] == [(booking_id, "EXPIRED")]
    assert call(stack, "GET", f"/bookings?{that_day}&status=PENDING", token=owner)[2]["items"] == []
    # Its count comes back when the customer books again that day (the expiry is written then).
    status, again = book(stack, "patient-e", pid, sid, at(day, 13))
    assert status == 201 and again["status"] == "PENDING", again
    assert decide(stack, OWNER, ["providers"], booking_id, "approve")[0] == 409

    def history() -> list[str]:
        answer = call(stack, "GET", f"/bookings/{booking_id}/history", token=token(stack, "auditor", ["admins"]))[2]
        return [event["action"] for event in answer["items"]]

    assert eventually(lambda: history() == ["BOOKING_CREATED", "BOOKING_EXPIRED"])


def test_a_hold_and_a_series_of_an_approval_service_book_pending(stack: LocalStack, clinic: tuple[str, str]) -> None:
    pid, sid = clinic
    start = at(a_day(10), 16)
    who = token(stack, "holder-f", ["customers"])
    status, _, held = call(
        stack, "POST", "/holds", token=who, body={"providerId": pid, "serviceId": sid, "start": start}
    )
    assert status == 201, held
    status, booked = book(stack, "holder-f", pid, sid, start, holdId=held["holdId"])
    assert status == 201 and booked["status"] == "PENDING" and "approvalExpiresAt" in booked, booked
    recurrence = {"frequency": "WEEKLY", "count": 3}
    status, series = book(stack, "series-g", pid, sid, at(a_day(11), 17), recurrence=recurrence)
    assert status == 201, series
    assert [item["status"] for item in series["items"]] == ["PENDING"] * 3
    third = series["items"][2]
    assert decide(stack, OWNER, ["providers"], third["bookingId"], "approve")[1]["status"] == "CONFIRMED"


def test_a_booked_over_lapse_gives_its_count_back_and_a_moved_approval_stays_confirmed(
    stack: LocalStack, clinic: tuple[str, str]
) -> None:
    """Last in this module: it moves the clock on past every deadline so far."""
    pid, sid = clinic
    day = a_day(14)
    status, lapsing = book(stack, "patient-h", pid, sid, at(day, 9))
    assert status == 201, lapsing
    status, approved = book(stack, "patient-i", pid, sid, at(day, 10))
    assert status == 201, approved
    assert decide(stack, OWNER, ["providers"], approved["bookingId"], "approve")[0] == 200
    status, _, moved = call(
        stack,
        "POST",
        f"/bookings/{approved['bookingId']}/reschedule",
        token=token(stack, "patient-i", ["customers"]),
        body={"start": at(day, 15)},
    )
    assert status == 200 and moved["status"] == "CONFIRMED" and "approvalExpiresAt" not in moved, moved

    assert call(stack, "POST", "/_local/clock", body={"advanceSeconds": 2 * 3600 + 1})[0] == 200

    # The moved booking keeps its new time past any deadline: it was confirmed, not pending again.
    assert book(stack, "patient-j", pid, sid, at(day, 15))[0] == 409
    assert explain(stack, pid, sid, at(day, 15)) == ["BOOKED"]
    # The lapsed one's time is booked by someone else (its span goes with that booking) ...
    assert book(stack, "patient-k", pid, sid, at(day, 9))[0] == 201
    # ... and its customer's count for the day (a limit of one) is given back all the same.
    query = f"serviceId={sid}&start={quote(at(day, 13))}"
    status, _, why = call(
        stack, "GET", f"/providers/{pid}/slots/explain?{query}", token=token(stack, "patient-h", ["customers"])
    )
    assert (status, why["bookable"], why["reasons"]) == (200, True, []), why
    status, again = book(stack, "patient-h", pid, sid, at(day, 13))
    assert status == 201, again
    lapsed = call(stack, "GET", f"/bookings/{lapsing['bookingId']}", token=token(stack, "patient-h", ["customers"]))[2]
    assert lapsed["status"] == "EXPIRED"

    def history() -> list[tuple[str, str]]:
        answer = call(
            stack, "GET", f"/bookings/{lapsing['bookingId']}/history", token=token(stack, "auditor", ["admins"])
        )[2]
        return [(event["action"], event["actor"]) for event in answer["items"]]

    # Nobody decided: the deadline did, whichever request wrote it down.
    assert eventually(lambda: history()[-1:] == [("BOOKING_EXPIRED", "system:approval-timeout")])


def test_a_series_reads_lapsed_occurrences_as_expired_and_is_not_refused_for_their_counts(
    stack: LocalStack, clinic: tuple[str, str]
) -> None:
    """After the test above: it moves the clock on again."""
    pid, sid = clinic
    status, series = book(
        stack, "patient-m", pid, sid, at(a_day(16), 9), recurrence={"frequency": "WEEKLY", "count": 2}
    )
    assert status == 201, series
    day = a_day(17)
    status, lapsing = book(stack, "patient-l", pid, sid, at(day, 9))
    assert status == 201, lapsing

    assert call(stack, "POST", "/_local/clock", body={"advanceSeconds": 2 * 3600 + 1})[0] == 200

    read = call(stack, "GET", f"/series/{series['seriesId']}", token=token(stack, "patient-m", ["customers"]))[2]
    assert [item["status"] for item in read["items"]] == ["EXPIRED", "EXPIRED"]
    # The lapsed booking still counts for patient-l's day until written down: the series gets it back.
    status, booked = book(stack, "patient-l", pid, sid, at(day, 13), recurrence={"frequency": "WEEKLY", "count": 2})
    assert status == 201, booked
