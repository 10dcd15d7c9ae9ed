"""Recurring series through the local stack: every occurrence at the same local wall-clock time across
the DST changes of New York (March, November) and Sydney (April, October); one occurrence that cannot
be booked books nothing and is named, with every other; a 52-week series books all 52; limits count
the series' own occurrences; a retry with the Idempotency-Key gets the first answer; cancelling the
series frees every occurrence not started; the trail has one event per occurrence and one for the
series."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

import pytest

from local.stack import LocalStack
from tests.integration.conftest import call, call_function, eventually, token

pytestmark = pytest.mark.slow

EVERY_DAY = {day: [{"start": "08:00", "end": "18:00"}] for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
VISIT = {"name": "Visit", "durationMinutes": 60, "slotStepMinutes": 60, "minNoticeMinutes": 0, "maxAdvanceDays": 365}


def clinic(stack: LocalStack, owner: str, time_zone: str, **service: Any) -> tuple[str, str]:
    who = token(stack, owner, ["providers"])
    status, _, provider = call(stack, "POST", "/providers", token=who, body={"name": owner, "timeZone": time_zone})
    assert status == 201, provider
    pid = provider["providerId"]
    assert call(stack, "PUT", f"/providers/{pid}/schedule", token=who, body={"weekly": EVERY_DAY})[0] == 200
    status, _, created = call(stack, "POST", f"/providers/{pid}/services", token=who, body={**VISIT, **service})
    assert status == 201, created
    return pid, created["serviceId"]


def book_series(
    stack: LocalStack, who: str, pid: str, sid: str, start: datetime, recurrence: dict[str, Any], key: str | None = None
) -> tuple[int, dict[str, str], Any]:
    headers = {"Idempotency-Key": key} if key else None
    body = {"providerId": pid, "serviceId": sid, "start": start.isoformat(), "recurrence": recurrence}
    return call(stack, "POST", "/bookings", token=token(stack, who, ["customers"]), body=body, headers=headers)


def offered(stack: LocalStack, pid: str, sid: str, day: date, zone: ZoneInfo) -> list[datetime]:
    start = datetime.combine(day, time(), zone)
    query = f"serviceId={sid}&from={quote(start.isoformat())}&to={quote((start + timedelta(days=1)).isoformat())}"
    status, _, body = call(stack, "GET", f"/providers/{pid}/slots?{query}", token=token(stack, "looker", ["customers"]))
    assert status == 200, body
    return [datetime.fromisoformat(slot["start"]) for slot in body["slots"]]


def next_change(zone: ZoneInfo, month: int) -> date:
    """The next local date in `month` on which `zone`'s offset changes."""
    day = datetime.now(UTC).date() + timedelta(days=1)
    while True:
        before = datetime.combine(day, time(), zone).utcoffset()
        after = datetime.combine(day + timedelta(days=1), time(), zone).utcoffset()
        if day.month == month and before != after:
            return day
        day += timedelta(days=1)


def across(change: date) -> tuple[date, dict[str, Any]]:
    """A first date and a recurrence whose occurrences fall on both sides of `change`, all within the
    service's 365 days: weekly for a few weeks when there is room, else daily."""
    tomorrow = datetime.now(UTC).date() + timedelta(days=1)
    latest = datetime.now(UTC).date() + timedelta(days=360)
    layouts: list[tuple[date, dict[str, Any]]] = [
        (change - timedelta(days=14), {"frequency": "WEEKLY", "count": 5}),
        (change - timedelta(days=7), {"frequency": "WEEKLY", "count": 3}),
        (change - timedelta(days=2), {"frequency": "DAILY", "count": 5}),
        (change - timedelta(days=1), {"frequency": "DAILY", "count": 3}),
    ]
    for first, recurrence in layouts:
        step = 7 if recurrence["frequency"] == "WEEKLY" else 1
        if first >= tomorrow and first + timedelta(days=step * (recurrence["count"] - 1)) <= latest:
            return first, recurrence
    pytest.skip(f"the change of {change} is too close to today or to the booking window's end for a series")


