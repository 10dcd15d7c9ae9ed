"""Approval against the claim scheme in-process (moto, one table), where the table can be changed
between a decision's read and its write: an approval never commits past its deadline, whatever the
approver's clock, nor once the time was booked over; approve and decline read together, one commits;
a lapse written down by the minute's sweep between a full counter's refusal (or read) and the look for
lapsed counts never leaves the customer refused for a count already given back."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import time_machine

from services.availability.adapters.dynamodb_store import DynamoDBProviderStore
from services.availability.domain.use_cases import AvailabilityService
from services.booking.adapters.dynamodb_store import DynamoDBBookingStore
from services.booking.domain.holds import HoldService
from services.booking.domain.models import BookingStatus
from services.booking.domain.ports import Committed, LimitReached, Stale
from services.booking.domain.series import SeriesService
from services.booking.domain.use_cases import (
    EXPIRY,
    MAX_ATTEMPTS,
    BookingRequest,
    BookingService,
    SlotUnavailableError,
)
from services.common.auth import Group, Principal
from services.common.recurrence import Recurrence
from tests.integration.test_claim_properties import BY, TABLE, invoke, open_provider

pytestmark = pytest.mark.slow


def customer(sub: str) -> Principal:
    return Principal(sub, frozenset({Group.CUSTOMERS}))


def approval_service(pid: str, **limits: int) -> str:
    body = {
        **limits,
        "name": "Consult",
        "durationMinutes": 30,
        "minNoticeMinutes": 0,
        "slotStepMinutes": 30,
        "requiresApproval": True,
        "approvalTimeoutHours": 1,
    }
    return str(invoke("POST", f"/providers/{pid}/services", body)["serviceId"])


def pending_booking(
    client: Any, name: str, **limits: int
) -> tuple[DynamoDBBookingStore, BookingService, Any, str, str]:
    pid = open_provider(name, "06:00", "22:00")
    sid = approval_service(pid, **limits)
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


class SweptAfterTheRefusal(DynamoDBBookingStore):
    """The minute's sweep writes `lapsed` down just after the first claim a full counter refused."""

    def __init__(self, client: Any, lapsed: Any) -> None:
        super().__init__(client, TABLE)
        self.lapsed: Any = lapsed

    def claim(self, *args: Any, **kwargs: Any) -> Any:
        return self._swept_after(super().claim(*args, **kwargs))

    def hold(self, *args: Any, **kwargs: Any) -> Any:
        return self._swept_after(super().hold(*args, **kwargs))

    def _swept_after(self, outcome: Any) -> Any:
        if isinstance(outcome, LimitReached) and self.lapsed is not None:
            assert isinstance(self.expire(self.lapsed, EXPIRY), Committed)
            self.lapsed = None
        return outcome


class SweptBeforeTheIndex(DynamoDBProviderStore):
    """The minute's sweep writes `lapsed` down between explain's read of the counts and of the index."""

    def __init__(self, client: Any, lapsed: Any) -> None:
        super().__init__(client, TABLE, lambda: datetime.now(UTC))
        self.bookings, self.lapsed = DynamoDBBookingStore(client, TABLE), lapsed

    def lapsed_counts(self, *args: Any) -> dict[str, int]:
        if self.lapsed is not None:
            assert isinstance(self.bookings.expire(self.lapsed, EXPIRY), Committed)
            self.lapsed = None
        return super().lapsed_counts(*args)


def booked(store: DynamoDBBookingStore, request: BookingRequest) -> bool:
    answer = BookingService(store, lambda: datetime.now(UTC)).book(
        customer("waiting"), request, None, "again", render, BY
    )
    return answer.status == 201


def held(store: DynamoDBBookingStore, request: BookingRequest) -> bool:
    return HoldService(store, lambda: datetime.now(UTC)).hold(customer("waiting"), request, BY).start == request.start


@pytest.mark.parametrize("change", [booked, held], ids=["booking", "hold"])
def test_a_lapse_written_down_after_a_full_counter_refused_a_change_still_lets_it_through(
    inproc: Any, change: Callable[[DynamoDBBookingStore, BookingRequest], bool]
) -> None:
    _, _, lapsed, pid, sid = pending_booking(
        inproc, f"Swept after the refusal ({change.__name__})", maxPerCustomerPerDay=1
    )
    later = lapsed.start + timedelta(hours=2)
    with time_machine.travel(lapsed.approval_expires_at + timedelta(seconds=1), tick=False):
        store = SweptAfterTheRefusal(inproc, lapsed)
        done = change(store, BookingRequest(pid, sid, later, None, None))
    assert store.lapsed is None, "the sweep never ran: the first claim was not refused"
    assert done


class ContendedUntilTheLastAttempt(DynamoDBBookingStore):
    """Every claim before the last attempt's loses a race (the calendar moved under it)."""

    def __init__(self, client: Any) -> None:
        super().__init__(client, TABLE)
        self.claims = 0

    def claim(self, *args: Any, **kwargs: Any) -> Any:
        self.claims += 1
        return Stale() if self.claims < MAX_ATTEMPTS else super().claim(*args, **kwargs)


def test_a_full_counter_on_the_last_attempt_is_a_refusal_not_contention(inproc: Any) -> None:
    """No attempt is left to claim again after the look: it refuses on the look, which found nothing."""
    _, _, pending, pid, sid = pending_booking(inproc, "Refused at the last attempt", maxPerCustomerPerDay=1)
    store = ContendedUntilTheLastAttempt(inproc)
    with pytest.raises(SlotUnavailableError) as refused:
        booked(store, BookingRequest(pid, sid, pending.start + timedelta(hours=2), None, None))
    assert (store.claims, refused.value.reason) == (MAX_ATTEMPTS, "LIMIT_REACHED")


def test_explain_reads_a_lapse_written_down_between_its_reads_as_given_back(inproc: Any) -> None:
    _, _, lapsed, pid, sid = pending_booking(inproc, "Swept before the index", maxPerCustomerPerDay=1)
    later = lapsed.start + timedelta(hours=2)
    with time_machine.travel(lapsed.approval_expires_at + timedelta(seconds=1), tick=False):
        store = SweptBeforeTheIndex(inproc, lapsed)
        why = AvailabilityService(store, lambda: datetime.now(UTC)).explain_slot(customer("waiting"), pid, sid, later)
    assert store.lapsed is None, "the sweep never ran: the counts did not look full"
    assert (why.bookable, why.reasons) == (True, []), why


def test_a_series_refused_only_for_lapsed_counts_in_many_weeks_is_booked(inproc: Any) -> None:
    """The look for lapsed counts spans every refused occurrence, however many weeks apart."""
    store, bookings, lapsed, pid, sid = pending_booking(inproc, "Series over lapses", maxPerCustomerPerDay=1)
    for week in (1, 2, 4, 5):  # the same customer's pending bookings, one a day, in five of six weeks
        start = lapsed.start + timedelta(weeks=week)
        bookings.book(customer("waiting"), BookingRequest(pid, sid, start, None, None), None, f"w{week}", render, BY)
    with time_machine.travel(lapsed.approval_expires_at + timedelta(minutes=5), tick=False):
        answer = SeriesService(store, lambda: datetime.now(UTC)).book(
            customer("waiting"),
            BookingRequest(pid, sid, lapsed.start + timedelta(hours=2), None, None),
            Recurrence("WEEKLY", 6),
            None,
            "series",
            lambda booked: {"id": booked.series.series_id},
            BY,
        )
    assert answer.status == 201, answer.body


def render(booking: Any) -> dict[str, object]:
    return {"id": booking.booking_id}
