"""Deliveries (decision 0029): one per subscription that wants an event, once however often the event
is published; each attempt claimed, signed at its own time, sent, and followed by the schedule's
next attempt, a 410's disabling, or the end; a replay is one more attempt of a finished delivery."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from msgspec.structs import replace

from services.booking.domain.deliveries import (
    ATTEMPTS,
    IN_FLIGHT,
    RETRY_DELAYS,
    Answer,
    Delivery,
    DeliveryLog,
    DeliveryPendingError,
    DeliveryStatus,
    Dispatcher,
    Outcome,
    RetryNotScheduledError,
    message_id,
)
from services.booking.domain.webhooks import SealedSecret, Subscription, SubscriptionStatus, WebhookService
from services.common.auth import Group, Principal

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
SECRET = "whsec_" + base64.b64encode(b"k" * 32).decode()
EVENT = {
    "id": "evt_0123abcd",
    "type": "booking.created",
    "timestamp": "2026-12-01T08:59:58Z",
    "schemaVersion": 1,
    "data": {"bookingId": "bkg_1", "providerId": "prv_1", "version": 1},
}


def subscription(webhook_id: str = "wh_1", provider_id: str | None = "prv_1", **changes: Any) -> Subscription:
    made = Subscription(
        webhook_id, f"https://{webhook_id}.example/hook", ("booking.created",), provider_id,
        (SealedSecret(SECRET.encode(), "2026-11-01T00:00:00Z"),), "2026-11-01T00:00:00Z", "owner",
    )  # fmt: skip
    return replace(made, **changes)


@dataclass
class Store:
    subs: dict[str, Subscription] = field(default_factory=dict)
    kept: dict[tuple[str, str], Delivery] = field(default_factory=dict)
    disabled: list[str] = field(default_factory=list)

    def subscription(self, webhook_id: str) -> Subscription | None:
        return self.subs.get(webhook_id)

    def subscribers(self, provider_id: str | None) -> list[Subscription]:
        return [s for s in self.subs.values() if s.provider_id in {None, provider_id}]

    def add_delivery(self, delivery: Delivery) -> bool:
        key = (delivery.webhook_id, delivery.delivery_id)
        if key in self.kept:
            return False
        self.kept[key] = delivery
        return True

    def delivery(self, webhook_id: str, delivery_id: str) -> Delivery | None:
        return self.kept.get((webhook_id, delivery_id))

    def deliveries(self, webhook_id: str, limit: int, cursor: str | None) -> tuple[list[Delivery], str | None]:
        return [d for (w, _), d in sorted(self.kept.items(), reverse=True) if w == webhook_id][:limit], None

    def claim_attempt(self, delivery: Delivery, attempt: int, at: str, next_due: str) -> bool:
        stored = self.kept[(delivery.webhook_id, delivery.delivery_id)]
        if stored.attempts != attempt - 1 or stored.status is not DeliveryStatus.PENDING:
            return False
        claimed = replace(stored, attempts=attempt, last_attempt_at=at, next_attempt_at=next_due)
        self.kept[(delivery.webhook_id, delivery.delivery_id)] = claimed
        return True

    def record(self, before: Delivery, after: Delivery) -> bool:
        if self.kept[(after.webhook_id, after.delivery_id)].attempts != after.attempts:
            return False  # a later attempt was claimed meanwhile (DynamoDB's condition)
        self.kept[(after.webhook_id, after.delivery_id)] = after
        return True

    def reopen(self, delivery: Delivery, last_attempt: int, due: str) -> bool:
        stored = self.kept[(delivery.webhook_id, delivery.delivery_id)]
        if (stored.status, stored.attempts) != (delivery.status, delivery.attempts):
            return False
        self.kept[(delivery.webhook_id, delivery.delivery_id)] = replace(
            delivery, status=DeliveryStatus.PENDING, last_attempt=last_attempt, next_attempt_at=due
        )
        return True

    def disable(self, subscription: Subscription, at: str, reason: str) -> None:
        self.disabled.append(subscription.webhook_id)
        self.subs[subscription.webhook_id] = replace(subscription, status=SubscriptionStatus.DISABLED)


class Signer:
    """Signs as Standard Webhooks says, by hand: the library's output is checked against this."""

    def signature(self, secrets: list[SealedSecret], webhook_id: str, message_id: str, at: datetime, body: str) -> str:
        signed = f"{message_id}.{int(at.timestamp())}.{body}".encode()
        keys = [base64.b64decode(s.sealed.decode().removeprefix("whsec_")) for s in secrets]
        return " ".join("v1," + base64.b64encode(hmac.new(k, signed, hashlib.sha256).digest()).decode() for k in keys)


