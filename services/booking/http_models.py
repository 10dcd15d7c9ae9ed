"""The booking API's request bodies as validated models, and a booking's JSON body (described the
same way in cloudformation/api/openapi.yaml; tests/unit/test_openapi_contract.py holds them together)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StringConstraints,
    ValidationInfo,
    field_validator,
)

from services.booking.domain.calendly import CALENDLY_USER, MAX_SIGNING_KEY, MIN_SIGNING_KEY
from services.booking.domain.models import Booking, BookingStatus, Hold, WaitlistEntry, WaitlistStatus
from services.common.clock import LAST_YEAR, SupportedInstant, iso_utc
from services.common.recurrence import MAX_OCCURRENCES, Recurrence

if TYPE_CHECKING:  # the features' own modules load with their routes (services/booking/handler.py)
    from services.booking.domain.deliveries import Delivery
    from services.booking.domain.external import ExternalBlock
    from services.booking.domain.notifications import Contact
    from services.booking.domain.series import BookedSeries
    from services.booking.domain.webhooks import Subscription

BOOKING_ID = r"^bkg_[0-9a-f]{48}$"
HOLD_ID = r"^hld_[0-9a-f]{48}$"
SERIES_ID = r"^ser_[0-9a-f]{48}$"
WAITLIST_ID = r"^wl_[0-9a-f]{48}$"
PROVIDER_ID = r"^prv_[0-9a-f]{32}$"
IDEMPOTENCY_KEY = r"^[A-Za-z0-9._:-]{1,128}$"


class RequestBody(BaseModel):
    """A request body: no field it does not name. Its validator is built when its route first
    validates one (`defer_build`), not when a container starts: most routes are not the first."""

    model_config = ConfigDict(extra="forbid", defer_build=True)


class HoldIn(RequestBody):
    providerId: Annotated[str, StringConstraints(strict=True, pattern=r"^prv_[0-9a-f]{32}$")]
    serviceId: Annotated[str, StringConstraints(strict=True, pattern=r"^svc_[0-9a-f]{32}$")]
    start: SupportedInstant
    customerId: Annotated[str, StringConstraints(strict=True, min_length=1, max_length=128)] | None = None


class RecurrenceIn(RequestBody):
    frequency: Literal["DAILY", "WEEKLY"]
    interval: Annotated[StrictInt, Field(ge=1, le=52)] = 1
    count: Annotated[StrictInt, Field(ge=2, le=MAX_OCCURRENCES)]

    def recurrence(self) -> Recurrence:
        return Recurrence(self.frequency, self.count, self.interval)


class BookingIn(HoldIn):
    """What a hold names, and the customer's words; `holdId` books the time a hold keeps, `recurrence`
    books a series from `start` on."""

    notes: Annotated[str, StringConstraints(strict=True, max_length=1000)] | None = None
    holdId: Annotated[str, StringConstraints(strict=True, pattern=HOLD_ID)] | None = None
    recurrence: RecurrenceIn | None = None

    @field_validator("recurrence")
    @classmethod
    def one_hold_one_time(cls, recurrence: RecurrenceIn | None, info: ValidationInfo) -> RecurrenceIn | None:
        if recurrence is not None and info.data.get("holdId") is not None:
            raise ValueError("a hold keeps one time: leave out holdId or recurrence")
        start = info.data.get("start")
        if recurrence is not None and isinstance(start, datetime):
            days = (recurrence.count - 1) * recurrence.interval * (7 if recurrence.frequency == "WEEKLY" else 1)
            if (start + timedelta(days=days + 1)).year > LAST_YEAR:
                raise ValueError(f"the series would end after {LAST_YEAR}: fewer occurrences, or closer together")
        return recurrence


class CancelIn(RequestBody):
    reason: Annotated[str, StringConstraints(strict=True, max_length=500)] | None = None


class WaitlistIn(RequestBody):
    """A place in line for time of one service from `from` to `to` (the whole appointment inside it)."""

    model_config = ConfigDict(populate_by_name=False)

    providerId: Annotated[str, StringConstraints(strict=True, pattern=r"^prv_[0-9a-f]{32}$")]
    serviceId: Annotated[str, StringConstraints(strict=True, pattern=r"^svc_[0-9a-f]{32}$")]
    window_start: SupportedInstant = Field(alias="from")
    window_end: SupportedInstant = Field(alias="to")
    customerId: Annotated[str, StringConstraints(strict=True, min_length=1, max_length=128)] | None = None


class RescheduleIn(RequestBody):
    start: SupportedInstant


def booking_json(booking: Booking) -> dict[str, object]:
    body: dict[str, object] = {
        "bookingId": booking.booking_id,
        "providerId": booking.provider_id,
        "serviceId": booking.service_id,
        "customerId": booking.customer_id,
        "start": booking.start.isoformat(),
        "end": booking.end.isoformat(),
        "status": booking.status.value,
        "version": booking.version,
        "createdAt": booking.created_at,
    }
    if booking.notes is not None:
        body["notes"] = booking.notes
    if booking.series_id is not None:
        body["seriesId"] = booking.series_id
    if booking.status is BookingStatus.PENDING and booking.approval_expires_at is not None:
        body["approvalExpiresAt"] = iso_utc(booking.approval_expires_at)
    if booking.decline_reason is not None:
        body["declineReason"] = booking.decline_reason
    return body


def hold_json(hold: Hold) -> dict[str, object]:
    body: dict[str, object] = {
        "holdId": hold.hold_id,
        "providerId": hold.provider_id,
        "serviceId": hold.service_id,
        "customerId": hold.customer_id,
        "start": hold.start.isoformat(),
        "end": hold.end.isoformat(),
        "expiresAt": iso_utc(hold.expires_at),
        "createdAt": hold.created_at,
    }
    if hold.waitlist_id is not None:
        body["waitlistId"] = hold.waitlist_id  # the waitlist entry it was offered to
    return body


def waitlist_json(entry: WaitlistEntry) -> dict[str, object]:
    body: dict[str, object] = {
        "waitlistId": entry.waitlist_id,
        "providerId": entry.provider_id,
        "serviceId": entry.service_id,
        "customerId": entry.customer_id,
        "from": entry.window_start.isoformat(),
        "to": entry.window_end.isoformat(),
        "status": entry.status.value,
        "version": entry.version,
        "createdAt": entry.created_at,
    }
    if entry.hold_id is not None and entry.status is not WaitlistStatus.WAITING:
        body["holdId"] = entry.hold_id
    if entry.offer_expires_at is not None:
        body["offerExpiresAt"] = iso_utc(entry.offer_expires_at)
    if entry.booking_id is not None:
        body["bookingId"] = entry.booking_id
    return body


def series_json(booked: BookedSeries) -> dict[str, object]:
    series = booked.series
    return {
        "seriesId": series.series_id,
        "providerId": series.provider_id,
        "serviceId": series.service_id,
        "customerId": series.customer_id,
        "recurrence": {
            "frequency": series.recurrence.frequency,
            "interval": series.recurrence.interval,
            "count": series.recurrence.count,
        },
        "status": series.status.value,
        "createdAt": series.created_at,
        "items": [booking_json(booking) for booking in booked.bookings],
    }


WEBHOOK_ID = r"^wh_[0-9a-f]{32}$"
DELIVERY_ID = r"^msg_[0-9]{14}_[A-Za-z0-9_-]{1,100}$"


EventType = Annotated[str, StringConstraints(strict=True, max_length=64)]


class WebhookIn(RequestBody):
    """`POST /webhooks`: where to, which events (docs/events/), and whose (admins may leave it out: all)."""

    url: Annotated[str, StringConstraints(strict=True, min_length=8, max_length=2048)]
    events: Annotated[
        list[Annotated[str, StringConstraints(strict=True, max_length=64)]], Field(min_length=1, max_length=30)
    ]
    providerId: Annotated[str, StringConstraints(strict=True, pattern=PROVIDER_ID)] | None = None


def webhook_json(subscription: Subscription) -> dict[str, object]:
    """A subscription as the API shows it: never a secret, only when each began and retires."""
    body: dict[str, object] = {
        "webhookId": subscription.webhook_id,
        "url": subscription.url,
        "events": list(subscription.events),
        "providerId": subscription.provider_id,
        "status": subscription.status.value,
        "createdAt": subscription.created_at,
        "createdBy": subscription.created_by,
        "secrets": [
            {"createdAt": secret.created_at} | ({"retiresAt": secret.retires_at} if secret.retires_at else {})
            for secret in subscription.secrets
        ],
    }
    if subscription.disabled_at is not None:
        body |= {"disabledAt": subscription.disabled_at, "disabledReason": subscription.disabled_reason}
    return body


def delivery_json(delivery: Delivery) -> dict[str, object]:
    """A delivery's log entry: its message, its state, and its last attempt's answer."""
    return {
        "deliveryId": delivery.delivery_id,
        "eventId": delivery.event_id,
        "type": delivery.event_type,
        "status": delivery.status.value,
        "attempts": delivery.attempts,
        "createdAt": delivery.created_at,
        "nextAttemptAt": delivery.next_attempt_at,
        "lastAttemptAt": delivery.last_attempt_at,
        "lastStatus": delivery.last_status,
        "lastError": delivery.last_error,
        "lastResponse": delivery.last_response,
        "lastDurationMs": delivery.last_duration_ms,
        "deliveredAt": delivery.delivered_at,
    }


class CalendlyIn(RequestBody):
    """`PUT /providers/{providerId}/integrations/calendly`: the signing key of the provider's Calendly
    webhook subscription (the one chosen when it was made with a token, or Calendly's own)."""

    signingKey: Annotated[str, StringConstraints(strict=True, min_length=MIN_SIGNING_KEY, max_length=MAX_SIGNING_KEY)]
    # The provider's Calendly user (GET https://api.calendly.com/users/me → resource.uri): only its events count.
    calendlyUser: Annotated[str, StringConstraints(strict=True, pattern=CALENDLY_USER)] | None = None


def external_json(block: ExternalBlock, changed: bool) -> dict[str, object]:
    """What a Calendly delivery did. Calendly keeps answers in its own logs: no id of ours beyond the
    block's (what a conflict collided with is in the trail, for the provider's staff)."""
    return {
        "externalId": block.external_id,
        "status": block.status.value,
        "changed": changed,
        "start": iso_utc(block.start),
        "end": iso_utc(block.end),
    }


class ContactIn(RequestBody):
    """`PUT /me/contact`: the customer's WhatsApp number (E.164) and whether they want messages there."""

    whatsapp: Annotated[str, StringConstraints(strict=True, max_length=16)] | None = None
    optIn: StrictBool


def contact_json(contact: Contact) -> dict[str, object]:
    return {
        "customerId": contact.customer_id,
        "whatsapp": contact.whatsapp,
        "optIn": contact.opted_in,
        "consentAt": contact.consent_at,
        "consentSource": contact.consent_source,
        "version": contact.version,
    }
