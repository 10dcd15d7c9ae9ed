"""Time-zone data: always the pinned `tzdata` package, never whatever the host happens to have,
so slots are computed from the same rules on a laptop and in Lambda."""

from __future__ import annotations

import zoneinfo
from functools import cache

import tzdata

zoneinfo.reset_tzpath(to=[])  # ignore system zoneinfo; use the tzdata package only

TZDATA_VERSION: str = tzdata.IANA_VERSION


@cache
def zone(name: str) -> zoneinfo.ZoneInfo:
    """The IANA zone `name`; raises `ValueError` for anything that is not one."""
    if not name or name != name.strip() or name.startswith(("/", ".")) or ".." in name:
        raise ValueError(f"{name!r} is not an IANA time zone")
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as error:
        raise ValueError(f"{name!r} is not an IANA time zone") from error
