"""WhatsApp notifications through the local stack (decision 0031), on its clock: what the outbox
(`GET /_local/outbox`, WhatsApp's local stand-in) holds after each change and each day moved.

A confirmation when a booking is made; a reminder 24 hours before it, fired by its one-time schedule
once the stack's clock passes; a moved booking reminded once, for its new time only; a cancelled one
never; nothing for a customer who opted out, from that moment; a reminder's schedule fired twice
sends once. Consent is in the trail, the number sealed. A stack of its own: its clock moves days.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from local.stack import LocalStack, StackConfig, aws_client
from services.booking.adapters.notification_store import reminder_name
from tests.integration.conftest import call, call_function, eventually, token

pytestmark = pytest.mark.slow

EVERY_DAY = {day: [{"start": "06:00", "end": "20:00"}] for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
ZONE = "Europe/Berlin"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    running = LocalStack(StackConfig(port=0, state_dir=tmp_path_factory.mktemp("notify"), echo=None, seed=False))
    running.start()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def clinic(stack: LocalStack) -> tuple[str, str]:
    owner = token(stack, "notify-owner", ["providers"])
    status, _, provider = call(
        stack, "POST", "/providers", token=owner, body={"name": "Praxis Sonne", "timeZone": ZONE}
    )
    assert status == 201, provider
    pid = provider["providerId"]
    assert call(stack, "PUT", f"/providers/{pid}/schedule", token=owner, body={"weekly": EVERY_DAY})[0] == 200
    body = {"name": "Check-up", "durationMinutes": 30, "slotStepMinutes": 30, "minNoticeMinutes": 0}
    status, _, service = call(stack, "POST", f"/providers/{pid}/services", token=owner, body=body)
    assert status == 201 and service["reminderMinutesBefore"] == 1440, service
    return pid, service["serviceId"]


def now(stack: LocalStack) -> datetime:
    return datetime.fromtimestamp(stack.clock.now(), UTC)


def days_ahead(stack: LocalStack, days: int, hour: int) -> datetime:
    """A whole hour `days` ahead of the stack's now, in UTC (inside the clinic's hours)."""
    day = now(stack).date() + timedelta(days=days)
    return datetime(day.year, day.month, day.day, hour, tzinfo=UTC)


def advance_to(stack: LocalStack, moment: datetime) -> None:
    seconds = (moment - now(stack)).total_seconds()
    assert seconds > 0, moment
    assert call(stack, "POST", "/_local/clock", body={"advanceSeconds": seconds})[0] == 200


def opt(stack: LocalStack, who: str, whatsapp: str | None, opt_in: bool) -> Any:
    body: dict[str, Any] = {"optIn": opt_in} | ({"whatsapp": whatsapp} if whatsapp else {})
    status, _, contact = call(stack, "PUT", "/me/contact", token=token(stack, who, ["customers"]), body=body)
    assert status == 200, contact
    return contact


def book(stack: LocalStack, who: str, pid: str, sid: str, start: datetime) -> Any:
    body = {"providerId": pid, "serviceId": sid, "start": start.isoformat()}
    status, _, booked = call(stack, "POST", "/bookings", token=token(stack, who, ["customers"]), body=body)
    assert status == 201, booked
    return booked


def outbox(stack: LocalStack, booking_id: str | None = None) -> list[dict[str, Any]]:
    status, _, body = call(stack, "GET", "/_local/outbox")
    assert status == 200
    return [m for m in body["items"] if booking_id is None or m["bookingId"] == booking_id]


def kinds(stack: LocalStack, booking_id: str) -> list[tuple[str, int]]:
    return [(m["kind"], m["version"]) for m in outbox(stack, booking_id)]


def reminder_schedules(stack: LocalStack) -> list[str]:
    """The reminders' one-time schedules Scheduler holds now (fired ones delete themselves); not the
    opt-ins' (`opted-in-…`), which share the group."""
    assert stack.emulator is not None
    scheduler = aws_client("scheduler", stack.emulator.endpoint)
    held = scheduler.list_schedules(GroupName="appointments-local-reminders")["Schedules"]
    return [s["Name"] for s in held if s["Name"].startswith("reminder-")]


