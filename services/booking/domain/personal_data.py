"""Erasing a customer's personal data (`DELETE /customers/{customerId}/personal-data`, admins only).

What a customer wrote in their own words (a booking's `notes`, a cancellation's `reason`) is removed
from every booking of theirs and from the answers kept for Idempotency-Keys, and their WhatsApp
number from their contact (its consent with it). The audit trail never
held those words in clear, only seals made with a key of the customer's own; the erasure item this
writes reaches the audit service through the table's stream, which deletes that key and records who
erased (services/audit/domain/personal_data.py). What stays: the bookings themselves (times, status,
the customer's id), which the provider's calendar and the trail need.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Protocol

from msgspec import Struct

from services.booking.domain.models import Booking
from services.common.auth import Attribution, Group, Principal
from services.common.tracing import traced


class ContactEraser(Protocol):
    def erase_contact(self, customer_id: str, by: Attribution, now: datetime) -> None: ...


class PersonalDataStore(Protocol):
    def bookings_with_words(self, customer_id: str) -> Iterable[Booking]: ...

    def erase_words(self, booking: Booking) -> None: ...

    def record_erasure(self, customer_id: str, bookings: int, by: Attribution, now: datetime) -> None: ...


class Erasure(Struct, frozen=True):
    customer_id: str
    bookings: int  # the customer's bookings whose words this erasure removed
    erased_at: datetime


class PersonalDataEraser(Struct):
    store: PersonalDataStore
    now: Callable[[], datetime]
    contacts: ContactEraser | None = None  # the customer's WhatsApp number (decision 0031)

    @traced("booking.erase_personal_data")
    def erase(self, principal: Principal, customer_id: str, by: Attribution) -> Erasure:
        """Every booking with words is scrubbed, then the erasure is recorded, which the audit service
        acts on. Cut short (a customer with thousands of notes, past the function's time), it is
        finished by the next request: each step is idempotent and only bookings with words are read."""
        principal.require(Group.ADMINS)
        found = 0
        for booking in self.store.bookings_with_words(customer_id):
            self.store.erase_words(booking)
            found += 1
        erased_at = self.now()
        if self.contacts is not None:
            self.contacts.erase_contact(customer_id, by, erased_at)
        self.store.record_erasure(customer_id, found, by, erased_at)
        return Erasure(customer_id, found, erased_at)
