"""Webhook deliveries (decision 0029), as Standard Webhooks describes them.

A domain event a subscription wants becomes one delivery: its message id (the `webhook-id` header, the
same on every attempt and the receiver's dedupe key) comes from the event's id, so an event published
twice (at least once) is delivered once, and its body (`{type, timestamp, data}`) is fixed when it is
made, so every attempt sends the same bytes.

An attempt is claimed first (the attempts count moves from n - 1 to n under a condition), so a
retry that fires twice sends once. Then its retry is scheduled, before anything is sent: an attempt
that dies half-way (the function timed out, the table failed) still has its next one coming, and a
delivered one's retry finds it delivered and sends nothing. The claim marks when that next attempt is
due, so a delivery whose retries stopped anyway (the schedule could not be made) shows as stuck, and
may be replayed once it is `STUCK_AFTER` past it.

An attempt is signed with the subscription's live secrets at the attempt's own `webhook-timestamp`,
and sent with a 5 s timeout. A 2xx is delivered. `410 Gone` fails the delivery and disables the
subscription. Anything else (another status, a redirect, a timeout, no connection, a destination no
longer safe) is retried after `RETRY_DELAYS`, 10 attempts over about 80 hours, then the delivery has
failed.

A replay (`redeliver`) makes one more attempt of any delivery that is not pending, with the same id
and body.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import datetime, timedelta
from enum import StrEnum
from http import HTTPStatus
from typing import Any, Protocol

from msgspec import Struct
from msgspec.structs import replace

from services.booking.domain.webhooks import (
    SealedSecret,
    Subscription,
    SubscriptionStatus,
    WebhookService,
)
from services.common.auth import Principal
from services.common.clock import iso_utc
from services.common.errors import DomainError, NotFoundError
from services.common.tracing import traced

RETRY_DELAYS = tuple(
    timedelta(seconds=seconds)
    for seconds in (5, 5 * 60, 30 * 60, 2 * 3600, 5 * 3600, 10 * 3600, 14 * 3600, 20 * 3600, 24 * 3600)
)
ATTEMPTS = len(RETRY_DELAYS) + 1
TIMEOUT_SECONDS = 5.0
EXCERPT_CHARS = 200  # of a receiver's answer, kept in the delivery log
KEPT_FOR = timedelta(days=30)  # the delivery log's items live this long after their last change (TTL)
LAST_LEASE = timedelta(minutes=2)  # a last attempt, which has no retry, is due to be recorded by then
# A retry is counted from when the attempt it follows must have ended (its 5 s, and a margin for its
# writes), so that it never starts while that attempt is still waiting for its answer.
IN_FLIGHT = timedelta(seconds=TIMEOUT_SECONDS + 2)
STUCK_AFTER = timedelta(minutes=5)  # past its next attempt's time by this much, a pending delivery is stuck
FIRST_ATTEMPT_DELAY = timedelta(seconds=5)  # a first attempt or a replay left to the schedule


class DeliveryStatus(StrEnum):
    PENDING = "PENDING"  # an attempt is due (or being made)
    DELIVERED = "DELIVERED"
    FAILED = "FAILED"  # its last attempt failed, the receiver said 410, or the subscription ended


class Outcome(StrEnum):
    DELIVERED = "DELIVERED"
    RETRYING = "RETRYING"
    FAILED = "FAILED"  # no attempt left
    GONE = "GONE"  # 410: the subscription is disabled
    DROPPED = "DROPPED"  # the subscription was deleted or disabled before the attempt: nothing sent


class Delivery(Struct, frozen=True):
    webhook_id: str
    delivery_id: str  # the `webhook-id` header
    event_id: str
    event_type: str
    body: str  # exactly what every attempt sends and signs
    created_at: str
    status: DeliveryStatus = DeliveryStatus.PENDING
    attempts: int = 0
    last_attempt: int = ATTEMPTS  # the number of the attempt after which a failure is final
    next_attempt_at: str | None = None
    last_attempt_at: str | None = None
    last_status: int | None = None  # the receiver's HTTP status; None: no answer
    last_error: str | None = None
    last_response: str | None = None  # the start of the receiver's answer
    last_duration_ms: int | None = None
    delivered_at: str | None = None
    trace_id: str = ""  # the trace of the change that caused it, which every attempt links to
    span_id: str = ""


class Answer(Struct, frozen=True):
    """What a receiver did with one attempt."""

    status: int | None  # None: no HTTP answer (timeout, refused, unsafe destination)
    error: str | None = None  # why it failed; a 2xx with an error (too late) is not delivered
    excerpt: str = ""
    duration_ms: float = 0.0

    @property
    def delivered(self) -> bool:
        return self.error is None and self.status is not None and 200 <= self.status < 300

    @property
    def gone(self) -> bool:
        return self.status == HTTPStatus.GONE


class Attempted(Struct, frozen=True):
    delivery: Delivery  # as it stands after the attempt
    outcome: Outcome
    answer: Answer | None  # None when nothing was sent
    recorded: bool = True  # False: a later attempt was claimed before this one's answer was written


class RetryNotScheduledError(RuntimeError):
    """The attempt was made and recorded, but its retry could not be scheduled (EventBridge Scheduler
    failed): if it failed, the delivery waits, shown as stuck, for a replay."""

    def __init__(self, delivery_id: str, attempt: int) -> None:
        super().__init__(f"attempt {attempt} of {delivery_id} could not be scheduled")


class DeliveryStore(Protocol):
    def add_delivery(self, delivery: Delivery) -> bool:
        """False when the subscription has this message already (the same event, published again)."""
        ...

    def delivery(self, webhook_id: str, delivery_id: str) -> Delivery | None: ...

    def deliveries(self, webhook_id: str, limit: int, cursor: str | None) -> tuple[list[Delivery], str | None]:
        """The newest first; the cursor of the next page, if any."""
        ...

    def claim_attempt(self, delivery: Delivery, attempt: int, at: str, next_due: str) -> bool:
        """Attempt `attempt` is this caller's to make: the count moves from `attempt - 1`, the
        delivery still pending, and its next attempt is due at `next_due`. False when another caller
        claimed it, or it is no longer pending."""
        ...

    def record(self, before: Delivery, after: Delivery) -> bool:
        """The attempt's result (conditioned on the attempts count `after` has); False when a later
        attempt was claimed meanwhile, and so this result is not the delivery's any more."""
        ...

    def reopen(self, delivery: Delivery, last_attempt: int, due: str) -> bool:
        """Pending again for one more attempt, due at `due`; False when it changed since it was read."""
        ...

    def disable(self, subscription: Subscription, at: str, reason: str) -> None: ...


