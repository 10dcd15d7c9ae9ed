"""The webhook dispatcher (decision 0029): domain events out to their subscribers, signed, retried.

Two triggers:
- a rule on the stage's bus sends it every domain event: each subscription that wants the event
  gets one delivery (once per event, however often it is published), attempted at once;
- a failed attempt's retry, a one-time EventBridge Scheduler schedule (`adapters/retry_schedules.py`)
  with `{"webhookAttempt": {webhookId, deliveryId, attempt}}`, as is a replay (`POST
  /webhooks/{id}/deliveries/{deliveryId}/redeliver`).

An event's deliveries are attempted side by side (a slow receiver holds up no other), each within
5 s. One that would start with less than `FIRST_ATTEMPT_RESERVE_MS` of the invocation left is left
to the schedule instead (within the minute), so however many subscribers an event has, the
invocation ends in time. A retry's span links to the trace of the change that caused the delivery,
which the event's invocation continued.
"""

from __future__ import annotations

# isort: off
from services.common import init_gc  # first: no garbage collection while the imports below load
from services.common import lazy_packages  # noqa: F401 - second: Powertools' packages load what is used
# isort: on

import contextvars
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from opentelemetry import trace

from services.booking.adapters.kms_sealer import KmsSealer
from services.booking.adapters.retry_schedules import RETRY_KEY, ScheduledRetries
from services.booking.adapters.webhook_sender import PinnedSender, StandardWebhooksSigner
from services.booking.adapters.webhook_store import DynamoDBWebhookStore
from services.booking.domain.deliveries import Attempted, Delivery, Dispatcher, Outcome
from services.booking.settings import WebhookSettings
from services.common.aws import dynamodb_client, kms_client, scheduler_client
from services.common.clock import utc_now
from services.common.observability import Metric, count, identify, logger, milliseconds, observed
from services.common.settings import load_settings
from services.common.tracing import current_trace, link_to

PARALLEL = 8  # an event's deliveries attempted at once
FIRST_ATTEMPT_RESERVE_MS = 8_000  # an attempt's 5 s, its writes, and the invocation's end


@cache
def dispatcher(own_arn: str) -> Dispatcher:
    """The composition root: built once per container, on first use (retries invoke this function)."""
    settings = load_settings(WebhookSettings)
    store = DynamoDBWebhookStore(dynamodb_client(), settings.table_name)
    sealer = KmsSealer(kms_client(), settings.webhook_key_id)
    retries = ScheduledRetries(scheduler_client(), settings.retry_group, settings.retry_role_arn, own_arn)
    return Dispatcher(
        store, store, StandardWebhooksSigner(sealer), PinnedSender(settings.allow_loopback), retries, utc_now
    )


def observe(attempted: Attempted | None) -> None:
    if attempted is None:
        return
    delivery, outcome, answer = attempted.delivery, attempted.outcome, attempted.answer
    if not attempted.recorded:  # its answer came after the next attempt was claimed (past the margin)
        logger.warning("webhook attempt answered too late to be recorded", deliveryId=delivery.delivery_id)
    if answer is not None:
        count(Metric.WEBHOOK_DELIVERED if outcome is Outcome.DELIVERED else Metric.WEBHOOK_ATTEMPT_FAILED)
        milliseconds(Metric.WEBHOOK_LATENCY, answer.duration_ms)
        if delivery.attempts > 1:
            count(Metric.WEBHOOK_RETRIED)
    if outcome in {Outcome.FAILED, Outcome.GONE, Outcome.DROPPED}:
        count(Metric.WEBHOOK_FAILED)
    if outcome is Outcome.GONE:
        count(Metric.WEBHOOK_DISABLED)
    logger.info(
        "webhook attempt",
        webhookId=delivery.webhook_id,
        deliveryId=delivery.delivery_id,
        eventType=delivery.event_type,
        attempt=delivery.attempts,
        outcome=outcome.value,
        status=answer.status if answer else None,
        error=answer.error if answer else delivery.last_error,
        durationMs=round(answer.duration_ms) if answer else None,
        nextAttemptAt=delivery.next_attempt_at,
    )


def on_event(event: dict[str, Any], own_arn: str, remaining_ms: Callable[[], int]) -> dict[str, Any]:
    detail = event["detail"]
    trace_id, span_id = current_trace()
    made = dispatcher(own_arn).fan_out(detail, trace_id, span_id)
    if not made:
        return {"deliveries": 0}
    failed: list[str] = []

    def attempt_first(delivery: Delivery) -> Attempted | None:
        if remaining_ms() < FIRST_ATTEMPT_RESERVE_MS:
            dispatcher(own_arn).defer(delivery)
            logger.info(
                "webhook attempt left to the schedule", webhookId=delivery.webhook_id, deliveryId=delivery.delivery_id
            )
            return None
        return dispatcher(own_arn).attempt(delivery.webhook_id, delivery.delivery_id, 1)

    with ThreadPoolExecutor(max_workers=min(PARALLEL, len(made))) as pool:
        futures = {
            delivery.webhook_id: pool.submit(contextvars.copy_context().run, attempt_first, delivery)
            for delivery in made
        }
        for webhook_id, future in futures.items():
            try:
                observe(future.result())
            except Exception:  # one subscription's failure does not stop the others'
                logger.exception("webhook attempt failed", webhookId=webhook_id, eventId=detail.get("id"))
                failed.append(webhook_id)
    if failed:
        raise RuntimeError(f"webhook attempts failed for {', '.join(failed)}")
    return {"deliveries": len(made)}


def on_retry(asked: dict[str, Any], own_arn: str) -> dict[str, Any]:
    webhook_id, delivery_id, number = str(asked["webhookId"]), str(asked["deliveryId"]), int(asked["attempt"])
    identify(webhookId=webhook_id, deliveryId=delivery_id)
    attempted = dispatcher(own_arn).attempt(webhook_id, delivery_id, number)
    if attempted is None:
        logger.info("webhook attempt not due", attempt=number)  # made already, or the delivery ended
        return {"attempted": False}
    span = trace.get_current_span()
    for link in link_to(attempted.delivery.trace_id, attempted.delivery.span_id):
        span.add_link(link.context)  # back to the request whose change this delivers
    observe(attempted)
    return {"attempted": True, "outcome": attempted.outcome.value}


@observed()
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    if RETRY_KEY in event:
        return on_retry(event[RETRY_KEY], context.invoked_function_arn)
    return on_event(event, context.invoked_function_arn, context.get_remaining_time_in_millis)


init_gc.done()
