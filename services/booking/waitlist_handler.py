"""The waitlist function: offers freed time to the lines (services/booking/domain/waitlist.py).

Two triggers, one piece of work (`WaitlistService.match`, which looks at a line as it stands):

- the table's stream, filtered (cloudformation/booking.yaml) to changes that may free time or add to a
  line: each provider a batch names is matched once, at once;
- EventBridge Scheduler, once a minute: every line is matched, for what frees time without writing
  anything when it does (a hold's or offer's expiry, an approval's deadline, a series' dead claim).

The sweep makes the stream a shortcut, not the guarantee: a batch the function fails is retried, and
what it still misses is matched by the next sweep (decision 0026).
"""

from __future__ import annotations

# isort: off
from services.common import init_gc  # first: no garbage collection while the imports below load
from services.common import lazy_packages  # noqa: F401 - second: Powertools' packages load what is used
# isort: on

import random
from collections.abc import Callable
from functools import cache
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from services.booking.adapters.dynamodb_store import DynamoDBBookingStore, waitlist_entry_from
from services.booking.domain.models import WaitlistEntry
from services.booking.domain.waitlist import WaitlistService
from services.common import keys
from services.common.auth import Attribution
from services.common.aws import dynamodb_client
from services.common.clock import utc_now
from services.common.dynamodb import from_item
from services.common.observability import Metric, count, logger, observed
from services.common.settings import ServiceSettings, load_settings
from services.common.tracing import current_trace

ACTOR = "system:waitlist"  # who the trail says offered, or expired, an entry
SWEEP_RESERVE_MS = 10_000  # a line's match takes far less; past this, the rest waits for the next minute


@cache
def waitlist() -> WaitlistService:
    """The composition root: built once per container, on first use."""
    store = DynamoDBBookingStore(dynamodb_client(), load_settings(ServiceSettings).table_name)
    return WaitlistService(store, utc_now)


def providers_named(records: list[dict[str, Any]]) -> tuple[list[tuple[str, int]], list[WaitlistEntry]]:
    """The providers a batch's records belong to, each with the index of its first record, in stream
    order; and the waitlist entries the records show (the index may not show them yet)."""
    first: dict[str, int] = {}
    entries = []
    for index, record in enumerate(records):
        stream = record.get("dynamodb", {})
        item = from_item(stream.get("NewImage") or stream.get("OldImage") or {})
        provider = item.get("providerId") or str(item.get("PK", "")).removeprefix(keys.PROVIDER_PREFIX)
        if not isinstance(provider, str) or not provider.startswith("prv_"):
            continue
        first.setdefault(provider, index)
        if item.get("entityType") == "WaitlistEntry" and stream.get("NewImage"):
            entries.append(waitlist_entry_from(item))
    return list(first.items()), entries


def _match(
    provider_id: str, by: Attribution, seen: list[WaitlistEntry], line: list[WaitlistEntry] | None = None
) -> int:
    matched = waitlist().match(provider_id, by, seen, line)
    if matched.offered:
        count(Metric.WAITLIST_OFFERED, len(matched.offered))
    if matched.expired:
        count(Metric.WAITLIST_EXPIRED, len(matched.expired))
    if matched.offered or matched.expired:
        logger.info(
            "waitlist matched",
            providerId=provider_id,
            offered=[entry.waitlist_id for entry in matched.offered],
            expired=[entry.waitlist_id for entry in matched.expired],
        )
    return len(matched.offered)


def on_stream(records: list[dict[str, Any]], by: Attribution) -> dict[str, Any]:
    """Match each provider the batch names; a provider that fails fails the batch from its first
    record on (partial batch response: Lambda retries from the earliest failure)."""
    providers, seen = providers_named(records)
    failed_from: int | None = None
    for provider_id, first in providers:
        try:
            _match(provider_id, by, seen)
        except Exception:
            logger.exception("waitlist match failed", providerId=provider_id)
            failed_from = first if failed_from is None else min(failed_from, first)
    if failed_from is None:
        return {"batchItemFailures": []}
    failures = records[failed_from:]
    return {"batchItemFailures": [{"itemIdentifier": r["dynamodb"]["SequenceNumber"]} for r in failures]}


def sweep(by: Attribution, remaining_ms: Callable[[], int]) -> dict[str, Any]:
    """Match every line, in a random order, until the time left is too short for another. One line
    failing does not stop the others; the function fails at the end so the failure is seen (Errors
    metric, alarm), and the next minute's sweep tries again. The random order keeps lines a sweep ran
    out of time for from being the last every minute."""
    lines = list(waitlist().lines().items())
    random.shuffle(lines)
    offered, failed, matched = 0, [], 0
    for provider_id, entries in lines:
        if remaining_ms() < SWEEP_RESERVE_MS:
            logger.warning("waitlist sweep ran out of time", lines=len(lines), matched=matched)
            break
        try:
            offered += _match(provider_id, by, [], entries)
        except Exception:
            logger.exception("waitlist match failed", providerId=provider_id)
            failed.append(provider_id)
        matched += 1
    logger.info("waitlist swept", lines=len(lines), matched=matched, offered=offered, failed=len(failed))
    if failed:
        raise RuntimeError(f"the waitlist match failed for {len(failed)} of {len(lines)} providers")
    return {"lines": len(lines), "offered": offered}


@observed()
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    trace_id, span_id = current_trace()
    by = Attribution(ACTOR, context.aws_request_id, trace_id, span_id)
    if isinstance(event.get("Records"), list):
        return on_stream(event["Records"], by)
    return sweep(by, context.get_remaining_time_in_millis)


init_gc.done()