@pytest.mark.parametrize(
    ("time_zone", "month"),
    [("America/New_York", 3), ("America/New_York", 11), ("Australia/Sydney", 4), ("Australia/Sydney", 10)],
)
def test_every_occurrence_is_at_the_same_local_time_across_a_dst_change(
    stack: LocalStack, time_zone: str, month: int
) -> None:
    zone = ZoneInfo(time_zone)
    pid, sid = clinic(stack, f"dst-{time_zone}-{month}", time_zone)
    first, recurrence = across(next_change(zone, month))
    start = datetime.combine(first, time(9), zone)
    status, headers, body = book_series(stack, f"dst-customer-{month}", pid, sid, start, recurrence)
    assert status == 201, body
    assert headers["Location"] == f"/series/{body['seriesId']}"
    starts = [datetime.fromisoformat(item["start"]) for item in body["items"]]
    assert len(starts) == recurrence["count"]
    assert {s.astimezone(zone).time() for s in starts} == {time(9)}
    assert len({s.utcoffset() for s in starts}) == 2  # the change is between them
    assert {item["seriesId"] for item in body["items"]} == {body["seriesId"]}
    for item in body["items"]:
        moment = datetime.fromisoformat(item["start"])
        assert moment not in offered(stack, pid, sid, moment.astimezone(zone).date(), zone)


def test_one_occurrence_that_cannot_be_booked_books_none_and_every_one_is_named(stack: LocalStack) -> None:
    zone = ZoneInfo("Europe/Berlin")
    pid, sid = clinic(stack, "series-conflicts", zone.key)
    owner = token(stack, "series-conflicts", ["providers"])
    first = datetime.now(zone).date() + timedelta(days=7)
    start = datetime.combine(first, time(10), zone)
    third = start + timedelta(days=2)
    taken = {"providerId": pid, "serviceId": sid, "start": third.isoformat()}
    assert call(stack, "POST", "/bookings", token=token(stack, "early-bird", ["customers"]), body=taken)[0] == 201
    fifth = first + timedelta(days=4)
    closed: dict[str, list[Any]] = {"intervals": []}
    assert call(stack, "PUT", f"/providers/{pid}/overrides/{fifth.isoformat()}", token=owner, body=closed)[0] == 200

    status, _, problem = book_series(stack, "series-fan", pid, sid, start, {"frequency": "DAILY", "count": 6})

    assert status == 409 and problem["code"] == "BOOKING_CONFLICT", problem
    named = [(datetime.fromisoformat(c["start"]), c["reason"]) for c in problem["conflicts"]]
    assert named == [(third, "BOOKED"), (datetime.combine(fifth, time(10), zone), "CLOSED_BY_OVERRIDE")]
    mine = call(stack, "GET", "/bookings", token=token(stack, "series-fan", ["customers"]))[2]["items"]
    assert mine == []
    for n in (0, 1, 3, 5):
        moment = start + timedelta(days=n)
        assert moment in offered(stack, pid, sid, moment.date(), zone), f"occurrence {n + 1} is not free again"


