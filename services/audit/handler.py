"""Audit service: the Lambda entry point. Stream batches go to the consumer (partial batch responses,
so one bad record never blocks or loses the others); API requests go to the resolver."""

from __future__ import annotations

# isort: off
from services.common import init_gc  # first: no garbage collection while the imports below load
from services.common import lazy_packages  # noqa: F401 - second: Powertools' packages load what is used

# First, before anything imports pydantic: Powertools' batch module loads every parser model (~20 ms
# of cold start) only if pydantic is already loaded, and this consumer uses none of them.
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
# isort: on

import time
from functools import cache
from typing import Annotated, Any

from aws_lambda_powertools.event_handler.openapi.params import Path, Query
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord
from aws_lambda_powertools.utilities.typing import LambdaContext
from opentelemetry.trace import SpanKind
from pydantic import BeforeValidator

from services.audit.adapters.dynamodb_customer_keys import DynamoDBCustomerKeys
from services.audit.adapters.dynamodb_trail import DynamoDBAuditReader, DynamoDBAuditTrail, DynamoDBBookingPeople
from services.audit.adapters.s3_archive import S3Archive
from services.audit.domain.events import audit_event, change_origin, data_subject, record_age_ms
from services.audit.domain.personal_data import has_free_text, sealed
from services.audit.domain.queries import AuditQueries
from services.audit.settings import AuditSettings
from services.common import tracing
from services.common.audit import AuditEvent, EntityType
from services.common.aws import dynamodb_client, s3_client
from services.common.clock import SupportedInstant, iso_utc
from services.common.http import build_resolver, current_principal, plus_restored, require_ordered, resolve
from services.common.observability import Metric, count, identify, logger, milliseconds, observed
from services.common.settings import load_settings
from services.common.tracing import link_to, tracer

app = build_resolver(logger)
processor = BatchProcessor(event_type=EventType.DynamoDBStreams)
# Entities of this batch with a failed record: their later records fail too, unread, so that no
# record takes a place in its entity's chain before one the stream put ahead of it (Lambda retries
# the batch from its first failed record, in stream order).
_blocked: set[tuple[str, str]] = set()


class EntityBlockedError(RuntimeError):
    """An earlier record of the same entity failed in this batch: this one waits for it."""


@cache
def trail() -> DynamoDBAuditTrail:
    """The composition root: built once per container, on first use."""
    return DynamoDBAuditTrail(dynamodb_client(), load_settings(AuditSettings).audit_table_name)


@cache
def customer_keys() -> DynamoDBCustomerKeys:
    return DynamoDBCustomerKeys(dynamodb_client(), load_settings(AuditSettings).audit_table_name)


@cache
def archive() -> S3Archive:
    return S3Archive(s3_client(), load_settings(AuditSettings).audit_bucket_name)


@cache
def queries() -> AuditQueries:
    settings = load_settings(AuditSettings)
    client = dynamodb_client()
    return AuditQueries(
        DynamoDBBookingPeople(client, settings.table_name), DynamoDBAuditReader(client, settings.audit_table_name)
    )


def page_json(page: tuple[list[AuditEvent], str | None]) -> dict[str, Any]:
    events, next_cursor = page
    return {"items": [event.model_dump(mode="json") for event in events], "nextCursor": next_cursor}


Limit = Annotated[int, Query(ge=1, le=100)]
Cursor = Annotated[str | None, Query(max_length=2048)]
Instant = Annotated[SupportedInstant | None, BeforeValidator(plus_restored)]


@app.get("/bookings/<bookingId>/history")
def get_booking_history(
    bookingId: Annotated[str, Path(pattern=r"^bkg_[0-9a-f]{48}$")],
    limit: Limit = 100,
    cursor: Cursor = None,
) -> dict[str, Any]:
    identify(bookingId=bookingId)
    return page_json(queries().booking_history(current_principal(app), bookingId, limit, cursor))


@app.get("/audit/events")
def list_audit_events(
    entityType: Annotated[EntityType, Query()],
    entityId: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
    window_start: Annotated[Instant, Query(alias="from")] = None,
    window_end: Annotated[Instant, Query(alias="to")] = None,
    limit: Limit = 100,
    cursor: Cursor = None,
) -> dict[str, Any]:
    require_ordered(window_start, window_end)
    start = iso_utc(window_start) if window_start else "0"  # below every timestamp; a key value cannot be empty
    end = iso_utc(window_end) if window_end else "~"
    return page_json(queries().events(current_principal(app), entityType, entityId, start, end, limit, cursor))


def record_handler(record: DynamoDBRecord) -> None:
    """One stream record: its audit event, stored once in each home (a redelivery finds it there).

    Its span belongs to this batch's trace and links to the request that made the change."""
    raw = record.raw_event
    links = link_to(*change_origin(raw))
    sequence = raw["dynamodb"]["SequenceNumber"]
    with tracer.start_as_current_span("audit record", kind=SpanKind.CONSUMER, links=links) as span:
        span.set_attribute("aws.dynamodb.stream.sequence_number", sequence)
        age_ms = record_age_ms(raw, time.time())
        if age_ms is not None:
            # What CloudWatch calls IteratorAge, per record: how far the trail is behind the table.
            milliseconds(Metric.AUDIT_RECORD_AGE, age_ms)
        try:
            _record(raw, age_ms)
        except Exception:
            count(Metric.AUDIT_RECORD_FAILED)  # the batch reports it; the mapping retries it
            raise


def _record(raw: dict[str, Any], age_ms: float | None) -> None:
    event = audit_event(raw)
    if event is None:
        return
    entity = (event.entityType, event.entityId)
    if entity in _blocked:
        raise EntityBlockedError(f"{event.entityType} {event.entityId}: an earlier record of it failed in this batch")
    try:
        _store(event, data_subject(raw), age_ms)
    except Exception:
        _blocked.add(entity)
        raise


def _store(event: AuditEvent, customer_id: str | None, age_ms: float | None) -> None:
    logger.append_keys(correlation_id=event.requestId, entityId=event.entityId)
    tracing.set_attributes(entity_type=event.entityType, entity_id=event.entityId)
    if event.action == "PERSONAL_DATA_ERASED":
        customer_keys().erase(event.entityId, event.at)  # before it is recorded: a retry erases again
    if customer_id is not None and has_free_text(event):
        # The customer's words never reach the trail in clear (domain/personal_data.py).
        event = sealed(event, customer_keys().key_for(customer_id, event.at))
    archived, first_time = trail().record(event)
    newly_archived = archive().store(archived)
    if newly_archived:
        count(Metric.AUDIT_EVENT_ARCHIVED)
    logger.info(
        "audit event",
        action=event.action,
        entityType=event.entityType,
        chainIndex=archived.chainIndex,
        duplicate=not first_time and not newly_archived,
        ageMs=age_ms,
    )


@observed()
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    if "Records" in event:
        _blocked.clear()
        response = process_partial_response(
            event=event, record_handler=record_handler, processor=processor, context=context
        )
        return dict(response)
    logger.set_correlation_id((event.get("requestContext") or {}).get("requestId"))
    return resolve(app, event, context)


init_gc.done()
