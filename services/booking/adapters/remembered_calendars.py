"""What a booking container remembers of the calendars it read and changed, so that a warm booking is
decided without a read and commits in one round trip (decision 0007, "One round trip when warm").

Nothing remembered is trusted. Every booking's transaction is conditioned on the versions its
decision used: the provider's hours (`availabilityVersion`), the service's version, and each busy
block its span touches. A calendar remembered wrongly therefore costs a failed transaction, never a
double booking; and what the failure returns (each failed block as it is now, `ALL_OLD`) is learnt,
so that a stale block costs one extra round trip. A refusal is never decided on a remembered
calendar: the use case reads again first (services/booking/domain/use_cases.py).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from datetime import UTC, date, datetime
from typing import Any

from msgspec import Struct
from msgspec.structs import replace

from services.common import keys
from services.common.calendar import BookedSpan, ProviderCalendar
from services.common.calendar_table import booked_from, with_pending

# Providers a container remembers, least recently used out first, and the spans they may hold in
# all: a span is about 550 bytes parsed (a provider with 2,000 bookings in its coming 62 days, 1.1 MB),
# so at most about 11 MB of a function's 512.
REMEMBERED_PROVIDERS = 64
REMEMBERED_SPANS = 20_000


class _Entry(Struct, frozen=True):
    calendar: ProviderCalendar
    reach: str  # the highest sort key the read covered (`keys.slot_query_range`)
    day: date  # the UTC day of the read: the calendar left out the blocks of days then over


class RememberedCalendars:
    def __init__(self, size: int = REMEMBERED_PROVIDERS, spans: int = REMEMBERED_SPANS) -> None:
        self._size, self._spans = size, spans
        self._entries: OrderedDict[str, _Entry] = OrderedDict()

    def get(self, provider_id: str, until: datetime, now: datetime) -> ProviderCalendar | None:
        """The remembered calendar, if it reaches `until` and was read today (UTC)."""
        entry = self._entries.get(provider_id)
        if entry is None or entry.day != now.astimezone(UTC).date():
            return None
        if entry.reach < keys.slot_query_range(until)[1]:
            return None
        self._entries.move_to_end(provider_id)
        return replace(entry.calendar, remembered=True)

    def keep(self, provider_id: str, until: datetime, calendar: ProviderCalendar, now: datetime) -> None:
        """A calendar just read, strongly consistent, up to `until`: it replaces what was remembered,
        even one reaching further (a provider's list of bookings reads only up to now), since what
        the older read held past this one's reach may have changed with the hours (overrides are
        calendar items by date) and cannot be told apart from what has not."""
        entry = _Entry(replace(calendar, remembered=False), keys.slot_query_range(until)[1], now.astimezone(UTC).date())
        self._entries[provider_id] = entry
        self._entries.move_to_end(provider_id)
        self._trim()

    def _trim(self) -> None:
        """Least recently used out first, until at most `spans` spans are remembered in all."""
        total = sum(len(entry.calendar.booked) for entry in self._entries.values())
        while self._entries and (len(self._entries) > self._size or total > self._spans):
            _, dropped = self._entries.popitem(last=False)
            total -= len(dropped.calendar.booked)

    def forget(self, provider_id: str) -> None:
        self._entries.pop(provider_id, None)

    def committed(
        self, provider_id: str, added: BookedSpan | None, removed: str | None, blocks: Iterable[datetime]
    ) -> None:
        """This container's own transaction went through: `added` is in the calendar, the booking
        `removed` names is not, and each of `blocks` moved one version on. Blocks another container
        also changed meanwhile stay behind: the next transaction on them learns that."""
        entry = self._entries.get(provider_id)
        if entry is None:
            return
        calendar = entry.calendar
        booked = {booking_id: span for booking_id, span in calendar.booked.items() if booking_id != removed}
        if added is not None:
            booked[added.booking_id] = added
        versions = dict(calendar.busy_versions)
        for block in blocks:
            versions[keys.block_id(block)] = versions.get(keys.block_id(block), 0) + 1
        self._entries[provider_id] = replace(entry, calendar=replace(calendar, booked=booked, busy_versions=versions))

    def learn(self, provider_id: str, blocks: list[dict[str, Any]]) -> None:
        """Busy blocks as a failed transaction returned them (each as it is now): what they hold
        replaces what was remembered of them. Only blocks of days not over say anything about spans,
        as in a read (`calendar_table.calendar_from`): a change to a past booking leaves its ended
        days alone, so what they hold may no longer be the booking. Their versions are learnt all
        the same."""
        entry = self._entries.get(provider_id)
        if entry is None:
            return
        calendar = entry.calendar
        today = entry.day.isoformat()
        named = [(*keys.busy_block_of(item["SK"]), item) for item in blocks]  # (day, block id, item)
        live = [item for day, _, item in named if day >= today]
        fresh = {block for day, block, _ in named if day >= today}
        booked = {
            booking_id: span
            for booking_id, span in calendar.booked.items()
            if not fresh.intersection(keys.block_id(block) for block in keys.busy_blocks(span.start, span.end))
        }
        for item in live:
            booked.update(
                {booking_id: booked_from(booking_id, span) for booking_id, span in item.get("spans", {}).items()}
            )
        booked = with_pending(booked, calendar.pending_series.values())
        versions = {**calendar.busy_versions, **{block: item["version"] for _, block, item in named}}
        self._entries[provider_id] = replace(entry, calendar=replace(calendar, booked=booked, busy_versions=versions))
