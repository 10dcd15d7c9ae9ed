"""Booking limits: which counters a booking counts in, and how many each allows.

A service may limit how many bookings one customer has of it in the provider's local day
(`maxPerCustomerPerDay`) and ISO week (`maxPerCustomerPerWeek`); a provider how many bookings it
takes in its local day (`maxBookingsPerDay`). Each limit is a counter item in the provider's limits
partition (`keys.limit_counter_key`), raised in the booking's own transaction on the condition that
it is below the limit, and lowered in the cancel's: so concurrent requests cannot all find room
(decision 0007, "Limits"). Two bookings counting in one counter at once contend for it (on AWS one
transaction is cancelled with TransactionConflict and decides again on the calendar it had): a
customer's counters make only that customer's bookings of the service contend, the provider's day
counter every booking of that provider's day, which is the price of a provider-wide daily limit and
is paid only by providers that set one.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import NamedTuple

from services.common.calendar import Provider, Service
from services.common.timezones import zone

KEPT_AFTER = timedelta(days=2)  # then TTL removes a counter whose day or week is over


class Counter(NamedTuple):
    key: str  # the counter's sort key in the provider's limits partition
    limit: int
    ends: datetime  # when its day or week is over: from then on it counts nothing anyone asks about


def counters(provider: Provider, service: Service, customer: str | None, start: datetime) -> list[Counter]:
    """The counters a booking of `service` by `customer` at `start` counts in, under today's limits
    (without a customer: the provider's only)."""
    local_zone = zone(provider.time_zone)
    day = start.astimezone(local_zone).date()
    day_ends = _midnight(day + timedelta(days=1), provider.time_zone)
    monday = day - timedelta(days=day.weekday())
    week_ends = _midnight(monday + timedelta(days=7), provider.time_zone)
    iso = day.isocalendar()
    found = []
    if customer is not None and service.max_per_customer_per_day is not None:
        key = f"CUSTOMER#{customer}#SERVICE#{service.service_id}#DAY#{day.isoformat()}"
        found.append(Counter(key, service.max_per_customer_per_day, day_ends))
    if customer is not None and service.max_per_customer_per_week is not None:
        key = f"CUSTOMER#{customer}#SERVICE#{service.service_id}#WEEK#{iso.year}-W{iso.week:02d}"
        found.append(Counter(key, service.max_per_customer_per_week, week_ends))
    if provider.max_bookings_per_day is not None:
        found.append(Counter(f"PROVIDER#DAY#{day.isoformat()}", provider.max_bookings_per_day, day_ends))
    return found


def _midnight(day: date, time_zone: str) -> datetime:
    return datetime.combine(day, time(), zone(time_zone)).astimezone(UTC)
