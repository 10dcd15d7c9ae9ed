"""Spans as X-Ray documents, and the helpers that tie a change to the request that made it."""

from __future__ import annotations

import re
import time

import pytest
from opentelemetry.sdk.extension.aws.trace import AwsXRayIdGenerator
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from services.common.tracing import link_to
from services.common.xray_exporter import segment_document, xray_trace_id

XRAY_ID = re.compile(r"^1-[0-9a-f]{8}-[0-9a-f]{24}$")


def spans_of(work: str) -> list[dict[str, object]]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(id_generator=AwsXRayIdGenerator())
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("test")
    with (
        tracer.start_as_current_span(
            "POST /bookings", kind=SpanKind.SERVER, attributes={"appointments.booking_id": "bkg_1"}
        ),
        tracer.start_as_current_span(
            "DynamoDB.TransactWriteItems",
            kind=SpanKind.CLIENT,
            attributes={
                "rpc.system": "aws-api",
                "rpc.service": "DynamoDB",
                "rpc.method": "TransactWriteItems",
                "aws.dynamodb.table_name": "appointments-test",
                "aws.request_id": "req-1",
                "http.response.status_code": 400 if work == "refused" else 200,
            },
        ),
    ):
        pass
    return [segment_document(span) for span in exporter.get_finished_spans()]


def test_spans_become_subsegments_of_one_trace_with_x_ray_ids() -> None:
    call, handler = spans_of("ok")
    assert XRAY_ID.match(str(handler["trace_id"])) and call["trace_id"] == handler["trace_id"]
    assert abs(int(str(handler["trace_id"])[2:10], 16) - time.time()) < 60  # X-Ray ids start with the time
    assert call["parent_id"] == handler["id"] and "parent_id" not in handler
    assert handler["type"] == call["type"] == "subsegment"
    assert handler["annotations"] == {"booking_id": "bkg_1"}
    assert float(str(handler["end_time"])) >= float(str(handler["start_time"]))


def test_an_aws_call_is_an_aws_subsegment_and_a_refusal_is_an_error_not_a_fault() -> None:
    call, _ = spans_of("refused")
    assert call["namespace"] == "aws" and call["name"] == "DynamoDB"
    assert call["aws"] == {"operation": "TransactWriteItems", "table_name": "appointments-test", "request_id": "req-1"}
    assert call["http"] == {"response": {"status": 400}}
    assert (call["error"], call["fault"], call["throttle"]) == (True, False, False)


def test_a_link_needs_a_whole_origin() -> None:
    (link,) = link_to("1-5f84c7a1-0123456789abcdef01234567", "0123456789abcdef")
    assert xray_trace_id(link.context.trace_id) == "1-5f84c7a1-0123456789abcdef01234567"
    assert format(link.context.span_id, "016x") == "0123456789abcdef"
    assert link_to("1-5f84c7a1-0123456789abcdef01234567", None) == []
    assert link_to("not-a-trace", "0123456789abcdef") == []
    assert link_to("", "") == []


def test_a_domain_refusal_is_noted_on_its_span_and_only_an_unexpected_exception_is_a_fault(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from services.common import tracing
    from services.common.errors import NotFoundError

    exporter = InMemorySpanExporter()
    provider = TracerProvider(id_generator=AwsXRayIdGenerator())
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    monkeypatch.setattr(tracing, "tracer", provider.get_tracer("test"))

    @tracing.traced("booking.book")
    def refuse() -> None:
        raise NotFoundError("no such booking")

    @tracing.traced("booking.book")
    def crash() -> None:
        raise KeyError("bug")

    for step in (refuse, crash):
        with pytest.raises((NotFoundError, KeyError)):
            step()
    refused, crashed = (segment_document(span) for span in exporter.get_finished_spans())
    assert "fault" not in refused and "cause" not in refused
    assert refused["metadata"]["otel"]["attributes"] == {"appointments.refusal": "NotFoundError"}
    assert crashed["fault"] is True and crashed["cause"] == {"exceptions": [{"type": "KeyError", "message": "'bug'"}]}