def settle(stack: LocalStack) -> None:
    """Every event published so far has reached its targets (the stack's clock move does the same)."""
    assert stack.publisher_mapping is not None and stack.event_rules is not None
    stack.publisher_mapping.wait_caught_up(timeout=30)
    stack.event_rules.wait_caught_up(timeout=30)


def test_a_confirmation_at_booking_and_a_reminder_24_hours_before(stack: LocalStack, clinic: tuple[str, str]) -> None:
    pid, sid = clinic
    opt(stack, "anna", "+4915112345678", True)
    start = days_ahead(stack, 3, 9)
    booked = book(stack, "anna", pid, sid, start)
    (confirmation,) = eventually(lambda: outbox(stack, booked["bookingId"]))
    assert confirmation["kind"] == "CONFIRMATION" and confirmation["version"] == 1
    assert confirmation["channel"] == "whatsapp" and confirmation["to"] == "+4915112345678"
    assert confirmation["template"] == "appointment_confirmation" and confirmation["language"] == "en"
    local = start.astimezone(ZoneInfo(ZONE))
    assert confirmation["parameters"] == [
        "Praxis Sonne",
        "Check-up",
        f"{local:%a} {local.day} {local:%b %Y}, {local:%H:%M} ({ZONE})",
    ]
    # WhatsApp's own message object, as AWS End User Messaging Social would pass it on
    template = confirmation["message"]["template"]
    assert confirmation["message"]["type"] == "template" and template["name"] == "appointment_confirmation"
    assert [p["text"] for p in template["components"][0]["parameters"]] == confirmation["parameters"]

    # Nothing more until 24 hours before; then the reminder, once the clock passes its minute.
    advance_to(stack, start - timedelta(hours=24, minutes=5))
    settle(stack)
    assert kinds(stack, booked["bookingId"]) == [("CONFIRMATION", 1)]
    advance_to(stack, start - timedelta(hours=24) + timedelta(seconds=61))
    assert eventually(lambda: len(outbox(stack, booked["bookingId"])) == 2)
    reminder = outbox(stack, booked["bookingId"])[1]
    assert (reminder["kind"], reminder["version"], reminder["template"]) == ("REMINDER", 1, "appointment_reminder")
    sent_at = datetime.fromisoformat(reminder["sentAt"])
    assert start - timedelta(hours=24) <= sent_at <= start - timedelta(hours=23, minutes=58)


def test_a_customer_who_opts_in_after_booking_is_reminded_and_one_who_never_did_hears_nothing(
    stack: LocalStack, clinic: tuple[str, str]
) -> None:
    pid, sid = clinic
    start, other = days_ahead(stack, 4, 10), days_ahead(stack, 4, 12)
    # Booked before any consent: nothing sent, nothing planned (the function read the contact only)
    booked = book(stack, "late-opter", pid, sid, start)
    never = book(stack, "never-opted", pid, sid, other)
    settle(stack)
    planned_now = [reminder_name(booked["bookingId"], 1), reminder_name(never["bookingId"], 1)]
    assert not set(planned_now) & set(reminder_schedules(stack))
    assert outbox(stack, booked["bookingId"]) == outbox(stack, never["bookingId"]) == []
    # Opting in has the booking's reminder planned within a couple of minutes; no message about it
    opt(stack, "late-opter", "+4915100000001", True)
    advance_to(stack, now(stack) + timedelta(minutes=2, seconds=5))
    assert eventually(lambda: reminder_name(booked["bookingId"], 1) in reminder_schedules(stack))
    assert reminder_name(never["bookingId"], 1) not in reminder_schedules(stack)
    assert outbox(stack, booked["bookingId"]) == []
    # and it is sent 24 hours before; the other customer's never is
    advance_to(stack, start - timedelta(hours=24) + timedelta(seconds=61))
    assert eventually(lambda: kinds(stack, booked["bookingId"]) == [("REMINDER", 1)])
    assert outbox(stack, never["bookingId"]) == []


