"""Availability service: the Lambda entry point. Routes are thin; the work is in domain/ and adapters/."""

from __future__ import annotations

# isort: off
from services.common import init_gc  # first: no garbage collection while the imports below load
from services.common import lazy_packages  # noqa: F401 - second: Powertools' packages load what is used
# isort: on

import re
import time
from datetime import date
from functools import cache
from http import HTTPStatus
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Body, Path, Query
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BeforeValidator

from services.availability.adapters.dynamodb_store import DynamoDBProviderStore
from services.availability.adapters.table_probe import DynamoDBTableProbe
from services.availability.domain.health import CachedProbe, check_health
from services.availability.domain.use_cases import AvailabilityService
from services.availability.http_models import PROVIDER_ID, SERVICE_ID, OverrideIn, ProviderIn, ScheduleIn, ServiceIn
from services.common import __version__
from services.common.auth import Group, Principal
from services.common.availability import WEEKDAYS, ServiceRules
from services.common.aws import dynamodb_client
from services.common.calendar import Override, Provider, Service, WeeklySchedule
from services.common.calendar_table import hhmm
from services.common.clock import SupportedInstant, utc_now
from services.common.http import (
    attribution_for,
    build_resolver,
    current_principal,
    etag,
    expected_version,
    plus_restored,
    resolve,
)
from services.common.observability import Metric, count, identify, logger, observed
from services.common.settings import ServiceSettings, load_settings
from services.common.timezones import TZDATA_VERSION

app = build_resolver(logger)

ProviderId = Annotated[str, Path(pattern=PROVIDER_ID)]


Instant = Annotated[SupportedInstant, BeforeValidator(plus_restored)]
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", re.ASCII)


def _plain_date(value: Any) -> Any:
    """`YYYY-MM-DD` only, as the document says: pydantic alone would also take a date-time at midnight."""
    if not isinstance(value, str) or _DATE.fullmatch(value) is None:
        raise ValueError("must be a date YYYY-MM-DD")
    return value


LocalDate = Annotated[date, BeforeValidator(_plain_date), Path()]


@cache
def availability() -> AvailabilityService:
    """The composition root: built once per container, on first use."""
    settings = load_settings(ServiceSettings)
    return AvailabilityService(DynamoDBProviderStore(dynamodb_client(), settings.table_name, utc_now), utc_now)


def provider_json(provider: Provider, reader: Principal) -> dict[str, Any]:
    """The provider as `reader` may see it: the owner's subject only for admins, ops and the owner."""
    shown: dict[str, Any] = {
        "providerId": provider.provider_id,
        "name": provider.name,
        "timeZone": provider.time_zone,
        "version": provider.version,
        "createdAt": provider.created_at,
    }
    if provider.max_bookings_per_day is not None:
        shown["maxBookingsPerDay"] = provider.max_bookings_per_day
    if reader.is_in(Group.ADMINS, Group.OPS) or reader.sub == provider.owner_sub:
        shown["ownerSub"] = provider.owner_sub
    return shown


def service_json(service: Service) -> dict[str, Any]:
    rules = service.rules
    return {
        "serviceId": service.service_id,
        "providerId": service.provider_id,
        "name": service.name,
        "durationMinutes": rules.duration_minutes,
        "bufferBeforeMinutes": rules.buffer_before_minutes,
        "bufferAfterMinutes": rules.buffer_after_minutes,
        "minNoticeMinutes": rules.min_notice_minutes,
        "maxAdvanceDays": rules.max_advance_days,
        "slotStepMinutes": rules.slot_step_minutes,
        "capacity": rules.capacity,
        "holdMinutes": service.hold_minutes,
        "requiresApproval": service.requires_approval,
        "approvalTimeoutHours": service.approval_timeout_hours,
        "reminderMinutesBefore": service.reminder_minutes_before,
        "version": service.version,
        "createdAt": service.created_at,
    } | {
        name: value
        for name, value in (
            ("maxPerCustomerPerDay", service.max_per_customer_per_day),
            ("maxPerCustomerPerWeek", service.max_per_customer_per_week),
        )
        if value is not None
    }


