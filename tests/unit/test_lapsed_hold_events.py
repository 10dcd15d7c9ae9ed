"""A lapsed hold that DynamoDB's TTL removes before the sweep writes it EXPIRED: its removal is its
expiry, published as `hold.expired` and recorded as `HOLD_EXPIRED` (decision 0027), and only then: a
hold removed with a status (already ended, so already announced) or by anyone but TTL is nothing."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from services.audit.domain.events import audit_event
from services.booking.domain_events import domain_event
from services.common.dynamodb import to_item

EXPIRY = datetime(2026, 12, 1, 9, 5, tzinfo=UTC)
TTL = {"type": "Service", "principalId": "dynamodb.amazonaws.com"}


def hold(**extra: Any) -> dict[str, Any]:
    return {
        "PK": "HOLD#hld_1",
        "SK": "HOLD",
        "entityType": "Hold",
        "holdId": "hld_1",
        "providerId": "prv_1",
        "serviceId": "svc_1",
        "customerId": "cus",
        "timeZone": "Europe/Berlin",
        "start": "2026-12-03T09:00:00Z",
        "end": "2026-12-03T09:30:00Z",
        "busyStart": "2026-12-03T09:00:00Z",
        "busyEnd": "2026-12-03T09:30:00Z",
        "expiresAt": int(EXPIRY.timestamp()),
        "createdAt": "2026-12-01T09:00:00Z",
        "heldBy": "cus",
        "actor": "cus",
        "traceId": "1-5f84c7a1-0123456789abcdef01234567",
        "spanId": "0123456789abcdef",
        **extra,
    }


def removal(image: dict[str, Any], identity: dict[str, str] | None = TTL) -> dict[str, Any]:
    record: dict[str, Any] = {
        "eventID": "e1",
        "eventName": "REMOVE",
        "dynamodb": {"OldImage": to_item(image), "SequenceNumber": "100", "ApproximateCreationDateTime": 1.8e9},
    }
    if identity is not None:
        record["userIdentity"] = identity
    return record


def test_ttl_removing_an_unended_hold_is_its_expiry_for_the_bus_and_the_trail() -> None:
    event = domain_event(removal(hold()))
    assert event is not None and event.detail_type == "hold.expired"
    data = event.detail["data"]
    assert (data["status"], data["version"], data["holdId"]) == ("EXPIRED", 2, "hld_1")
    # when it lapsed, and nobody's request (no trace to continue)
    assert event.detail["timestamp"] == "2026-12-01T09:05:00Z" and event.trace_header is None
    recorded = audit_event(removal(hold()))
    assert recorded is not None and (recorded.action, recorded.entityId) == ("HOLD_EXPIRED", "hld_1")
    assert recorded.actor == "system:expiry" and recorded.at == "2026-12-01T09:05:00Z"
    assert recorded.traceId is None and set(recorded.changes) == {"status"}


def test_removing_an_ended_hold_or_a_removal_by_anyone_but_ttl_is_nothing() -> None:
    ended = removal(hold(status="EXPIRED"))  # written down by the sweep: its event was that write's
    converted = removal(hold(status="CONVERTED"))
    by_someone = removal(hold(), identity=None)
    for record in (ended, converted, by_someone):
        assert domain_event(record) is None and audit_event(record) is None
