"""The stream-record → audit-event mapping on the records that must produce nothing."""

from __future__ import annotations

from typing import Any

from services.audit.domain.events import audit_event
from services.common.dynamodb import to_item


def record(event_name: str, old: dict[str, Any] | None, new: dict[str, Any] | None) -> dict[str, Any]:
    stream: dict[str, Any] = {"SequenceNumber": "100", "ApproximateCreationDateTime": 1_795_600_000.0, "Keys": {}}
    if old is not None:
        stream["OldImage"] = to_item(old)
    if new is not None:
        stream["NewImage"] = to_item(new)
    return {"eventID": "e1", "eventName": event_name, "dynamodb": stream}


OVERRIDE = {"entityType": "Override", "providerId": "prv_1", "date": "2026-12-24", "intervals": [], "version": 1}
BOOKING = {
    "entityType": "Booking",
    "bookingId": "bkg_1",
    "status": "CONFIRMED",
    "start": "2026-12-28T10:00:00Z",
    "version": 1,
}


def test_ttl_removal_of_a_past_override_is_no_event() -> None:
    # DynamoDB's TTL deletes expired items as REMOVE records; the removal people make is recorded
    # from the provider profile's lastChange instead.
    assert audit_event(record("REMOVE", OVERRIDE, None)) is None


def test_internal_items_are_no_events() -> None:
    for kind in ("BusyBlock", "IdempotencyRecord"):
        assert audit_event(record("INSERT", None, {"entityType": kind, "version": 1})) is None


def test_a_booking_change_that_is_only_bookkeeping_is_no_event() -> None:
    assert audit_event(record("MODIFY", BOOKING, {**BOOKING, "updatedAt": "x", "actor": "y"})) is None


def test_the_event_time_falls_back_to_the_stream_time_and_changes_skip_bookkeeping() -> None:
    event = audit_event(record("INSERT", None, {**BOOKING, "PK": "BOOKING#bkg_1", "actor": "a"}))
    assert event is not None
    assert event.action == "BOOKING_CREATED" and event.actor == "a" and event.at == "2026-11-25T09:46:40Z"
    assert set(event.changes) == {"bookingId", "entityType", "start", "status", "version"}
    assert event.changes["status"].before is None and event.changes["status"].after == "CONFIRMED"


def test_a_stored_event_without_attribution_reads_back() -> None:
    from services.audit.adapters.dynamodb_trail import event_from
    from services.common.dynamodb import from_item

    event = audit_event(record("INSERT", None, BOOKING))  # seeded or system data: no actor
    assert event is not None and event.actor is None
    stored = from_item(
        to_item({**event.model_dump(mode="json"), "entityType": "AuditRecord", "auditedType": "Booking"})
    )
    assert event_from(stored) == event


def test_a_records_age_is_how_long_ago_the_change_was_made() -> None:
    from services.audit.domain.events import record_age_ms

    made = record("INSERT", None, BOOKING)  # ApproximateCreationDateTime 1_795_600_000.0
    assert record_age_ms(made, now=1_795_600_002.5) == 2500.0
    assert record_age_ms(made, now=1_795_599_999.0) == 0.0  # clocks disagree: never negative
    del made["dynamodb"]["ApproximateCreationDateTime"]
    assert record_age_ms(made, now=1_795_600_002.5) is None


def test_an_erasure_item_is_the_customers_erasure_event() -> None:
    erasure = {"entityType": "PersonalDataErasure", "customerId": "cust-9", "bookings": 2, "actor": "adm"}
    event = audit_event(record("INSERT", None, erasure))
    assert event is not None
    assert (event.entityType, event.entityId, event.action, event.actor) == (
        "Customer",
        "cust-9",
        "PERSONAL_DATA_ERASED",
        "adm",
    )
    assert audit_event(record("REMOVE", erasure, None)) is None  # TTL's removal a week later is no event


EXTERNAL = {
    "entityType": "ExternalBlock",
    "externalId": "ext_1",
    "providerId": "prv_1",
    "start": "2026-12-28T10:00:00Z",
    "status": "BUSY",
    "actor": "calendly",
}


def test_an_external_blocks_life_is_blocked_conflict_or_freed_by_calendly() -> None:
    actions = [
        audit_event(record("INSERT", None, EXTERNAL)),
        audit_event(record("INSERT", None, {**EXTERNAL, "status": "CONFLICT", "conflictsWith": ["bkg_1"]})),
        audit_event(record("MODIFY", EXTERNAL, {**EXTERNAL, "status": "FREED"})),
    ]
    assert [(e.entityType, e.entityId, e.action, e.actor) for e in actions if e] == [
        ("ExternalBlock", "ext_1", "EXTERNAL_BLOCKED", "calendly"),
        ("ExternalBlock", "ext_1", "EXTERNAL_CONFLICT", "calendly"),
        ("ExternalBlock", "ext_1", "EXTERNAL_FREED", "calendly"),
    ]
    assert audit_event(record("REMOVE", EXTERNAL, None)) is None  # TTL, long after its time


def test_a_calendly_connection_is_the_providers_event_and_its_key_is_never_in_it() -> None:
    connection = {"entityType": "CalendlyConnection", "providerId": "prv_1", "actor": "owner", "version": 1}
    connected = audit_event(record("INSERT", None, {**connection, "sealedKey": "c2VhbGVk"}))
    replaced = audit_event(
        record("MODIFY", {**connection, "sealedKey": "c2VhbGVk"}, {**connection, "sealedKey": "bmV3", "version": 2})
    )
    removed = audit_event(
        record("MODIFY", {**connection, "sealedKey": "bmV3"}, {**connection, "disconnectedAt": "x", "version": 3})
    )
    assert [(e.entityType, e.entityId, e.action) for e in (connected, replaced, removed) if e] == [
        ("Provider", "prv_1", "CALENDLY_CONNECTED"),
        ("Provider", "prv_1", "CALENDLY_CONNECTED"),
        ("Provider", "prv_1", "CALENDLY_DISCONNECTED"),
    ]
    assert all("sealedKey" not in e.changes for e in (connected, replaced, removed) if e)


def test_every_statement_of_consent_is_in_the_trail_and_a_new_number_is_a_change() -> None:
    said = {"entityType": "CustomerContact", "customerId": "anna", "actor": "anna", "whatsapp": "+4915112345678"}
    yes = {**said, "optIn": True, "consentAt": "2026-12-01T08:00:00Z"}
    again = {**yes, "consentAt": "2026-12-02T08:00:00Z"}
    moved = {**again, "whatsapp": "+4915187654321"}
    no = {**moved, "optIn": False, "consentAt": "2026-12-03T08:00:00Z"}
    no_again = {**no, "consentAt": "2026-12-04T08:00:00Z"}
    steps = [(None, yes), (yes, again), (again, moved), (moved, no), (no, no_again)]
    events = [audit_event(record("MODIFY" if old else "INSERT", old, new)) for old, new in steps]
    assert [(e.entityType, e.entityId, e.action) for e in events if e] == [
        ("Customer", "anna", "CONTACT_OPTED_IN"),
        ("Customer", "anna", "CONTACT_OPTED_IN"),
        ("Customer", "anna", "CONTACT_CHANGED"),
        ("Customer", "anna", "CONTACT_OPTED_OUT"),
        ("Customer", "anna", "CONTACT_OPTED_OUT"),
    ]
    assert audit_event(record("MODIFY", no_again, {**no_again, "updatedAt": "x"})) is None  # bookkeeping only