def test_a_moved_booking_is_reminded_once_for_its_new_time_and_a_cancelled_one_never(
    stack: LocalStack, clinic: tuple[str, str]
) -> None:
    pid, sid = clinic
    opt(stack, "ben", "+447700900123", True)
    first, later = days_ahead(stack, 3, 10), days_ahead(stack, 5, 11)
    moved = book(stack, "ben", pid, sid, first)
    cancelled = book(stack, "ben", pid, sid, days_ahead(stack, 3, 12))
    # (Confirmed first: a confirmation that arrived after the move would name a time that no longer
    # holds, and is not sent.)
    assert eventually(
        lambda: kinds(stack, moved["bookingId"]) == kinds(stack, cancelled["bookingId"]) == [("CONFIRMATION", 1)]
    )
    # (Each planned just after its message went: wait for the plans too.)
    planned = sorted([reminder_name(moved["bookingId"], 1), reminder_name(cancelled["bookingId"], 1)])
    assert eventually(lambda: sorted(reminder_schedules(stack)) == planned), reminder_schedules(stack)
    ben = token(stack, "ben", ["customers"])
    path = f"/bookings/{moved['bookingId']}/reschedule"
    assert call(stack, "POST", path, token=ben, body={"start": later.isoformat()})[0] == 200
    assert call(stack, "POST", f"/bookings/{cancelled['bookingId']}/cancel", token=ben, body={})[0] == 200
    assert eventually(lambda: kinds(stack, moved["bookingId"]) == [("CONFIRMATION", 1), ("MOVED", 2)])
    assert eventually(lambda: kinds(stack, cancelled["bookingId"]) == [("CONFIRMATION", 1), ("CANCELLED", 2)])
    notice = outbox(stack, moved["bookingId"])[1]
    assert notice["template"] == "appointment_moved" and notice["parameters"][2].endswith(f"({ZONE})")
    # The move replaced the moved booking's schedule; the cancel deleted the other's.
    replaced = [reminder_name(moved["bookingId"], 2)]
    assert eventually(lambda: reminder_schedules(stack) == replaced), reminder_schedules(stack)

    # Past the old time's reminder and the cancelled one's: nothing for either.
    advance_to(stack, first - timedelta(hours=23))
    settle(stack)
    assert kinds(stack, moved["bookingId"]) == [("CONFIRMATION", 1), ("MOVED", 2)]
    assert kinds(stack, cancelled["bookingId"]) == [("CONFIRMATION", 1), ("CANCELLED", 2)]
    # Past the new time's: one reminder, for version 2.
    advance_to(stack, later - timedelta(hours=24) + timedelta(seconds=61))
    assert eventually(lambda: kinds(stack, moved["bookingId"])[-1:] == [("REMINDER", 2)])
    advance_to(stack, later - timedelta(hours=1))
    settle(stack)
    assert kinds(stack, moved["bookingId"]) == [("CONFIRMATION", 1), ("MOVED", 2), ("REMINDER", 2)]


def test_an_opt_out_stops_everything_at_once_and_consent_is_in_the_trail(
    stack: LocalStack, clinic: tuple[str, str]
) -> None:
    pid, sid = clinic
    made = opt(stack, "cleo", "+33612345678", True)
    assert made["optIn"] is True and made["consentSource"].startswith("PUT /me/contact")
    start = days_ahead(stack, 4, 14)
    booked = book(stack, "cleo", pid, sid, start)
    assert eventually(lambda: kinds(stack, booked["bookingId"]) == [("CONFIRMATION", 1)])
    withdrawn = opt(stack, "cleo", "+33612345678", False)
    assert withdrawn["optIn"] is False and withdrawn["consentAt"] >= made["consentAt"]
    # No reminder for the booking made while opted in, and no confirmation for a new one.
    another = book(stack, "cleo", pid, sid, days_ahead(stack, 4, 15))
    advance_to(stack, start - timedelta(hours=23))
    settle(stack)
    assert kinds(stack, booked["bookingId"]) == [("CONFIRMATION", 1)]
    assert kinds(stack, another["bookingId"]) == []
    # Without consent there was never anything: a customer who never opted in gets nothing.
    silent = book(stack, "dora", pid, sid, days_ahead(stack, 4, 16))
    settle(stack)
    assert kinds(stack, silent["bookingId"]) == []

    admin = token(stack, "notify-auditor", ["admins"])

    def consent() -> list[Any]:
        answer = call(stack, "GET", "/audit/events?entityType=Customer&entityId=cleo", token=admin)[2]
        return list(answer["items"])

    events = eventually(lambda: len(consent()) == 2 and consent())
    assert [(e["action"], e["actor"]) for e in events] == [("CONTACT_OPTED_IN", "cleo"), ("CONTACT_OPTED_OUT", "cleo")]
    number = events[0]["changes"]["whatsapp"]["after"]
    assert number.startswith("hmac-sha256:") and "+33612345678" not in str(events)  # sealed, never in clear
    status, _, mine = call(stack, "GET", "/me/contact", token=token(stack, "cleo", ["customers"]))
    assert status == 200 and mine["optIn"] is False and mine["whatsapp"] == "+33612345678"


