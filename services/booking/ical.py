"""A calendar feed as iCalendar (RFC 5545), with the `icalendar` package (decision 0028).

One VEVENT per booking, cancelled ones included, so a calendar app that polls takes them out:
- `UID` `<bookingId>@appointments`, the same for the booking's whole life;
- `DTSTART`/`DTEND` in UTC (`Z`): no VTIMEZONE to get wrong, and every app shows them in its own zone;
- `SEQUENCE`: the booking's version less one, so it rises with each change from 0;
- `STATUS`: `CONFIRMED`; `TENTATIVE` while awaiting approval; `CANCELLED` once cancelled, declined
  or expired;
- `DTSTAMP` and `LAST-MODIFIED`: when it last changed, not when the feed was made, so the feed's
  bytes (and its ETag) stay the same between polls while nothing in it changes. They do change
  when a booking changes, a service or the provider is renamed, a pending booking's deadline
  passes (it shows `CANCELLED` at once, its new SEQUENCE once the sweep writes it down), or a
  booking crosses the edge of the window.

No customer's words (notes) and no customer id: whoever holds a shared feed's URL reads it.
The calendar carries RFC 7986 `NAME` and `REFRESH-INTERVAL` (15 minutes), and the `X-WR-CALNAME`
and `X-PUBLISHED-TTL` that Apple's and Microsoft's apps read instead.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from icalendar import Calendar, Event, vDuration, vText

from services.booking.domain.feeds import Feed
from services.booking.domain.models import Booking, BookingStatus

PRODID = "-//Appointments//Calendar feed//EN"
REFRESH = timedelta(minutes=15)
STATUS = {
    BookingStatus.CONFIRMED: "CONFIRMED",
    BookingStatus.NO_SHOW: "CONFIRMED",  # it was booked; that nobody came is the provider's note
    BookingStatus.PENDING: "TENTATIVE",
    BookingStatus.CANCELLED: "CANCELLED",
    BookingStatus.DECLINED: "CANCELLED",
    BookingStatus.EXPIRED: "CANCELLED",
}


def _utc(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def _event(booking: Booking, service_names: dict[str, str], now: datetime) -> Event:
    event = Event()
    changed = _utc(booking.updated_at or booking.created_at)
    event.add("uid", f"{booking.booking_id}@appointments")
    event.add("dtstamp", changed)
    event.add("last-modified", changed)
    event.add("created", _utc(booking.created_at))
    event.add("dtstart", booking.start.astimezone(UTC))
    event.add("dtend", booking.end.astimezone(UTC))
    event.add("sequence", booking.version - 1)
    event.add("status", STATUS[booking.as_of(now).status])
    event.add("summary", service_names.get(booking.service_id, "Appointment"))
    event.add("description", f"Booking {booking.booking_id}")
    return event


def calendar_ics(feed: Feed, now: datetime) -> bytes:
    calendar = Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    # TEXT values, escaped (a provider's name may hold a comma, a semicolon or a line break)
    calendar.add("name", vText(feed.name))
    calendar.add("x-wr-calname", vText(feed.name))
    calendar.add("refresh-interval", REFRESH, parameters={"VALUE": "DURATION"})
    calendar.add("x-published-ttl", vDuration(REFRESH))  # PT15M, as Outlook reads it
    for booking in feed.bookings:
        calendar.add_component(_event(booking, feed.service_names, now))
    return bytes(calendar.to_ical())
