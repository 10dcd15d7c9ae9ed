"""Time at the edges: the current instant and the one string format instants are stored in."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, AwareDatetime, BeforeValidator

Clock = Callable[[], datetime]
# The instants the API takes: from 2000 to 2099 (on the wall clock of their own offset). Outside, a
# window or a buffer around them would leave what `datetime` can represent near years 1 and 9999.
FIRST_YEAR, LAST_YEAR = 2000, 2099
# How the API document writes an instant (its `Instant` pattern, with `format: date-time` for the
# last days of short months; months and days spelt out so that a generator drawing from the pattern
# rarely draws a date that is none): RFC 3339 with seconds and an offset, in those years. pydantic alone would also
# take a Unix time, a space for the `T`, no seconds or `+0100`, which the document refuses.
INSTANT_PATTERN = (
    r"^20[0-9]{2}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]+)?"
    r"(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])$"
)
_INSTANT = re.compile(INSTANT_PATTERN, re.ASCII)


def written_as_documented(value: Any) -> Any:
    """Refuse (ValueError: a 400 naming the field) an instant not written as the document writes one;
    a `datetime` (built in code, not sent) passes."""
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str) or _INSTANT.fullmatch(value) is None:  # no newline before $
        raise ValueError("must be an RFC 3339 instant such as 2026-03-09T09:00:00-04:00, from 2000 to 2099")
    return value


def within_supported_years(moment: datetime) -> datetime:
    """Refuse (ValueError: a 400 naming the field) an instant outside the years the API supports.
    Judged by its own year, with no arithmetic, so that year 1 or 9999 cannot overflow here either."""
    if not FIRST_YEAR <= moment.year <= LAST_YEAR:
        raise ValueError(f"must be an instant from {FIRST_YEAR} to {LAST_YEAR}")
    return moment


SupportedInstant = Annotated[
    AwareDatetime, BeforeValidator(written_as_documented), AfterValidator(within_supported_years)
]


def utc_now() -> datetime:
    return datetime.now(UTC)


def iso_utc(moment: datetime) -> str:
    """`2026-03-08T14:00:00Z`: how instants are stored, so that they sort as strings."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