def _intervals_json(intervals: tuple[Any, ...]) -> list[dict[str, str]]:
    return [{"start": hhmm(i.start), "end": hhmm(i.end)} for i in intervals]


def schedule_json(provider_id: str, schedule: WeeklySchedule | None) -> dict[str, Any]:
    weekly = schedule.weekly if schedule else {}
    return {
        "providerId": provider_id,
        "weekly": {day: _intervals_json(tuple(weekly.get(index, ()))) for index, day in enumerate(WEEKDAYS)},
        "version": schedule.version if schedule else 0,
    }


def override_json(provider_id: str, override: Override) -> dict[str, Any]:
    return {
        "providerId": provider_id,
        "date": override.day.isoformat(),
        "intervals": _intervals_json(override.intervals),
        "version": override.version,
    }


def _json(status: HTTPStatus, body: Any, headers: dict[str, str] | None = None) -> Response[Any]:
    return Response(status_code=status, content_type="application/json", body=body, headers=headers)


HEALTH_PROBE_SECONDS = 5  # how long a container answers /health from its last look at the table


@cache
def table_probe() -> CachedProbe:
    settings = load_settings(ServiceSettings)
    return CachedProbe(DynamoDBTableProbe(dynamodb_client(), settings.table_name), HEALTH_PROBE_SECONDS, time.monotonic)


@app.get("/health")
def get_health() -> Response[Any]:
    settings = load_settings(ServiceSettings)
    report = check_health(__version__, settings.stage, TZDATA_VERSION, table_probe())
    return _json(HTTPStatus.OK if report.healthy else HTTPStatus.SERVICE_UNAVAILABLE, report.to_json())


@app.get("/me")
def get_me() -> dict[str, object]:
    principal = current_principal(app)
    return {"sub": principal.sub, "groups": sorted(group.value for group in principal.groups)}


@app.post("/providers")
def create_provider(body: Annotated[ProviderIn, Body()]) -> Response[Any]:
    principal = current_principal(app)
    provider = availability().create_provider(
        principal,
        body.name,
        body.timeZone,
        body.ownerSub,
        attribution_for(app, principal),
        max_bookings_per_day=body.maxBookingsPerDay,
    )
    identify(providerId=provider.provider_id)
    return _json(
        HTTPStatus.CREATED, provider_json(provider, principal), {"Location": f"/providers/{provider.provider_id}"}
    )


@app.get("/providers")
def list_providers(
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, Query(max_length=2048)] = None,
) -> dict[str, Any]:
    principal = current_principal(app)
    providers, next_cursor = availability().list_providers(principal, limit, cursor)
    return {"items": [provider_json(p, principal) for p in providers], "nextCursor": next_cursor}


@app.get("/providers/<providerId>")
def get_provider(providerId: ProviderId) -> Response[Any]:
    principal = current_principal(app)
    provider = availability().get_provider(principal, providerId)
    return _json(HTTPStatus.OK, provider_json(provider, principal), etag(provider.version))


@app.get("/providers/<providerId>/schedule")
def get_schedule(providerId: ProviderId) -> Response[Any]:
    schedule, overrides = availability().get_schedule(current_principal(app), providerId)
    body = {**schedule_json(providerId, schedule), "overrides": [override_json(providerId, o) for o in overrides]}
    return _json(HTTPStatus.OK, body, etag(body["version"]))


@app.put("/providers/<providerId>/schedule")
def put_schedule(providerId: ProviderId, body: Annotated[ScheduleIn, Body()]) -> Response[Any]:
    principal = current_principal(app)
    identify(providerId=providerId)
    schedule = availability().set_schedule(
        principal, providerId, body.weekly.by_weekday(), expected_version(app), attribution_for(app, principal)
    )
    return _json(HTTPStatus.OK, schedule_json(providerId, schedule), etag(schedule.version))


