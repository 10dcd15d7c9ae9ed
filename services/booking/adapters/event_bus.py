"""The domain events' way out: EventBridge `PutEvents` on the stage's bus.

`PutEvents` takes 1 to 10 entries a call and answers per entry: a call can succeed while some of its
entries fail (`FailedEntryCount`, `ErrorCode` on each failed one), and botocore retries only a
failed *call*. So the failed entries, and only they, are sent again here, with backoff, a few times;
what still fails goes back to the caller (the publisher reports its stream record as failed, and
Lambda retries it from there: at least once, each event under its one `detail.id`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from services.booking.domain_events import SOURCE, DomainEvent
from services.common.observability import Metric, count, logger

if TYPE_CHECKING:
    from mypy_boto3_events import EventBridgeClient
    from mypy_boto3_events.type_defs import PutEventsRequestEntryTypeDef

MAX_ENTRIES = 10  # PutEvents' limit per call
# An entry's size as EventBridge counts it (Source, DetailType, Detail, Resources, 14 bytes for Time):
# designed for the long-standing 256 KB, which the larger limit of some regions also accepts. A call's
# entries together stay under it too, whichever of the documents' two readings holds.
MAX_BYTES = 256 * 1024
ATTEMPTS = 4  # the first try and three retries of the entries that failed: 0.1 + 0.2 + 0.4 s of backoff


class EventBridgeBus:
    def __init__(
        self,
        client: EventBridgeClient,
        bus_name: str,
        sleep: Callable[[float], None] = time.sleep,
        attempts: int = ATTEMPTS,
    ) -> None:
        self.client, self.bus_name, self._sleep, self.attempts = client, bus_name, sleep, attempts

    def publish(self, events: list[DomainEvent]) -> list[DomainEvent]:
        """Put every event on the bus; answers those still refused after the retries (none, usually).
        One too large for PutEvents no retry can put: it is logged (ERROR, with its id) and counted
        as a failure, and left out, so it never holds up the stream (decision 0027)."""
        too_large = [event for event in events if entry_bytes(event) >= MAX_BYTES]
        for event in too_large:
            count(Metric.EVENT_PUBLISH_FAILURES)
            logger.error("domain event not published: too large", eventId=event.event_id, bytes=entry_bytes(event))
        pending = [event for event in events if event not in too_large]
        for attempt in range(self.attempts):
            if attempt:
                self._sleep(0.1 * 2 ** (attempt - 1))
            pending = [event for call in self._calls(pending) for event in self._put(call)]
            if not pending:
                break
        return pending

    def _entry(self, event: DomainEvent) -> PutEventsRequestEntryTypeDef:
        entry: PutEventsRequestEntryTypeDef = {
            "Source": SOURCE,
            "DetailType": event.detail_type,
            "Detail": event.detail_json(),
            "EventBusName": self.bus_name,
        }
        if event.trace_header:
            # The rules' targets (the waitlist, webhook deliveries) continue the change's trace.
            entry["TraceHeader"] = event.trace_header
        return entry

    def _calls(self, events: list[DomainEvent]) -> list[list[DomainEvent]]:
        """The events (each under 256 KB) in calls of at most 10 entries and under 256 KB, in order."""
        calls: list[list[DomainEvent]] = []
        size = 0
        for event in events:
            entry_size = entry_bytes(event)
            if not calls or len(calls[-1]) == MAX_ENTRIES or size + entry_size >= MAX_BYTES:
                calls.append([])
                size = 0
            calls[-1].append(event)
            size += entry_size
        return calls

    def _put(self, events: list[DomainEvent]) -> list[DomainEvent]:
        """One PutEvents call; answers the events whose entries failed."""
        answer: Any = self.client.put_events(Entries=[self._entry(event) for event in events])
        results = answer["Entries"]
        failed = [event for event, result in zip(events, results, strict=True) if result.get("ErrorCode")]
        if len(events) > len(failed):
            count(Metric.EVENTS_PUBLISHED, len(events) - len(failed))
        if failed:
            count(Metric.EVENT_PUBLISH_FAILURES, len(failed))
            codes = sorted({str(result["ErrorCode"]) for result in results if result.get("ErrorCode")})
            logger.warning("PutEvents refused entries", failed=len(failed), of=len(events), errorCodes=codes)
        return failed


def entry_bytes(event: DomainEvent) -> int:
    """PutEvents' size of the entry (no Time, no Resources)."""
    return len(SOURCE.encode()) + len(event.detail_type.encode()) + len(event.detail_json().encode())
