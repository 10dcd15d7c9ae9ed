"""A customer's words in the trail (services/audit/domain/personal_data.py) and their erasure
(services/booking/domain/personal_data.py), without AWS."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st
from msgspec.structs import replace

from services.audit.domain.chain import GENESIS, link
from services.audit.domain.personal_data import ERASED, has_free_text, seal, sealed
from services.booking.domain.models import Booking
from services.booking.domain.personal_data import PersonalDataEraser
from services.common.audit import AuditEvent, Change
from services.common.auth import Attribution, Group, Principal
from services.common.errors import ForbiddenError
from tests.unit.test_booking_use_cases import booking

KEY = bytes(range(32))


def cancelled(reason: str | None, notes: str | None = None) -> AuditEvent:
    changes = {"status": Change(before="CONFIRMED", after="CANCELLED"), "cancelReason": Change(after=reason)}
    if notes is not None:
        changes["notes"] = Change(before=notes, after=None)
    return AuditEvent(
        eventId="e", sequence="1", entityType="Booking", entityId="bkg_1", action="BOOKING_CANCELLED",
        at="2026-12-01T10:00:00Z", changes=changes,
    )  # fmt: skip


@given(st.text(min_size=1, max_size=500))
def test_a_sealed_event_holds_no_clear_text_and_a_seal_anyone_with_the_text_and_key_can_recompute(
    reason: str,
) -> None:
    event = sealed(cancelled(reason), KEY)
    after = event.changes["cancelReason"].after
    assert after == "hmac-sha256:" + hmac.new(KEY, reason.encode(), hashlib.sha256).hexdigest()
    assert event.changes["cancelReason"] == Change(before=None, after=after)  # the seal is all that is left
    assert event.changes["status"] == Change(before="CONFIRMED", after="CANCELLED")  # the rest is untouched


def test_without_a_key_the_words_are_marked_erased_and_absent_values_stay_absent() -> None:
    event = sealed(cancelled("ill", notes="call first"), None)
    assert event.changes["cancelReason"].after == ERASED and event.changes["notes"].before == ERASED
    assert event.changes["notes"].after is None and event.changes["cancelReason"].before is None


def test_only_events_with_words_are_sealed_and_seals_differ_per_customer_key() -> None:
    assert has_free_text(cancelled("ill")) and not has_free_text(cancelled(None))
    assert seal("ill", KEY) != seal("ill", bytes(32))


def test_a_sealed_event_links_into_its_chain_like_any_other() -> None:
    archived = link(sealed(cancelled("ill"), KEY), 1, GENESIS)
    assert archived.changes["cancelReason"].after == seal("ill", KEY) and len(archived.hash) == 64


@dataclass
class FakeStore:
    bookings: list[Booking]
    scrubbed: list[str] = field(default_factory=list)
    recorded: list[tuple[str, int, str]] = field(default_factory=list)

    def bookings_with_words(self, customer_id: str) -> list[Booking]:
        return [b for b in self.bookings if b.customer_id == customer_id and b.booking_id not in self.scrubbed]

    def erase_words(self, booking: Booking) -> None:
        self.scrubbed.append(booking.booking_id)

    def record_erasure(self, customer_id: str, bookings: int, by: Attribution, now: datetime) -> None:
        self.recorded.append((customer_id, bookings, by.actor))


NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
BY = Attribution("adm", "req-1", "1-abc-def")


def a_booking(booking_id: str, customer: str) -> Booking:
    return replace(booking(NOW), booking_id=booking_id, customer_id=customer, notes="call first")


@pytest.mark.parametrize("groups", [{Group.OPS}, {Group.CUSTOMERS}, {Group.PROVIDERS}, {Group.CUSTOMERS, Group.OPS}])
def test_only_admins_erase_and_a_refusal_touches_nothing(groups: set[Group]) -> None:
    store = FakeStore([a_booking("bkg_a", "cust")])
    with pytest.raises(ForbiddenError):
        PersonalDataEraser(store, lambda: NOW).erase(Principal("cust", frozenset(groups)), "cust", BY)
    assert store.scrubbed == [] and store.recorded == []


def test_an_admin_scrubs_every_booking_of_the_customer_then_records_the_erasure() -> None:
    store = FakeStore([a_booking("bkg_a", "cust"), a_booking("bkg_b", "other"), a_booking("bkg_c", "cust")])
    erasure = PersonalDataEraser(store, lambda: NOW).erase(Principal("adm", frozenset({Group.ADMINS})), "cust", BY)
    assert store.scrubbed == ["bkg_a", "bkg_c"] and store.recorded == [("cust", 2, "adm")]
    assert (erasure.customer_id, erasure.bookings, erasure.erased_at) == ("cust", 2, NOW)