def test_a_reminder_fired_twice_sends_once_and_a_stale_one_sends_nothing(
    stack: LocalStack, clinic: tuple[str, str]
) -> None:
    pid, sid = clinic
    opt(stack, "emil", "+4917612345678", True)
    booked = book(stack, "emil", pid, sid, days_ahead(stack, 3, 8))
    assert eventually(lambda: kinds(stack, booked["bookingId"]) == [("CONFIRMATION", 1)])
    assert stack.lambdas is not None
    notifications = stack.lambdas.functions["NotificationFunction"]
    # A schedule for a version the booking is not at sends nothing.
    stale = {"reminder": {"bookingId": booked["bookingId"], "version": 7}}
    assert notifications.invoke(stale).payload == {"kind": "REMINDER", "outcome": "SKIPPED"}
    assert kinds(stack, booked["bookingId"]) == [("CONFIRMATION", 1)]
    # Scheduler invokes at least once: the same schedule's input twice, one message.
    fired = {"reminder": {"bookingId": booked["bookingId"], "version": 1}}
    answers = [notifications.invoke(fired).payload for _ in range(2)]
    assert answers == [{"kind": "REMINDER", "outcome": "SENT"}, {"kind": "REMINDER", "outcome": None}]
    assert kinds(stack, booked["bookingId"]) == [("CONFIRMATION", 1), ("REMINDER", 1)]


def test_bad_contacts_are_refused_naming_the_field(stack: LocalStack) -> None:
    who = token(stack, "fritz", ["customers"])
    for body, field in (
        ({"whatsapp": "004915112345678", "optIn": True}, "body.whatsapp"),
        ({"whatsapp": "+49 151 1234", "optIn": True}, "body.whatsapp"),
        ({"optIn": True}, "body.whatsapp"),
        ({"whatsapp": "+4915112345678"}, "body.optIn"),
    ):
        # The gateway's validator refuses what the document's schema does; the function names the field.
        assert call(stack, "PUT", "/me/contact", token=who, body=body)[0] == 400, body
        status, _, problem = call_function(stack, "PUT", "/me/contact", token=who, body=body)
        assert status == 400 and [e["field"] for e in problem["errors"]] == [field], (body, problem)
    provider = token(stack, "notify-owner", ["providers"])
    assert call(stack, "PUT", "/me/contact", token=provider, body={"optIn": False})[0] == 403
    assert call(stack, "GET", "/me/contact", token=who)[0] == 404


def test_an_erasure_takes_the_number_and_the_consent_away(stack: LocalStack, clinic: tuple[str, str]) -> None:
    pid, sid = clinic
    opt(stack, "gerd", "+4915199999999", True)
    admin = token(stack, "notify-admin", ["admins"])
    assert call(stack, "DELETE", "/customers/gerd/personal-data", token=admin)[0] == 202
    status, _, contact = call(stack, "GET", "/me/contact", token=token(stack, "gerd", ["customers"]))
    assert status == 200 and contact["whatsapp"] is None and contact["optIn"] is False, contact
    assert contact["consentSource"] == "personal data erased"
    booked = book(stack, "gerd", pid, sid, days_ahead(stack, 3, 17))
    settle(stack)
    assert kinds(stack, booked["bookingId"]) == []
