"""A calendar feed's text (decision 0028): RFC 5545 that `icalendar` parses back, names escaped
whatever they hold, the refresh hints in the forms apps read, the same bytes for the same bookings
(the ETag's ground), and the shared URL built as the request reached the API: behind API Gateway's
execute-api URL its stage is in the path; on the local stack there is none."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEvent
from icalendar import Calendar

from services.booking import handler
from services.booking.domain.feeds import Feed
from services.booking.domain.models import Booking, BookingStatus
from services.booking.ical import calendar_ics

NOW = datetime(2026, 12, 1, 8, tzinfo=UTC)


def booking(booking_id: str, status: BookingStatus = BookingStatus.CONFIRMED, version: int = 1) -> Booking:
    start = datetime(2026, 12, 3, 9, tzinfo=UTC)
    return Booking(
        booking_id, "prv_1", "svc_1", "cus", None, "UTC", start, start + timedelta(minutes=30), start,
        start + timedelta(minutes=30), status, version, "private words", "2026-12-01T07:00:00Z",
        updated_at="2026-12-01T07:30:00Z",
    )  # fmt: skip


def unescaped(text: str) -> str:
    """RFC 5545's TEXT, unescaped (section 3.3.11)."""
    out, chars = [], iter(text)
    for char in chars:
        if char == "\\":
            following = next(chars, "")
            out.append("\n" if following in "nN" else following)
        else:
            out.append(char)
    return "".join(out)


@pytest.mark.parametrize("name", ["Clinic, North; Unit \\ 2", "Clinic\nTwo", "Zahnärztin Müller"])
def test_any_name_is_escaped_and_comes_back_as_it_was(name: str) -> None:
    body = calendar_ics(Feed(name, [booking("bkg_1")], {"svc_1": f"{name} visit"}), NOW)
    calendar = Calendar.from_ical(body)
    # NAME (RFC 7986) and X-WR-CALNAME are TEXT, which icalendar's parser leaves escaped
    assert unescaped(str(calendar["NAME"])) == name and unescaped(str(calendar["X-WR-CALNAME"])) == name
    (event,) = calendar.walk("VEVENT")
    assert str(event["SUMMARY"]) == f"{name} visit"


def test_the_feed_says_how_often_to_poll_in_the_forms_apps_read_and_keeps_no_words() -> None:
    text = calendar_ics(Feed("Clinic", [booking("bkg_1", BookingStatus.CANCELLED, 2)], {}), NOW).decode()
    assert "REFRESH-INTERVAL;VALUE=DURATION:PT15M\r\n" in text and "X-PUBLISHED-TTL:PT15M\r\n" in text
    assert "private words" not in text and "cus" not in text.replace("CUS", "")
    (event,) = Calendar.from_ical(text).walk("VEVENT")
    assert (str(event["STATUS"]), event.decoded("SEQUENCE"), str(event["UID"])) == (
        "CANCELLED",
        1,
        "bkg_1@appointments",
    )
    assert event.decoded("DTSTAMP") == datetime(2026, 12, 1, 7, 30, tzinfo=UTC)  # when it last changed


def test_the_same_bookings_render_the_same_bytes_whenever_asked() -> None:
    feed = Feed("Clinic", [booking("bkg_1"), booking("bkg_2", BookingStatus.PENDING)], {})
    assert calendar_ics(feed, NOW) == calendar_ics(feed, NOW + timedelta(hours=3))


def event(path: str, context_path: str, host: str, proto: str) -> APIGatewayProxyEvent:
    data: dict[str, Any] = {
        "path": path,
        "httpMethod": "POST",
        "headers": {"Host": host, "X-Forwarded-Proto": proto},
        "requestContext": {"path": context_path, "domainName": host, "stage": "prod"},
    }
    return APIGatewayProxyEvent(data)


@pytest.mark.parametrize(
    ("path", "context_path", "host", "proto", "expected"),
    [
        # API Gateway's own URL: the stage is in the path the client asked for
        ("/providers/prv_1/feed", "/prod/providers/prv_1/feed", "abc123.execute-api.eu-west-1.amazonaws.com",
         "https", "https://abc123.execute-api.eu-west-1.amazonaws.com/prod/feeds/fd_1/calendar.ics?key=k"),
        # the local stack: no stage in its URL, plain HTTP
        ("/providers/prv_1/feed", "/providers/prv_1/feed", "127.0.0.1:3000", "http",
         "http://127.0.0.1:3000/feeds/fd_1/calendar.ics?key=k"),
    ],
)  # fmt: skip
def test_the_shared_url_is_built_as_the_request_reached_the_api(
    monkeypatch: pytest.MonkeyPatch, path: str, context_path: str, host: str, proto: str, expected: str
) -> None:
    monkeypatch.setattr(handler.app, "current_event", event(path, context_path, host, proto), raising=False)
    assert handler._feed_url("fd_1", "k") == expected