@dataclass
class Receiver:
    answers: list[Answer]
    seen: list[tuple[str, dict[str, str], bytes]] = field(default_factory=list)

    def send(self, url: str, body: bytes, headers: dict[str, str], timeout: float) -> Answer:
        assert timeout == 5
        self.seen.append((url, headers, body))
        return self.answers.pop(0)


@dataclass
class Retries:
    scheduled: list[tuple[str, str, int, datetime]] = field(default_factory=list)

    def schedule(self, webhook_id: str, delivery_id: str, attempt: int, at: datetime) -> None:
        self.scheduled.append((webhook_id, delivery_id, attempt, at))


def dispatcher(store: Store, receiver: Receiver, retries: Retries, now: datetime = NOW) -> Dispatcher:
    return Dispatcher(store, store, Signer(), receiver, retries, lambda: now)


def test_an_event_is_one_delivery_per_subscription_that_wants_it_however_often_it_is_published() -> None:
    store = Store(
        {
            "wh_1": subscription("wh_1"),
            "wh_all": subscription("wh_all", provider_id=None),
            "wh_other": subscription("wh_other", provider_id="prv_2"),
            "wh_cancels": subscription("wh_cancels", events=("booking.cancelled",)),
            "wh_off": subscription("wh_off", status=SubscriptionStatus.DISABLED),
        }
    )
    made = dispatcher(store, Receiver([]), Retries()).fan_out(EVENT, "1-abc-def", "0123456789abcdef")
    assert sorted(d.webhook_id for d in made) == ["wh_1", "wh_all"]
    assert {d.delivery_id for d in made} == {message_id(EVENT)} == {"msg_20261201085958_0123abcd"}
    assert json.loads(made[0].body) == {k: EVENT[k] for k in ("type", "timestamp", "data")}
    # Published again before either was attempted (the first invocation failed in between): both are
    # due once more, and their claims make the attempt once.
    assert len(dispatcher(store, Receiver([]), Retries()).fan_out(EVENT)) == 2
    receiver = Receiver([Answer(200), Answer(200)])
    for delivery in made:
        dispatcher(store, receiver, Retries()).attempt(delivery.webhook_id, delivery.delivery_id, 1)
    assert dispatcher(store, receiver, Retries()).fan_out(EVENT) == []  # published again: the dedupe key
    assert len(receiver.seen) == 2


def test_a_500_then_a_200_is_two_attempts_with_one_id_the_second_on_the_schedule() -> None:
    store, retries = Store({"wh_1": subscription()}), Retries()
    receiver = Receiver([Answer(500, "HTTP 500", "oops", 12.0), Answer(200, None, "ok", 8.0)])
    (delivery,) = dispatcher(store, receiver, retries).fan_out(EVENT)
    first = dispatcher(store, receiver, retries).attempt("wh_1", delivery.delivery_id, 1)
    assert first is not None and first.outcome is Outcome.RETRYING
    # scheduled before sending, for 5 s after the attempt must have ended (its 5 s and a margin)
    assert retries.scheduled == [("wh_1", delivery.delivery_id, 2, NOW + IN_FLIGHT + timedelta(seconds=5))]
    assert first.delivery.next_attempt_at == "2026-12-01T09:00:12Z" and first.delivery.last_status == 500
    later = NOW + timedelta(seconds=12)
    second = dispatcher(store, receiver, retries, later).attempt("wh_1", delivery.delivery_id, 2)
    assert second is not None and second.outcome is Outcome.DELIVERED
    assert second.delivery.status is DeliveryStatus.DELIVERED and second.delivery.attempts == 2
    (_, one, body_1), (_, two, body_2) = receiver.seen
    assert one["webhook-id"] == two["webhook-id"] == delivery.delivery_id and body_1 == body_2
    stamps = (one["webhook-timestamp"], two["webhook-timestamp"])
    assert stamps == (str(int(NOW.timestamp())), str(int(later.timestamp())))
    # The same attempt again (a schedule that fired twice) sends nothing; nor does the retry scheduled
    # before the second attempt was answered.
    assert dispatcher(store, receiver, retries, later).attempt("wh_1", delivery.delivery_id, 2) is None
    assert retries.scheduled[-1][2] == 3
    assert dispatcher(store, receiver, retries, later).attempt("wh_1", delivery.delivery_id, 3) is None
    assert len(receiver.seen) == 2 and store.kept[("wh_1", delivery.delivery_id)].next_attempt_at is None


