"""Calendar feeds (decision 0028): a provider's bookings, or a customer's, for calendar apps to poll.

Who may read which:
- `GET /providers/{id}/calendar.ics`: the provider's owner and admins;
- `GET /me/calendar.ics`: any caller, their own bookings as a customer;
- a provider's secret feed URL (`POST /providers/{id}/feed`, owner and admins): whoever holds it, with
  no token, since calendar apps cannot sign in. A new one revokes the last; `DELETE` revokes it.

The URL carries the feed's id in its path and its key in the query string. Access logs name the
path, so the key stays out of them. The table keeps only the key's SHA-256, compared in constant
time. A wrong key and a revoked feed answer the same 404 as a feed that never was.

The window is what a calendar app shows: the last 30 days and the next year, at most 5,000 bookings.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable
from datetime import datetime, timedelta
from http import HTTPStatus

from msgspec import Struct

from services.booking.domain.models import Booking, CalendarFeed
from services.booking.domain.ports import BookingStore
from services.common.auth import Attribution, Group, Principal
from services.common.calendar import ProviderCalendar
from services.common.clock import iso_utc
from services.common.errors import DomainError, ForbiddenError, NotFoundError
from services.common.tracing import traced

FEED_PAST = timedelta(days=30)
FEED_AHEAD = timedelta(days=366)
MOST_BOOKINGS = 5000
FEED_ID_PREFIX = "fd_"


class FeedNotFoundError(NotFoundError):
    def __init__(self) -> None:
        super().__init__("No such calendar feed (or it was revoked).")


class FeedChangedError(DomainError):
    code = "FEED_CHANGED"
    status = HTTPStatus.CONFLICT

    def __init__(self) -> None:
        super().__init__("The provider's feed was changed by another request meanwhile; try again.")


class Feed(Struct, frozen=True):
    """What a calendar shows: its name, and the bookings in its window (every status)."""

    name: str
    bookings: list[Booking]
    service_names: dict[str, str]


class IssuedFeed(Struct, frozen=True):
    feed_id: str
    key: str  # shown once, in the URL; only its hash is kept
    created_at: str


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class FeedService(Struct):
    store: BookingStore
    clock: Callable[[], datetime]

    @traced("feeds.provider")
    def provider_feed(self, principal: Principal, provider_id: str) -> Feed:
        calendar = self._owned(principal, provider_id)
        return self._feed(calendar)

    @traced("feeds.customer")
    def customer_feed(self, principal: Principal) -> Feed:
        now = self.clock()
        found = self.store.bookings_between(None, principal.sub, now - FEED_PAST, now + FEED_AHEAD, MOST_BOOKINGS)
        return Feed("My appointments", found, {})

    @traced("feeds.shared")
    def shared_feed(self, feed_id: str, key: str) -> Feed:
        feed = self.store.get_feed(feed_id) if feed_id.startswith(FEED_ID_PREFIX) else None
        if feed is None or not hmac.compare_digest(feed.key_hash, key_hash(key)):
            raise FeedNotFoundError()
        calendar = self.store.configuration(feed.provider_id)
        if calendar is None:
            raise FeedNotFoundError()
        return self._feed(calendar)

    @traced("feeds.issue")
    def issue(self, principal: Principal, provider_id: str, by: Attribution) -> IssuedFeed:
        """A new secret feed URL for the provider; the last one stops working at once."""
        self._owned(principal, provider_id)
        previous = self.store.provider_feed_id(provider_id)
        feed_id, key = f"{FEED_ID_PREFIX}{secrets.token_hex(16)}", secrets.token_urlsafe(32)
        issued = IssuedFeed(feed_id, key, iso_utc(self.clock()))
        feed = CalendarFeed(issued.feed_id, provider_id, key_hash(issued.key), issued.created_at)
        if not self.store.replace_feed(feed, previous, by):
            raise FeedChangedError()
        return issued

    @traced("feeds.revoke")
    def revoke(self, principal: Principal, provider_id: str, by: Attribution) -> None:
        self._owned(principal, provider_id)
        live = self.store.provider_feed_id(provider_id)
        if live is None:
            raise FeedNotFoundError()
        if not self.store.remove_feed(provider_id, live, by):
            raise FeedChangedError()

    def _owned(self, principal: Principal, provider_id: str) -> ProviderCalendar:
        calendar = self.store.configuration(provider_id)
        if calendar is None:
            raise NotFoundError("No such provider.")
        owner = principal.is_in(Group.PROVIDERS) and calendar.provider.owner_sub == principal.sub
        if not (owner or principal.is_in(Group.ADMINS)):
            raise ForbiddenError("Only the provider's owner or an admin reads its calendar or shares it.")
        return calendar

    def _feed(self, calendar: ProviderCalendar) -> Feed:
        now = self.clock()
        provider = calendar.provider
        found = self.store.bookings_between(
            provider.provider_id, None, now - FEED_PAST, now + FEED_AHEAD, MOST_BOOKINGS
        )
        names = {service_id: service.name for service_id, service in calendar.services.items()}
        return Feed(provider.name, found, names)
