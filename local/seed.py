"""Demo data for `make run`: providers in three continents' time zones, each with services and hours.

Written only into an empty table, and written through the availability service's own storage
adapter, so demo data has exactly the shape of data the API writes.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING

from services.availability.adapters.dynamodb_store import DynamoDBProviderStore
from services.common.auth import Attribution
from services.common.availability import WEEKDAYS, LocalInterval, ServiceRules
from services.common.calendar import Provider, Service
from services.common.calendar_table import minutes
from services.common.clock import iso_utc, utc_now

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

DEMO_OWNER = "demo-provider"
SEEDER = Attribution(actor="seed", request_id="seed", trace_id="")
_NAMESPACE = uuid.UUID("6f1b5a4e-7f0e-4c55-9a43-0d6f7a1c2b11")


def demo_id(prefix: str, name: str) -> str:
    """Stable ids, so a demo provider has the same id on every machine."""
    return f"{prefix}_{uuid.uuid5(_NAMESPACE, name).hex}"


@dataclass(frozen=True)
class DemoProvider:
    name: str
    time_zone: str
    weekly: dict[str, list[tuple[str, str]]]
    services: dict[str, ServiceRules]

    @property
    def provider_id(self) -> str:
        return demo_id("prv", self.name)


_WEEKDAYS = ("mon", "tue", "wed", "thu", "fri")

DEMO_PROVIDERS: tuple[DemoProvider, ...] = (
    DemoProvider(
        name="Hudson Family Dental",
        time_zone="America/New_York",
        weekly={day: [("09:00", "12:00"), ("13:00", "17:00")] for day in _WEEKDAYS},
        services={
            "Check-up": ServiceRules(30, buffer_after_minutes=10, min_notice_minutes=60),
            "Cleaning": ServiceRules(60, 5, 10, min_notice_minutes=60, slot_step_minutes=30),
        },
    ),
    DemoProvider(
        name="Praxis am Kollwitzplatz",
        time_zone="Europe/Berlin",
        weekly={**{day: [("08:00", "12:30"), ("14:00", "18:00")] for day in _WEEKDAYS}, "sat": [("09:00", "13:00")]},
        services={
            "Erstgespräch": ServiceRules(45, buffer_after_minutes=15, min_notice_minutes=60),
            "Physiotherapie": ServiceRules(30, min_notice_minutes=60, slot_step_minutes=30, capacity=2),
        },
    ),
    DemoProvider(
        name="Harbour Physio Sydney",
        time_zone="Australia/Sydney",
        weekly={day: [("07:30", "11:30"), ("12:30", "19:00")] for day in _WEEKDAYS},
        services={
            "Initial assessment": ServiceRules(60, buffer_after_minutes=15, min_notice_minutes=240),
            "Group pilates": ServiceRules(55, buffer_after_minutes=5, slot_step_minutes=60, capacity=6),
        },
    ),
)


def seed_if_empty(dynamodb: DynamoDBClient, table_name: str) -> int:
    """Write the demo data into an empty table; answer how many providers were seeded (0 if not empty)."""
    if dynamodb.scan(TableName=table_name, Limit=1)["Items"]:
        return 0
    store = DynamoDBProviderStore(dynamodb, table_name, utc_now)
    created = iso_utc(utc_now())
    for demo in DEMO_PROVIDERS:
        pid = demo.provider_id
        store.create_provider(Provider(pid, demo.name, demo.time_zone, DEMO_OWNER, 1, created), SEEDER)
        weekly = {
            WEEKDAYS.index(day): tuple(LocalInterval(minutes(start), minutes(end)) for start, end in intervals)
            for day, intervals in demo.weekly.items()
        }
        store.save_schedule(pid, weekly, None, SEEDER)
        for name, rules in demo.services.items():
            store.create_service(Service(demo_id("svc", f"{demo.name}/{name}"), pid, name, rules, 1, created), SEEDER)
    return len(DEMO_PROVIDERS)
