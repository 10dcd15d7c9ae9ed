"""Who may subscribe to which webhooks, to which events, at which URL; the secret: Standard Webhooks'
form, shown once, kept only sealed; who sees and manages which subscriptions; and a rotation, whose
old secret signs on for the overlap and then no more."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from msgspec.structs import replace

from services.booking.domain.webhooks import (
    ROTATION_OVERLAP,
    SealedSecret,
    Subscription,
    SubscriptionNotFoundError,
    UnsafeUrlError,
    WebhookService,
)
from services.booking.domain_events import DETAIL_TYPES
from services.common.auth import Group, Principal
from services.common.errors import ForbiddenError, NotFoundError, ValidationFailedError

OWNER = Principal("owner", frozenset({Group.PROVIDERS}))
STRANGER = Principal("stranger", frozenset({Group.PROVIDERS}))
ADMIN = Principal("admin", frozenset({Group.ADMINS}))
CUSTOMER = Principal("customer", frozenset({Group.CUSTOMERS}))
URL = "https://93.184.216.34/hooks"  # a public address: no lookup


class Owners:
    def owner_of(self, provider_id: str) -> str | None:
        return {"prv_1": "owner"}.get(provider_id)


class Sealer:
    def seal(self, secret: bytes, webhook_id: str) -> bytes:
        return b"sealed:" + webhook_id.encode() + b":" + secret[::-1]

    def open(self, sealed: bytes, webhook_id: str) -> bytes:
        return sealed.rsplit(b":", 1)[1][::-1]


NOW = datetime(2026, 12, 1, tzinfo=UTC)


@dataclass
class Store:
    kept: dict[str, Subscription] = field(default_factory=dict)

    def add_subscription(self, subscription: Subscription) -> bool:
        self.kept[subscription.webhook_id] = subscription
        return True

    def subscription(self, webhook_id: str) -> Subscription | None:
        return self.kept.get(webhook_id)

    def subscriptions(self) -> list[Subscription]:
        return list(self.kept.values())

    def subscribers(self, provider_id: str | None) -> list[Subscription]:
        return [s for s in self.kept.values() if s.provider_id in {None, provider_id}]

    def replace_secrets(self, subscription: Subscription, secrets: tuple[SealedSecret, ...]) -> bool:
        if self.kept[subscription.webhook_id].version != subscription.version:
            return False
        self.kept[subscription.webhook_id] = replace(subscription, secrets=secrets, version=subscription.version + 1)
        return True

    def remove_subscription(self, subscription: Subscription) -> None:
        del self.kept[subscription.webhook_id]


def rules(store: Store | None = None, now: datetime = NOW, **options: Any) -> WebhookService:
    return WebhookService(store or Store(), Owners(), Sealer(), DETAIL_TYPES, lambda: now, **options)


def test_an_owner_subscribes_to_its_providers_events_and_sees_the_secret_once() -> None:
    made, secret = rules().subscribe(OWNER, URL, ["booking.created", "booking.created", "hold.expired"], "prv_1")
    assert made.events == ("booking.created", "hold.expired") and made.provider_id == "prv_1"
    assert secret.startswith("whsec_") and len(base64.b64decode(secret.removeprefix("whsec_"))) == 32
    (sealed,) = made.secrets
    assert secret.encode() not in sealed.sealed and Sealer().open(sealed.sealed, made.webhook_id) == secret.encode()


def test_who_may_subscribe() -> None:
    assert rules().subscribe(ADMIN, URL, ["booking.created"], None)[0].provider_id is None  # every provider's
    with pytest.raises(NotFoundError):
        rules().subscribe(ADMIN, URL, ["booking.created"], "prv_unknown")
    with pytest.raises(ForbiddenError):
        rules().subscribe(STRANGER, URL, ["booking.created"], "prv_1")
    with pytest.raises(ForbiddenError):
        rules().subscribe(CUSTOMER, URL, ["booking.created"], "prv_1")
    with pytest.raises(ValidationFailedError) as refused:
        rules().subscribe(OWNER, URL, ["booking.created"], None)
    assert refused.value.errors[0].field == "body.providerId"


@pytest.mark.parametrize(
    ("events", "field"), [([], "body.events"), (["booking.created", "booking.teleported"], "body.events")]
)
def test_events_must_be_domain_events(events: list[str], field: str) -> None:
    with pytest.raises(ValidationFailedError) as refused:
        rules().subscribe(OWNER, URL, events, "prv_1")
    assert refused.value.errors[0].field == field


def test_an_unsafe_url_is_refused_naming_the_field_and_loopback_only_locally() -> None:
    with pytest.raises(UnsafeUrlError) as refused:
        rules().subscribe(OWNER, "https://169.254.169.254/latest", ["booking.created"], "prv_1")
    errors: Any = refused.value.extensions()["errors"]
    (error,) = errors
    assert error["field"] == "body.url" and "not public" in error["message"] and refused.value.status == 422
    with pytest.raises(UnsafeUrlError):
        rules().subscribe(OWNER, "http://127.0.0.1:9000/hook", ["booking.created"], "prv_1")
    local = rules(allow_loopback=True).subscribe(OWNER, "http://127.0.0.1:9000/hook", ["booking.created"], "prv_1")
    assert local[0].url == "http://127.0.0.1:9000/hook"


def test_each_sees_and_manages_what_they_could_have_made_and_another_s_is_404() -> None:
    store = Store()
    own = rules(store).subscribe(OWNER, URL, ["booking.created"], "prv_1")[0]
    everyone = rules(store).subscribe(ADMIN, URL, ["booking.created"], None)[0]
    assert [s.webhook_id for s in rules(store).visible(OWNER)] == [own.webhook_id]
    assert {s.webhook_id for s in rules(store).visible(ADMIN)} == {own.webhook_id, everyone.webhook_id}
    assert rules(store).visible(STRANGER) == []
    with pytest.raises(ForbiddenError):
        rules(store).visible(CUSTOMER)
    for principal, webhook_id in [(STRANGER, own.webhook_id), (OWNER, everyone.webhook_id), (OWNER, "wh_nothing")]:
        with pytest.raises(SubscriptionNotFoundError):
            rules(store).delete(principal, webhook_id)
    # An admin's subscription to the owner's provider is the admins' to manage: its secret theirs alone.
    admins = rules(store).subscribe(ADMIN, URL, ["booking.created"], "prv_1")[0]
    assert [s.webhook_id for s in rules(store).visible(OWNER)] == [own.webhook_id]
    for act in (rules(store).rotate, rules(store).delete):
        with pytest.raises(SubscriptionNotFoundError):
            act(OWNER, admins.webhook_id)
    # A customer learns nothing, not even whether the id exists.
    for webhook_id in (own.webhook_id, "wh_nothing"):
        with pytest.raises(ForbiddenError):
            rules(store).delete(CUSTOMER, webhook_id)
    rules(store).delete(OWNER, own.webhook_id)
    assert set(store.kept) == {everyone.webhook_id, admins.webhook_id}


def test_a_rotation_signs_with_both_secrets_for_the_overlap_and_then_with_the_new_alone() -> None:
    store = Store()
    made, first = rules(store).subscribe(OWNER, URL, ["booking.created"], "prv_1")
    rotated, second = rules(store, NOW + timedelta(hours=1)).rotate(OWNER, made.webhook_id)
    assert second != first and rotated.version == 2
    opened = [Sealer().open(s.sealed, made.webhook_id).decode() for s in rotated.signing(NOW + timedelta(hours=2))]
    assert opened == [first, second]
    retired = NOW + timedelta(hours=1) + ROTATION_OVERLAP
    assert [Sealer().open(s.sealed, made.webhook_id).decode() for s in rotated.signing(retired)] == [second]
    # A rotation during the overlap ends it: never more than two secrets sign.
    during = rules(store, NOW + timedelta(hours=2)).rotate(OWNER, made.webhook_id)[0]
    opened_during = [Sealer().open(s.sealed, made.webhook_id) for s in during.signing(NOW + timedelta(hours=2))]
    assert len(opened_during) == 2 and first.encode() not in opened_during
    # A later one keeps the last's retirement and drops what retired already.
    again = rules(store, retired + timedelta(seconds=1)).rotate(OWNER, made.webhook_id)[0]
    assert len(again.secrets) == 2 and again.secrets[0].retires_at is not None


def test_the_api_document_names_exactly_the_domain_events_a_subscription_may_want() -> None:
    from deploy.openapi import load_document

    document = load_document()
    events = document["components"]["schemas"]["WebhookCreate"]["properties"]["events"]["items"]["enum"]
    assert sorted(events) == sorted(DETAIL_TYPES)
