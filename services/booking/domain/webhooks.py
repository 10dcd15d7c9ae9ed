"""Webhook subscriptions (decision 0029): who may subscribe to which events at which URL, the secrets
that sign their deliveries, and who may see, replay or end them.

`POST /webhooks {url, events, providerId?}`:
- an admin subscribes to any provider's events, or to every provider's (no `providerId`);
- a provider's owner to the events of providers they own, and must name one;
- nobody else.
Admins list, rotate, replay and delete every subscription; an owner those to their providers' events
that no admin made (an admin's subscription to a provider's events is the admins' to manage, its
secret theirs alone). Another's subscription answers 404, as one that never was.

The URL must be a safe destination (services/common/webhook_destinations.py), checked again at each
delivery. The events are the domain events' detail-types (docs/events/), at least one. A secret is
Standard Webhooks': `whsec_` + base64 of 32 random bytes, shown once, and kept sealed (KMS). A rotation
makes a new one and keeps the old signing for `ROTATION_OVERLAP`, so deliveries carry both
signatures while the receiver moves to the new one; a rotation during that overlap ends it (never
more than two secrets sign).
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from enum import StrEnum
from http import HTTPStatus
from typing import Protocol

from msgspec import Struct
from msgspec.structs import replace

from services.common.auth import Group, Principal
from services.common.clock import iso_utc
from services.common.errors import DomainError, FieldError, ForbiddenError, NotFoundError, ValidationFailedError
from services.common.tracing import traced
from services.common.webhook_destinations import UnsafeDestinationError, check_destination

WEBHOOK_ID_PREFIX = "wh_"
SECRET_PREFIX = "whsec_"
SECRET_BYTES = 32  # Standard Webhooks: 24 to 64
ROTATION_OVERLAP = timedelta(hours=24)  # the old secret keeps signing this long after a rotation
MOST_SUBSCRIPTIONS = 100  # per scope (a provider's, or every provider's): a stage's fan-out stays cheap


class SubscriptionStatus(StrEnum):
    ACTIVE = "ACTIVE"
    DISABLED = "DISABLED"  # the receiver answered 410 Gone: nothing more is sent


class SealedSecret(Struct, frozen=True):
    sealed: bytes  # the secret, encrypted (the Sealer's)
    created_at: str
    retires_at: str | None = None  # set by a rotation: signs until then


class Subscription(Struct, frozen=True):
    webhook_id: str
    url: str
    events: tuple[str, ...]
    provider_id: str | None  # None: every provider's events (admins only)
    secrets: tuple[SealedSecret, ...]
    created_at: str
    created_by: str
    status: SubscriptionStatus = SubscriptionStatus.ACTIVE
    disabled_at: str | None = None
    disabled_reason: str | None = None
    version: int = 1
    admin_made: bool = False  # made by an admin: managed by admins only

    def wants(self, event_type: str) -> bool:
        return self.status is SubscriptionStatus.ACTIVE and event_type in self.events

    def signing(self, now: datetime) -> list[SealedSecret]:
        """The secrets a delivery at `now` is signed with: the current one, and any still overlapping."""
        moment = iso_utc(now)
        return [secret for secret in self.secrets if secret.retires_at is None or secret.retires_at > moment]


class Sealer(Protocol):
    """Encrypts a secret for storage and opens it for signing (KMS on AWS), bound to its subscription."""

    def seal(self, secret: bytes, bound_to: str) -> bytes: ...

    def open(self, sealed: bytes, bound_to: str) -> bytes: ...


class Owners(Protocol):
    def owner_of(self, provider_id: str) -> str | None:
        """The provider's owner's sub; None when there is no such provider."""
        ...


class SubscriptionStore(Protocol):
    def add_subscription(self, subscription: Subscription) -> bool:
        """False when its scope holds `MOST_SUBSCRIPTIONS` already."""
        ...

    def subscription(self, webhook_id: str) -> Subscription | None: ...

    def subscriptions(self) -> list[Subscription]:
        """Every subscription, the global ones first, then by provider."""
        ...

    def subscribers(self, provider_id: str | None) -> list[Subscription]:
        """Those that may hear of a provider's events: its own subscriptions and the global ones."""
        ...

    def replace_secrets(self, subscription: Subscription, secrets: tuple[SealedSecret, ...]) -> bool:
        """False when the subscription changed since it was read (its version)."""
        ...

    def remove_subscription(self, subscription: Subscription) -> None: ...


class SubscriptionChangedError(DomainError):
    code = "WEBHOOK_CHANGED"
    status = HTTPStatus.CONFLICT

    def __init__(self) -> None:
        super().__init__("The subscription was changed by another request meanwhile; try again.")


