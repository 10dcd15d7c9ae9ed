"""Traces on the local stack: a request is one trace from the gateway's header through the handler,
its domain step and every DynamoDB call, as X-Ray documents at the daemon; the audit consumer's work
for that change is in its own trace and links back to the request's span."""

from __future__ import annotations

from typing import Any

from local.stack import LocalStack
from tests.integration.conftest import eventually, token
from tests.integration.test_booking_api import WEEKDAYS, book, future_day, make_provider, slots


def header_fields(header: str) -> dict[str, str]:
    return dict(part.split("=", 1) for part in header.split(";") if "=" in part)


def named(spans: list[dict[str, Any]], name: str) -> dict[str, Any]:
    found = [span for span in spans if span["name"] == name]
    assert len(found) == 1, (name, [span["name"] for span in spans])
    return found[0]


def test_a_booking_is_one_trace_and_its_audit_links_back_to_it(stack: LocalStack) -> None:
    assert stack.xray is not None and stack.event_source_mapping is not None and stack.data is not None
    weekly = {day: [{"start": "09:00", "end": "17:00"}] for day in WEEKDAYS}
    pid, (sid,) = make_provider(stack, "traced-owner", "Traced Clinic", weekly, [{"name": "V", "durationMinutes": 30}])
    who = token(stack, "traced-customer", ["customers"])

    # When a booking is made
    status, headers, created = book(stack, who, pid, sid, slots(stack, pid, sid, future_day(2))[0]["start"])
    assert status == 201, created
    trace = header_fields(headers["X-Amzn-Trace-Id"])
    xray = stack.xray

    # Then its spans form one tree under the trace the gateway started
    spans = eventually(lambda: (found := xray.trace(trace["Root"])) and len(found) >= 4 and found)
    handler = named(spans, "POST /bookings")
    assert handler["parent_id"] == trace["Parent"]  # the function's segment, as Lambda passes it
    assert handler["http"]["response"]["status"] == 201
    assert handler["annotations"] == {"booking_id": created["bookingId"], "provider_id": pid}
    use_case = named(spans, "booking.book")
    assert use_case["parent_id"] == handler["id"]
    calls = [span for span in spans if span.get("namespace") == "aws"]
    assert {call["aws"]["operation"] for call in calls} >= {"Query", "TransactWriteItems"}
    for call in calls:
        assert call["name"] == "DynamoDB" and call["parent_id"] == use_case["id"]
        assert call["aws"]["table_name"] == stack.data.table_name and call["aws"]["request_id"]
    assert all(span["trace_id"] == trace["Root"] for span in spans)
    assert all(span["end_time"] >= span["start_time"] for span in spans)

    # and the audit consumer's record span, in the batch's own trace, links to the request's span
    assert stack.event_source_mapping.wait_caught_up()

    def audited() -> list[dict[str, Any]]:
        return [
            span
            for span in xray.documents()
            if span["name"] == "audit record" and span.get("annotations", {}).get("entity_id") == created["bookingId"]
        ]

    (record,) = eventually(audited)
    assert record["annotations"]["caused_by_trace"] == trace["Root"]
    assert record["metadata"]["otel"]["links"] == [{"trace_id": trace["Root"], "id": handler["id"]}]
    assert record["trace_id"] != trace["Root"]
    below = [span for span in xray.trace(record["trace_id"]) if span.get("parent_id") == record["id"]]
    assert {span["name"] for span in below} == {"audit.trail.record", "audit.archive.store"}
    archive_calls = [s for s in xray.trace(record["trace_id"]) if s.get("namespace") == "aws" and s["name"] == "S3"]
    assert {call["aws"]["operation"] for call in archive_calls} == {"PutObject"}
