"""Finished OpenTelemetry spans to the X-Ray daemon, as X-Ray segment documents over UDP.

On Lambda with active tracing the daemon listens at `AWS_XRAY_DAEMON_ADDRESS`; each span becomes an
independent subsegment of the function's segment (its root span's parent is the `Parent` of
`_X_AMZN_TRACE_ID`), so the trace X-Ray shows is API Gateway → Lambda → handler → domain steps → AWS
calls. Written by hand because the only packaged UDP exporter (aws-opentelemetry-distro) pins other
OpenTelemetry versions and weighs 53 MB (docs/decisions/0009-tracing.md).
"""

from __future__ import annotations

import json
import socket
from collections.abc import Sequence
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.trace import SpanKind, StatusCode

HEADER = b'{"format": "json", "version": 1}\n'  # the daemon's protocol: a header line, then one document
ANNOTATED = {
    "appointments.booking_id": "booking_id",
    "appointments.provider_id": "provider_id",
    "appointments.entity_id": "entity_id",
}
MAX_DATAGRAM = 64_000


def xray_trace_id(trace_id: int) -> str:
    """OpenTelemetry's 128-bit id in X-Ray's spelling: `1-<8 hex epoch seconds>-<24 hex>`."""
    text = format(trace_id, "032x")
    return f"1-{text[:8]}-{text[8:]}"


def segment_document(span: ReadableSpan) -> dict[str, Any]:
    """One span as an X-Ray subsegment document."""
    context = span.get_span_context()
    assert context is not None and span.start_time is not None and span.end_time is not None
    attributes = dict(span.attributes or {})
    document: dict[str, Any] = {
        "type": "subsegment",
        "id": format(context.span_id, "016x"),
        "trace_id": xray_trace_id(context.trace_id),
        "name": span.name,
        "start_time": span.start_time / 1e9,
        "end_time": span.end_time / 1e9,
    }
    if span.parent is not None:
        document["parent_id"] = format(span.parent.span_id, "016x")
    if span.kind is SpanKind.CLIENT and attributes.get("rpc.system") == "aws-api":
        document["namespace"] = "aws"
        document["name"] = str(attributes.get("rpc.service", span.name))
        document["aws"] = {
            "operation": attributes.get("rpc.method"),
            "region": attributes.get("cloud.region"),
            "request_id": attributes.get("aws.request_id"),
            "table_name": attributes.get("aws.dynamodb.table_name"),
            "bucket_name": attributes.get("aws.s3.bucket"),
            "retries": attributes.get("aws.retries"),
        }
        document["aws"] = {k: v for k, v in document["aws"].items() if v is not None}
    status = attributes.get("http.response.status_code")
    if isinstance(status, int):
        document["http"] = {"response": {"status": status}}
        document["throttle"] = status == 429
        document["error"] = 400 <= status < 500
        document["fault"] = status >= 500
    if span.status.status_code is StatusCode.ERROR and not document.get("error"):
        document["fault"] = True
    exceptions = [
        {"type": event.attributes.get("exception.type"), "message": event.attributes.get("exception.message")}
        for event in span.events
        if event.name == "exception" and event.attributes
    ]
    if exceptions:
        document["cause"] = {"exceptions": exceptions}
    annotations = {ANNOTATED[k]: v for k, v in attributes.items() if k in ANNOTATED}
    if span.links:
        # What caused this work in another trace (the request behind an audited change): searchable.
        annotations["caused_by_trace"] = xray_trace_id(span.links[0].context.trace_id)
    if annotations:
        document["annotations"] = annotations
    document["metadata"] = {
        "otel": {
            "kind": span.kind.name,
            "attributes": attributes,
            "links": [
                {"trace_id": xray_trace_id(link.context.trace_id), "id": format(link.context.span_id, "016x")}
                for link in span.links
            ],
        }
    }
    if span.parent is None or span.parent.is_remote:
        # A function's first span says which service it is (the function's segment does, in AWS).
        resource = span.resource.attributes
        document["metadata"]["otel"]["resource"] = {
            k: resource[k] for k in ("service.name", "faas.name") if k in resource
        }
    return document


class XRayUdpExporter(SpanExporter):
    """Sends each finished span to the daemon; never raises into the code being traced."""

    def __init__(self, address: str) -> None:
        host, _, port = address.rpartition(":")
        self._address = (host or "127.0.0.1", int(port))
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        result = SpanExportResult.SUCCESS
        for span in spans:
            datagram = HEADER + json.dumps(segment_document(span), default=str, separators=(",", ":")).encode()
            if len(datagram) > MAX_DATAGRAM:
                continue  # a span too big for one datagram is dropped rather than truncated into nonsense
            try:
                self._socket.sendto(datagram, self._address)
            except OSError:
                result = SpanExportResult.FAILURE
        return result

    def shutdown(self) -> None:
        self._socket.close()
