"""What the functions log, read from the local stack's log files: structured JSON with the service,
cold start, correlation id (the API request id; for the audit consumer, the request id stored on the
changed item), X-Ray trace id and the domain ids as keys; and nothing a customer wrote."""

from __future__ import annotations

import json
from typing import Any

from local.stack import LocalStack
from tests.integration.conftest import call, token
from tests.integration.test_booking_api import WEEKDAYS, book, future_day, make_provider, slots

NOTE = "please use the side door, code 4417"  # free text a customer writes: it must never be logged
REASON = "my daughter is ill"


def json_lines(stack: LocalStack, file_name: str) -> list[dict[str, Any]]:
    lines = []
    for line in (stack.logs_dir / file_name).read_text().splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict):
            lines.append(record)
    return lines


def test_logs_are_structured_correlated_and_free_of_customer_text(stack: LocalStack) -> None:
    assert stack.event_source_mapping is not None
    weekly = {day: [{"start": "09:00", "end": "17:00"}] for day in WEEKDAYS}
    pid, (sid,) = make_provider(stack, "logged-owner", "Logged Clinic", weekly, [{"name": "V", "durationMinutes": 30}])
    who = token(stack, "logged-customer", ["customers"])
    status, headers, created = book(stack, who, pid, sid, slots(stack, pid, sid, future_day(4))[0]["start"], notes=NOTE)
    assert status == 201, created
    cancel = call(stack, "POST", f"/bookings/{created['bookingId']}/cancel", token=who, body={"reason": REASON})
    assert cancel[0] == 200
    assert stack.event_source_mapping.wait_caught_up()
    request_id = headers["x-amzn-RequestId"]
    trace_root = dict(p.split("=", 1) for p in headers["X-Amzn-Trace-Id"].split(";"))["Root"]

    # the booking function's lines for that request carry every key on-call searches by
    booking_lines = json_lines(stack, "appointments-local-booking.log")
    mine = [line for line in booking_lines if line.get("correlation_id") == request_id]
    assert mine, "the request's log lines carry its API request id as correlation_id"
    for line in mine:
        assert line["service"] == "booking" and "cold_start" in line and line["level"] in {"INFO", "DEBUG", "WARNING"}
        assert line["xray_trace_id"] == trace_root
        assert line["function_request_id"] and line["timestamp"]
    created_line = next(line for line in mine if line["message"] == "booking created")
    assert (created_line["bookingId"], created_line["providerId"]) == (created["bookingId"], pid)

    # the audit consumer's lines for that change carry the request id stored on the item
    audit_lines = [
        line for line in json_lines(stack, "appointments-local-audit.log") if line.get("message") == "audit event"
    ]
    about = [line for line in audit_lines if line.get("entityId") == created["bookingId"]]
    assert {line["action"] for line in about} == {"BOOKING_CREATED", "BOOKING_CANCELLED"}
    assert request_id in {line["correlation_id"] for line in about}

    # no file the stack writes for on-call holds what the customer wrote
    for path in stack.logs_dir.iterdir():
        if path.name == "emulator.log":  # emulated AWS's own output, not ours
            continue
        text = path.read_text()
        assert NOTE not in text and REASON not in text, f"customer text in {path.name}"

    # Requests without a metric of their own (creating the provider) do not make Powertools warn on
    # stderr: a Python warning would be a non-JSON line in a JSON log group.
    for path in stack.logs_dir.glob("appointments-local-*.log"):
        assert "UserWarning" not in path.read_text(), f"a Python warning in {path.name}"
