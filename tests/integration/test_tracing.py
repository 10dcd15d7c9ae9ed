"""Traces on the local stack: a request is one trace from the gateway's header through the handler,
its domain step and every DynamoDB call, as X-Ray documents at the daemon; the audit consumer's work
for that change is in its own trace and links back to the request's span."""

from __future__ import annotations

from typing import Any

from local.stack import LocalStack
from tests.integration import conftest
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


def test_a_trace_the_client_started_is_continued_and_kept_in_the_trail_marked_as_the_clients(
    stack: LocalStack,
) -> None:
    assert stack.event_source_mapping is not None
    weekly = {day: [{"start": "09:00", "end": "17:00"}] for day in WEEKDAYS}
    pid, (sid,) = make_provider(stack, "trace-owner-2", "Client Traces", weekly, [{"name": "V", "durationMinutes": 30}])
    who = token(stack, "trace-customer-2", ["customers"])
    free = slots(stack, pid, sid, future_day(2))
    # Given a client that names an hour-old trace of its choosing, and one that names none
    started = int(stack.clock.now()) - 3600
    chosen = f"1-{started:08x}-{'ab' * 12}"
    headers = {"X-Amzn-Trace-Id": f"Root={chosen};Parent=53995c3f42cd8ad8;Sampled=1"}
    status, answered, theirs = conftest.call(
        stack, "POST", "/bookings", token=who, headers=headers,
        body={"providerId": pid, "serviceId": sid, "start": free[0]["start"]},
    )  # fmt: skip
    assert status == 201, theirs
    status, _, ours = book(stack, who, pid, sid, free[2]["start"])
    assert status == 201, ours
    # Then API Gateway continues the client's trace, as AWS does
    assert header_fields(answered["X-Amzn-Trace-Id"])["Root"] == chosen
    # and the trail keeps it as a lead marked as the client's, with API Gateway's request id as the key
    assert stack.event_source_mapping.wait_caught_up()

    def created(booking_id: str) -> dict[str, Any]:
        status, _, page = conftest.call(stack, "GET", f"/bookings/{booking_id}/history", token=who)
        assert status == 200, page
        (event,) = page["items"]
        return dict(event)

    event = created(theirs["bookingId"])
    assert (event["traceId"], event["traceFromClient"]) == (chosen, True) and event["requestId"]
    own = created(ours["bookingId"])
    assert own["traceFromClient"] is None and own["traceId"] and own["traceId"] != chosen
