"""Approval against the claim scheme in-process (moto, one table), where the table can be changed
between a decision's read and its write: an approval never commits past its deadline, whatever the
approver's clock, nor once the time was booked over; approve and decline read together, one commits."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import time_machine

from services.booking.adapters.dynamodb_store import DynamoDBBookingStore
from services.booking.domain.models import BookingStatus
from services.booking.domain.ports import Committed
from services.booking.domain.use_cases import BookingRequest, BookingService
from services.common.auth import Group, Principal
from tests.integration.test_claim_properties import BY, TABLE, invoke, open_provider

pytestmark = pytest.mark.slow


def customer(sub: str) -> Principal:
    return Principal(sub, frozenset({Group.CUSTOMERS}))


def approval_service(pid: str) -> str:
    body = {
        "name": "Consult",
        "durationMinutes": 30,
        "minNoticeMinutes": 0,
        "slotStepMinutes": 30,
        "requiresApproval": True,
        "approvalTimeoutHours": 1,
    }
    return str(invoke("POST", f"/providers/{pid}/services", body)["serviceId"])


def pending_booking(client: Any, name: str) -> tuple[DynamoDBBookingStore, BookingService, Any, str, str]:
    pid = open_provider(name, "06:00", "22:00")
    sid = approval_service(pid)
    store = DynamoDBBookingStore(client, TABLE)
    bookings = BookingService(store, lambda: datetime.now(UTC))
    start = datetime.combine(datetime.now(UTC).date() + timedelta(days=2), datetime.min.time(), UTC)
    start += timedelta(hours=9)
    answer = bookings.book(
        customer("waiting"), BookingRequest(pid, sid, start, None, None), None, "h", lambda b: {"id": b.booking_id}, BY
    )
    booking = store.get_booking(str(answer.body["id"]))
    assert booking is not None and booking.status is BookingStatus.PENDING
    return store, bookings, booking, pid, sid


def test_an_approval_never_commits_past_its_deadline_even_with_the_time_still_free(inproc: Any) -> None:
    store, _, booking, _, _ = pending_booking(inproc, "Late approval")
    with time_machine.travel(booking.approval_expires_at + timedelta(seconds=1), tick=False):
        assert not isinstance(store.approve(booking, BY), Committed)
    assert store.get_booking(booking.booking_id).status is BookingStatus.PENDING  # type: ignore[union-attr]


def test_an_approval_never_commits_once_its_time_was_booked_over(inproc: Any) -> None:
    store, _, booking, pid, sid = pending_booking(inproc, "Booked over")
    # A function whose clock is past the deadline books the time (the pending span goes from its blocks),
    with time_machine.travel(booking.approval_expires_at + timedelta(seconds=1), tick=False):
        other = BookingService(DynamoDBBookingStore(inproc, TABLE), lambda: datetime.now(UTC))
        other.book(
            customer("punctual"),
            BookingRequest(pid, sid, booking.start, None, None),
            None,
            "p",
            lambda b: {"id": b.booking_id},
            BY,
        )
    # then an approver whose clock is a moment behind (it still reads the booking as pending) approves.
    with time_machine.travel(booking.approval_expires_at - timedelta(seconds=5), tick=False):
        assert not isinstance(store.approve(booking, BY), Committed)
    assert store.get_booking(booking.booking_id).status is BookingStatus.PENDING  # type: ignore[union-attr]


def test_approve_and_decline_read_together_only_one_commits(inproc: Any) -> None:
    store, _, booking, _, _ = pending_booking(inproc, "Two deciders")
    first = store.approve(booking, BY)
    second = store.decline(booking, "no", BY)  # decided on the same read
    assert isinstance(first, Committed) and not isinstance(second, Committed)
    assert store.get_booking(booking.booking_id).status is BookingStatus.CONFIRMED  # type: ignore[union-attr]
    store, _, booking, _, _ = pending_booking(inproc, "Two deciders, other order")
    assert isinstance(store.decline(booking, "no", BY), Committed)
    assert not isinstance(store.approve(booking, BY), Committed)
    assert store.get_booking(booking.booking_id).status is BookingStatus.DECLINED  # type: ignore[union-attr]
