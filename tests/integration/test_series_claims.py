"""Recurring series against the claim scheme in-process (moto, one table), where faults can be put
between a series' transactions: a function killed after its first part leaves nothing booked once
the claim expires; a part that loses a race gives back the parts before it, counters included, and
the series is refused naming the occurrence taken; a claim that expired and was booked over can
never commit, whatever the committing function's clock says; and a series decided against an oracle
that knows only intervals books exactly when every occurrence is free."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from unittest.mock import patch
from urllib.parse import quote

import pytest
import time_machine
from botocore.exceptions import ClientError
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from services.availability import handler as availability
from services.booking.adapters.dynamodb_store import DynamoDBBookingStore
from services.booking.domain.holds import HoldService
from services.booking.domain.series import BookedSeries, SeriesConflictError, SeriesService
from services.booking.domain.use_cases import BookingConflictError, BookingRequest, BookingService, ContendedError
from services.booking.http_models import series_json
from services.common import keys
from services.common.auth import Attribution, Group, Principal
from services.common.calendar_table import CalendarTable
from services.common.recurrence import Recurrence
from tests.integration.conftest import invoke_handler
from tests.integration.test_claim_properties import BY, TABLE, drawn_services, invoke, open_provider

pytestmark = pytest.mark.slow


class Killed(BaseException):
    """The function is gone: nothing after this reaches the table, and no handler of its runs."""


def customer(sub: str) -> Principal:
    return Principal(sub, frozenset({Group.CUSTOMERS}))


def render(booked: BookedSeries) -> dict[str, object]:
    return series_json(booked)


def render_booking(booking: Any) -> dict[str, object]:
    return {"bookingId": booking.booking_id}


def midnight(days: int) -> datetime:
    return datetime.combine(datetime.now(UTC).date() + timedelta(days=days), datetime.min.time(), UTC)


def series_spans(client: Any, pid: str, until: datetime) -> dict[str, Any]:
    """Every span of the provider's calendar up to `until`, by id, as a fresh read judges it."""
    calendar = CalendarTable(client, TABLE).calendar(pid, until)
    assert calendar is not None
    return dict(calendar.booked)


def counter(client: Any, pid: str, key: str) -> int | None:
    found = client.get_item(TableName=TABLE, Key=keys.limit_counter_key(pid, key), ConsistentRead=True).get("Item")
    return int(found["count"]["N"]) if found else None


def pending_items(client: Any, pid: str) -> list[Any]:
    answer = client.query(
        TableName=TABLE,
        KeyConditionExpression="PK = :pk AND begins_with(SK, :series)",
        ExpressionAttributeValues={":pk": {"S": keys.provider_pk(pid)}, ":series": {"S": keys.PENDING_SERIES_PREFIX}},
        ConsistentRead=True,
    )
    return list(answer["Items"])


