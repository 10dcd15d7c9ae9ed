"""Demo data for `make run`: providers in three continents' time zones, each with services and hours.

Written only into an empty table, with conditional puts, through the same key builders the
services use, so the demo data is shaped exactly like data the API writes.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from services.common import keys
from services.common.dynamodb import to_item

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

DEMO_OWNER = "demo-provider"
_NAMESPACE = uuid.UUID("6f1b5a4e-7f0e-4c55-9a43-0d6f7a1c2b11")


def demo_id(prefix: str, name: str) -> str:
    """Stable ids, so a demo provider has the same id on every machine."""
    return f"{prefix}_{uuid.uuid5(_NAMESPACE, name).hex}"


@dataclass(frozen=True)
class DemoService:
    name: str
    duration: int
    buffer_before: int = 0
    buffer_after: int = 0
    min_notice: int = 60
    max_advance_days: int = 90
    step: int = 15
    capacity: int = 1


@dataclass(frozen=True)
class DemoProvider:
    name: str
    time_zone: str
    weekly: dict[str, list[tuple[str, str]]]
    services: tuple[DemoService, ...]

    @property
    def provider_id(self) -> str:
        return demo_id("prv", self.name)


_WEEKDAYS = ("mon", "tue", "wed", "thu", "fri")

DEMO_PROVIDERS: tuple[DemoProvider, ...] = (
    DemoProvider(
        name="Hudson Family Dental",
        time_zone="America/New_York",
        weekly={day: [("09:00", "12:00"), ("13:00", "17:00")] for day in _WEEKDAYS},
        services=(
            DemoService("Check-up", 30, buffer_after=10),
            DemoService("Cleaning", 60, buffer_before=5, buffer_after=10, step=30),
        ),
    ),
    DemoProvider(
        name="Praxis am Kollwitzplatz",
        time_zone="Europe/Berlin",
        weekly={**{day: [("08:00", "12:30"), ("14:00", "18:00")] for day in _WEEKDAYS}, "sat": [("09:00", "13:00")]},
        services=(
            DemoService("Erstgespräch", 45, buffer_after=15),
            DemoService("Physiotherapie", 30, step=30, capacity=2),
        ),
    ),
    DemoProvider(
        name="Harbour Physio Sydney",
        time_zone="Australia/Sydney",
        weekly={day: [("07:30", "11:30"), ("12:30", "19:00")] for day in _WEEKDAYS},
        services=(
            DemoService("Initial assessment", 60, buffer_after=15, min_notice=240),
            DemoService("Group pilates", 55, buffer_after=5, step=60, capacity=6),
        ),
    ),
)


def demo_items(now: datetime | None = None) -> list[dict[str, Any]]:
    """Every item of the demo data set, in DynamoDB's attribute-value form."""
    stamp = (now or datetime.now(UTC)).isoformat(timespec="seconds").replace("+00:00", "Z")
    audit = {"actor": "seed", "requestId": "seed", "traceId": "", "createdAt": stamp, "updatedAt": stamp}
    items: list[dict[str, Any]] = []
    for provider in DEMO_PROVIDERS:
        pid = provider.provider_id
        profile = {
            "entityType": "Provider",
            "providerId": pid,
            "name": provider.name,
            "timeZone": provider.time_zone,
            "ownerSub": DEMO_OWNER,
            "version": 1,
            "availabilityVersion": 1,
            **audit,
        }
        items.append({**keys.provider_key(pid), **keys.provider_list_keys(pid, provider.name), **to_item(profile)})
        weekly = {
            day: [{"start": start, "end": end} for start, end in intervals]
            for day, intervals in provider.weekly.items()
        }
        schedule = {"entityType": "Schedule", "providerId": pid, "weekly": weekly, "version": 1, **audit}
        items.append({**keys.schedule_key(pid), **to_item(schedule)})
        for service in provider.services:
            sid = demo_id("svc", f"{provider.name}/{service.name}")
            values = {
                "entityType": "Service",
                "providerId": pid,
                "serviceId": sid,
                "name": service.name,
                "durationMinutes": service.duration,
                "bufferBeforeMinutes": service.buffer_before,
                "bufferAfterMinutes": service.buffer_after,
                "minNoticeMinutes": service.min_notice,
                "maxAdvanceDays": service.max_advance_days,
                "slotStepMinutes": service.step,
                "capacity": service.capacity,
                "version": 1,
                **audit,
            }
            items.append({**keys.service_key(pid, sid), **to_item(values)})
    return items


def seed_if_empty(dynamodb: DynamoDBClient, table_name: str) -> int:
    """Write the demo data into an empty table; answer how many providers were seeded (0 if not empty)."""
    if dynamodb.scan(TableName=table_name, Limit=1)["Items"]:
        return 0
    for item in demo_items():
        dynamodb.put_item(TableName=table_name, Item=item, ConditionExpression="attribute_not_exists(PK)")
    return len(DEMO_PROVIDERS)