def test_a_52_week_series_books_every_occurrence_and_is_read_and_cancelled_whole(stack: LocalStack) -> None:
    zone = ZoneInfo("America/New_York")
    pid, sid = clinic(stack, "series-year", zone.key)
    start = datetime.combine(datetime.now(zone).date() + timedelta(days=2), time(11), zone)
    status, _, body = book_series(stack, "weekly-patient", pid, sid, start, {"frequency": "WEEKLY", "count": 52})
    assert status == 201, body
    assert len(body["items"]) == 52 and body["status"] == "ACTIVE"
    assert {datetime.fromisoformat(i["start"]).astimezone(zone).time() for i in body["items"]} == {time(11)}
    series_id = body["seriesId"]

    patient = token(stack, "weekly-patient", ["customers"])
    assert call(stack, "GET", f"/series/{series_id}", token=patient)[2]["items"] == body["items"]
    assert call(stack, "GET", f"/series/{series_id}", token=token(stack, "stranger", ["customers"]))[0] == 404
    assert call(stack, "GET", f"/series/{series_id}", token=token(stack, "ops-1", ["ops"]))[0] == 200
    ops_cancel = call(stack, "POST", f"/series/{series_id}/cancel", token=token(stack, "ops-1", ["ops"]), body={})
    assert ops_cancel[0] == 403
    last = datetime.fromisoformat(body["items"][-1]["start"])
    assert last not in offered(stack, pid, sid, last.astimezone(zone).date(), zone)

    status, _, cancelled = call(stack, "POST", f"/series/{series_id}/cancel", token=patient, body={"reason": "moving"})
    assert status == 200, cancelled
    assert cancelled["status"] == "CANCELLED"
    assert {item["status"] for item in cancelled["items"]} == {"CANCELLED"}
    assert last in offered(stack, pid, sid, last.astimezone(zone).date(), zone)
    again = call(stack, "POST", f"/series/{series_id}/cancel", token=patient, body={})
    assert again[0] == 200 and again[2]["items"] == cancelled["items"]


def test_limits_count_the_series_own_occurrences(stack: LocalStack) -> None:
    zone = ZoneInfo("UTC")
    pid, sid = clinic(stack, "series-limits", zone.key, maxPerCustomerPerWeek=2)
    monday = datetime.now(zone).date() + timedelta(days=7 - datetime.now(zone).weekday() + 7)
    start = datetime.combine(monday, time(9), zone)
    status, _, problem = book_series(stack, "keen", pid, sid, start, {"frequency": "DAILY", "count": 4})
    assert status == 409, problem
    assert [(c["start"], c["reasons"]) for c in problem["conflicts"]] == [
        ((start + timedelta(days=2)).isoformat(), ["LIMIT_REACHED"]),
        ((start + timedelta(days=3)).isoformat(), ["LIMIT_REACHED"]),
    ]
    status, _, body = book_series(stack, "keen", pid, sid, start, {"frequency": "WEEKLY", "count": 3})
    assert status == 201, body


def test_a_retry_with_the_same_key_gets_the_first_answer(stack: LocalStack) -> None:
    zone = ZoneInfo("Asia/Kolkata")
    pid, sid = clinic(stack, "series-retry", zone.key)
    start = datetime.combine(datetime.now(zone).date() + timedelta(days=5), time(14), zone)
    recurrence = {"frequency": "DAILY", "count": 3, "interval": 2}
    first = book_series(stack, "retrier", pid, sid, start, recurrence, key="series-key-1")
    again = book_series(stack, "retrier", pid, sid, start, recurrence, key="series-key-1")
    assert first[0] == again[0] == 201
    assert again[2] == first[2]
    other = book_series(stack, "retrier", pid, sid, start, {**recurrence, "count": 4}, key="series-key-1")
    assert other[0] == 422 and other[2]["code"] == "IDEMPOTENCY_KEY_REUSED"
    starts = [datetime.fromisoformat(item["start"]) for item in first[2]["items"]]
    assert starts == [start, start + timedelta(days=2), start + timedelta(days=4)]