class Subscribers(Protocol):
    """What a delivery needs of the subscriptions: who wants an event, and one as it stands now."""

    def subscription(self, webhook_id: str) -> Subscription | None: ...

    def subscribers(self, provider_id: str | None) -> list[Subscription]: ...


class Sender(Protocol):
    def send(self, url: str, body: bytes, headers: dict[str, str], timeout: float) -> Answer: ...


class Signer(Protocol):
    def signature(self, secrets: list[SealedSecret], webhook_id: str, message_id: str, at: datetime, body: str) -> str:
        """The `webhook-signature` header: one `v1,<base64>` per secret, space-separated."""
        ...


class Retries(Protocol):
    def schedule(self, webhook_id: str, delivery_id: str, attempt: int, at: datetime) -> None:
        """Attempt `attempt` of the delivery, at `at` (EventBridge Scheduler: within that minute)."""
        ...


_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


def message_id(detail: dict[str, Any]) -> str:
    """`msg_<event time, 14 digits>_<event id>`: the same for every publication of one event, ordered by
    time (the log lists the newest first), and with no `.` (Standard Webhooks signs `id.timestamp.body`)."""
    digits = re.sub(r"\D", "", str(detail["timestamp"]))[:14]
    return f"msg_{digits}_{_UNSAFE.sub('', str(detail['id']).removeprefix('evt_'))}"


def message_body(detail: dict[str, Any]) -> str:
    """Standard Webhooks' payload, minified: what the receiver verifies byte for byte."""
    payload = {"type": detail["type"], "timestamp": detail["timestamp"], "data": detail["data"]}
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False)


