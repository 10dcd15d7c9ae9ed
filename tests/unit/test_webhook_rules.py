"""Who may subscribe to which webhooks, to which events, at which URL; and the secret: Standard
Webhooks' form, shown once, kept only sealed. (WIP for issue 21, item 2.)"""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import Any

import pytest

from services.booking.domain.webhooks import WebhookRules
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


def rules(**options: Any) -> WebhookRules:
    return WebhookRules(Owners(), Sealer(), DETAIL_TYPES, lambda: datetime(2026, 12, 1, tzinfo=UTC), **options)


def test_an_owner_subscribes_to_its_providers_events_and_sees_the_secret_once() -> None:
    made, secret = rules().subscription(OWNER, URL, ["booking.created", "booking.created", "hold.expired"], "prv_1")
    assert made.events == ("booking.created", "hold.expired") and made.provider_id == "prv_1"
    assert secret.startswith("whsec_") and len(base64.b64decode(secret.removeprefix("whsec_"))) == 32
    assert (
        secret.encode() not in made.sealed_secret
        and Sealer().open(made.sealed_secret, made.webhook_id) == secret.encode()
    )


def test_who_may_subscribe() -> None:
    assert rules().subscription(ADMIN, URL, ["booking.created"], None)[0].provider_id is None  # every provider's
    with pytest.raises(NotFoundError):
        rules().subscription(ADMIN, URL, ["booking.created"], "prv_unknown")
    with pytest.raises(ForbiddenError):
        rules().subscription(STRANGER, URL, ["booking.created"], "prv_1")
    with pytest.raises(ForbiddenError):
        rules().subscription(CUSTOMER, URL, ["booking.created"], "prv_1")
    with pytest.raises(ValidationFailedError) as refused:
        rules().subscription(OWNER, URL, ["booking.created"], None)
    assert refused.value.errors[0].field == "body.providerId"


@pytest.mark.parametrize(
    ("events", "field"), [([], "body.events"), (["booking.created", "booking.teleported"], "body.events")]
)
def test_events_must_be_domain_events(events: list[str], field: str) -> None:
    with pytest.raises(ValidationFailedError) as refused:
        rules().subscription(OWNER, URL, events, "prv_1")
    assert refused.value.errors[0].field == field


def test_an_unsafe_url_is_refused_naming_the_field_and_loopback_only_locally() -> None:
    with pytest.raises(ValidationFailedError) as refused:
        rules().subscription(OWNER, "https://169.254.169.254/latest", ["booking.created"], "prv_1")
    assert refused.value.errors[0].field == "body.url" and "not public" in refused.value.errors[0].message
    with pytest.raises(ValidationFailedError):
        rules().subscription(OWNER, "http://127.0.0.1:9000/hook", ["booking.created"], "prv_1")
    local = rules(allow_loopback=True).subscription(OWNER, "http://127.0.0.1:9000/hook", ["booking.created"], "prv_1")
    assert local[0].url == "http://127.0.0.1:9000/hook"
