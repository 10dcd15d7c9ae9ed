"""The booking service's domain: bookings and what a request to create one may end in."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class BookingStatus(StrEnum):
    CONFIRMED = "CONFIRMED"
    CANCELLED = "CANCELLED"
    NO_SHOW = "NO_SHOW"


@dataclass(frozen=True)
class Booking:
    booking_id: str
    provider_id: str
    service_id: str
    customer_id: str
    provider_owner: str | None  # who may see it as the provider, kept on the booking for one-read checks
    time_zone: str
    start: datetime
    end: datetime
    busy_start: datetime  # start minus the service's buffer before
    busy_end: datetime  # end plus the buffer after
    status: BookingStatus
    version: int
    notes: str | None
    created_at: str
    cancel_reason: str | None = None


@dataclass(frozen=True)
class StoredResponse:
    """What the first request with an idempotency key answered, kept for its replays."""

    request_hash: str
    status: int
    body: dict[str, object]
    replayed: bool = False  # this answer is a stored one, given again: nothing was booked now
