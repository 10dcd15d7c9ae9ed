"""The table's key schema: every entity's keys are built here and nowhere else (docs/data-model.md)."""

from __future__ import annotations

import uuid
from typing import Final

PROVIDERS_INDEX: Final = "GSI1"  # GSI1PK = "PROVIDERS": every provider, ordered by name

PROVIDER_PREFIX: Final = "PROVIDER#"
PROFILE_SK: Final = "PROFILE"
SCHEDULE_SK: Final = "SCHEDULE"
SERVICE_PREFIX: Final = "SERVICE#"
ALL_PROVIDERS: Final = "PROVIDERS"


def new_id(prefix: str) -> str:
    """A new opaque id such as `prv_3f2c…` (the prefix says what it names)."""
    return f"{prefix}_{uuid.uuid4().hex}"


def provider_pk(provider_id: str) -> str:
    return f"{PROVIDER_PREFIX}{provider_id}"


def provider_key(provider_id: str) -> dict[str, dict[str, str]]:
    return {"PK": {"S": provider_pk(provider_id)}, "SK": {"S": PROFILE_SK}}


def provider_list_keys(provider_id: str, name: str) -> dict[str, dict[str, str]]:
    """The GSI1 attributes that place a provider in the ordered list of all providers."""
    return {"GSI1PK": {"S": ALL_PROVIDERS}, "GSI1SK": {"S": f"{name.casefold()}#{provider_id}"}}


def schedule_key(provider_id: str) -> dict[str, dict[str, str]]:
    return {"PK": {"S": provider_pk(provider_id)}, "SK": {"S": SCHEDULE_SK}}


def service_key(provider_id: str, service_id: str) -> dict[str, dict[str, str]]:
    return {"PK": {"S": provider_pk(provider_id)}, "SK": {"S": f"{SERVICE_PREFIX}{service_id}"}}
