"""Calendar feeds through the local stack (decision 0028): a provider's and a customer's bookings as
RFC 5545, parsed back with `icalendar`; a reschedule raises the SEQUENCE and keeps the UID, a cancel
is STATUS:CANCELLED; an unchanged feed answers 304 to its ETag and a changed one 200; the owner and
admins read a provider's feed, nobody else; and a provider's secret feed URL works without a token
until it is replaced or revoked, then answers 404, as a wrong key does; and the trail says who
shared and who revoked it."""

from __future__ import annotations

import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest
from icalendar import Calendar

from local.stack import LocalStack
from tests.integration.conftest import call, eventually, token
from tests.integration.test_booking_api import WEEKDAYS, book, future_day, make_provider

pytestmark = pytest.mark.slow

OWNER = "feed-owner"
OPEN = {day: [{"start": "09:00", "end": "17:00"}] for day in WEEKDAYS}


def fetch(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, dict(answer.headers), answer.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def events(body: bytes) -> dict[str, Any]:
    """UID → VEVENT of a feed, parsed back by `icalendar`; each UID once."""
    calendar = Calendar.from_ical(body)
    assert calendar["VERSION"] == "2.0" and calendar["PRODID"]
    found = calendar.walk("VEVENT")
    uids = [str(event["UID"]) for event in found]
    assert len(uids) == len(set(uids)), uids
    return dict(zip(uids, found, strict=True))


@pytest.fixture(scope="module")
def clinic(stack: LocalStack) -> tuple[str, str]:
    pid, (sid,) = make_provider(stack, OWNER, "Feed Clinic", OPEN, [{"name": "Check-up", "durationMinutes": 30}])
    return pid, sid


def at(hour: int, minute: int = 0) -> str:
    from tests.integration.test_booking_api import ZONE

    day = future_day(3)
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=ZONE).isoformat()


def test_a_providers_feed_shows_each_booking_once_with_its_changes(stack: LocalStack, clinic: tuple[str, str]) -> None:
    pid, sid = clinic
    customer = token(stack, "feed-customer", ["customers"])
    moved = book(stack, customer, pid, sid, at(9), notes="knee hurts since May")[2]
    cancelled = book(stack, customer, pid, sid, at(10))[2]
    path = f"/bookings/{moved['bookingId']}/reschedule"
    assert call(stack, "POST", path, token=customer, body={"start": at(11)})[0] == 200
    reason = {"reason": "moving to Lisbon"}
    assert call(stack, "POST", f"/bookings/{cancelled['bookingId']}/cancel", token=customer, body=reason)[0] == 200

    url = f"{stack.url}/providers/{pid}/calendar.ics"
    owner = {"Authorization": f"Bearer {token(stack, OWNER, ['providers'])}"}
    status, headers, body = fetch(url, owner)
    assert status == 200 and headers["Content-Type"].startswith("text/calendar"), body[:300]
    found = events(body)
    event = found[f"{moved['bookingId']}@appointments"]
    start = datetime.fromisoformat(at(11)).astimezone(UTC)
    # UTC times (no TZID), the service's name, and SEQUENCE 1: moved once since it was made
    assert event.decoded("DTSTART") == start and event.decoded("DTEND") == start + timedelta(minutes=30)
    assert "DTSTART:" + start.strftime("%Y%m%dT%H%M%SZ") in body.decode()
    assert (int(event["SEQUENCE"]), str(event["STATUS"]), str(event["SUMMARY"])) == (1, "CONFIRMED", "Check-up")
    gone = found[f"{cancelled['bookingId']}@appointments"]
    assert (str(gone["STATUS"]), int(gone["SEQUENCE"])) == ("CANCELLED", 1)
    # no customer's id, nor words: a shared URL shows it all
    assert [word for word in ("feed-customer", "knee hurts", "Lisbon") if word in body.decode()] == []

    # Unchanged: 304 to its ETag, no body. Changed: 200 and a new tag.
    tag = headers["ETag"]
    assert fetch(url, owner)[2] == body  # asked again, the same bytes: the tag holds
    status, again, body_again = fetch(url, {**owner, "If-None-Match": tag})
    assert (status, body_again, again["ETag"]) == (304, b"", tag)
    assert fetch(url, {**owner, "If-None-Match": f'"other", W/{tag}'})[0] == 304  # weak comparison, a list
    assert fetch(url, {**owner, "If-None-Match": '"other"'})[0] == 200
    assert call(stack, "POST", f"/bookings/{moved['bookingId']}/cancel", token=customer, body={})[0] == 200
    status, changed, body = fetch(url, {**owner, "If-None-Match": tag})
    assert status == 200 and changed["ETag"] != tag
    assert str(events(body)[f"{moved['bookingId']}@appointments"]["STATUS"]) == "CANCELLED"


