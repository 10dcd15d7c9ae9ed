"""From a DynamoDB stream record to the audit event it means (or to nothing, for internal items).

Pure: the record arrives as Lambda delivers it (`eventID`, `eventName`, `dynamodb.Keys/NewImage/
OldImage`, `SequenceNumber`, `ApproximateCreationDateTime`), images still in attribute-value form.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from services.common.audit import Action, AuditEvent, Change, EntityType
from services.common.dynamodb import from_item

LAPSE_ACTOR = "system:expiry"  # who wrote a lapse down: the sweep, or TTL before it (decision 0027)

# Keys, index keys and attribution are how an item is stored, not what changed.
BOOKKEEPING = frozenset(
    {
        "PK",
        "SK",
        "GSI1PK",
        "GSI1SK",
        "GSI2PK",
        "GSI2SK",
        "actor",
        "requestId",
        "traceId",
        "traceFromClient",
        "spanId",
        "updatedAt",
        "lastChange",
        "idempotencyRef",
        "limitCounters",  # which limit counters a booking counts in: the limits' bookkeeping
        "sealedKey",  # a Calendly signing key, sealed: a secret, never in the trail (its change is the event)
    }
)
# Items that exist for the system, not for people: busy time, idempotency records, limit counters, a
# caller's record of live holds and count of waitlist entries, a series' claim while it is made. (The
# trail itself lives in the audit table, which has no stream; the stream's filter keeps all of these
# from the consumer anyway.)
INTERNAL = frozenset(
    {"BusyBlock", "IdempotencyRecord", "LimitCounter", "CustomerHolds", "CustomerWaitlist", "PendingSeries"}
)


def _changes(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Change]:
    names = (set(old) | set(new)) - BOOKKEEPING
    return {
        name: Change(before=old.get(name), after=new.get(name))
        for name in sorted(names)
        if old.get(name) != new.get(name)
    }


def _booking_action(event_name: str, old: dict[str, Any], new: dict[str, Any]) -> Action | None:
    if event_name == "INSERT":
        return "BOOKING_CREATED"
    if event_name != "MODIFY":
        return None
    if old.get("status") != new.get("status"):
        return {  # type: ignore[return-value]
            "CANCELLED": "BOOKING_CANCELLED",
            "NO_SHOW": "BOOKING_NO_SHOW",
            "CONFIRMED": "BOOKING_APPROVED",  # only ever from PENDING
            "DECLINED": "BOOKING_DECLINED",
            "EXPIRED": "BOOKING_EXPIRED",
        }.get(new.get("status", ""))
    if old.get("start") != new.get("start"):
        return "BOOKING_RESCHEDULED"
    return None


def _classify(event_name: str, old: dict[str, Any], new: dict[str, Any]) -> tuple[EntityType, str, Action] | None:
    """Which entity changed and how; None when the record means nothing to people."""
    item = new or old
    kind = item.get("entityType")
    if kind in INTERNAL or kind is None:
        return None
    if kind == "Booking":
        action = _booking_action(event_name, old, new)
        return ("Booking", item["bookingId"], action) if action else None
    if kind == "Hold":
        if event_name == "INSERT":
            return "Hold", item["holdId"], "HOLD_CREATED"
        ended = {"RELEASED": "HOLD_RELEASED", "CONVERTED": "HOLD_CONVERTED", "EXPIRED": "HOLD_EXPIRED"}.get(
            new.get("status", "")
        )
        if event_name == "MODIFY" and ended and old.get("status") != new.get("status"):
            return "Hold", item["holdId"], ended  # type: ignore[return-value]
        if event_name == "REMOVE_BY_TTL" and not old.get("status"):
            # TTL removed a lapsed hold before the sweep wrote it EXPIRED: that is its expiry (decision 0027)
            return "Hold", item["holdId"], "HOLD_EXPIRED"
        return None  # otherwise TTL's removal is storage, not a change
    if kind == "WaitlistEntry":
        if event_name == "INSERT":
            return "WaitlistEntry", item["waitlistId"], "WAITLIST_JOINED"
        if event_name == "MODIFY" and old.get("status") != new.get("status"):
            return "WaitlistEntry", item["waitlistId"], f"WAITLIST_{new['status']}"  # type: ignore[return-value]
        return None
    if kind == "Series":
        if event_name == "INSERT":
            return "Series", item["seriesId"], "SERIES_CREATED"
        if event_name == "MODIFY" and old.get("status") != new.get("status") and new.get("status") == "CANCELLED":
            return "Series", item["seriesId"], "SERIES_CANCELLED"
        return None
    if kind == "Schedule" and event_name in {"INSERT", "MODIFY"}:
        return "Schedule", item["providerId"], "SCHEDULE_UPDATED"
    if kind == "Override" and event_name in {"INSERT", "MODIFY"}:
        return "Override", f"{item['providerId']}#{item['date']}", "OVERRIDE_SET"
    if kind == "Service" and event_name == "INSERT":
        return "Service", item["serviceId"], "SERVICE_CREATED"
    if kind == "ProviderFeed" and event_name in {"INSERT", "MODIFY"} and old.get("feedId") != new.get("feedId"):
        # A provider's secret calendar URL shared anew, or revoked: who did it is on the pointer.
        action = "FEED_SHARED" if new.get("feedId") else "FEED_REVOKED"
        return "Provider", item["providerId"], action
    if kind == "ExternalBlock" and event_name in {"INSERT", "MODIFY"} and old.get("status") != new.get("status"):
        became: dict[str, Action] = {
            "BUSY": "EXTERNAL_BLOCKED",
            "CONFLICT": "EXTERNAL_CONFLICT",
            "FREED": "EXTERNAL_FREED",
        }
        return "ExternalBlock", item["externalId"], became[new["status"]]
    if kind == "CalendlyConnection" and event_name in {"INSERT", "MODIFY"} and (old or new).get("actor"):
        # Set or replaced (a new key: the sealed one changes), or removed: said by the item's key.
        if new.get("sealedKey") and new.get("sealedKey") != old.get("sealedKey"):
            return "Provider", item["providerId"], "CALENDLY_CONNECTED"
        if old.get("sealedKey") and not new.get("sealedKey"):
            return "Provider", item["providerId"], "CALENDLY_DISCONNECTED"
        return None
    if kind == "CustomerContact" and event_name in {"INSERT", "MODIFY"}:
        # Every statement of consent is recorded, a yes or a no said again too (its time and source
        # change); a new number with the same answer is a change of contact.
        said: Action = "CONTACT_OPTED_IN" if new.get("optIn") else "CONTACT_OPTED_OUT"
        if bool(new.get("optIn")) != bool(old.get("optIn")):
            return "Customer", item["customerId"], said
        if new.get("whatsapp") != old.get("whatsapp"):
            return "Customer", item["customerId"], "CONTACT_CHANGED"
        return ("Customer", item["customerId"], said) if new.get("consentAt") != old.get("consentAt") else None
    if kind == "PersonalDataErasure" and event_name == "INSERT":
        return "Customer", item["customerId"], "PERSONAL_DATA_ERASED"
    if kind == "Provider":
        if event_name == "INSERT":
            return "Provider", item["providerId"], "PROVIDER_CREATED"
        # A removed override leaves no item to say who removed it; the profile update in the same
        # transaction does (`lastChange`), so the removal is recorded from there.
        change = str(new.get("lastChange", ""))
        if event_name == "MODIFY" and change.startswith("OVERRIDE_REMOVED ") and change != old.get("lastChange"):
            return "Override", f"{item['providerId']}#{change.split(' ', 1)[1]}", "OVERRIDE_REMOVED"
    return None


def audit_event(record: dict[str, Any]) -> AuditEvent | None:
    """The audit event a stream record means, or None (internal item, bookkeeping-only change, TTL removal)."""
    stream = record["dynamodb"]
    old = from_item(stream.get("OldImage", {}))
    new = from_item(stream.get("NewImage", {}))
    identity = record.get("userIdentity") or {}
    by_ttl = identity.get("type") == "Service" and identity.get("principalId") == "dynamodb.amazonaws.com"
    event_name = "REMOVE_BY_TTL" if record["eventName"] == "REMOVE" and by_ttl else record["eventName"]
    classified = _classify(event_name, old, new)
    if classified is None:
        return None
    entity_type, entity_id, action = classified
    changes = _changes(old, new)
    if action == "OVERRIDE_REMOVED":
        changes = {}  # what was removed is in the OVERRIDE_SET events before it
    source = new or old
    created = stream.get("ApproximateCreationDateTime")
    at = source.get("updatedAt") or (
        datetime.fromtimestamp(float(created), UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if created is not None else ""
    )
    if not new:  # a lapsed hold TTL removed: nobody's request; it lapsed at its expiry
        source = {"actor": LAPSE_ACTOR}
        changes = {"status": Change(before=None, after="EXPIRED")}
        at = datetime.fromtimestamp(old["expiresAt"], UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return AuditEvent(
        eventId=record["eventID"],
        sequence=stream["SequenceNumber"],
        entityType=entity_type,
        entityId=entity_id,
        action=action,
        actor=source.get("actor"),
        requestId=source.get("requestId"),
        traceId=source.get("traceId") or None,
        traceFromClient=True if source.get("traceFromClient") else None,
        at=at,
        changes=changes,
    )


def data_subject(record: dict[str, Any]) -> str | None:
    """The customer whose words a booking record may carry, or whose number a contact record does
    (its `customerId`), else None."""
    image = record["dynamodb"].get("NewImage") or record["dynamodb"].get("OldImage") or {}
    if image.get("entityType", {}).get("S") not in {"Booking", "CustomerContact"}:
        return None
    return image.get("customerId", {}).get("S")


def record_age_ms(record: dict[str, Any], now: float) -> float | None:
    """How long ago the change was made, when the record is processed (None if the record does not say)."""
    created = record["dynamodb"].get("ApproximateCreationDateTime")
    if created is None:
        return None
    return max(0.0, (now - float(created)) * 1000)


def change_origin(record: dict[str, Any]) -> tuple[str | None, str | None]:
    """(X-Ray trace id, span id) of the request that made the change, as the item carries them."""
    image = record["dynamodb"].get("NewImage") or record["dynamodb"].get("OldImage") or {}
    return image.get("traceId", {}).get("S"), image.get("spanId", {}).get("S")
