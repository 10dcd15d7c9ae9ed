"""The availability API's request bodies and parameters as validated models (the OpenAPI document in
cloudformation/api/openapi.yaml describes the same shapes; tests/unit/test_openapi_contract.py holds them
together)."""

from __future__ import annotations

import re
from itertools import pairwise
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr, StringConstraints

from services.common.availability import MINUTES_PER_DAY, LocalInterval
from services.common.timezones import zone

PROVIDER_ID = r"^prv_[0-9a-f]{32}$"
SERVICE_ID = r"^svc_[0-9a-f]{32}$"
MAX_INTERVALS_PER_DAY = 12
_TIME = re.compile(r"^(?:([01]\d|2[0-3]):([0-5]\d)|(24):(00))$")


def _minutes(text: str) -> int:
    match = _TIME.match(text)
    if match is None:
        raise ValueError("must be a time HH:MM between 00:00 and 24:00")
    hours, mins = (match.group(1), match.group(2)) if match.group(1) else (match.group(3), match.group(4))
    return int(hours) * 60 + int(mins)


def _start_time(text: str) -> str:
    if _minutes(text) >= MINUTES_PER_DAY:
        raise ValueError("a start must be before 24:00")
    return text


def _end_time(text: str) -> str:
    if _minutes(text) == 0:
        raise ValueError("an end must be after 00:00")
    return text


def _time_zone(name: str) -> str:
    zone(name)
    return name


# The document's `Name`: something besides spaces, tabs and line breaks. Named one by one, because
# what `\s` means differs between regex dialects (Python's takes \x1c-\x1f, JavaScript's does not),
# and a client, API Gateway and this function must draw the same line.
NAME_PATTERN = r"[^ \t\r\n]"
_BLANKS = " \t\r\n"


def _trimmed(name: str) -> str:
    if not re.search(NAME_PATTERN, name):
        raise ValueError("must not be only spaces, tabs and line breaks")
    return name.strip(_BLANKS)


# Lengths as sent, as the document counts them (stripping first would take 121 characters with a
# space around them, which the document refuses); stored without the surrounding white space.
Name = Annotated[StrictStr, StringConstraints(min_length=1, max_length=120), AfterValidator(_trimmed)]


class _Strict(BaseModel):
    # Unknown fields are refused, so a misspelt field is an error rather than silently ignored. Each
    # body's validator is built when its route first validates one, not at every cold start: the
    # busiest route, the slot search, has no body (decision 0021).
    model_config = ConfigDict(extra="forbid", strict=True, defer_build=True)


class IntervalIn(_Strict):
    start: Annotated[StrictStr, AfterValidator(_start_time)]
    end: Annotated[StrictStr, AfterValidator(_end_time)]

    def local(self) -> LocalInterval:
        start, end = _minutes(self.start), _minutes(self.end)
        if end <= start:
            raise ValueError(f"{self.start}-{self.end} ends before it starts")
        return LocalInterval(start, end)


def _day_intervals(intervals: list[IntervalIn]) -> list[IntervalIn]:
    """Each interval valid, and none overlapping another (the gaps between them are the breaks)."""
    ordered = sorted(((interval.local(), interval) for interval in intervals), key=lambda pair: pair[0])
    for (previous, a), (current, b) in pairwise(ordered):
        if current.start < previous.end:
            raise ValueError(f"intervals {a.start}-{a.end} and {b.start}-{b.end} overlap")
    return [interval for _, interval in ordered]


DayIntervals = Annotated[list[IntervalIn], Field(max_length=MAX_INTERVALS_PER_DAY), AfterValidator(_day_intervals)]


class WeeklyIn(_Strict):
    mon: DayIntervals = []
    tue: DayIntervals = []
    wed: DayIntervals = []
    thu: DayIntervals = []
    fri: DayIntervals = []
    sat: DayIntervals = []
    sun: DayIntervals = []

    def by_weekday(self) -> dict[int, tuple[LocalInterval, ...]]:
        days = (self.mon, self.tue, self.wed, self.thu, self.fri, self.sat, self.sun)
        return {index: tuple(i.local() for i in day) for index, day in enumerate(days) if day}


class ScheduleIn(_Strict):
    weekly: WeeklyIn


class OverrideIn(_Strict):
    intervals: DayIntervals

    def local(self) -> tuple[LocalInterval, ...]:
        return tuple(interval.local() for interval in self.intervals)


class ProviderIn(_Strict):
    name: Name
    timeZone: Annotated[StrictStr, StringConstraints(max_length=64), AfterValidator(_time_zone)]
    # Left out: the caller owns it. Not null: the document says a string, and a provider with no
    # owner is one nobody may manage but admins (schemathesis found `"ownerSub": null` accepted).
    ownerSub: Annotated[StrictStr, StringConstraints(min_length=1, max_length=128)] = None  # type: ignore[assignment]
    maxBookingsPerDay: Annotated[StrictInt, Field(ge=1, le=10_000)] = None  # type: ignore[assignment]


class ServiceIn(_Strict):
    name: Name
    durationMinutes: Annotated[StrictInt, Field(ge=5, le=720)]
    bufferBeforeMinutes: Annotated[StrictInt, Field(ge=0, le=240)] = 0
    bufferAfterMinutes: Annotated[StrictInt, Field(ge=0, le=240)] = 0
    minNoticeMinutes: Annotated[StrictInt, Field(ge=0, le=43_200)] = 60
    maxAdvanceDays: Annotated[StrictInt, Field(ge=1, le=365)] = 90
    slotStepMinutes: Annotated[StrictInt, Field(ge=5, le=720)] = 15
    capacity: Annotated[StrictInt, Field(ge=1, le=100)] = 1
    holdMinutes: Annotated[StrictInt, Field(ge=1, le=30)] = 5
    maxPerCustomerPerDay: Annotated[StrictInt, Field(ge=1, le=1000)] = None  # type: ignore[assignment]
    maxPerCustomerPerWeek: Annotated[StrictInt, Field(ge=1, le=1000)] = None  # type: ignore[assignment]
    requiresApproval: StrictBool = False
    approvalTimeoutHours: Annotated[StrictInt, Field(ge=1, le=720)] = 24
    reminderMinutesBefore: Annotated[StrictInt, Field(ge=0, le=20_160)] = 1440
