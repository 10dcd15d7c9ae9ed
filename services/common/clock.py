"""Time at the edges: the current instant and the one string format instants are stored in."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator, AwareDatetime

Clock = Callable[[], datetime]
# The instants the API takes: from 2000 to 2099 (on the wall clock of their own offset). Outside, a
# window or a buffer around them would leave what `datetime` can represent near years 1 and 9999.
FIRST_YEAR, LAST_YEAR = 2000, 2099


def within_supported_years(moment: datetime) -> datetime:
    """Refuse (ValueError: a 400 naming the field) an instant outside the years the API supports.
    Judged by its own year, with no arithmetic, so that year 1 or 9999 cannot overflow here either."""
    if not FIRST_YEAR <= moment.year <= LAST_YEAR:
        raise ValueError(f"must be an instant from {FIRST_YEAR} to {LAST_YEAR}")
    return moment


SupportedInstant = Annotated[AwareDatetime, AfterValidator(within_supported_years)]


def utc_now() -> datetime:
    return datetime.now(UTC)


def iso_utc(moment: datetime) -> str:
    """`2026-03-08T14:00:00Z`: how instants are stored, so that they sort as strings."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
