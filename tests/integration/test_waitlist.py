"""The waitlist through the local stack: a cancel offers the freed time to the oldest waiting entry
whose window fits, within 10 s, as a hold for its customer (and the trail records the offer, the
change the `waitlist.offered` event is made of); an unclaimed offer lapses on the stack's clock and passes to
the next in line with no request; an entry whose window does not hold the freed time, or has passed,
is offered nothing; leaving releases an offer, which passes on; the caps and the window's checks.
A stack of its own, since its clock only moves forward."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from local.stack import LocalStack, StackConfig, aws_client
from services.common import keys
from tests.integration.conftest import call, eventually, token
from tests.integration.test_holds import EVERY_DAY, at, offered

pytestmark = pytest.mark.slow

OWNER = "waitlist-owner"
OFFER_WITHIN_SECONDS = 10  # the brief's promise on the local stack


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    running = LocalStack(StackConfig(port=0, state_dir=tmp_path_factory.mktemp("waitlist"), echo=None, seed=False))
    running.start()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def clinic(stack: LocalStack) -> tuple[str, str]:
    owner = token(stack, OWNER, ["providers"])
    pid = call(stack, "POST", "/providers", token=owner, body={"name": "Waitlist Clinic", "timeZone": "UTC"})[2][
        "providerId"
    ]
    assert call(stack, "PUT", f"/providers/{pid}/schedule", token=owner, body={"weekly": EVERY_DAY})[0] == 200
    body = {"name": "Visit", "durationMinutes": 30, "slotStepMinutes": 30, "minNoticeMinutes": 0, "holdMinutes": 5}
    status, _, service = call(stack, "POST", f"/providers/{pid}/services", token=owner, body=body)
    assert status == 201, service
    return pid, service["serviceId"]


def a_day(stack: LocalStack, offset: int) -> date:
    return datetime.fromtimestamp(stack.clock.now(), UTC).date() + timedelta(days=offset)


def book(stack: LocalStack, who: str, pid: str, sid: str, start: str, **extra: Any) -> dict[str, Any]:
    body = {"providerId": pid, "serviceId": sid, "start": start, **extra}
    status, _, answer = call(stack, "POST", "/bookings", token=token(stack, who, ["customers"]), body=body)
    assert status == 201, answer
    return dict(answer)


def fill(stack: LocalStack, pid: str, sid: str, day: date, hours: tuple[int, int]) -> dict[str, str]:
    """Book every slot from `hours[0]` to `hours[1]` o'clock on `day`; answers start → booking id."""
    booked = {}
    for minute in range(hours[0] * 60, hours[1] * 60, 30):
        start = at(day, minute // 60, minute % 60)
        booked[start] = book(stack, f"filler-{minute}", pid, sid, start)["bookingId"]
    return booked


def join(stack: LocalStack, who: str, pid: str, sid: str, start: str, end: str) -> dict[str, Any]:
    body = {"providerId": pid, "serviceId": sid, "from": start, "to": end}
    status, headers, entry = call(stack, "POST", "/waitlist", token=token(stack, who, ["customers"]), body=body)
    assert status == 201 and entry["status"] == "WAITING", entry
    assert headers["Location"] == f"/waitlist/{entry['waitlistId']}"
    return dict(entry)


def entry_of(stack: LocalStack, who: str, waitlist_id: str) -> dict[str, Any]:
    status, _, entry = call(stack, "GET", f"/waitlist/{waitlist_id}", token=token(stack, who, ["customers"]))
    assert status == 200, entry
    return dict(entry)


def cancel(stack: LocalStack, who: str, booking_id: str) -> None:
    status, _, body = call(
        stack, "POST", f"/bookings/{booking_id}/cancel", token=token(stack, who, ["customers"]), body={}
    )
    assert status == 200, body


def hold_of(stack: LocalStack, who: str, hold_id: str) -> tuple[int, Any]:
    status, _, body = call(stack, "GET", f"/holds/{hold_id}", token=token(stack, who, ["customers"]))
    return status, body


def test_a_cancel_offers_the_freed_time_to_the_oldest_entry_whose_window_fits(
    stack: LocalStack, clinic: tuple[str, str]
) -> None:
    pid, sid = clinic
    day = a_day(stack, 3)
    booked = fill(stack, pid, sid, day, (9, 12)) | fill(stack, pid, sid, day, (14, 15))
    # In line, oldest first: one for the afternoon (whose window the cancel does not touch), then two
    # whose windows hold 10:00; the older of those two is offered, the other waits on.
    afternoon = join(stack, "early-bird", pid, sid, at(day, 14), at(day, 15))
    morning = join(stack, "second", pid, sid, at(day, 9, 30), at(day, 11))
    narrow = join(stack, "third", pid, sid, at(day, 10), at(day, 10, 30))
    assert afternoon["createdAt"] < morning["createdAt"] < narrow["createdAt"]

    # The offer comes through the cancel's domain event (the bus's rule), not only from a sweep that
    # happens to fire meanwhile.
    assert stack.scheduler is not None and stack.event_rules is not None
    fired, delivered = dict(stack.scheduler.fired), stack.event_rules.delivered
    cancelled_at = time.monotonic()
    cancel(stack, "filler-600", booked[at(day, 10)])
    offer = eventually(
        lambda: (e := entry_of(stack, "second", morning["waitlistId"]))["status"] == "OFFERED" and e,
        OFFER_WITHIN_SECONDS,
    )
    assert offer, entry_of(stack, "second", morning["waitlistId"])
    assert time.monotonic() - cancelled_at <= OFFER_WITHIN_SECONDS
    rules = stack.event_rules
    assert eventually(lambda: rules.delivered > delivered)  # the cancel reached the waitlist function
    if stack.scheduler.fired == fired:
        print("offered on the cancel's event alone: no sweep fired meanwhile")
    status, hold = hold_of(stack, "second", offer["holdId"])
    assert status == 200 and hold["start"] == at(day, 10), hold
    assert hold["customerId"] == "second" and hold["waitlistId"] == morning["waitlistId"]
    assert offer["offerExpiresAt"] == hold["expiresAt"]
    # The offered time is held: nobody else sees or books it; the other entries wait on.
    assert at(day, 10) not in offered(stack, pid, sid, day)
    assert entry_of(stack, "third", narrow["waitlistId"])["status"] == "WAITING"
    assert entry_of(stack, "early-bird", afternoon["waitlistId"])["status"] == "WAITING"

    # Its customer books it: the entry is BOOKED, and out of line.
    booking = book(stack, "second", pid, sid, hold["start"], holdId=offer["holdId"])
    booked_entry = entry_of(stack, "second", morning["waitlistId"])
    assert booked_entry["status"] == "BOOKED" and booked_entry["bookingId"] == booking["bookingId"]
    # The trail has the offer: the change a `waitlist.offered` event is made of.
    admin = token(stack, "waitlist-admin", ["admins"])

    def trail() -> list[str]:
        query = f"entityType=WaitlistEntry&entityId={morning['waitlistId']}"
        return [event["action"] for event in call(stack, "GET", f"/audit/events?{query}", token=admin)[2]["items"]]

    expected = ["WAITLIST_JOINED", "WAITLIST_OFFERED", "WAITLIST_BOOKED"]
    assert eventually(lambda: trail() == expected), trail()


def test_an_unclaimed_offer_lapses_and_passes_to_the_next_in_line(stack: LocalStack, clinic: tuple[str, str]) -> None:
    pid, sid = clinic
    day = a_day(stack, 4)
    booked = fill(stack, pid, sid, day, (11, 12))
    first = join(stack, "first-in-line", pid, sid, at(day, 11), at(day, 11, 30))
    second = join(stack, "next-in-line", pid, sid, at(day, 11), at(day, 11, 30))
    cancel(stack, "filler-660", booked[at(day, 11)])
    offer = eventually(
        lambda: (e := entry_of(stack, "first-in-line", first["waitlistId"]))["status"] == "OFFERED" and e
    )
    assert offer and entry_of(stack, "next-in-line", second["waitlistId"])["status"] == "WAITING"

    # Past the offer's expiry on the stack's clock: EXPIRED at once to readers; the minute's sweep
    # then writes it and offers the time to the next in line, with no request.
    assert call(stack, "POST", "/_local/clock", body={"advanceSeconds": 5 * 60 + 1})[0] == 200
    assert entry_of(stack, "first-in-line", first["waitlistId"])["status"] == "EXPIRED"
    passed = eventually(
        lambda: (e := entry_of(stack, "next-in-line", second["waitlistId"]))["status"] == "OFFERED" and e,
        OFFER_WITHIN_SECONDS,
    )
    assert passed, entry_of(stack, "next-in-line", second["waitlistId"])
    assert hold_of(stack, "first-in-line", offer["holdId"])[0] == 404
    status, hold = hold_of(stack, "next-in-line", passed["holdId"])
    assert status == 200 and hold["start"] == at(day, 11) and hold["customerId"] == "next-in-line", hold


def test_no_offer_to_an_entry_whose_window_does_not_hold_the_freed_time(
    stack: LocalStack, clinic: tuple[str, str]
) -> None:
    pid, sid = clinic
    day = a_day(stack, 5)
    booked = fill(stack, pid, sid, day, (8, 10)) | fill(stack, pid, sid, day, (15, 16))
    # Oldest: a window (15:00 to 16:00, all booked) the freed 09:00 does not fit in; then one whose
    # window holds it. The younger is offered; the older waits on, offered nothing.
    misfit = join(stack, "misfit", pid, sid, at(day, 15), at(day, 16))
    fitting = join(stack, "fitting", pid, sid, at(day, 8, 30), at(day, 9, 30))
    cancel(stack, "filler-540", booked[at(day, 9)])
    assert eventually(lambda: entry_of(stack, "fitting", fitting["waitlistId"])["status"] == "OFFERED")
    assert entry_of(stack, "misfit", misfit["waitlistId"])["status"] == "WAITING"
    assert "holdId" not in entry_of(stack, "misfit", misfit["waitlistId"])


def test_a_passed_window_expires_its_entry_unoffered(stack: LocalStack, clinic: tuple[str, str]) -> None:
    pid, sid = clinic
    now = datetime.fromtimestamp(stack.clock.now(), UTC)
    day = now.date() + timedelta(days=1)
    fill(stack, pid, sid, day, (8, 9))
    entry = join(stack, "late", pid, sid, at(day, 8), at(day, 8, 30))
    until_passed = (datetime.fromisoformat(at(day, 8, 30)) - now).total_seconds() + 61
    assert call(stack, "POST", "/_local/clock", body={"advanceSeconds": until_passed})[0] == 200
    assert entry_of(stack, "late", entry["waitlistId"])["status"] == "EXPIRED"
    admin = token(stack, "waitlist-admin", ["admins"])
    query = f"entityType=WaitlistEntry&entityId={entry['waitlistId']}"

    def trail() -> list[str]:
        return [event["action"] for event in call(stack, "GET", f"/audit/events?{query}", token=admin)[2]["items"]]

    assert eventually(lambda: trail() == ["WAITLIST_JOINED", "WAITLIST_EXPIRED"]), trail()


def test_leaving_releases_the_offer_which_passes_on(stack: LocalStack, clinic: tuple[str, str]) -> None:
    pid, sid = clinic
    day = a_day(stack, 6)
    booked = fill(stack, pid, sid, day, (13, 14))
    leaver = join(stack, "leaver", pid, sid, at(day, 13), at(day, 14))
    stayer = join(stack, "stayer", pid, sid, at(day, 13), at(day, 14))
    cancel(stack, "filler-780", booked[at(day, 13)])
    offer = eventually(lambda: (e := entry_of(stack, "leaver", leaver["waitlistId"]))["status"] == "OFFERED" and e)
    assert offer
    status, _, body = call(
        stack, "DELETE", f"/waitlist/{leaver['waitlistId']}", token=token(stack, "leaver", ["customers"])
    )
    assert status == 204, body
    assert entry_of(stack, "leaver", leaver["waitlistId"])["status"] == "CANCELLED"
    assert hold_of(stack, "leaver", offer["holdId"])[0] == 404
    assert eventually(lambda: entry_of(stack, "stayer", stayer["waitlistId"])["status"] == "OFFERED")
    # Out of line is out of line: leaving again is 409, naming the status.
    status, _, body = call(
        stack, "DELETE", f"/waitlist/{leaver['waitlistId']}", token=token(stack, "leaver", ["customers"])
    )
    assert (status, body["status"], body["code"], body["entryStatus"]) == (
        409,
        409,
        "WAITLIST_ENTRY_ENDED",
        "CANCELLED",
    )


def test_whose_entries_and_how_many(stack: LocalStack, clinic: tuple[str, str]) -> None:
    pid, sid = clinic
    day = a_day(stack, 7)
    fill(stack, pid, sid, day, (16, 17))
    entry = join(stack, "private", pid, sid, at(day, 16), at(day, 17))
    path = f"/waitlist/{entry['waitlistId']}"
    assert call(stack, "GET", path, token=token(stack, "someone-else", ["customers"]))[0] == 404
    assert call(stack, "GET", path, token=token(stack, OWNER, ["providers"]))[0] == 200
    assert call(stack, "GET", path, token=token(stack, "support", ["ops"]))[0] == 200
    assert call(stack, "DELETE", path, token=token(stack, "support", ["ops"]))[0] == 403
    assert call(stack, "DELETE", path, token=token(stack, "someone-else", ["customers"]))[0] == 404
    # A caller has at most 10 entries in line: the 11th is refused, naming why.
    for _ in range(9):
        join(stack, "private", pid, sid, at(day, 16), at(day, 17))
    body = {"providerId": pid, "serviceId": sid, "from": at(day, 16), "to": at(day, 17)}
    status, _, problem = call(stack, "POST", "/waitlist", token=token(stack, "private", ["customers"]), body=body)
    assert status == 422 and problem["code"] == "WAITLIST_LIMIT_REACHED", problem
    # Leaving one makes room again.
    assert call(stack, "DELETE", path, token=token(stack, "private", ["customers"]))[0] == 204
    assert call(stack, "POST", "/waitlist", token=token(stack, "private", ["customers"]), body=body)[0] == 201


@pytest.mark.parametrize(
    ("window", "field"),
    [
        (("T12:00:00Z", "T11:00:00Z"), "body.to"),  # ends before it starts
        (("T12:00:00Z", "T12:15:00Z"), "body.to"),  # shorter than the 30-minute service
    ],
)
def test_a_window_that_cannot_be_offered_is_refused_naming_the_field(
    stack: LocalStack, clinic: tuple[str, str], window: tuple[str, str], field: str
) -> None:
    pid, sid = clinic
    day = a_day(stack, 8).isoformat()
    body = {"providerId": pid, "serviceId": sid, "from": day + window[0], "to": day + window[1]}
    status, _, problem = call(stack, "POST", "/waitlist", token=token(stack, "picky", ["customers"]), body=body)
    assert status == 400 and [e["field"] for e in problem["errors"]] == [field], problem


def test_a_window_with_free_time_is_booked_not_waited_for(stack: LocalStack, clinic: tuple[str, str]) -> None:
    pid, sid = clinic
    day = a_day(stack, 9)
    fill(stack, pid, sid, day, (9, 10))
    body = {"providerId": pid, "serviceId": sid, "from": at(day, 9), "to": at(day, 11)}
    status, _, problem = call(stack, "POST", "/waitlist", token=token(stack, "hasty", ["customers"]), body=body)
    assert status == 409 and problem["code"] == "WINDOW_HAS_FREE_TIME", problem
    assert [slot["start"] for slot in problem["slots"]] == [at(day, 10), at(day, 10, 30)]
    # and a window past the service's booking window (90 days) waits for nothing: refused
    far = a_day(stack, 120)
    body = {"providerId": pid, "serviceId": sid, "from": at(far, 9), "to": at(far, 10)}
    status, _, problem = call(stack, "POST", "/waitlist", token=token(stack, "hasty", ["customers"]), body=body)
    assert status == 422 and problem["reason"] == "TOO_FAR_AHEAD", problem


def test_wider_hours_offer_the_new_time_to_the_line(stack: LocalStack, clinic: tuple[str, str]) -> None:
    pid, sid = clinic
    day = a_day(stack, 10)
    # 18:00 to 19:00 is after the hours (08:00 to 18:00): nothing to book, so the customer waits.
    entry = join(stack, "evening", pid, sid, at(day, 18), at(day, 19))
    owner = token(stack, OWNER, ["providers"])
    hours = {"intervals": [{"start": "08:00", "end": "19:00"}]}
    status, _, body = call(stack, "PUT", f"/providers/{pid}/overrides/{day.isoformat()}", token=owner, body=hours)
    assert status == 200, body
    offer = eventually(lambda: (e := entry_of(stack, "evening", entry["waitlistId"]))["status"] == "OFFERED" and e)
    assert offer, entry_of(stack, "evening", entry["waitlistId"])
    assert hold_of(stack, "evening", offer["holdId"])[1]["start"] == at(day, 18)


def test_a_declined_approval_and_a_declined_offer_pass_the_time_on(stack: LocalStack, clinic: tuple[str, str]) -> None:
    pid = clinic[0]
    owner = token(stack, OWNER, ["providers"])
    body = {
        "name": "Consult",
        "durationMinutes": 30,
        "slotStepMinutes": 30,
        "minNoticeMinutes": 0,
        "requiresApproval": True,
    }
    status, _, service = call(stack, "POST", f"/providers/{pid}/services", token=owner, body=body)
    assert status == 201, service
    sid, day = service["serviceId"], a_day(stack, 11)
    pending = book(stack, "asker", pid, sid, at(day, 12))
    assert pending["status"] == "PENDING"  # a pending booking holds its time: the window is full
    first = join(stack, "first-waiter", pid, sid, at(day, 12), at(day, 12, 30))
    second = join(stack, "second-waiter", pid, sid, at(day, 12), at(day, 12, 30))
    status, _, answer = call(stack, "POST", f"/bookings/{pending['bookingId']}/decline", token=owner, body={})
    assert status == 200 and answer["status"] == "DECLINED", answer
    offer = eventually(lambda: (e := entry_of(stack, "first-waiter", first["waitlistId"]))["status"] == "OFFERED" and e)
    assert offer, entry_of(stack, "first-waiter", first["waitlistId"])
    # Its customer declines the offer (releases the hold): DECLINED, and the time passes to the next.
    status, _, _ = call(stack, "DELETE", f"/holds/{offer['holdId']}", token=token(stack, "first-waiter", ["customers"]))
    assert status == 204
    assert entry_of(stack, "first-waiter", first["waitlistId"])["status"] == "DECLINED"
    assert eventually(lambda: entry_of(stack, "second-waiter", second["waitlistId"])["status"] == "OFFERED")


def test_an_approval_that_lapses_undecided_passes_its_time_and_its_count_to_the_line(stack: LocalStack) -> None:
    """A provider that takes one booking a day: a pending booking holds the day's count and its time.
    Undecided past its deadline, its time is free with no request, but its count is not until written
    back. Its lapse marker is taken away here, as for a booking made before markers existed (or one
    the sweep failed to write down): the match, finding only that count in the way, writes it back
    (EXPIRED) itself and offers the time to the line."""
    owner = token(stack, "one-a-day-owner", ["providers"])
    body = {"name": "One a day", "timeZone": "UTC", "maxBookingsPerDay": 1}
    status, _, provider = call(stack, "POST", "/providers", token=owner, body=body)
    assert status == 201, provider
    pid = provider["providerId"]
    assert call(stack, "PUT", f"/providers/{pid}/schedule", token=owner, body={"weekly": EVERY_DAY})[0] == 200
    service = {
        "name": "Consult",
        "durationMinutes": 30,
        "slotStepMinutes": 30,
        "minNoticeMinutes": 0,
        "requiresApproval": True,
        "approvalTimeoutHours": 1,
    }
    status, _, made = call(stack, "POST", f"/providers/{pid}/services", token=owner, body=service)
    assert status == 201, made
    sid, day = made["serviceId"], a_day(stack, 12)
    pending = book(stack, "undecided", pid, sid, at(day, 12))
    assert pending["status"] == "PENDING"
    assert stack.emulator is not None and stack.data is not None
    deadline = datetime.fromisoformat(pending["approvalExpiresAt"])
    marker = keys.expiry_marker_key(deadline, "BOOKING", pending["bookingId"])
    dynamodb = aws_client("dynamodb", stack.emulator.endpoint)
    assert dynamodb.delete_item(TableName=stack.data.table_name, Key=marker, ReturnValues="ALL_OLD").get("Attributes")
    # The day is full (its one booking counted), and 12:00 is held: the customer waits for it.
    entry = join(stack, "patient", pid, sid, at(day, 12), at(day, 12, 30))
    assert call(stack, "POST", "/_local/clock", body={"advanceSeconds": 3600 + 61})[0] == 200
    offer = eventually(lambda: (e := entry_of(stack, "patient", entry["waitlistId"]))["status"] == "OFFERED" and e)
    assert offer, entry_of(stack, "patient", entry["waitlistId"])
    owner = token(stack, "one-a-day-owner", ["providers"])  # minted anew: an hour has passed
    lapsed = call(stack, "GET", f"/bookings/{pending['bookingId']}", token=owner)[2]
    assert lapsed["status"] == "EXPIRED" and lapsed["version"] == pending["version"] + 1, lapsed  # written back
    # and the offer books, under the day's limit the lapsed booking no longer counts in
    assert book(stack, "patient", pid, sid, at(day, 12), holdId=offer["holdId"])["status"] == "PENDING"
