"""The booking API's request bodies as validated models, and a booking's JSON body (described the
same way in cloudformation/api/openapi.yaml; tests/unit/test_openapi_contract.py holds them together)."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, StringConstraints

from services.booking.domain.models import Booking, Hold
from services.common.clock import SupportedInstant, iso_utc

BOOKING_ID = r"^bkg_[0-9a-f]{48}$"
HOLD_ID = r"^hld_[0-9a-f]{48}$"
PROVIDER_ID = r"^prv_[0-9a-f]{32}$"
IDEMPOTENCY_KEY = r"^[A-Za-z0-9._:-]{1,128}$"


class HoldIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    providerId: Annotated[str, StringConstraints(strict=True, pattern=r"^prv_[0-9a-f]{32}$")]
    serviceId: Annotated[str, StringConstraints(strict=True, pattern=r"^svc_[0-9a-f]{32}$")]
    start: SupportedInstant
    customerId: Annotated[str, StringConstraints(strict=True, min_length=1, max_length=128)] | None = None


class BookingIn(HoldIn):
    """What a hold names, and the customer's words; `holdId` books the time a hold keeps."""

    notes: Annotated[str, StringConstraints(strict=True, max_length=1000)] | None = None
    holdId: Annotated[str, StringConstraints(strict=True, pattern=HOLD_ID)] | None = None


class CancelIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Annotated[str, StringConstraints(strict=True, max_length=500)] | None = None


class RescheduleIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

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
    return body


def hold_json(hold: Hold) -> dict[str, object]:
    return {
        "holdId": hold.hold_id,
        "providerId": hold.provider_id,
        "serviceId": hold.service_id,
        "customerId": hold.customer_id,
        "start": hold.start.isoformat(),
        "end": hold.end.isoformat(),
        "expiresAt": iso_utc(hold.expires_at),
        "createdAt": hold.created_at,
    }