def test_the_schedule_is_the_briefs_and_the_tenth_failure_is_final() -> None:
    assert [d.total_seconds() for d in RETRY_DELAYS] == [5, 300, 1800, 7200, 18000, 36000, 50400, 72000, 86400]
    store, retries = Store({"wh_1": subscription()}), Retries()
    receiver = Receiver([Answer(None, "timed out") for _ in range(ATTEMPTS)])
    (delivery,) = dispatcher(store, receiver, retries).fan_out(EVENT)
    at = NOW
    outcomes = []
    for attempt in range(1, ATTEMPTS + 1):
        attempted = dispatcher(store, receiver, retries, at).attempt("wh_1", delivery.delivery_id, attempt)
        assert attempted is not None
        outcomes.append(attempted.outcome)
        if attempt < ATTEMPTS:
            assert retries.scheduled[-1][2:] == (attempt + 1, at + IN_FLIGHT + RETRY_DELAYS[attempt - 1])
            at = retries.scheduled[-1][3]
    assert outcomes == [Outcome.RETRYING] * 9 + [Outcome.FAILED] and len(retries.scheduled) == 9
    assert store.kept[("wh_1", delivery.delivery_id)].next_attempt_at is None
    assert store.kept[("wh_1", delivery.delivery_id)].status is DeliveryStatus.FAILED


def test_a_410_fails_the_delivery_and_disables_the_subscription_so_nothing_more_is_sent() -> None:
    store, retries = Store({"wh_1": subscription()}), Retries()
    receiver = Receiver([Answer(410, "HTTP 410")])
    (delivery,) = dispatcher(store, receiver, retries).fan_out(EVENT)
    gone = dispatcher(store, receiver, retries).attempt("wh_1", delivery.delivery_id, 1)
    assert gone is not None and gone.outcome is Outcome.GONE and gone.delivery.status is DeliveryStatus.FAILED
    assert store.disabled == ["wh_1"]
    # its retry, scheduled before the answer came, finds it failed: nothing more is sent
    assert dispatcher(store, receiver, retries).attempt("wh_1", delivery.delivery_id, 2) is None
    later = {**EVENT, "id": "evt_later"}
    assert dispatcher(store, receiver, retries).fan_out(later) == []


def test_a_late_2xx_is_a_failure_and_a_deleted_subscription_gets_nothing() -> None:
    store, retries = Store({"wh_1": subscription()}), Retries()
    receiver = Receiver([Answer(200, "answered after 6.0 s (over 5 s)", "", 6000.0)])
    (delivery,) = dispatcher(store, receiver, retries).fan_out(EVENT)
    late = dispatcher(store, receiver, retries).attempt("wh_1", delivery.delivery_id, 1)
    assert late is not None and late.outcome is Outcome.RETRYING and late.delivery.status is DeliveryStatus.PENDING
    del store.subs["wh_1"]
    dropped = dispatcher(store, receiver, retries).attempt("wh_1", delivery.delivery_id, 2)
    assert dropped is not None and dropped.outcome is Outcome.DROPPED and dropped.answer is None
    assert dropped.delivery.status is DeliveryStatus.FAILED and len(receiver.seen) == 1


def test_the_library_signs_as_the_spec_says_once_per_live_secret() -> None:
    """`StandardWebhooksSigner` (the `standardwebhooks` library) against the by-hand signer above."""
    from services.booking.adapters.webhook_sender import StandardWebhooksSigner

    class Plain:
        def seal(self, secret: bytes, webhook_id: str) -> bytes:
            return secret

        def open(self, sealed: bytes, webhook_id: str) -> bytes:
            return sealed

    second = "whsec_" + base64.b64encode(b"n" * 32).decode()
    secrets = [SealedSecret(SECRET.encode(), "x"), SealedSecret(second.encode(), "y")]
    signed = StandardWebhooksSigner(Plain()).signature(secrets, "wh_1", "msg_1", NOW, '{"a":1}')
    assert signed == Signer().signature(secrets, "wh_1", "msg_1", NOW, '{"a":1}')
    assert len(signed.split(" ")) == 2


