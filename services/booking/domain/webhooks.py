"""Webhook subscriptions (issue 21, item 2; WIP: the subscription rules, before their store and routes).

`POST /webhooks {url, events, providerId?}`:
- an admin subscribes to any provider's events, or to every provider's (no `providerId`);
- a provider's owner to the events of providers they own, and must name one;
- nobody else.
The URL must be a safe destination (services/common/webhook_destinations.py). The events must be
the domain events' detail-types (docs/events/), at least one. The secret is Standard Webhooks':
`whsec_` + base64 of 32 random bytes, shown once, and kept sealed (encrypted) by the `Sealer`.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from services.common.auth import Group, Principal
from services.common.clock import iso_utc
from services.common.errors import FieldError, ForbiddenError, NotFoundError, ValidationFailedError
from services.common.webhook_destinations import UnsafeDestinationError, check_destination

WEBHOOK_ID_PREFIX = "wh_"
SECRET_PREFIX = "whsec_"
SECRET_BYTES = 32  # Standard Webhooks: 24 to 64


@dataclass(frozen=True)
class Subscription:
    webhook_id: str
    url: str
    events: tuple[str, ...]
    provider_id: str | None  # None: every provider's events (admins only)
    sealed_secret: bytes
    created_at: str
    created_by: str


class Sealer(Protocol):
    """Encrypts a secret for storage and opens it for signing (KMS on AWS)."""

    def seal(self, secret: bytes, webhook_id: str) -> bytes: ...

    def open(self, sealed: bytes, webhook_id: str) -> bytes: ...


class Owners(Protocol):
    def owner_of(self, provider_id: str) -> str | None:
        """The provider's owner's sub; None when there is no such provider."""
        ...


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


@dataclass
class WebhookRules:
    owners: Owners
    sealer: Sealer
    detail_types: frozenset[str]
    clock: Callable[[], datetime]
    allow_loopback: bool = False  # the local stack's receivers on 127.0.0.1

    def subscription(
        self, principal: Principal, url: str, events: Iterable[str], provider_id: str | None
    ) -> tuple[Subscription, str]:
        """A new subscription and its secret (shown once), or the reason it may not be made."""
        self._authorize(principal, provider_id)
        wanted = tuple(dict.fromkeys(events))
        unknown = [event for event in wanted if event not in self.detail_types]
        if not wanted or unknown:
            raise ValidationFailedError(
                "Name one or more of the domain events' types (docs/events/).",
                [FieldError("body.events", f"unknown: {', '.join(unknown)}" if unknown else "at least one")],
            )
        try:
            check_destination(url, allow_loopback=self.allow_loopback)
        except UnsafeDestinationError as error:
            raise ValidationFailedError(
                "The URL may not receive webhooks.", [FieldError("body.url", str(error))]
            ) from error
        webhook_id = f"{WEBHOOK_ID_PREFIX}{secrets.token_hex(16)}"
        secret = new_secret()
        sealed = self.sealer.seal(secret.encode(), webhook_id)
        made = Subscription(webhook_id, url, wanted, provider_id, sealed, iso_utc(self.clock()), principal.sub)
        return made, secret

    def _authorize(self, principal: Principal, provider_id: str | None) -> None:
        if principal.is_in(Group.ADMINS):
            if provider_id is not None and self.owners.owner_of(provider_id) is None:
                raise NotFoundError("No such provider.")
            return
        if not principal.is_in(Group.PROVIDERS):
            raise ForbiddenError("Only admins and providers' owners subscribe to webhooks.")
        if provider_id is None:
            raise ValidationFailedError(
                "A provider subscribes to one of its providers' events.",
                [FieldError("body.providerId", "required for a provider (admins may subscribe to all)")],
            )
        if self.owners.owner_of(provider_id) != principal.sub:
            raise ForbiddenError("Providers subscribe only to the providers they own.")
