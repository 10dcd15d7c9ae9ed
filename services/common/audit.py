"""The audit event contract (version 1): what every change to a booking, schedule, override,
service, provider, hold, series, waitlist entry or external block, and every erasure of a customer's personal data,
becomes in the audit trail.
The audit service writes it; clients read it from `GET /bookings/{id}/history` and
`GET /audit/events`; the archive stores it."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

EntityType = Literal[
    "Provider",
    "Schedule",
    "Override",
    "Service",
    "Booking",
    "Series",
    "Hold",
    "WaitlistEntry",
    "Customer",
    "ExternalBlock",
]
Action = Literal[
    "PROVIDER_CREATED",
    "SCHEDULE_UPDATED",
    "OVERRIDE_SET",
    "OVERRIDE_REMOVED",
    "SERVICE_CREATED",
    "BOOKING_CREATED",
    "BOOKING_RESCHEDULED",
    "BOOKING_CANCELLED",
    "BOOKING_NO_SHOW",
    "BOOKING_APPROVED",
    "BOOKING_DECLINED",
    "BOOKING_EXPIRED",
    "HOLD_CREATED",
    "HOLD_RELEASED",
    "HOLD_CONVERTED",
    "HOLD_EXPIRED",  # written down by the minute's sweep once it lapsed unclaimed (decision 0027)
    "SERIES_CREATED",
    "SERIES_CANCELLED",
    "WAITLIST_JOINED",
    "WAITLIST_OFFERED",
    "WAITLIST_BOOKED",
    "WAITLIST_DECLINED",
    "WAITLIST_EXPIRED",
    "WAITLIST_CANCELLED",
    "PERSONAL_DATA_ERASED",
    "FEED_SHARED",  # a provider's calendar feed URL made (replacing the last) (decision 0028)
    "FEED_REVOKED",
    # Time a provider's Calendly booked (decision 0030), actor `calendly`: busy here, freed there, or
    # refused because our side held it first (two appointments at once: someone must move one).
    "EXTERNAL_BLOCKED",
    "EXTERNAL_CONFLICT",
    "EXTERNAL_FREED",
    "CALENDLY_CONNECTED",  # a provider's signing key set (or replaced); the key itself is never in the trail
    "CALENDLY_DISCONNECTED",
    # A customer's WhatsApp consent (decision 0031): said yes, said no, or changed the number (sealed
    # in the trail, as their own words are).
    "CONTACT_OPTED_IN",
    "CONTACT_OPTED_OUT",
    "CONTACT_CHANGED",
]


class Change(BaseModel):
    model_config = ConfigDict(frozen=True)

    before: Any = None
    after: Any = None


class AuditEvent(BaseModel):
    """One change, once: `eventId` is the stream record's id, `sequence` its place in the shard."""

    model_config = ConfigDict(frozen=True)

    schemaVersion: Literal[1] = 1
    eventId: str
    sequence: str
    entityType: EntityType
    entityId: str
    action: Action
    actor: str | None = None
    requestId: str | None = None
    traceId: str | None = None
    # True when the client started that trace (a lead, not proof; `requestId` is API Gateway's own).
    traceFromClient: bool | None = None
    at: str
    changes: dict[str, Change]