@app.put("/providers/<providerId>/overrides/<date>")
def put_override(providerId: ProviderId, date: LocalDate, body: Annotated[OverrideIn, Body()]) -> Response[Any]:
    principal = current_principal(app)
    identify(providerId=providerId)
    override = availability().set_override(
        principal, providerId, date, body.local(), expected_version(app), attribution_for(app, principal)
    )
    return _json(HTTPStatus.OK, override_json(providerId, override), etag(override.version))


@app.delete("/providers/<providerId>/overrides/<date>")
def delete_override(providerId: ProviderId, date: LocalDate) -> Response[None]:
    principal = current_principal(app)
    identify(providerId=providerId)
    availability().remove_override(principal, providerId, date, expected_version(app), attribution_for(app, principal))
    return Response(status_code=HTTPStatus.NO_CONTENT)


@app.post("/providers/<providerId>/services")
def create_service(providerId: ProviderId, body: Annotated[ServiceIn, Body()]) -> Response[Any]:
    principal = current_principal(app)
    identify(providerId=providerId)
    rules = ServiceRules(
        duration_minutes=body.durationMinutes,
        buffer_before_minutes=body.bufferBeforeMinutes,
        buffer_after_minutes=body.bufferAfterMinutes,
        min_notice_minutes=body.minNoticeMinutes,
        max_advance_days=body.maxAdvanceDays,
        slot_step_minutes=body.slotStepMinutes,
        capacity=body.capacity,
    )
    service = availability().create_service(
        principal,
        providerId,
        body.name,
        rules,
        attribution_for(app, principal),
        hold_minutes=body.holdMinutes,
        limits=(body.maxPerCustomerPerDay, body.maxPerCustomerPerWeek),
        approval=(body.requiresApproval, body.approvalTimeoutHours),
        reminder_minutes_before=body.reminderMinutesBefore,
    )
    location = f"/providers/{providerId}/services/{service.service_id}"
    return _json(HTTPStatus.CREATED, service_json(service), {"Location": location})


@app.get("/providers/<providerId>/services")
def list_services(providerId: ProviderId) -> dict[str, Any]:
    services = availability().list_services(current_principal(app), providerId)
    return {"items": [service_json(s) for s in services], "nextCursor": None}


@app.get("/providers/<providerId>/slots")
def get_slots(
    providerId: ProviderId,
    serviceId: Annotated[str, Query(pattern=SERVICE_ID)],
    window_start: Annotated[Instant, Query(alias="from")],
    window_end: Annotated[Instant, Query(alias="to")],
) -> dict[str, Any]:
    identify(providerId=providerId)
    search = availability().find_slots(current_principal(app), providerId, serviceId, window_start, window_end)
    count(Metric.SLOT_SEARCH)
    count(Metric.SLOTS_RETURNED, len(search.slots))
    # Searches are the bulk of the traffic: logged at DEBUG, i.e. when sampled (LogDebugSampleRate).
    logger.debug("slots searched", serviceId=serviceId, slots=len(search.slots))
    return {
        "providerId": providerId,
        "serviceId": serviceId,
        "timeZone": search.provider.time_zone,
        "from": window_start.isoformat(),
        "to": window_end.isoformat(),
        "slots": [
            {"start": slot.start.isoformat(), "end": slot.end.isoformat(), "remaining": slot.remaining}
            for slot in search.slots
        ],
    }


@app.get("/providers/<providerId>/slots/explain")
def explain_slot(
    providerId: ProviderId,
    serviceId: Annotated[str, Query(pattern=SERVICE_ID)],
    start: Annotated[Instant, Query()],
) -> dict[str, Any]:
    identify(providerId=providerId)
    explained = availability().explain_slot(current_principal(app), providerId, serviceId, start)
    logger.debug("slot explained", serviceId=serviceId, bookable=explained.bookable, reasons=explained.reasons)
    return {
        "providerId": providerId,
        "serviceId": serviceId,
        "start": start.isoformat(),
        "bookable": explained.bookable,
        "reasons": explained.reasons,
    }


@observed(correlation_id_path=correlation_paths.API_GATEWAY_REST)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return resolve(app, event, context)


init_gc.done()