def test_the_trail_has_an_event_per_occurrence_and_one_for_the_series(stack: LocalStack) -> None:
    zone = ZoneInfo("UTC")
    pid, sid = clinic(stack, "series-trail", zone.key)
    start = datetime.combine(datetime.now(zone).date() + timedelta(days=4), time(15), zone)
    status, _, body = book_series(stack, "trail-customer", pid, sid, start, {"frequency": "WEEKLY", "count": 3})
    assert status == 201, body
    admin = token(stack, "trail-admin", ["admins"])

    def series_events() -> list[Any]:
        query = f"entityType=Series&entityId={body['seriesId']}"
        return list(call(stack, "GET", f"/audit/events?{query}", token=admin)[2]["items"])

    # The trail may be behind by the other series' hundreds of changes: allow it a minute and a half.
    (created,) = eventually(series_events, seconds=90)
    assert created["action"] == "SERIES_CREATED" and created["actor"] == "trail-customer"
    for item in body["items"]:

        def history(booking_id: str = item["bookingId"]) -> list[Any]:
            return list(call(stack, "GET", f"/bookings/{booking_id}/history", token=admin)[2]["items"])

        assert [event["action"] for event in eventually(history, seconds=90)] == ["BOOKING_CREATED"]


@pytest.mark.parametrize(
    ("case", "recurrence", "extra"),
    [
        ("a hold's time as a series' start", {"frequency": "DAILY", "count": 2}, {"holdId": "hld_" + "0" * 48}),
        ("one occurrence", {"frequency": "DAILY", "count": 1}, {}),
        ("53 occurrences", {"frequency": "WEEKLY", "count": 53}, {}),
        ("monthly", {"frequency": "MONTHLY", "count": 3}, {}),
        ("every 0 weeks", {"frequency": "WEEKLY", "count": 3, "interval": 0}, {}),
        ("a count as text", {"frequency": "WEEKLY", "count": "3"}, {}),
        ("an unknown field", {"frequency": "WEEKLY", "count": 3, "until": "2027-01-01"}, {}),
    ],
)
def test_a_bad_recurrence_is_refused_naming_it_and_books_nothing(
    stack: LocalStack, case: str, recurrence: dict[str, Any], extra: dict[str, Any]
) -> None:
    zone = ZoneInfo("UTC")
    pid, sid = clinic(stack, f"bad-series-{case}", zone.key)
    who = token(stack, "bad-series-customer", ["customers"])
    start = datetime.combine(datetime.now(zone).date() + timedelta(days=3), time(9), zone)
    body = {"providerId": pid, "serviceId": sid, "start": start.isoformat(), "recurrence": recurrence, **extra}
    # The gateway's validator stops it (its problem names the body) ...
    status, _, problem = call(stack, "POST", "/bookings", token=who, body=body)
    assert (status, problem["code"]) == (400, "VALIDATION_FAILED"), problem
    # ... and the function, were it reached, names the field.
    status, _, problem = call_function(stack, "POST", "/bookings", token=who, body=body)
    assert status == 400 and problem["errors"][0]["field"].startswith("body.recurrence"), problem
    assert (
        call(stack, "GET", f"/bookings?providerId={pid}", token=token(stack, f"bad-series-{case}", ["providers"]))[2][
            "items"
        ]
        == []
    )


def test_a_year_of_occurrences_with_the_longest_notes_is_kept_for_its_retry(stack: LocalStack) -> None:
    """52 answers of 1,000 emoji each: the kept answer must stay under DynamoDB's 400 KB item size."""
    zone = ZoneInfo("UTC")
    pid, sid = clinic(stack, "series-notes", zone.key)
    who = token(stack, "verbose", ["customers"])
    start = datetime.combine(datetime.now(zone).date() + timedelta(days=1), time(12), zone)
    body = {
        "providerId": pid,
        "serviceId": sid,
        "start": start.isoformat(),
        "notes": "\U0001f600" * 1000,
        "recurrence": {"frequency": "WEEKLY", "count": 52},
    }
    headers = {"Idempotency-Key": "long-notes"}
    first = call(stack, "POST", "/bookings", token=who, body=body, headers=headers)
    assert first[0] == 201, first[2]
    again = call(stack, "POST", "/bookings", token=who, body=body, headers=headers)
    assert again[0] == 201 and again[2] == first[2]
    assert {item["notes"] for item in first[2]["items"]} == {"\U0001f600" * 1000}
