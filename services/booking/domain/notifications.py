"""WhatsApp notifications to customers who opted in (decision 0031).

A customer's contact is their WhatsApp number and their consent (`PUT /me/contact`). From the domain
events of their bookings (decision 0027) they get:
- a confirmation when a booking is made (or, awaiting approval, once approved);
- a reminder the service's `reminderMinutesBefore` before it starts, fired by a one-time EventBridge
  Scheduler schedule, one per booking: a move replaces it, a cancel deletes it;
- a notice when it is cancelled or moved.

Each message is WhatsApp template message (template, language, parameters), sent at most once: it is
claimed under a key of its booking, the booking's version and its kind before it is sent, so an event
published twice, or a schedule fired twice, sends nothing more. Consent is read at the moment of
sending, so an opt-out stops everything at once, reminders already scheduled included. A reminder
also re-reads the booking, and is sent only while the booking is confirmed at the very version and
start it was scheduled for: a reminder for a time that no longer holds is never sent.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from msgspec import Struct
from msgspec.structs import replace

from services.common.auth import Attribution, Group, Principal
from services.common.errors import FieldError, ForbiddenError, ValidationFailedError

E164 = re.compile(r"\+[1-9][0-9]{6,14}")  # ITU-T E.164: a country code, at most 15 digits in all
# Reminders due sooner than this are not scheduled: Scheduler refuses an at() in the past, and one due
# within the minute could be.
EARLIEST_REMINDER = timedelta(minutes=2)


class Kind(StrEnum):
    CONFIRMATION = "CONFIRMATION"
    REMINDER = "REMINDER"
    CANCELLED = "CANCELLED"
    MOVED = "MOVED"


class Outcome(StrEnum):
    SENT = "SENT"
    FAILED = "FAILED"  # the channel refused it for good (a number not on WhatsApp), or kept failing
    SKIPPED = "SKIPPED"  # no consent, no number, or the booking is no longer what it was


class Contact(Struct, frozen=True):
    customer_id: str
    whatsapp: str | None
    opted_in: bool
    consent_at: str  # when the customer last said yes or no
    consent_source: str  # how: the request that said it (`PUT /me/contact`)
    version: int = 0


class Templates(Struct, frozen=True):
    """The stage's approved WhatsApp templates, by kind, and their language."""

    names: dict[Kind, str]
    language: str


class Message(Struct, frozen=True):
    booking_id: str
    version: int
    kind: Kind
    to: str
    template: str
    language: str
    parameters: tuple[str, ...]

    @property
    def key(self) -> str:
        """At most once per booking, version and kind."""
        return f"{self.booking_id}#{self.version}#{self.kind.value}"


class Sent(Struct, frozen=True):
    outcome: Outcome
    reference: str | None = None  # the channel's message id
    error: str | None = None  # why it failed


class BookingNow(Struct, frozen=True):
    """What a message says and checks: the booking as it stands, with its provider's and service's names."""

    booking_id: str
    customer_id: str
    status: str
    version: int
    start: datetime
    provider_name: str
    service_name: str
    time_zone: str
    reminder_minutes_before: int


class Channel(Protocol):
    def send(self, message: Message) -> Sent: ...


class ContactStore(Protocol):
    def contact(self, customer_id: str) -> Contact | None: ...

    def save_contact(self, contact: Contact, by: Attribution) -> Contact: ...


class NotificationLog(Protocol):
    def claim(self, message: Message) -> bool:
        """True once per message key: whoever claims it sends it."""
        ...

    def record(self, message: Message, sent: Sent) -> None: ...


class Bookings(Protocol):
    def booking_now(self, booking_id: str) -> BookingNow | None: ...

    def upcoming(self, customer_id: str, after: datetime) -> list[str]:
        """The ids of the customer's confirmed bookings that start after `after`."""
        ...


class OptIns(Protocol):
    def ask_to_plan(self, customer_id: str) -> None:
        """Have the notifications function plan the customer's reminders (`Notifier.on_opt_in`) soon."""
        ...


class Reminders(Protocol):
    def plan(self, booking_id: str, version: int, at: datetime | None) -> None:
        """The booking's one reminder at `at` for that version (None: none), replacing an older
        version's; a version older than the one planned changes nothing."""
        ...


