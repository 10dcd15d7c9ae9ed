"""The notifications' decisions, pure (services/booking/domain/notifications.py), with in-memory
stand-ins: what each booking event sends and plans, in any order; consent read at the moment of
sending; each message claimed once; a reminder only for the version it was planned for."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from msgspec.structs import replace

from services.booking.domain.notifications import (
    BookingNow,
    Contact,
    ContactBook,
    Kind,
    Message,
    Notifier,
    Outcome,
    Sent,
    Templates,
    local_time,
)
from services.common.auth import Attribution, Group, Principal
from services.common.errors import ForbiddenError, ValidationFailedError

NOW = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
START = datetime(2026, 12, 4, 9, 0, tzinfo=UTC)
BY = Attribution("anna", "req-1", "1-00000000-000000000000000000000000")


@dataclass
class World:
    booking: BookingNow | None
    contact: Contact | None = None
    claimed: set[str] = field(default_factory=set)
    sent: list[Message] = field(default_factory=list)
    recorded: list[tuple[str, Outcome]] = field(default_factory=list)
    plans: dict[str, tuple[int, datetime | None]] = field(default_factory=dict)
    answer: Sent = field(default_factory=lambda: Sent(Outcome.SENT, "wamid.1"))
    reads: list[str] = field(default_factory=list)  # what was read: contacts, bookings
    later: list[BookingNow] = field(default_factory=list)  # other bookings of the customer's, by id
    asked: list[str] = field(default_factory=list)  # opt-ins asked to plan

    # Bookings, ContactStore, NotificationLog, Reminders, Channel, OptIns
    def booking_now(self, booking_id: str) -> BookingNow | None:
        self.reads.append(f"booking {booking_id}")
        return next((b for b in self.later if b.booking_id == booking_id), self.booking)

    def upcoming(self, customer_id: str, after: datetime) -> list[str]:
        self.reads.append(f"upcoming {customer_id}")
        every = [b for b in [self.booking, *self.later] if b is not None]
        return [
            b.booking_id for b in every if b.customer_id == customer_id and b.start > after and b.status == "CONFIRMED"
        ]

    def ask_to_plan(self, customer_id: str) -> None:
        self.asked.append(customer_id)

    def contact_of(self, customer_id: str) -> Contact | None:
        self.reads.append(f"contact {customer_id}")
        return self.contact

    def save_contact(self, contact: Contact, by: Attribution) -> Contact:
        self.contact = replace(contact, version=(self.contact.version if self.contact else 0) + 1)
        return self.contact

    def claim(self, message: Message) -> bool:
        if message.key in self.claimed:
            return False
        self.claimed.add(message.key)
        return True

    def record(self, message: Message, sent: Sent) -> None:
        self.recorded.append((message.key, sent.outcome))

    def plan(self, booking_id: str, version: int, at: datetime | None) -> None:
        known = self.plans.get(booking_id)
        if known is None or known[0] <= version:  # as the store: only a newer version replaces it
            self.plans[booking_id] = (version, at)

    def send(self, message: Message) -> Sent:
        self.sent.append(message)
        return self.answer


class Contacts:
    def __init__(self, world: World) -> None:
        self.world = world

    def contact(self, customer_id: str) -> Contact | None:
        return self.world.contact_of(customer_id)

    def save_contact(self, contact: Contact, by: Attribution) -> Contact:
        return self.world.save_contact(contact, by)


def booking(version: int = 1, start: datetime = START, status: str = "CONFIRMED", lead: int = 1440) -> BookingNow:
    return BookingNow("bkg_1", "anna", status, version, start, "Praxis Sonne", "Check-up", "Europe/Berlin", lead)


def world(**changes: Any) -> World:
    opted = Contact("anna", "+4915112345678", True, "2026-11-30T10:00:00Z", "PUT /me/contact r")
    return World(**{"booking": booking(), "contact": opted, **changes})


def notifier(w: World, clock: datetime = NOW) -> Notifier:
    templates = Templates({kind: f"appointment_{kind.value.lower()}" for kind in Kind}, "de")
    return Notifier(w, Contacts(w), w, w, w, templates, lambda: clock)


def data(version: int = 1, start: datetime = START, status: str = "CONFIRMED") -> dict[str, Any]:
    return {
        "bookingId": "bkg_1",
        "customerId": "anna",
        "version": version,
        "start": start.isoformat(),
        "status": status,
    }


def test_a_confirmed_booking_is_confirmed_and_its_reminder_planned_a_day_before() -> None:
    w = world()
    done = notifier(w).on_event("booking.created", data())
    assert (done.kind, done.outcome, done.reminder_at) == (Kind.CONFIRMATION, Outcome.SENT, START - timedelta(days=1))
    (message,) = w.sent
    assert (message.template, message.language, message.to) == ("appointment_confirmation", "de", "+4915112345678")
    assert message.parameters == ("Praxis Sonne", "Check-up", "Fri 4 Dec 2026, 10:00 (Europe/Berlin)")
    assert w.plans == {"bkg_1": (1, START - timedelta(days=1))}
    assert w.recorded == [("bkg_1#1#CONFIRMATION", Outcome.SENT)]


def test_a_booking_awaiting_approval_waits_and_its_approval_confirms() -> None:
    w = world(booking=booking(status="PENDING"))
    assert notifier(w).on_event("booking.created", data(status="PENDING")).outcome is None
    assert w.sent == [] and w.plans == {}
    w.booking = booking(version=2)
    done = notifier(w).on_event("booking.approved", data(version=2))
    assert done.outcome is Outcome.SENT and w.sent[0].kind is Kind.CONFIRMATION and w.plans["bkg_1"][0] == 2


def test_events_out_of_order_never_bring_an_old_time_back() -> None:
    moved = START + timedelta(days=2)
    w = world(booking=booking(version=2, start=moved))
    # The move's event first, then the creation's (EventBridge keeps no order).
    notifier(w).on_event("booking.rescheduled", data(version=2, start=moved))
    notifier(w).on_event("booking.created", data(version=1))
    assert w.plans == {"bkg_1": (2, moved - timedelta(days=1))}
    # The move's notice names the new time; the late confirmation would name a time that no longer
    # holds, after the customer was told it moved: not sent.
    assert [(m.kind, m.version) for m in w.sent] == [(Kind.MOVED, 2)] and "6 Dec" in w.sent[0].parameters[2]


def test_a_confirmation_or_a_move_is_not_sent_once_the_booking_is_cancelled() -> None:
    w = world(booking=booking(version=2, status="CANCELLED"))
    for detail_type, version in (("booking.created", 1), ("booking.rescheduled", 2)):
        done = notifier(w).on_event(detail_type, data(version=version))
        assert (done.outcome, done.reason) == (Outcome.SKIPPED, "the booking changed since"), detail_type
    assert w.sent == [] and w.claimed == set()
    # The cancel's own notice goes, naming the time that was cancelled.
    assert notifier(w).on_event("booking.cancelled", data(version=2, status="CANCELLED")).outcome is Outcome.SENT


def test_a_cancel_drops_the_reminder_and_says_so() -> None:
    w = world(booking=booking(version=2, status="CANCELLED"))
    w.plans["bkg_1"] = (1, START - timedelta(days=1))
    done = notifier(w).on_event("booking.cancelled", data(version=2, status="CANCELLED"))
    assert done.kind is Kind.CANCELLED and done.outcome is Outcome.SENT
    assert w.plans == {"bkg_1": (2, None)}


@pytest.mark.parametrize("detail_type", ["booking.declined", "booking.expired", "booking.no_show"])
def test_an_ended_booking_drops_its_reminder_silently(detail_type: str) -> None:
    w = world(booking=booking(version=2, status="DECLINED"))
    done = notifier(w).on_event(detail_type, data(version=2))
    assert done.outcome is None and w.sent == [] and w.plans == {"bkg_1": (2, None)}


@pytest.mark.parametrize("detail_type", ["hold.created", "waitlist.offered", "schedule.changed"])
def test_other_events_do_nothing(detail_type: str) -> None:
    w = world()
    assert notifier(w).on_event(detail_type, {"bookingId": "x", "version": 1}).kind is None
    assert w.sent == [] and w.plans == {}


def test_no_reminder_when_it_would_already_be_due_or_the_service_asks_for_none() -> None:
    w = world(booking=booking(start=NOW + timedelta(hours=3)))
    assert notifier(w).on_event("booking.created", data(start=NOW + timedelta(hours=3))).reminder_at is None
    assert w.plans == {}
    w = world(booking=booking(lead=0))
    assert notifier(w).on_event("booking.created", data()).reminder_at is None
    assert w.plans == {"bkg_1": (1, None)}


def test_an_event_redelivered_as_its_reminder_falls_due_leaves_the_reminder_planned() -> None:
    w = world()
    notifier(w).on_event("booking.created", data())
    planned = dict(w.plans)
    a_minute_before = START - timedelta(days=1, minutes=1)
    assert notifier(w, a_minute_before).on_event("booking.created", data()).reminder_at is None
    assert w.plans == planned  # not dropped: it fires in a minute


def test_without_consent_one_read_is_all_nothing_is_sent_claimed_or_planned() -> None:
    for contact in (None, Contact("anna", "+4915112345678", False, "t", "s"), Contact("anna", None, True, "t", "s")):
        for detail_type, kind in (("booking.created", Kind.CONFIRMATION), ("booking.declined", None)):
            w = world(contact=contact)
            done = notifier(w).on_event(detail_type, data())
            assert done.kind is kind and w.reads == ["contact anna"], (contact, detail_type)
            if kind is not None:
                assert (done.outcome, done.reason) == (Outcome.SKIPPED, "no consent")
            assert w.sent == [] and w.claimed == set() and w.plans == {}


def test_opting_in_plans_the_reminders_of_the_upcoming_confirmed_bookings_made_before() -> None:
    soon = START + timedelta(days=1)
    w = world(
        booking=booking(),  # bkg_1, on START
        later=[
            replace(booking(version=3, start=soon), booking_id="bkg_2"),
            replace(booking(start=NOW + timedelta(hours=3)), booking_id="bkg_3"),  # too close: its reminder is due
            replace(booking(status="CANCELLED"), booking_id="bkg_4"),
            replace(booking(start=NOW - timedelta(days=1)), booking_id="bkg_5"),  # past
        ],
    )
    planned = notifier(w).on_opt_in("anna")
    assert planned == [START - timedelta(days=1), soon - timedelta(days=1)]
    assert w.plans == {
        "bkg_1": (1, START - timedelta(days=1)),
        "bkg_2": (3, soon - timedelta(days=1)),
    }  # bkg_3's reminder would be due already: nothing to plan
    assert w.sent == []  # nothing about the past is said: only reminders to come
    # opted out again before it ran: nothing planned
    w = world(contact=Contact("anna", "+4915112345678", False, "t", "s"))
    assert notifier(w).on_opt_in("anna") == [] and w.plans == {} and w.reads == ["contact anna"]


def test_a_message_claimed_already_is_not_sent_again() -> None:
    w = world()
    notifier(w).on_event("booking.created", data())
    again = notifier(w).on_event("booking.created", data())
    assert (again.outcome, again.reason) == (None, "sent already") and len(w.sent) == 1


def test_a_reminder_is_sent_only_for_the_version_it_was_planned_for() -> None:
    w = world()
    fired_at = START - timedelta(days=1, seconds=-30)
    done = notifier(w, fired_at).on_reminder("bkg_1", 1)
    assert done.outcome is Outcome.SENT and done.lead_minutes == pytest.approx(24 * 60 - 0.5)
    assert notifier(w, fired_at).on_reminder("bkg_1", 1).outcome is None  # fired twice: sent once
    assert notifier(w).on_reminder("bkg_1", 2).outcome is Outcome.SKIPPED  # the booking is at version 1
    w.booking = booking(version=2, status="CANCELLED")
    assert notifier(w).on_reminder("bkg_1", 2).outcome is Outcome.SKIPPED
    w.booking = None
    assert notifier(w).on_reminder("bkg_1", 1).outcome is Outcome.SKIPPED
    assert [m.kind for m in w.sent] == [Kind.REMINDER]


def test_a_failed_send_is_recorded_as_failed() -> None:
    w = world(answer=Sent(Outcome.FAILED, error="refused: ValidationException after 1 attempt(s)"))
    done = notifier(w).on_event("booking.created", data())
    assert done.outcome is Outcome.FAILED and w.recorded == [("bkg_1#1#CONFIRMATION", Outcome.FAILED)]


def test_only_a_customer_keeps_a_contact_and_a_number_must_be_e164() -> None:
    w = world(contact=None)
    book = ContactBook(Contacts(w), lambda: NOW, w)
    customer = Principal("anna", frozenset({Group.CUSTOMERS}))
    made = book.set(customer, "+4915112345678", True, BY)
    assert (
        made.opted_in and made.consent_at == "2026-12-01T08:00:00Z" and made.consent_source == "PUT /me/contact req-1"
    )
    assert w.asked == ["anna"]  # saying yes has the bookings made before planned
    for number, opt_in in (("4915112345678", True), ("+0151", True), ("+49 151", False), (None, True)):
        with pytest.raises(ValidationFailedError) as refused:
            book.set(customer, number, opt_in, BY)
        assert refused.value.errors[0].field == "body.whatsapp"
    with pytest.raises(ForbiddenError):
        book.set(Principal("p", frozenset({Group.PROVIDERS})), "+4915112345678", True, BY)
    assert book.set(customer, None, False, BY).whatsapp is None  # opting out may forget the number too
    assert w.asked == ["anna"]  # saying no asks nothing


def test_consent_is_not_saved_when_the_planning_could_not_be_asked_for() -> None:
    w = world(contact=None)

    class Refusing:
        def ask_to_plan(self, customer_id: str) -> None:
            raise RuntimeError("Scheduler throttled")

    book = ContactBook(Contacts(w), lambda: NOW, Refusing())
    with pytest.raises(RuntimeError):
        book.set(Principal("anna", frozenset({Group.CUSTOMERS})), "+4915112345678", True, BY)
    assert w.contact is None  # the request fails, and nothing was said


def test_times_read_in_the_providers_zone_across_a_change_of_offset() -> None:
    assert (
        local_time(datetime(2026, 3, 29, 0, 30, tzinfo=UTC), "Europe/Berlin")
        == "Sun 29 Mar 2026, 01:30 (Europe/Berlin)"
    )
    assert (
        local_time(datetime(2026, 3, 29, 1, 30, tzinfo=UTC), "Europe/Berlin")
        == "Sun 29 Mar 2026, 03:30 (Europe/Berlin)"
    )
