"""A slot search reads everything it needs with one DynamoDB request, whatever the window."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from services.availability import handler
from services.common import keys
from services.common.aws import dynamodb_client
from services.common.calendar import BookedSpan
from services.common.calendar_table import span_of
from services.common.clock import iso_utc
from services.common.dynamodb import to_item
from tests.integration.conftest import invoke_handler

TABLE = "appointments-inproc"


def invoke(method: str, path: str, body: Any = None, groups: str = "providers") -> tuple[int, Any]:
    return invoke_handler(handler, method, path, body, "owner", groups)


@pytest.mark.parametrize("window_days", [1, 7, 62])
def test_a_slot_search_is_one_query(inproc: Any, window_days: int) -> None:
    # Given a provider with hours, overrides, two services and 500 busy spans over the next 62 days
    pid = invoke("POST", "/providers", {"name": "Round Trip", "timeZone": "Europe/Berlin"})[1]["providerId"]
    weekly = {day: [{"start": "09:00", "end": "17:00"}] for day in ("mon", "tue", "wed")}
    assert invoke("PUT", f"/providers/{pid}/schedule", {"weekly": weekly})[0] == 200
    service = invoke("POST", f"/providers/{pid}/services", {"name": "S", "durationMinutes": 30, "minNoticeMinutes": 0})[
        1
    ]
    invoke("POST", f"/providers/{pid}/services", {"name": "Other", "durationMinutes": 60})
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=1)
    # Overrides open the provider on the first three of its own days from `start`, so that even a
    # one-day window holds open hours whatever the weekday and the hour (in Berlin) the test runs at.
    first_day = start.astimezone(ZoneInfo("Europe/Berlin")).date()
    for n in range(3):
        day = (first_day + timedelta(days=n)).isoformat()
        override = {"intervals": [{"start": "08:00", "end": "18:00"}]}
        assert invoke("PUT", f"/providers/{pid}/overrides/{day}", override)[0] == 200
    spans = [start + timedelta(minutes=62 * 1440 * n // 500) for n in range(500)]
    by_block: dict[Any, dict[str, Any]] = {}
    for n, span_start in enumerate(spans):
        span_end = span_start + timedelta(minutes=20)
        booked = BookedSpan(
            f"bkg_{n}", "svc_elsewhere", "someone", span_start, span_start, span_end, 1, iso_utc(span_start)
        )
        for block in keys.busy_blocks(span_start, span_end):
            by_block.setdefault(block, {})[booked.booking_id] = span_of(booked)
    for block, block_spans in by_block.items():
        values = {"entityType": "BusyBlock", "spans": block_spans, "version": 1}
        inproc.put_item(TableName=TABLE, Item={**keys.busy_block_key(pid, block), **to_item(values)})

    # When the slots of the whole window are asked for
    operations: list[str] = []
    dynamodb_client().meta.events.register("before-call.dynamodb", lambda model, **_: operations.append(model.name))
    window = f"from={iso_utc(start)}&to={iso_utc(start + timedelta(days=window_days))}"
    status, body = invoke(
        "GET", f"/providers/{pid}/slots?serviceId={service['serviceId']}&{window}", groups="customers"
    )

    # Then the answer came from exactly one Query, which carried the hours, overrides, service and spans
    assert status == 200, body
    assert operations == ["Query"]
    assert body["slots"], "slots were found, so the schedule, overrides and service were all read"
    for slot in body["slots"]:
        slot_start, slot_end = datetime.fromisoformat(slot["start"]), datetime.fromisoformat(slot["end"])
        assert not any(s < slot_end and s + timedelta(minutes=20) > slot_start for s in spans)