def validate_contact(whatsapp: str | None, opt_in: bool) -> None:
    if whatsapp is not None and not E164.fullmatch(whatsapp):
        raise ValidationFailedError(
            "The WhatsApp number is not in E.164 form.",
            [FieldError("body.whatsapp", "+ then the country code and number, 7 to 15 digits, no spaces")],
        )
    if opt_in and whatsapp is None:
        raise ValidationFailedError(
            "Opting in needs a number.", [FieldError("body.whatsapp", "required when optIn is true")]
        )


def reachable(contact: Contact | None) -> bool:
    """Whether the customer said yes, with a number to send to."""
    return contact is not None and contact.opted_in and contact.whatsapp is not None


def local_time(start: datetime, time_zone: str) -> str:
    """How a message names the time: the provider's wall clock, with its zone."""
    local = start.astimezone(ZoneInfo(time_zone))
    return f"{local:%a} {local.day} {local:%b %Y}, {local:%H:%M} ({time_zone})"


class ContactBook(Struct):
    store: ContactStore
    clock: Callable[[], datetime]
    opt_ins: OptIns

    def set(self, principal: Principal, whatsapp: str | None, opt_in: bool, by: Attribution) -> Contact:
        """A customer's own contact and consent; every change is in the trail with when and how.
        Reminders are planned only for customers who opted in: saying yes has those of the bookings
        made before planned, asked for first (a failure to ask leaves the consent unsaid, and the
        request fails), and done once the consent is saved."""
        if not principal.is_in(Group.CUSTOMERS):
            raise ForbiddenError("Only customers keep a contact for their own bookings.")
        validate_contact(whatsapp, opt_in)
        now = self.clock().isoformat().replace("+00:00", "Z")
        contact = Contact(principal.sub, whatsapp, opt_in, now, f"PUT /me/contact {by.request_id}".strip())
        if opt_in:
            self.opt_ins.ask_to_plan(principal.sub)
        return self.store.save_contact(contact, by)

    def get(self, principal: Principal) -> Contact | None:
        if not principal.is_in(Group.CUSTOMERS):
            raise ForbiddenError("Only customers keep a contact for their own bookings.")
        return self.store.contact(principal.sub)


class Notified(Struct, frozen=True):
    """What one event or reminder did: for the metrics and the log."""

    kind: Kind | None
    outcome: Outcome | None  # None: nothing to send (another kind of event, or sent already)
    reason: str | None = None
    reminder_at: datetime | None = None
    lead_minutes: float | None = None  # a reminder sent: how long before the booking's start


# What each domain event means for the customer: the message it sends, and whether the reminder is
# (re)planned at the booking's time or dropped.
ON_EVENT: dict[str, tuple[Kind | None, bool | None]] = {
    "booking.created": (Kind.CONFIRMATION, True),  # only a confirmed one; a pending one waits for approval
    "booking.approved": (Kind.CONFIRMATION, True),
    "booking.rescheduled": (Kind.MOVED, True),
    "booking.cancelled": (Kind.CANCELLED, False),
    "booking.declined": (None, False),
    "booking.expired": (None, False),
    "booking.no_show": (None, False),
}


