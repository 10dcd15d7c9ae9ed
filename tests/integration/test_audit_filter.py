"""The audit mapping's filter against the records the services really write: every record that is an
audit event passes it, and the table's bookkeeping (busy blocks, idempotency records, version bumps, TTL
removals) does not reach the consumer."""

from __future__ import annotations

import time
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import pytest

from local.emulator import time_to_live
from local.lambda_runtime.event_source_mapping import MappingSettings
from services.audit.domain.events import audit_event
from services.availability import handler as availability
from services.booking import handler as booking
from tests.integration.conftest import invoke_handler
from tests.integration.test_audit_events import a_monday_ahead, live_a_day, stream_records


def kind(record: dict[str, Any]) -> str:
    image = record["dynamodb"].get("NewImage") or record["dynamodb"].get("OldImage") or {}
    by_ttl = " (TTL)" if "userIdentity" in record else ""
    return f"{record['eventName']} {image.get('entityType', {}).get('S')}{by_ttl}"


def test_every_record_the_services_write_that_is_an_audit_event_passes_the_mappings_filter(
    inproc: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a provider's and a booking's life (every change kind the API makes)
    day = a_monday_ahead()
    pid, _ = live_a_day(day)
    # and a customer's booking with words, sent with an Idempotency-Key and replayed, then erased
    status, services = invoke_handler(availability, "GET", f"/providers/{pid}/services", None, "cust-b", "customers")
    assert status == 200, services
    body = {
        "providerId": pid,
        "serviceId": services["items"][0]["serviceId"],
        "notes": "knee",
        "start": f"{day}T09:00:00Z",
    }
    key = {"Idempotency-Key": "filter-test-1"}
    for _ in range(2):
        status, _answer = invoke_handler(booking, "POST", "/bookings", body, "cust-b", "customers", key)
        assert status == 201
    erased = invoke_handler(booking, "DELETE", "/customers/cust-b/personal-data", None, "admin-1", "admins")
    assert erased[0] == 202
    # and everything with a time to live gone past it: busy blocks, idempotency records, the erasure
    later = time.time() + timedelta(days=400).total_seconds()
    monkeypatch.setattr(time_to_live, "time", SimpleNamespace(time=lambda: later))
    assert time_to_live.sweep() > 0

    # When the table's stream is read as Lambda delivers it, and judged by the deployed filter
    records = stream_records(inproc, inproc.list_tables()["TableNames"][0])
    event_filter = MappingSettings.from_template().event_filter
    assert event_filter is not None

    # Then every record that is an audit event is kept
    events = [r for r in records if audit_event(r) is not None]
    assert {kind(r) for r in events} >= {
        "INSERT Provider",
        "INSERT Schedule",
        "INSERT Service",
        "INSERT Override",
        "MODIFY Provider",  # the override's removal, told by its provider
        "INSERT Booking",
        "MODIFY Booking",
        "INSERT PersonalDataErasure",
    }
    lost = [kind(r) for r in events if not event_filter.keeps(r)]
    assert not lost
    # and what the consumer would have ignored is mostly not delivered at all
    dropped = {kind(r) for r in records if not event_filter.keeps(r)}
    assert {
        "INSERT BusyBlock",
        "INSERT IdempotencyRecord",
        "REMOVE BusyBlock (TTL)",
        "REMOVE IdempotencyRecord (TTL)",
    } <= dropped
    assert {"REMOVE PersonalDataErasure (TTL)", "REMOVE Override", "MODIFY Provider"} <= dropped
    kept_without_event = [kind(r) for r in records if event_filter.keeps(r) and audit_event(r) is None]
    # (a booking's words scrubbed by the erasure: a change, but not one the trail records)
    assert set(kept_without_event) <= {"MODIFY Booking"}