@pytest.mark.parametrize(
    ("who", "groups", "expected"),
    [("feed-owner", ["providers"], 200), ("feed-admin", ["admins"], 200), ("feed-stranger", ["providers"], 403),
     ("feed-customer", ["customers"], 403), ("feed-ops", ["ops"], 403)],
)  # fmt: skip
def test_only_the_owner_and_admins_read_a_providers_feed(
    stack: LocalStack, clinic: tuple[str, str], who: str, groups: list[str], expected: int
) -> None:
    pid, _ = clinic
    caller = {"Authorization": f"Bearer {token(stack, who, groups)}"}
    assert fetch(f"{stack.url}/providers/{pid}/calendar.ics", caller)[0] == expected
    assert fetch(f"{stack.url}/providers/{pid}/calendar.ics")[0] == 401  # no token: the gateway's


def test_a_customers_feed_holds_their_own_bookings_only(stack: LocalStack, clinic: tuple[str, str]) -> None:
    pid, sid = clinic
    mine = book(stack, token(stack, "feed-me", ["customers"]), pid, sid, at(14))[2]
    theirs = book(stack, token(stack, "feed-them", ["customers"]), pid, sid, at(15))[2]
    caller = {"Authorization": f"Bearer {token(stack, 'feed-me', ['customers'])}"}
    status, _, body = fetch(f"{stack.url}/me/calendar.ics", caller)
    assert status == 200
    found = events(body)
    assert f"{mine['bookingId']}@appointments" in found and f"{theirs['bookingId']}@appointments" not in found


def test_a_shared_feed_url_works_without_a_token_until_replaced_or_revoked(
    stack: LocalStack, clinic: tuple[str, str]
) -> None:
    pid, _ = clinic
    owner = token(stack, OWNER, ["providers"])
    status, _, shared = call(stack, "POST", f"/providers/{pid}/feed", token=owner)
    assert status == 201, shared
    url = shared["url"]
    parts = urlsplit(url)
    assert url.startswith(stack.url) and parts.path == f"/feeds/{shared['feedId']}/calendar.ics"
    status, headers, body = fetch(url)  # no token
    assert status == 200 and events(body), body[:300]
    authorized = {"Authorization": f"Bearer {owner}"}
    assert body == fetch(f"{stack.url}/providers/{pid}/calendar.ics", authorized)[2]
    # what calendar apps poll answers 304 too; and the key is in no log
    assert fetch(url, {"If-None-Match": headers["ETag"]})[0] == 304
    key = parts.query.removeprefix("key=")
    logs = [stack.logs_dir / "api-access.log", *stack.logs_dir.glob("appointments-local-*.log")]
    assert not [log.name for log in logs if key in log.read_text(errors="replace")]
    # a wrong key is a feed that does not exist
    assert fetch(url[: -len(parts.query)] + "key=guessed")[0] == 404
    # a new URL replaces it; a stranger may not make one
    assert call(stack, "POST", f"/providers/{pid}/feed", token=token(stack, "feed-stranger", ["providers"]))[0] == 403
    status, _, replaced = call(stack, "POST", f"/providers/{pid}/feed", token=owner)
    assert status == 201 and replaced["url"] != url
    assert fetch(url)[0] == 404 and fetch(replaced["url"])[0] == 200
    # an admin may make one too; a stranger may not revoke it
    status, _, by_admin = call(stack, "POST", f"/providers/{pid}/feed", token=token(stack, "feed-admin", ["admins"]))
    assert status == 201 and fetch(replaced["url"])[0] == 404 and fetch(by_admin["url"])[0] == 200
    stranger = token(stack, "feed-stranger", ["providers"])
    assert call(stack, "DELETE", f"/providers/{pid}/feed", token=stranger)[0] == 403
    # revoked, it is gone; revoking again finds nothing
    assert call(stack, "DELETE", f"/providers/{pid}/feed", token=owner)[0] == 204
    assert fetch(by_admin["url"])[0] == 404
    assert call(stack, "DELETE", f"/providers/{pid}/feed", token=owner)[0] == 404
    # who shared it and who revoked it is in the trail (ops and admins read a provider's)
    ops = token(stack, "feed-ops", ["ops"])

    def trail() -> list[tuple[str, str]]:
        body = call(stack, "GET", f"/audit/events?entityType=Provider&entityId={pid}", token=ops)[2]
        return [(e["action"], e["actor"]) for e in body["items"] if e["action"].startswith("FEED_")]

    expected = [("FEED_SHARED", OWNER), ("FEED_SHARED", OWNER), ("FEED_SHARED", "feed-admin"), ("FEED_REVOKED", OWNER)]
    assert eventually(lambda: trail() == expected), trail()
