"""A function's cold start loads what its busiest request uses, and the rest with its own first request
(decision 0021): the booking function's features, and every request body's validator."""

from __future__ import annotations

import pytest

from tests.unit.test_lazy_packages import FUNCTIONS, run

# The booking function's features that POST /bookings never reaches: each loads with its own routes.
FEATURES = [
    "services.booking.adapters.kms_sealer",
    "services.booking.adapters.notification_store",
    "services.booking.adapters.retry_schedules",
    "services.booking.adapters.webhook_store",
    "services.booking.domain.deliveries",
    "services.booking.domain.feeds",
    "services.booking.domain.holds",
    "services.booking.domain.notifications",
    "services.booking.domain.personal_data",
    "services.booking.domain.series",
    "services.booking.domain.waitlist",
    "services.booking.domain.webhooks",
    "services.booking.domain_events",
    "services.booking.ical",
]

LOADED = (
    "import json, sys\n"
    "import pydantic\n"
    "def built(module):\n"
    "    return sorted(name for name, value in vars(sys.modules[module]).items() if isinstance(value, type)"
    " and issubclass(value, pydantic.BaseModel) and value.__module__ == module and value.__pydantic_complete__)\n"
)


def test_the_booking_functions_cold_start_loads_no_other_feature_and_builds_no_body() -> None:
    code, environment = FUNCTIONS["appointments-bench-booking"]
    answer = run(
        f"{code}\n{LOADED}"
        f"print(json.dumps({{'features': [m for m in {FEATURES!r} if m in sys.modules],"
        " 'bodies': built('services.booking.http_models'),"
        " 'settings': built('services.common.settings') + built('services.booking.settings')}))",
        environment,
    )
    assert answer == {"features": [], "bodies": [], "settings": []}


def test_each_feature_loads_with_its_own_service_and_builds_only_its_body() -> None:
    code, environment = FUNCTIONS["appointments-bench-booking"]
    answer = run(
        f"{code}\n{LOADED}"
        "from services.booking import handler, http_models\n"
        "handler.holds(); handler.waitlist(); http_models.HoldIn.model_validate({'providerId': 'prv_' + '0' * 32,"
        " 'serviceId': 'svc_' + '0' * 32, 'start': '2030-01-01T09:00:00Z'})\n"
        f"print(json.dumps({{'features': [m for m in {FEATURES!r} if m in sys.modules],"
        " 'bodies': built('services.booking.http_models')}))",
        environment,
    )
    assert answer == {
        "features": ["services.booking.domain.holds", "services.booking.domain.waitlist"],
        "bodies": ["HoldIn"],
    }


def test_the_availability_functions_cold_start_builds_no_body() -> None:
    code, environment = FUNCTIONS["appointments-bench-availability"]
    answer = run(
        f"{code}\n{LOADED}print(json.dumps({{'bodies': built('services.availability.http_models')}}))", environment
    )
    assert answer == {"bodies": []}


SETTINGS_CLASSES = (
    "from services.common.settings import ServiceSettings\n"
    "def settings_classes(cls=ServiceSettings):\n"
    "    return sorted({sub.__name__ for sub in cls.__subclasses__()} | {n for sub in cls.__subclasses__()"
    " for n in settings_classes(sub)})\n"
)

# What each function's cold start defines besides `ServiceSettings`: its own service's settings classes.
OWN_SETTINGS = {
    "appointments-bench-availability": [],
    "appointments-bench-booking": ["BookingSettings", "NotificationSettings", "PublisherSettings", "WebhookSettings"],
    "appointments-bench-audit": ["AuditSettings", "BackupSettings"],
}


@pytest.mark.parametrize("function", sorted(OWN_SETTINGS))
def test_a_functions_cold_start_defines_only_its_own_services_settings_classes(function: str) -> None:
    code, environment = FUNCTIONS[function]
    answer = run(
        f"{code}\nimport json\n{SETTINGS_CLASSES}print(json.dumps({{'classes': settings_classes()}}))", environment
    )
    assert answer == {"classes": OWN_SETTINGS[function]}


@pytest.mark.parametrize("function", sorted(FUNCTIONS))
def test_a_functions_cold_start_imports_no_boto3(function: str) -> None:
    """Its clients are botocore's and its items converted without boto3's types (decision 0035): boto3's
    import (resources, S3 transfers, their documentation) is a cost the baseline pays and it does not."""
    code, environment = FUNCTIONS[function]
    answer = run(
        f"{code}\nimport json, sys\nfrom services.common import aws\naws.dynamodb_client()\n"
        "print(json.dumps({'loaded': sorted(m for m in sys.modules if m.split('.')[0] in ('boto3', 's3transfer'))}))",
        environment,
    )
    assert answer == {"loaded": []}