def after_attempt(
    delivery: Delivery, attempt: int, answer: Answer, retry_at: datetime | None, at: datetime
) -> tuple[Delivery, Outcome]:
    """The delivery once attempt `attempt`, made at `at` with its retry at `retry_at` (None: the last),
    was answered so."""
    moment = iso_utc(at)
    answered = replace(
        delivery,
        attempts=attempt,
        last_attempt_at=moment,
        last_status=answer.status,
        last_error=answer.error,
        last_response=answer.excerpt[:EXCERPT_CHARS] or None,
        last_duration_ms=round(answer.duration_ms),
        next_attempt_at=None,
    )
    if answer.delivered:
        return replace(answered, status=DeliveryStatus.DELIVERED, delivered_at=moment), Outcome.DELIVERED
    if answer.gone:
        return replace(answered, status=DeliveryStatus.FAILED), Outcome.GONE
    if retry_at is None:
        return replace(answered, status=DeliveryStatus.FAILED), Outcome.FAILED
    return replace(answered, next_attempt_at=iso_utc(retry_at)), Outcome.RETRYING


def retry_delay(attempt: int) -> timedelta:
    """How long after failed attempt `attempt` (once its answer is in) the next is made."""
    return RETRY_DELAYS[min(attempt, len(RETRY_DELAYS)) - 1]


class Dispatcher(Struct):
    subscriptions: Subscribers
    deliveries: DeliveryStore
    signer: Signer
    sender: Sender
    retries: Retries
    clock: Callable[[], datetime]

    @traced("webhooks.fan_out")
    def fan_out(self, detail: dict[str, Any], trace_id: str = "", span_id: str = "") -> list[Delivery]:
        """The deliveries of one domain event (`detail`) whose first attempt is due: one per subscription
        that wants it, made now, or made by an earlier publication of the event that never got to its
        first attempt (the invocation failed in between). One that has had an attempt is left to its
        retries: the event published again sends nothing more."""
        data = detail.get("data") or {}
        provider_id = data.get("providerId") if isinstance(data, dict) else None
        wanting = [s for s in self.subscriptions.subscribers(provider_id) if s.wants(str(detail["type"]))]
        made: list[Delivery] = []
        body, msg_id, now = message_body(detail), message_id(detail), iso_utc(self.clock())
        for subscription in wanting:
            delivery = Delivery(
                subscription.webhook_id,
                msg_id,
                str(detail["id"]),
                str(detail["type"]),
                body,
                now,
                trace_id=trace_id,
                span_id=span_id,
            )
            if self.deliveries.add_delivery(delivery):
                made.append(delivery)
                continue
            known = self.deliveries.delivery(subscription.webhook_id, msg_id)
            if known is not None and known.status is DeliveryStatus.PENDING and known.attempts == 0:
                made.append(known)  # its first attempt is claimed, so two publications send it once
        return made

    @traced("webhooks.attempt")
    def attempt(self, webhook_id: str, delivery_id: str, attempt: int) -> Attempted | None:
        """Make attempt `attempt` of a delivery, if it is still due; None when it is not (made already,
        delivered, or failed)."""
        delivery = self.deliveries.delivery(webhook_id, delivery_id)
        if delivery is None or delivery.status is not DeliveryStatus.PENDING or delivery.attempts != attempt - 1:
            return None
        now = self.clock()
        retry_at = now + IN_FLIGHT + retry_delay(attempt) if attempt < delivery.last_attempt else None
        next_due = iso_utc(retry_at or now + LAST_LEASE)
        subscription = self.subscriptions.subscription(webhook_id)
        if subscription is None or subscription.status is not SubscriptionStatus.ACTIVE:
            if not self.deliveries.claim_attempt(delivery, attempt, iso_utc(now), next_due):
                return None
            why = "the subscription was deleted" if subscription is None else "the subscription is disabled"
            dropped = replace(
                delivery,
                attempts=attempt,
                status=DeliveryStatus.FAILED,
                last_attempt_at=iso_utc(now),
                last_status=None,
                last_error=why,
                last_response=None,
                last_duration_ms=None,
                next_attempt_at=None,
            )
            self.deliveries.record(delivery, dropped)
            return Attempted(dropped, Outcome.DROPPED, None)
        if not self.deliveries.claim_attempt(delivery, attempt, iso_utc(now), next_due):
            return None
        unscheduled: Exception | None = None
        if retry_at is not None:  # before sending: an attempt that dies from here on has its retry
            try:
                self.retries.schedule(webhook_id, delivery_id, attempt + 1, retry_at)
            except Exception as error:  # the attempt is still made; the failure is raised after it
                unscheduled = error
        headers = {
            "content-type": "application/json",
            "user-agent": "Appointments-Webhooks/1",
            "webhook-id": delivery.delivery_id,
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": self.signer.signature(
                subscription.signing(now), webhook_id, delivery.delivery_id, now, delivery.body
            ),
        }
        answer = self.sender.send(subscription.url, delivery.body.encode(), headers, TIMEOUT_SECONDS)
        after, outcome = after_attempt(delivery, attempt, answer, retry_at, now)
        recorded = self.deliveries.record(delivery, after)
        if outcome is Outcome.GONE:
            self.deliveries.disable(subscription, iso_utc(now), f"{delivery_id} was answered 410 Gone")
        if unscheduled is not None:  # shows as stuck (its next attempt's time passes): a replay sends it
            raise RetryNotScheduledError(delivery_id, attempt + 1) from unscheduled
        return Attempted(after, outcome, answer, recorded)

    def defer(self, delivery: Delivery) -> None:
        """Leave a delivery's first attempt to the schedule (the invocation has no time left for it)."""
        self.retries.schedule(delivery.webhook_id, delivery.delivery_id, 1, self.clock() + FIRST_ATTEMPT_DELAY)


