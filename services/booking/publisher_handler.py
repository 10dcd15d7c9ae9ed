"""The publisher: the table's stream, as domain events on the stage's EventBridge bus (decision 0027).

A batch's events go out 10 to a `PutEvents` call, failed entries retried one by one
(`adapters/event_bus.py`). What is still refused fails its record, and every record after it in the
batch is left for Lambda's retry (a partial batch response names the first: Lambda starts again
there, in stream order). Events already put are put again then, under the same `detail.id`: the bus
gets every change at least once, and a consumer that dedupes on that id sees it exactly once. After
its retries the mapping sends the range to the publisher's dead-letter queue (runbook:
docs/runbooks/domain-events.md). A record that can never be published (unreadable, or an event over
PutEvents' size) is a bug: it is logged and counted, and left out rather than holding up the stream.
"""

from __future__ import annotations

# isort: off
from services.common import init_gc  # first: no garbage collection while the imports below load
from services.common import lazy_packages  # noqa: F401 - second: Powertools' packages load what is used
# isort: on

from functools import cache
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from opentelemetry.trace import SpanKind

from services.booking.adapters.event_bus import EventBridgeBus
from services.booking.domain_events import DomainEvent, domain_event
from services.booking.settings import PublisherSettings
from services.common.aws import events_client
from services.common.observability import Metric, count, logger, observed
from services.common.settings import load_settings
from services.common.tracing import tracer


@cache
def bus() -> EventBridgeBus:
    """The composition root: built once per container, on first use."""
    return EventBridgeBus(events_client(), load_settings(PublisherSettings).event_bus_name)


def publish(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Put the batch's events on the bus; the first record whose event is refused, and so every one
    after it, is reported failed."""
    events: list[tuple[int, DomainEvent]] = []
    for index, record in enumerate(records):
        try:
            event = domain_event(record)
        except Exception:
            # A record the publisher cannot read would fail every retry, and with it the records after
            # it (Lambda retries from the first failure): it is logged whole and left out instead.
            # Its change is in the table and the trail; its event is lost (runbook: domain-events.md).
            count(Metric.EVENT_PUBLISH_FAILURES)
            logger.exception("domain event not published: unreadable record", record=record)
            continue
        if event is not None:
            events.append((index, event))
    with tracer.start_as_current_span("publish domain events", kind=SpanKind.PRODUCER) as span:
        span.set_attribute("messaging.batch.message_count", len(events))
        refused = {event.event_id for event in bus().publish([event for _, event in events])}
    failed = [index for index, event in events if event.event_id in refused]
    logger.info("domain events published", records=len(records), events=len(events), refused=len(failed))
    if not failed:
        return {"batchItemFailures": []}
    first = records[min(failed)]
    return {"batchItemFailures": [{"itemIdentifier": first["dynamodb"]["SequenceNumber"]}]}


@observed()
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return publish(event["Records"])


init_gc.done()
