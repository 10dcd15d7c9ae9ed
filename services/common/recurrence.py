"""The starts of a recurring series: the same wall-clock time in the provider's zone, every `interval`
days or weeks, `count` times. Pure (no I/O, no clock).

Across a DST change an occurrence keeps its wall-clock time, not its distance from the first one:
a weekly 09:00 in New York is 09:00 EST before the March change and 09:00 EDT after it. For a wall
time a change makes ambiguous, the rule is the engine's (decision 0005, `availability.local_boundary`):
the first instant at which the provider's clock reads that time or later. So

- **a gap** (a spring-forward change skips the time, e.g. 02:30 on New York's March change): the
  occurrence is at the end of the gap, the first instant that exists after it (03:00 EDT);
- **a repeat** (a fall-back change shows the time twice, e.g. 01:30 on New York's November change):
  the occurrence is at the first of the two (01:30 EDT).

Slots follow the same rule for schedule boundaries, so an occurrence in a gap lands where the
provider's hours would put a slot. (RFC 5545 puts a gap's time one gap-length later, 03:30; we keep
one rule for the whole engine instead.)
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from msgspec import Struct

from services.common.availability import local_boundary

Frequency = Literal["DAILY", "WEEKLY"]
MAX_OCCURRENCES = 52


class Recurrence(Struct, frozen=True):
    frequency: Frequency
    count: int  # occurrences in all, the first included (2..52)
    interval: int = 1  # every `interval` days or weeks


def occurrences(first: datetime, recurrence: Recurrence, zone: ZoneInfo) -> list[datetime]:
    """The series' starts in `zone`, the first being `first` (in whole seconds)."""
    local = first.astimezone(zone)
    wall = local.time().replace(microsecond=0, tzinfo=None, fold=0)
    step = timedelta(days=recurrence.interval * (7 if recurrence.frequency == "WEEKLY" else 1))
    starts = [local.replace(microsecond=0)]
    for n in range(1, recurrence.count):
        starts.append(_at_wall_time(local.date() + n * step, wall, zone))
    return starts


def _at_wall_time(day: date, wall: time, zone: ZoneInfo) -> datetime:
    """The first instant at which the clock in `zone` reads `wall` on `day`, or later."""
    naive = datetime.combine(day, wall)
    instant = naive.replace(tzinfo=zone, fold=0)  # fold=0: the first of two repeated instants
    if instant.astimezone(UTC).astimezone(zone).replace(tzinfo=None) == naive:
        return instant
    # In a gap: the wall time does not exist; its end is the first minute after it that does.
    return datetime.fromtimestamp(local_boundary(day, wall.hour * 60 + wall.minute, zone), zone)
