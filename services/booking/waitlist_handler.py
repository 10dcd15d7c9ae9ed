"""The waitlist function: offers freed time to the lines (services/booking/domain/waitlist.py).

Two triggers, one piece of work (`WaitlistService.match`, which looks at a line as it stands):

- the domain events (decision 0027) of changes that may free time or add to a line, through a rule on
  the stage's bus (cloudformation/booking.yaml): the provider an event names is matched at once;
- EventBridge Scheduler, once a minute: first what lapsed without a write (a hold's expiry, an
  approval's deadline) is written down (domain/lapses.py), so it is published like any change and
  comes back here as an event; then every line is matched, for what frees time without any write
  (an offer's expiry, a series' dead claim) and for what an event failed to bring.

The sweep makes the events a shortcut, not the guarantee: what a failed invocation misses is matched
by the next sweep (decision 0026).
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

from services.booking.adapters.dynamodb_store import DynamoDBBookingStore
from services.booking.domain.lapses import LapseService
from services.booking.domain.models import WaitlistEntry
from services.booking.domain.waitlist import WaitlistService
from services.common.auth import Attribution
from services.common.aws import dynamodb_client
from services.common.clock import utc_now
from services.common.observability import Metric, count, logger, observed
from services.common.settings import ServiceSettings, load_settings
from services.common.tracing import current_trace

ACTOR = "system:waitlist"  # who the trail says offered, or expired, an entry
LAPSE_ACTOR = "system:expiry"  # who the trail says wrote down a lapsed hold (an approval: its deadline)
SWEEP_RESERVE_MS = 10_000  # a line's match takes far less; past this, the rest waits for the next minute
LAPSES_RESERVE_MS = 30_000  # writing lapses down stops with half the minute left, for the lines


@cache
def store() -> DynamoDBBookingStore:
    """The composition root: built once per container, on first use."""
    return DynamoDBBookingStore(dynamodb_client(), load_settings(ServiceSettings).table_name)


@cache
def waitlist() -> WaitlistService:
    return WaitlistService(store(), utc_now)


@cache
def lapses() -> LapseService:
    return LapseService(store(), utc_now)


def on_event(event: dict[str, Any], by: Attribution) -> dict[str, Any]:
    """A domain event from the bus: match the line of the provider it names. A new entry is read
    with the line, since the index may not show it yet."""
    data = event["detail"]["data"]
    seen: list[WaitlistEntry] = []
    if event["detail-type"] == "waitlist.joined":
        entry = store().get_waitlist_entry(data["waitlistId"])
        seen = [entry] if entry is not None else []
    return {"offered": _match(data["providerId"], by, seen)}


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


def sweep(by: Attribution, remaining_ms: Callable[[], int]) -> dict[str, Any]:
    """Write down what lapsed, then match every line, in a random order, until the time left is too
    short for another. One line failing does not stop the others; the function fails at the end so
    the failure is seen (Errors metric, alarm), and the next minute's sweep tries again. The random
    order keeps lines a sweep ran out of time for from being the last every minute."""
    failed: list[str] = []  # providers whose match failed, and "lapses" when writing them down did
    try:
        written = lapses().write_down(
            Attribution(LAPSE_ACTOR, by.request_id, by.trace_id, by.span_id),
            lambda: remaining_ms() > LAPSES_RESERVE_MS,
        )
        if written.holds or written.bookings or written.left:
            logger.info("lapses written down", holds=written.holds, bookings=written.bookings, left=written.left)
        if written.errors:
            logger.error("lapses not written down", errors=written.errors)
            failed.append("lapses")
    except Exception:  # the lines are matched whatever happened to the lapses
        logger.exception("lapses not written down")
        failed.append("lapses")
    lines = list(waitlist().lines().items())
    random.shuffle(lines)
    offered, matched = 0, 0
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
        raise RuntimeError(f"the sweep failed for {', '.join(failed[:5])}{' …' if len(failed) > 5 else ''}")
    return {"lines": len(lines), "offered": offered}


@observed()
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    trace_id, span_id = current_trace()
    by = Attribution(ACTOR, context.aws_request_id, trace_id, span_id)
    if event.get("source") == "appointments":
        return on_event(event, by)
    return sweep(by, context.get_remaining_time_in_millis)


init_gc.done()