def test_both_secrets_sign_during_a_rotation() -> None:
    second = "whsec_" + base64.b64encode(b"n" * 32).decode()
    rotating = subscription(
        secrets=(
            SealedSecret(SECRET.encode(), "2026-11-01T00:00:00Z", "2026-12-01T10:00:00Z"),
            SealedSecret(second.encode(), "2026-12-01T08:00:00Z"),
        )
    )
    store, receiver = Store({"wh_1": rotating}), Receiver([Answer(204)])
    (delivery,) = dispatcher(store, receiver, Retries()).fan_out(EVENT)
    dispatcher(store, receiver, Retries()).attempt("wh_1", delivery.delivery_id, 1)
    headers, body = receiver.seen[0][1], receiver.seen[0][2]
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
    for secret, entry in zip([SECRET, second], headers["webhook-signature"].split(" "), strict=True):
        key = base64.b64decode(secret.removeprefix("whsec_"))
        assert entry == "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def test_a_replay_is_one_more_attempt_of_a_finished_delivery_and_a_pending_one_is_refused() -> None:
    store, retries = Store({"wh_1": subscription()}), Retries()
    receiver = Receiver([Answer(500, "HTTP 500"), Answer(200)])
    (delivery,) = dispatcher(store, receiver, retries).fan_out(EVENT)
    dispatcher(store, receiver, retries).attempt("wh_1", delivery.delivery_id, 1)

    class Owners:
        def owner_of(self, provider_id: str) -> str | None:
            return "owner"

    service = WebhookService(store, Owners(), None, frozenset(), lambda: NOW)  # type: ignore[arg-type]
    log = DeliveryLog(service, store, retries, lambda: NOW)
    owner = Principal("owner", frozenset({Group.PROVIDERS}))
    with pytest.raises(DeliveryPendingError):
        log.redeliver(owner, "wh_1", delivery.delivery_id)  # its retry is on its way
    assert dispatcher(store, receiver, retries).attempt("wh_1", delivery.delivery_id, 2) is not None
    replay = log.redeliver(owner, "wh_1", delivery.delivery_id)
    assert replay.status is DeliveryStatus.PENDING and replay.last_attempt == 3
    # Scheduled ahead of now: Scheduler refuses a time already past.
    assert retries.scheduled[-1] == ("wh_1", delivery.delivery_id, 3, NOW + timedelta(seconds=5))


class AnyOwner:
    def owner_of(self, provider_id: str) -> str | None:
        return "owner"


def test_a_delivery_whose_retries_stopped_can_be_replayed_once_it_is_well_past_due() -> None:
    """An attempt whose retry could not be scheduled (Scheduler failing) is still made and recorded,
    and the failure raised after it; failed, the delivery waits with its next attempt's time: five
    minutes past it, it counts as stuck and may be replayed, keeping the retries it had left."""
    store = Store({"wh_1": subscription()})

    class Failing:
        def schedule(self, *_: Any) -> None:
            raise ConnectionError("Scheduler is unreachable")

    (delivery,) = dispatcher(store, Receiver([]), Retries()).fan_out(EVENT)
    receiver = Receiver([Answer(500, "HTTP 500")])
    failing = Dispatcher(store, store, Signer(), receiver, Failing(), lambda: NOW)
    with pytest.raises(RetryNotScheduledError):
        failing.attempt("wh_1", delivery.delivery_id, 1)
    assert len(receiver.seen) == 1  # sent all the same
    stuck = store.kept[("wh_1", delivery.delivery_id)]
    assert (stuck.status, stuck.attempts, stuck.next_attempt_at) == (DeliveryStatus.PENDING, 1, "2026-12-01T09:00:12Z")
    service = WebhookService(store, AnyOwner(), None, frozenset(), lambda: NOW)  # type: ignore[arg-type]
    owner = Principal("owner", frozenset({Group.PROVIDERS}))
    retries = Retries()
    soon = DeliveryLog(service, store, retries, lambda: NOW + timedelta(minutes=4))
    with pytest.raises(DeliveryPendingError):
        soon.redeliver(owner, "wh_1", delivery.delivery_id)
    late = NOW + timedelta(minutes=6)
    replay = DeliveryLog(service, store, retries, lambda: late).redeliver(owner, "wh_1", delivery.delivery_id)
    assert replay.last_attempt == ATTEMPTS  # the retries it had left stay
    assert retries.scheduled == [("wh_1", delivery.delivery_id, 2, late + timedelta(seconds=5))]
    receiver = Receiver([Answer(200)])
    done = dispatcher(store, receiver, Retries(), late).attempt("wh_1", delivery.delivery_id, 2)
    assert done is not None and done.outcome is Outcome.DELIVERED and len(receiver.seen) == 1
