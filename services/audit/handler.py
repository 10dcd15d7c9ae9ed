"""Audit service: the Lambda entry point. Stream batches go to the consumer (partial batch responses,
so one bad record never blocks or loses the others); API requests go to the resolver."""

from __future__ import annotations

from functools import cache
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from services.audit.adapters.dynamodb_trail import DynamoDBAuditTrail
from services.audit.domain.events import audit_event
from services.common.aws import dynamodb_client
from services.common.http import build_resolver, resolve
from services.common.observability import logger, metrics
from services.common.settings import AuditSettings, load_settings

app = build_resolver(logger)
processor = BatchProcessor(event_type=EventType.DynamoDBStreams)


@cache
def trail() -> DynamoDBAuditTrail:
    """The composition root: built once per container, on first use."""
    return DynamoDBAuditTrail(dynamodb_client(), load_settings(AuditSettings).table_name)


def record_handler(record: DynamoDBRecord) -> None:
    """One stream record: its audit event, stored once (a redelivery finds it already there)."""
    event = audit_event(record.raw_event)
    if event is None:
        return
    logger.append_keys(correlation_id=event.requestId, entityId=event.entityId)
    stored = trail().record(event)
    logger.info("audit event", action=event.action, entityType=event.entityType, duplicate=not stored)


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    if "Records" in event:
        response = process_partial_response(
            event=event, record_handler=record_handler, processor=processor, context=context
        )
        return dict(response)
    logger.set_correlation_id((event.get("requestContext") or {}).get("requestId"))
    return resolve(app, event, context)
