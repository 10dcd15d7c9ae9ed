"""The one Logger and Metrics per function container, configured from the environment
(`POWERTOOLS_SERVICE_NAME`, `POWERTOOLS_LOG_LEVEL`, `POWERTOOLS_METRICS_NAMESPACE`), the metric
vocabulary, and the one way to name what a request is about in both logs and traces."""

from __future__ import annotations

import functools
import os
import warnings
from collections.abc import Callable
from enum import StrEnum
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from services.common import tracing

logger = Logger()
metrics = Metrics()
# Many requests publish no metric of their own (a read, a search without results is still counted…);
# Powertools then warns once per container on stderr, a non-JSON line in a JSON log group. Its docs
# give this filter for functions where that is expected.
warnings.filterwarnings("ignore", "No application metrics to publish*")
Handler = Callable[[dict[str, Any], Any], dict[str, Any]]


class Metric(StrEnum):
    """Every metric the functions emit (namespace `Appointments`, dimensions `service` and `stage`;
    ids never). PascalCase events; the dashboard and the alarms use exactly these names, and
    tests/integration/test_metric_vocabulary.py proves each is emitted, charted and valid EMF.
    Powertools adds `ColdStart` (dimensions `function_name`, `service`)."""

    BOOKING_CREATED = "BookingCreated"
    BOOKING_CONFLICT = "BookingConflict"  # 409: the time was taken first
    BOOKING_REFUSED = "BookingRefused"  # 422: not a bookable slot (closed, too soon, too far, …)
    BOOKING_CONTENDED = "BookingContended"  # 503: lost races until the time ran out
    BOOKING_RESCHEDULED = "BookingRescheduled"
    BOOKING_CANCELLED = "BookingCancelled"
    BOOKING_NO_SHOW = "BookingNoShow"
    HOLD_CREATED = "HoldCreated"
    HOLD_CONVERTED = "HoldConverted"  # a hold booked by its customer (BookingCreated counts it too)
    HOLD_RELEASED = "HoldReleased"
    WAITLIST_JOINED = "WaitlistJoined"
    WAITLIST_OFFERED = "WaitlistOffered"  # an entry offered a freed time (a hold), by the waitlist function
    WAITLIST_EXPIRED = "WaitlistExpired"  # an entry's offer lapsed unclaimed, or its window passed
    EVENTS_PUBLISHED = "EventsPublished"  # domain events the bus accepted (PutEvents entries)
    EVENT_PUBLISH_FAILURES = "EventPublishFailures"  # PutEvents entries refused (each try; retried)
    WEBHOOK_DELIVERED = "WebhookDelivered"  # attempts answered 2xx within 5 s
    WEBHOOK_ATTEMPT_FAILED = "WebhookAttemptFailed"  # attempts that were not (each is retried, until the last)
    WEBHOOK_RETRIED = "WebhookRetried"  # attempts after a delivery's first (retries and replays)
    WEBHOOK_LATENCY = "WebhookLatency"  # ms from an attempt's start to its answer
    WEBHOOK_FAILED = "WebhookFailed"  # deliveries that failed for good: their last attempt, or a 410
    WEBHOOK_DISABLED = "WebhookDisabled"  # subscriptions disabled by their receiver's 410 Gone
    CALENDLY_REJECTED = "CalendlyRejected"  # deliveries refused 401: no valid signature within 3 minutes
    EXTERNAL_CONFLICT = "ExternalConflict"  # Calendly times our side held first: two appointments at once
    NOTIFICATION_SENT = "NotificationSent"  # WhatsApp messages handed to the channel
    NOTIFICATION_FAILED = "NotificationFailed"  # refused for good, or uncertain: never sent again
    NOTIFICATION_SKIPPED_CONSENT = "NotificationSkippedForConsent"  # the customer has not opted in (or opted out)
    REMINDER_LEAD_TIME = "ReminderLeadTime"  # s between a reminder's sending and its booking's start
    IDEMPOTENT_REPLAY = "IdempotentReplay"
    SLOT_SEARCH = "SlotSearch"
    SLOTS_RETURNED = "SlotsReturned"
    VALIDATION_FAILED = "ValidationFailed"
    AUTH_DENIED = "AuthDenied"  # 403 from a function (the gateway's 401s are API Gateway's 4XXError)
    AUDIT_EVENT_ARCHIVED = "AuditEventArchived"
    AUDIT_RECORD_FAILED = "AuditRecordFailed"
    AUDIT_RECORD_AGE = "AuditRecordAge"  # ms between the change and its processing: the trail's lag
    BACKUP_AGE = "BackupAge"  # s since the newest completed export of the table whose newest is oldest
    BACKUP_EXPORT_FAILED = "BackupExportFailed"  # tables whose export was refused, or whose newest one failed


# Refusals the error mapping counts, by problem code.
REFUSALS = {
    "BOOKING_CONFLICT": Metric.BOOKING_CONFLICT,
    "SLOT_UNAVAILABLE": Metric.BOOKING_REFUSED,
    "CONTENDED": Metric.BOOKING_CONTENDED,
    "VALIDATION_FAILED": Metric.VALIDATION_FAILED,
    "FORBIDDEN": Metric.AUTH_DENIED,
    "UNAUTHORIZED": Metric.AUTH_DENIED,
}


def count(metric: Metric, value: float = 1) -> None:
    metrics.add_metric(name=metric.value, unit=MetricUnit.Count, value=value)


def milliseconds(metric: Metric, value: float) -> None:
    metrics.add_metric(name=metric.value, unit=MetricUnit.Milliseconds, value=value)


def observed(correlation_id_path: str | None = None) -> Callable[[Handler], Handler]:
    """A Lambda handler with the project's observability, outermost first: the `stage` metric
    dimension; Logger's Lambda context (cold start, request id, correlation id, state cleared per
    invocation); metrics flushed as one EMF document per invocation, with Powertools' `ColdStart`; and
    the invocation's span (`tracing.traced_handler`)."""

    def decorate(handler: Handler) -> Handler:
        inner = metrics.log_metrics(tracing.traced_handler(handler), capture_cold_start_metric=True)
        inner = logger.inject_lambda_context(inner, correlation_id_path=correlation_id_path, clear_state=True)

        @functools.wraps(handler)
        def entry(event: dict[str, Any], context: Any) -> dict[str, Any]:
            # The function's CloudFormation resource sets STAGE (checked by its settings model).
            metrics.set_default_dimensions(stage=os.environ["STAGE"])
            return inner(event, context)

        return entry

    return decorate


_SPAN_NAMES = {"bookingId": "booking_id", "providerId": "provider_id", "entityId": "entity_id"}


def seconds(metric: Metric, value: float) -> None:
    metrics.add_metric(name=metric.value, unit=MetricUnit.Seconds, value=value)


def identify(**ids: str) -> None:
    """Domain ids (`bookingId=…`, `providerId=…`) as keys on every later log line and on the current span."""
    logger.append_keys(**ids)
    tracing.set_attributes(**{_SPAN_NAMES.get(name, name): value for name, value in ids.items()})