class DeliveryPendingError(DomainError):
    code = "DELIVERY_PENDING"
    status = HTTPStatus.CONFLICT

    def __init__(self) -> None:
        super().__init__(
            "The delivery is still being attempted; replay it once it is delivered or failed"
            " (or once its next attempt is more than 5 minutes late)."
        )


class SubscriptionDisabledError(DomainError):
    code = "WEBHOOK_DISABLED"
    status = HTTPStatus.CONFLICT

    def __init__(self) -> None:
        super().__init__("The subscription is disabled (its receiver answered 410 Gone); subscribe again.")


class DeliveryLog(Struct):
    """The delivery log of a subscription, and its replays, for whoever may manage the subscription."""

    webhooks: WebhookService
    deliveries: DeliveryStore
    retries: Retries
    clock: Callable[[], datetime]

    @traced("webhooks.deliveries")
    def listed(
        self, principal: Principal, webhook_id: str, limit: int, cursor: str | None
    ) -> tuple[list[Delivery], str | None]:
        self.webhooks.managed(principal, webhook_id)
        return self.deliveries.deliveries(webhook_id, limit, cursor)

    @traced("webhooks.redeliver")
    def redeliver(self, principal: Principal, webhook_id: str, delivery_id: str) -> Delivery:
        """One more attempt, within the minute, with the same id and body."""
        subscription = self.webhooks.managed(principal, webhook_id)
        if subscription.status is not SubscriptionStatus.ACTIVE:
            raise SubscriptionDisabledError()
        delivery = self.deliveries.delivery(webhook_id, delivery_id)
        if delivery is None:
            raise NotFoundError("No such delivery.")
        now = self.clock()
        if delivery.status is DeliveryStatus.PENDING and not self._stuck(delivery, now):
            raise DeliveryPendingError()
        # Ahead of now: Scheduler refuses a one-time schedule whose time has passed.
        at = now + FIRST_ATTEMPT_DELAY
        # One more attempt; a stuck delivery keeps the retries it had left after it.
        last = delivery.attempts + 1
        if delivery.status is DeliveryStatus.PENDING:
            last = max(delivery.last_attempt, last)
        if not self.deliveries.reopen(delivery, last, iso_utc(at)):
            raise DeliveryPendingError()
        self.retries.schedule(webhook_id, delivery_id, delivery.attempts + 1, at)
        return replace(delivery, status=DeliveryStatus.PENDING, last_attempt=last, next_attempt_at=iso_utc(at))

    @staticmethod
    def _stuck(delivery: Delivery, now: datetime) -> bool:
        """Pending, but its next attempt is well past due: its retries stopped (decision 0029)."""
        due = delivery.next_attempt_at or delivery.created_at
        return datetime.fromisoformat(due.replace("Z", "+00:00")) + STUCK_AFTER < now
