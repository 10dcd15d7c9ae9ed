"""Time-zone data: always the pinned `tzdata` package, never whatever the host happens to have,
so slots are computed from the same rules on a laptop and in Lambda."""

from __future__ import annotations

import zoneinfo

import tzdata

zoneinfo.reset_tzpath(to=[])  # ignore system zoneinfo; use the tzdata package only

TZDATA_VERSION: str = tzdata.IANA_VERSION