class TooManySubscriptionsError(DomainError):
    code = "TOO_MANY_WEBHOOKS"
    status = HTTPStatus.CONFLICT

    def __init__(self) -> None:
        super().__init__(f"At most {MOST_SUBSCRIPTIONS} subscriptions per provider (and globally); delete one first.")


class UnsafeUrlError(DomainError):
    """A well-formed URL that may not receive webhooks: what it resolves to is not public (or not
    loopback, locally), it does not resolve, or it carries credentials."""

    code = "UNSAFE_URL"
    status = HTTPStatus.UNPROCESSABLE_ENTITY

    def __init__(self, why: str) -> None:
        super().__init__("The URL may not receive webhooks.")
        self.why = why

    def extensions(self) -> dict[str, object]:
        return {"errors": [{"field": "body.url", "message": self.why}]}


class SubscriptionNotFoundError(NotFoundError):
    def __init__(self) -> None:
        super().__init__("No such webhook subscription.")


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


class WebhookService(Struct):
    store: SubscriptionStore
    owners: Owners
    sealer: Sealer
    detail_types: frozenset[str]
    clock: Callable[[], datetime]
    allow_loopback: bool = False  # the local stack's receivers on 127.0.0.1

    @traced("webhooks.subscribe")
    def subscribe(
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
            raise UnsafeUrlError(str(error)) from error
        webhook_id = f"{WEBHOOK_ID_PREFIX}{secrets.token_hex(16)}"
        secret = new_secret()
        now = iso_utc(self.clock())
        sealed = SealedSecret(self.sealer.seal(secret.encode(), webhook_id), now)
        admin = principal.is_in(Group.ADMINS)
        made = Subscription(webhook_id, url, wanted, provider_id, (sealed,), now, principal.sub, admin_made=admin)
        if not self.store.add_subscription(made):
            raise TooManySubscriptionsError()
        return made, secret

    @traced("webhooks.list")
    def visible(self, principal: Principal) -> list[Subscription]:
        """What the caller may manage: every subscription for an admin; an owner's providers' for an owner."""
        found = self.store.subscriptions()
        if principal.is_in(Group.ADMINS):
            return found
        if not principal.is_in(Group.PROVIDERS):
            raise ForbiddenError("Only admins and providers' owners have webhook subscriptions.")
        owners: dict[str, str | None] = {}
        for provider_id in {s.provider_id for s in found if s.provider_id is not None}:
            owners[provider_id] = self.owners.owner_of(provider_id)
        return [
            s
            for s in found
            if s.provider_id is not None and not s.admin_made and owners.get(s.provider_id) == principal.sub
        ]

    def managed(self, principal: Principal, webhook_id: str) -> Subscription:
        """The subscription, if the caller may manage it; else 404, as for one that never was."""
        admin = principal.is_in(Group.ADMINS)
        if not (admin or principal.is_in(Group.PROVIDERS)):  # before any read: nothing to learn here
            raise ForbiddenError("Only admins and providers' owners have webhook subscriptions.")
        found = self.store.subscription(webhook_id) if webhook_id.startswith(WEBHOOK_ID_PREFIX) else None
        if found is None:
            raise SubscriptionNotFoundError()
        if admin:
            return found
        if found.provider_id is None or found.admin_made or self.owners.owner_of(found.provider_id) != principal.sub:
            raise SubscriptionNotFoundError()
        return found

    @traced("webhooks.delete")
    def delete(self, principal: Principal, webhook_id: str) -> None:
        """Gone at once: a delivery or retry still on its way finds no subscription and sends nothing."""
        self.store.remove_subscription(self.managed(principal, webhook_id))

    @traced("webhooks.rotate")
    def rotate(self, principal: Principal, webhook_id: str) -> tuple[Subscription, str]:
        """A new secret (shown once); the one it replaces keeps signing for `ROTATION_OVERLAP`."""
        subscription = self.managed(principal, webhook_id)
        now = self.clock()
        secret = new_secret()
        retiring = iso_utc(now + ROTATION_OVERLAP)
        current = [old for old in subscription.signing(now) if old.retires_at is None]
        kept = tuple(replace(old, retires_at=retiring) for old in current)
        fresh = SealedSecret(self.sealer.seal(secret.encode(), webhook_id), iso_utc(now))
        secrets_now = (*kept, fresh)
        if not self.store.replace_secrets(subscription, secrets_now):
            raise SubscriptionChangedError()
        return replace(subscription, secrets=secrets_now, version=subscription.version + 1), secret

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
