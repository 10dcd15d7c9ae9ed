"""Traces as the console shows them, from X-Ray documents: the list, and a waterfall that follows
span links from a request to the audit consumer's work and back."""

from __future__ import annotations

from typing import Any

from local.xray.traces import summaries, waterfall

REQUEST, AUDIT, OTHER = "1-00000001-aaaaaaaaaaaaaaaaaaaaaaaa", "1-00000002-bbbbbbbbbbbbbbbbbbbbbbbb", "1-00000003-c"


def span(
    trace: str, id: str, name: str, start: float, end: float, parent: str | None = None, **extra: Any
) -> dict[str, Any]:
    document: dict[str, Any] = {"trace_id": trace, "id": id, "name": name, "start_time": start, "end_time": end}
    if parent:
        document["parent_id"] = parent
    otel = {"kind": extra.pop("kind", "INTERNAL"), "attributes": {}, "links": extra.pop("links", [])}
    if "service" in extra:
        otel["resource"] = {"service.name": extra.pop("service")}
    return {**document, **extra, "metadata": {"otel": otel}}


TRACES = {
    REQUEST: [
        # children arrive before their parents: each span is sent when it ends
        span(REQUEST, "c1", "DynamoDB", 100.010, 100.030, "b1", namespace="aws",
             aws={"operation": "TransactWriteItems", "table_name": "appointments-local", "retries": 2}),
        span(REQUEST, "b1", "booking.book", 100.005, 100.035, "r1"),
        span(REQUEST, "r1", "POST /bookings", 100.000, 100.040, "lambda-segment", kind="SERVER", service="booking",
             http={"response": {"status": 201}}),
    ],
    AUDIT: [
        span(AUDIT, "a2", "S3", 100.300, 100.320, "a1", namespace="aws",
             aws={"operation": "PutObject", "bucket_name": "b"}, fault=True),
        span(AUDIT, "a1", "audit record", 100.250, 100.330, "a0", kind="CONSUMER",
             links=[{"trace_id": REQUEST, "id": "r1"}]),
        span(AUDIT, "a0", "stream batch", 100.200, 100.340, "lambda-segment", kind="CONSUMER", service="audit"),
    ],
    OTHER: [span(OTHER, "o1", "GET /health", 90.0, 90.001, service="availability", error=True)],
}  # fmt: skip


def test_a_waterfall_is_the_span_tree_then_the_linked_trace_with_offsets_from_the_first_start() -> None:
    shown = waterfall(REQUEST, TRACES)
    assert shown["linked"] == [AUDIT] and shown["durationMs"] == 340.0
    rows = [
        (r["traceId"][-1], r["depth"], r["name"], r["offsetMs"], r["durationMs"], r["status"]) for r in shown["spans"]
    ]
    assert rows == [
        ("a", 0, "POST /bookings", 0.0, 40.0, "ok"),
        ("a", 1, "booking.book", 5.0, 30.0, "ok"),
        ("a", 2, "DynamoDB", 10.0, 20.0, "ok"),
        ("b", 0, "stream batch", 200.0, 140.0, "ok"),
        ("b", 1, "audit record", 250.0, 80.0, "ok"),
        ("b", 2, "S3", 300.0, 20.0, "fault"),
    ]
    assert shown["spans"][2]["detail"] == "TransactWriteItems appointments-local · 2 retries"
    assert shown["spans"][0]["service"] == "booking" and shown["spans"][4]["links"] == [REQUEST]
    # and from the consumer's side, the request it came from
    assert waterfall(AUDIT, TRACES)["linked"] == [REQUEST]
    assert waterfall("1-00000009-none", TRACES)["spans"] == []


def test_the_list_is_newest_first_with_roots_services_and_the_worst_status() -> None:
    listed = summaries(TRACES)
    assert [(t["traceId"], t["root"], t["service"], t["spans"], t["status"]) for t in listed] == [
        (AUDIT, "stream batch", "audit", 3, "fault"),
        (REQUEST, "POST /bookings", "booking", 3, "ok"),
        (OTHER, "GET /health", "availability", 1, "error"),
    ]
    assert listed[1]["durationMs"] == 40.0 and len(summaries(TRACES, limit=1)) == 1
