"""The table's key schema: every entity's keys are built here and nowhere else (docs/data-model.md).

A provider's partition holds everything a slot search needs, ordered so that one Query over one SK
range reads it all: configuration first (`CONFIG#…`), then date overrides (`OVERRIDE#<date>`), then
busy spans in start order (`SPAN#<start>#<bookingId>`). Past overrides and spans carry a TTL, so the
range stays about as long as the future.
"""

from __future__ import annotations

import uuid
from typing import Final

PROVIDERS_INDEX: Final = "GSI1"  # GSI1PK = "PROVIDERS": every provider, ordered by name

PROVIDER_PREFIX: Final = "PROVIDER#"
CONFIG_PREFIX: Final = "CONFIG#"
PROFILE_SK: Final = "CONFIG#PROFILE"
SCHEDULE_SK: Final = "CONFIG#SCHEDULE"
SERVICE_PREFIX: Final = "CONFIG#SERVICE#"
OVERRIDE_PREFIX: Final = "OVERRIDE#"
SPAN_PREFIX: Final = "SPAN#"
ALL_PROVIDERS: Final = "PROVIDERS"

Key = dict[str, dict[str, str]]


def new_id(prefix: str) -> str:
    """A new opaque id such as `prv_3f2c…` (the prefix says what it names)."""
    return f"{prefix}_{uuid.uuid4().hex}"


def provider_pk(provider_id: str) -> str:
    return f"{PROVIDER_PREFIX}{provider_id}"


def provider_key(provider_id: str) -> Key:
    return {"PK": {"S": provider_pk(provider_id)}, "SK": {"S": PROFILE_SK}}


def provider_list_keys(provider_id: str, name: str) -> Key:
    """The GSI1 attributes that place a provider in the ordered list of all providers."""
    return {"GSI1PK": {"S": ALL_PROVIDERS}, "GSI1SK": {"S": f"{name.casefold()}#{provider_id}"}}


def schedule_key(provider_id: str) -> Key:
    return {"PK": {"S": provider_pk(provider_id)}, "SK": {"S": SCHEDULE_SK}}


def service_key(provider_id: str, service_id: str) -> Key:
    return {"PK": {"S": provider_pk(provider_id)}, "SK": {"S": f"{SERVICE_PREFIX}{service_id}"}}


def override_key(provider_id: str, day: str) -> Key:
    """`day` is the provider's local date, `YYYY-MM-DD`."""
    return {"PK": {"S": provider_pk(provider_id)}, "SK": {"S": f"{OVERRIDE_PREFIX}{day}"}}


def span_sk(start_utc: str, booking_id: str) -> str:
    """`start_utc` is `YYYY-MM-DDTHH:MM:SSZ`, so spans sort by start."""
    return f"{SPAN_PREFIX}{start_utc}#{booking_id}"


def slot_query_range(window_end_utc: str) -> tuple[str, str]:
    """The SK range of one provider's partition that holds everything a slot search up to `window_end_utc` needs."""
    return CONFIG_PREFIX, f"{SPAN_PREFIX}{window_end_utc}"