class Notifier(Struct):
    bookings: Bookings
    contacts: ContactStore
    log: NotificationLog
    reminders: Reminders
    channel: Channel
    templates: Templates
    clock: Callable[[], datetime]

    def on_event(self, detail_type: str, data: dict[str, Any]) -> Notified:
        if detail_type not in ON_EVENT:
            return Notified(None, None)
        kind, remind = ON_EVENT[detail_type]
        booking_id, version = str(data["bookingId"]), int(data["version"])
        if detail_type == "booking.created" and data.get("status") != "CONFIRMED":
            return Notified(None, None)  # awaiting approval: confirmed (and reminded) once approved
        # Most customers never opt in: for them one read is all. A reminder planned while they had
        # consent stays, and checks the booking and the consent when it fires.
        contact = self.contacts.contact(str(data["customerId"]))
        if not reachable(contact):
            return Notified(kind, Outcome.SKIPPED, "no consent") if kind else Notified(None, None)
        booking = self.bookings.booking_now(booking_id)
        if booking is None:
            return Notified(kind, Outcome.SKIPPED, "booking gone")
        start = datetime.fromisoformat(data["start"])
        notified = Notified(None, None)
        if kind is Kind.CANCELLED:
            notified = self._send(kind, replace(booking, start=start, version=version), contact)
        elif kind is not None:
            # A confirmation or a move names a time: only while it still holds (events come in any
            # order, and a later change has its own message), never one the customer was told is gone.
            if booking.status == "CONFIRMED" and booking.start == start:
                notified = self._send(kind, replace(booking, version=version), contact)
            else:
                notified = Notified(kind, Outcome.SKIPPED, "the booking changed since")
        # The message first: a failure to plan (Scheduler, say) must not cost the customer the message.
        reminder_at = self._plan(booking, version, remind)
        return Notified(notified.kind, notified.outcome, notified.reason, reminder_at)

    def _plan(self, booking: BookingNow, version: int, remind: bool | None) -> datetime | None:
        """The booking's reminder for this event: planned anew (`remind`), dropped (`False`), or left
        alone (an older version's event, or a reminder too close to plan)."""
        if remind is None or (remind and booking.version != version):
            return None  # not this event's to plan: a later version's event plans (or has planned)
        if remind is False:
            self.reminders.plan(booking.booking_id, version, None)
            return None
        at = self._reminder_time(booking)
        if at is None and self._reminder_due(booking) is not None:
            # Too close to plan (a late or redelivered event): what is planned stays. A plan for an
            # older version fires and is refused by its version; one for this version still fires.
            return None
        self.reminders.plan(booking.booking_id, version, at)
        return at

    def on_opt_in(self, customer_id: str) -> list[datetime]:
        """The customer opted in: plan the reminders of their upcoming bookings, as each booking's
        own event would have (messages about the past are not sent). Answers the times planned."""
        if not reachable(self.contacts.contact(customer_id)):
            return []  # opted out again since
        planned = []
        for booking_id in self.bookings.upcoming(customer_id, self.clock()):
            booking = self.bookings.booking_now(booking_id)
            if booking is not None and booking.customer_id == customer_id:
                at = self._plan(booking, booking.version, True)
                planned += [at] if at is not None else []
        return planned

    def on_reminder(self, booking_id: str, version: int) -> Notified:
        """A reminder's schedule fired: sent only if the booking still is what it was scheduled for."""
        booking = self.bookings.booking_now(booking_id)
        if booking is None or booking.status != "CONFIRMED" or booking.version != version:
            return Notified(Kind.REMINDER, Outcome.SKIPPED, "the booking changed since")
        notified = self._send(Kind.REMINDER, booking)
        if notified.outcome is Outcome.SENT:
            lead = (booking.start - self.clock()).total_seconds() / 60
            return Notified(Kind.REMINDER, Outcome.SENT, lead_minutes=lead)
        return notified

    def _reminder_due(self, booking: BookingNow) -> datetime | None:
        """When the booking's reminder is due, if it has one (confirmed, and its service sends them)."""
        if booking.status != "CONFIRMED" or booking.reminder_minutes_before == 0:
            return None
        return booking.start - timedelta(minutes=booking.reminder_minutes_before)

    def _reminder_time(self, booking: BookingNow) -> datetime | None:
        """The reminder's time, if it can still be scheduled (Scheduler refuses an at() in the past)."""
        at = self._reminder_due(booking)
        return at if at is not None and at >= self.clock() + EARLIEST_REMINDER else None

    def _send(self, kind: Kind, booking: BookingNow, contact: Contact | None = None) -> Notified:
        """`contact` as read for this event, or read now (a reminder's, hours later)."""
        contact = contact if contact is not None else self.contacts.contact(booking.customer_id)
        if contact is None or not reachable(contact) or contact.whatsapp is None:
            return Notified(kind, Outcome.SKIPPED, "no consent")
        message = Message(
            booking.booking_id,
            booking.version,
            kind,
            contact.whatsapp,
            self.templates.names[kind],
            self.templates.language,
            (booking.provider_name, booking.service_name, local_time(booking.start, booking.time_zone)),
        )
        if not self.log.claim(message):
            return Notified(kind, None, "sent already")  # another delivery of the same event or schedule
        sent = self.channel.send(message)
        self.log.record(message, sent)
        return Notified(kind, sent.outcome, sent.error)