def limited_provider(name: str, max_bookings_per_day: int) -> str:
    """A provider (UTC) open 06:00-22:00 every day that takes at most so many bookings a day."""
    body = {"name": name, "timeZone": "UTC", "maxBookingsPerDay": max_bookings_per_day}
    pid = str(invoke("POST", "/providers", body)["providerId"])
    weekly = {day: [{"start": "06:00", "end": "22:00"}] for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
    invoke("PUT", f"/providers/{pid}/schedule", {"weekly": weekly})
    return pid


def test_a_function_killed_after_its_first_part_leaves_nothing_booked_once_the_claim_expires(inproc: Any) -> None:
    pid = limited_provider("Killed series", max_bookings_per_day=1)
    (sid,) = drawn_services(pid, [(60, 0, 0, 1)])
    first = midnight(2) + timedelta(hours=9)
    series = SeriesService(DynamoDBBookingStore(inproc, TABLE), lambda: datetime.now(UTC))
    # 52 daily hours of two blocks each: two parts.
    transactions: list[str] = []

    def kill_after_first_part(model: Any, **_: Any) -> None:
        if transactions:
            raise Killed()
        if model.name == "TransactWriteItems":
            transactions.append(model.name)

    inproc.meta.events.register("before-call.dynamodb.*", kill_after_first_part)
    try:
        with pytest.raises(Killed):
            series.book(
                customer("doomed"),
                BookingRequest(pid, sid, first, None, None),
                Recurrence("DAILY", 52),
                None,
                "h",
                render,
                BY,
            )
    finally:
        inproc.meta.events.unregister("before-call.dynamodb.*", kill_after_first_part)

    # The first part's occurrences are held for the series (nobody else books them) until it expires,
    held = {i for i, span in series_spans(inproc, pid, midnight(60)).items() if span.expires_at is not None}
    assert 0 < len(held) < 52
    bookings = BookingService(DynamoDBBookingStore(inproc, TABLE), lambda: datetime.now(UTC))
    with pytest.raises(BookingConflictError):
        bookings.book(customer("other"), BookingRequest(pid, sid, first, None, None), None, "x", render_booking, BY)
    # and once it has, every one of them is free, with no request to free it, and none is a booking;
    # the day's count it raised (a limit of one a day) is given back when a booking finds it full.
    day = f"PROVIDER#DAY#{first.date()}"
    assert counter(inproc, pid, day) == 1
    second = first + timedelta(days=1)
    with time_machine.travel(datetime.now(UTC) + timedelta(seconds=61), tick=True):
        live = series_spans(inproc, pid, midnight(60))
        assert not [span for span in live.values() if span.live(datetime.now(UTC))]
        assert len(pending_items(inproc, pid)) == 1  # nothing has given the claim back yet
        # Explain already leaves out the counts the dead claim holds (a booking would get them back),
        path = f"/providers/{pid}/slots/explain?serviceId={sid}&start={quote(second.isoformat())}"
        status, explained = invoke_handler(availability, "GET", path, None, "other", "customers")
        assert (status, explained["bookable"], explained["reasons"]) == (200, True, []), explained
        # and a hold on another of its days gets the day's count back (as a booking would),
        HoldService(DynamoDBBookingStore(inproc, TABLE), lambda: datetime.now(UTC)).hold(
            customer("holder"), BookingRequest(pid, sid, second, None, None), BY
        )
        assert pending_items(inproc, pid) == []
        later = DynamoDBBookingStore(inproc, TABLE)
        BookingService(later, lambda: datetime.now(UTC)).book(
            customer("other"), BookingRequest(pid, sid, first, None, None), None, "x", render_booking, BY
        )
        booked = series_spans(inproc, pid, midnight(60))
        live_ones = sorted(span.customer_id for span in booked.values() if span.live(datetime.now(UTC)))
        assert live_ones == ["holder", "other"]
        assert counter(inproc, pid, day) == 1  # the day's count: the new booking's, the series' given back
        later_days = [counter(inproc, pid, f"PROVIDER#DAY#{first.date() + timedelta(days=n)}") for n in range(1, 52)]
        assert set(later_days) <= {0, None} and later_days.count(0) == len(held) - 1, later_days


def test_a_part_that_loses_a_race_gives_back_the_parts_before_it_and_the_series_names_the_time(inproc: Any) -> None:
    pid = limited_provider("Raced series", max_bookings_per_day=5)
    (sid,) = drawn_services(pid, [(60, 0, 0, 1)])
    first = midnight(2) + timedelta(hours=9)
    late = first + timedelta(days=50)  # an occurrence of the second part
    store = DynamoDBBookingStore(inproc, TABLE)
    rival = BookingService(DynamoDBBookingStore(inproc, TABLE), lambda: datetime.now(UTC))
    parts: list[str] = []

    def rival_books_between_the_parts(model: Any, **_: Any) -> None:
        if model.name == "TransactWriteItems" and not parts:
            parts.append("first")
            rival.book(customer("rival"), BookingRequest(pid, sid, late, None, None), None, "r", render_booking, BY)

    inproc.meta.events.register("after-call.dynamodb.TransactWriteItems", rival_books_between_the_parts)
    try:
        with pytest.raises(SeriesConflictError) as refused:
            SeriesService(store, lambda: datetime.now(UTC)).book(
                customer("series"),
                BookingRequest(pid, sid, first, None, None),
                Recurrence("DAILY", 52),
                None,
                "h",
                render,
                BY,
            )
    finally:
        inproc.meta.events.unregister("after-call.dynamodb.TransactWriteItems", rival_books_between_the_parts)

    assert [(start, reasons) for start, reasons in refused.value.conflicts] == [(late, ["BOOKED"])]
    spans = series_spans(inproc, pid, midnight(60))
    assert [span.customer_id for span in spans.values()] == ["rival"]
    assert pending_items(inproc, pid) == []
    counts = [counter(inproc, pid, f"PROVIDER#DAY#{(first + timedelta(days=day)).date()}") for day in range(52)]
    assert counts[50] == 1 and all(count in (0, None) for count in counts[:50] + counts[51:]), counts
    assert any(count == 0 for count in counts)  # the first part had counted, and gave its counts back


def test_an_expired_claim_booked_over_never_commits_whatever_the_committers_clock(inproc: Any) -> None:
    pid = open_provider("Skewed series", "06:00", "22:00")
    (sid,) = drawn_services(pid, [(60, 0, 0, 1)])
    first = midnight(3) + timedelta(hours=10)
    commits: list[Any] = []

    def killed_before_the_commit(params: Any, **_: Any) -> None:
        deletes = [item["Delete"]["Key"]["SK"]["S"] for item in params["TransactItems"] if "Delete" in item]
        if any(sort_key.startswith(keys.PENDING_SERIES_PREFIX) for sort_key in deletes):
            commits.append(params)
            raise Killed()

    inproc.meta.events.register("before-parameter-build.dynamodb.TransactWriteItems", killed_before_the_commit)
    try:
        with pytest.raises(Killed):
            SeriesService(DynamoDBBookingStore(inproc, TABLE), lambda: datetime.now(UTC)).book(
                customer("slow"),
                BookingRequest(pid, sid, first, None, None),
                Recurrence("WEEKLY", 2),
                None,
                "h",
                render,
                BY,
            )
    finally:
        inproc.meta.events.unregister("before-parameter-build.dynamodb.TransactWriteItems", killed_before_the_commit)
    # Once the claim has expired, someone books its first occurrence's time (and kills the claim),
    with time_machine.travel(datetime.now(UTC) + timedelta(seconds=61), tick=True):
        BookingService(DynamoDBBookingStore(inproc, TABLE), lambda: datetime.now(UTC)).book(
            customer("punctual"), BookingRequest(pid, sid, first, None, None), None, "p", render_booking, BY
        )
    # then the commit arrives, from a function whose clock judged the claim live (its `:now` is from
    # before the expiry): it must fail, or the punctual customer's time would be double-booked.
    with pytest.raises(ClientError) as refused:
        inproc.transact_write_items(**commits[0])
    assert refused.value.response["Error"]["Code"] == "TransactionCanceledException"
    first_reason = refused.value.response["CancellationReasons"][0]  # the pending item's Delete: killed
    assert first_reason["Code"] == "ConditionalCheckFailed"
    spans = series_spans(inproc, pid, midnight(20))
    assert [span.customer_id for span in spans.values() if span.live(datetime.now(UTC))] == ["punctual"]


# The oracle: a provider open 08:00-18:00 UTC every day, one-hour appointments on the hour, one seat.
EXISTING = st.lists(st.integers(0, 13 * 10 - 1), max_size=8, unique=True)  # (day, hour) indexes


@settings(
    max_examples=10,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    phases=[Phase.explicit, Phase.reuse, Phase.generate],  # a failing example is small already: shrinking costs minutes
)
@given(
    existing=EXISTING,
    hour=st.integers(6, 19),
    frequency=st.sampled_from(["DAILY", "WEEKLY"]),
    interval=st.integers(1, 2),
    count=st.integers(2, 6),  # within the service's 90 days of booking window, even every other week
)
def test_a_series_books_exactly_when_an_interval_oracle_finds_every_occurrence_free(
    inproc: Any, existing: list[int], hour: int, frequency: str, interval: int, count: int
) -> None:
    pid = open_provider("Oracle series", "08:00", "18:00")
    (sid,) = drawn_services(pid, [(60, 0, 0, 1)])
    store = DynamoDBBookingStore(inproc, TABLE)
    bookings = BookingService(store, lambda: datetime.now(UTC))
    base = midnight(2)
    taken = set()
    for index in existing:
        start = base + timedelta(days=index // 10, hours=8 + index % 10)
        bookings.book(customer(f"c{index}"), BookingRequest(pid, sid, start, None, None), None, "e", render_booking, BY)
        taken.add(start)
    first = base + timedelta(hours=hour)
    step = timedelta(days=interval * (7 if frequency == "WEEKLY" else 1))
    starts = [first + n * step for n in range(count)]
    expected = [s for s in starts if s in taken or not 8 <= s.hour < 18]
    series = SeriesService(store, lambda: datetime.now(UTC))
    request = BookingRequest(pid, sid, first, None, None)
    try:
        with patch("services.booking.adapters.dynamodb_store.MAX_SERIES_PART_ITEMS", 3):  # parts of one or two
            answer = series.book(customer("s"), request, Recurrence(frequency, count, interval), None, "h", render, BY)  # type: ignore[arg-type]
    except SeriesConflictError as refused:
        assert [start for start, _ in refused.conflicts] == expected
        assert expected
        booked = {span.session_start for span in series_spans(inproc, pid, base + timedelta(days=120)).values()}
        assert booked == taken
        return
    assert expected == []
    items: Any = answer.body["items"]
    assert [datetime.fromisoformat(item["start"]) for item in items] == starts
    booked = {span.session_start for span in series_spans(inproc, pid, base + timedelta(days=120)).values()}
    assert booked == taken | set(starts)


def test_a_retry_while_its_first_try_is_claiming_is_not_told_the_time_is_taken(inproc: Any) -> None:
    pid = limited_provider("Retried series", max_bookings_per_day=1)  # its own claim counts: still no 409
    (sid,) = drawn_services(pid, [(60, 0, 0, 1)])
    first = midnight(3) + timedelta(hours=8)
    request = BookingRequest(pid, sid, first, None, None)
    recurrence = Recurrence("WEEKLY", 3)
    retried: list[Any] = []
    by = Attribution("retrier", "r", BY.trace_id)  # the key is the caller's: the actor is the customer

    def retry_before_the_commit(params: Any, **_: Any) -> None:
        deletes = [item["Delete"]["Key"]["SK"]["S"] for item in params["TransactItems"] if "Delete" in item]
        if not retried and any(sort_key.startswith(keys.PENDING_SERIES_PREFIX) for sort_key in deletes):
            retried.append("in the window")
            again = SeriesService(DynamoDBBookingStore(inproc, TABLE), lambda: datetime.now(UTC))
            with pytest.raises(ContendedError):  # waited for its first try, which cannot commit meanwhile
                again.book(customer("retrier"), request, recurrence, "key-1", "h", render, by)

    series = SeriesService(DynamoDBBookingStore(inproc, TABLE), lambda: datetime.now(UTC))
    inproc.meta.events.register("before-parameter-build.dynamodb.TransactWriteItems", retry_before_the_commit)
    try:
        answer = series.book(customer("retrier"), request, recurrence, "key-1", "h", render, by)
    finally:
        inproc.meta.events.unregister("before-parameter-build.dynamodb.TransactWriteItems", retry_before_the_commit)
    assert retried and answer.status == 201
    replayed = series.book(customer("retrier"), request, recurrence, "key-1", "h", render, by)
    assert replayed.replayed and replayed.body == answer.body
    # Another request for those times, once they are booked, is refused as booked.
    other = SeriesService(DynamoDBBookingStore(inproc, TABLE), lambda: datetime.now(UTC))
    with pytest.raises(SeriesConflictError) as refused:
        other.book(customer("retrier"), request, recurrence, None, "h", render, by)
    assert {reason for _, reasons in refused.value.conflicts for reason in reasons} == {"BOOKED", "LIMIT_REACHED"}


def test_cancelling_a_series_leaves_the_occurrences_that_have_started(inproc: Any) -> None:
    pid = open_provider("Started series", "00:00", "24:00")
    (sid,) = drawn_services(pid, [(30, 0, 0, 1)])
    soon = datetime.now(UTC).replace(second=0, microsecond=0) + timedelta(minutes=60)
    soon -= timedelta(minutes=soon.minute % 15)
    if (soon + timedelta(minutes=30)).date() != soon.date():
        soon += timedelta(minutes=30)  # a day's hours end at midnight: no slot spans it (run at 22:30 UTC)
    series = SeriesService(DynamoDBBookingStore(inproc, TABLE), lambda: datetime.now(UTC))
    answer = series.book(
        customer("regular"), BookingRequest(pid, sid, soon, None, None), Recurrence("DAILY", 3), None, "h", render, BY
    )
    series_id = str(answer.body["seriesId"])
    with time_machine.travel(soon + timedelta(minutes=5), tick=True):
        cancelled, now_cancelled = series.cancel(customer("regular"), series_id, "moving", BY)
    assert now_cancelled == 2
    assert cancelled.series.status.value == "CANCELLED"
    assert [booking.status.value for booking in cancelled.bookings] == ["CONFIRMED", "CANCELLED", "CANCELLED"]
