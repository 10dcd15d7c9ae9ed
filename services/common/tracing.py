"""Tracing with OpenTelemetry, set up once per container when this module is first imported.

- An invocation's spans continue the trace that API Gateway (or the event source) started: Lambda
  hands each invocation its trace header in `_X_AMZN_TRACE_ID`, which `AwsXRayLambdaPropagator` reads;
  ids made here are X-Ray ids (`AwsXRayIdGenerator`), so X-Ray accepts them.
- With active tracing, Lambda sets `AWS_XRAY_DAEMON_ADDRESS`; finished spans go there as X-Ray
  documents (`xray_exporter`). Without it spans are still made (ids for logs and the audit trail) but
  sent nowhere.
- Every AWS call gets a client span from botocore's own event hooks (`instrument`): the packaged
  botocore instrumentation costs ~150 ms of imports at every cold start (decision 0009).

Code uses only the OpenTelemetry API through `tracer`, `traced` and `invocation`.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from opentelemetry import trace
from opentelemetry.propagators.aws import AwsXRayLambdaPropagator
from opentelemetry.sdk.extension.aws.trace import AwsXRayIdGenerator
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import Link, Span, SpanContext, SpanKind, Status, StatusCode, TraceFlags

from services.common.errors import DomainError
from services.common.xray_exporter import XRayUdpExporter, xray_trace_id

if TYPE_CHECKING:
    from botocore.client import BaseClient

P = ParamSpec("P")
R = TypeVar("R")


def _provider() -> TracerProvider:
    # Lambda's own variables, not this project's configuration: they say where the function runs.
    resource = Resource(
        {
            "service.name": os.environ.get("POWERTOOLS_SERVICE_NAME", "appointments"),
            "cloud.provider": "aws",
            "cloud.region": os.environ.get("AWS_REGION", ""),
            "faas.name": os.environ.get("AWS_LAMBDA_FUNCTION_NAME", ""),
        }
    )
    provider = TracerProvider(id_generator=AwsXRayIdGenerator(), resource=resource)
    daemon = os.environ.get("AWS_XRAY_DAEMON_ADDRESS")
    if daemon:
        # Synchronous export: a UDP send costs microseconds, and Lambda freezes the environment as soon as
        # the handler returns, which would strand a batch processor's queue.
        provider.add_span_processor(SimpleSpanProcessor(XRayUdpExporter(daemon)))
    return provider


trace.set_tracer_provider(_provider())
tracer = trace.get_tracer("appointments")
_propagator = AwsXRayLambdaPropagator()


@contextmanager
def invocation(name: str, kind: SpanKind, attributes: Mapping[str, Any]) -> Iterator[Span]:
    """The span of one invocation, continuing the trace Lambda was given; errors are recorded on it."""
    parent = _propagator.extract(carrier={})
    with tracer.start_as_current_span(name, context=parent, kind=kind, attributes=dict(attributes)) as span:
        yield span


_cold = True


def traced_handler(
    handler: Callable[[dict[str, Any], Any], dict[str, Any]],
) -> Callable[[dict[str, Any], Any], dict[str, Any]]:
    """The Lambda handler inside its invocation span: an API request (SERVER); a stream batch, a rule's event
    or a schedule's invocation (CONSUMER)."""

    @functools.wraps(handler)
    def wrapper(event: dict[str, Any], context: Any) -> dict[str, Any]:
        global _cold
        attributes: dict[str, Any] = {"faas.invocation_id": context.aws_request_id, "faas.coldstart": _cold}
        _cold = False
        if "httpMethod" in event:
            name, kind = f"{event['httpMethod']} {event.get('resource', '')}", SpanKind.SERVER
            attributes |= {
                "faas.trigger": "http",
                "http.request.method": event["httpMethod"],
                "http.route": event.get("resource", ""),
                "aws.api_gateway.request_id": (event.get("requestContext") or {}).get("requestId", ""),
            }
        elif "Records" in event:
            name, kind = "stream batch", SpanKind.CONSUMER
            attributes |= {"faas.trigger": "datasource", "messaging.batch.message_count": len(event["Records"])}
        elif "detail-type" in event:  # an EventBridge rule's
            name, kind = f"event {event['detail-type']}", SpanKind.CONSUMER
            attributes |= {"faas.trigger": "pubsub", "messaging.system": "aws.eventbridge"}
        else:  # EventBridge Scheduler's: a sweep, a webhook's retry
            name, kind = "scheduled invocation", SpanKind.CONSUMER
            attributes |= {"faas.trigger": "timer"}
        with invocation(name, kind, attributes) as span:
            result = handler(event, context)
            status = result.get("statusCode")
            if isinstance(status, int):
                span.set_attribute("http.response.status_code", status)
                if status >= 500:
                    span.set_status(Status(StatusCode.ERROR))
            return result

    return wrapper


def traced(name: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """A span around each call of the decorated function (a domain step, a store operation)."""

    def decorate(function: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(function)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            # A domain refusal (a conflict, a validation failure) is an answer, not a fault: it is
            # noted on the span, and only unexpected exceptions mark it as an error.
            with tracer.start_as_current_span(name, record_exception=False, set_status_on_exception=False) as span:
                try:
                    return function(*args, **kwargs)
                except DomainError as refusal:
                    span.set_attribute("appointments.refusal", type(refusal).__name__)
                    raise
                except Exception as error:
                    span.record_exception(error)
                    span.set_status(Status(StatusCode.ERROR, f"{type(error).__name__}: {error}"))
                    raise

        return wrapper

    return decorate


def current_trace() -> tuple[str, str]:
    """(X-Ray trace id, span id) of the work in progress, for the items it writes; empty if untraced."""
    context = trace.get_current_span().get_span_context()
    if context.is_valid:
        return xray_trace_id(context.trace_id), format(context.span_id, "016x")
    header = os.environ.get("_X_AMZN_TRACE_ID", "")
    fields = dict(part.split("=", 1) for part in header.split(";") if "=" in part)
    return fields.get("Root", ""), ""


def link_to(xray_trace: str | None, span_id: str | None) -> list[Link]:
    """A link to the span that made a change (stored on the item), for work the change causes later."""
    if not xray_trace or not span_id:
        return []
    try:
        trace_id = int(xray_trace.removeprefix("1-").replace("-", ""), 16)
        context = SpanContext(trace_id, int(span_id, 16), is_remote=True, trace_flags=TraceFlags(TraceFlags.SAMPLED))
    except ValueError:
        return []
    return [Link(context)] if context.is_valid else []


def set_attributes(**values: str | int | None) -> None:
    """Domain ids on the current span (`appointments.booking_id`, …); X-Ray indexes the ids."""
    span = trace.get_current_span()
    for name, value in values.items():
        if value is not None:
            span.set_attribute(f"appointments.{name}", value)


# --- AWS calls -------------------------------------------------------------------------------------


def instrument(client: BaseClient) -> None:
    """A client span for every call the client makes (retries included), from botocore's events."""
    events = client.meta.events
    events.register("before-parameter-build", _note_resources)
    events.register("before-call", _start_call)
    events.register("after-call", _end_call)
    events.register("after-call-error", _fail_call)


def _note_resources(params: Mapping[str, Any], context: dict[str, Any], **_: Any) -> None:
    """Which table or bucket a call touches, read from its parameters before they are serialized."""
    resources: dict[str, str] = {}
    if "TableName" in params:
        resources["aws.dynamodb.table_name"] = params["TableName"]
    elif "TransactItems" in params:
        tables = {next(iter(item.values())).get("TableName") for item in params["TransactItems"]}
        resources["aws.dynamodb.table_name"] = ",".join(sorted(t for t in tables if t))
    if "Bucket" in params:
        resources["aws.s3.bucket"] = params["Bucket"]
    context["appointments_resources"] = resources


def _start_call(model: Any, context: dict[str, Any], **_: Any) -> None:
    # Started only once the request is valid and about to be sent: every started span is ended by
    # `after-call` or `after-call-error`.
    service = model.service_model.service_id
    attributes: dict[str, Any] = {
        "rpc.system": "aws-api",
        "rpc.service": str(service),
        "rpc.method": model.name,
        "cloud.region": context.get("client_region"),
        **context.pop("appointments_resources", {}),
    }
    span = tracer.start_span(f"{service}.{model.name}", kind=SpanKind.CLIENT, attributes=attributes)
    context["appointments_span"] = span


def _end_call(http_response: Any, parsed: Mapping[str, Any], context: dict[str, Any], **_: Any) -> None:
    span = context.pop("appointments_span", None)
    if span is None:
        return
    metadata = parsed.get("ResponseMetadata", {})
    span.set_attribute("http.response.status_code", int(http_response.status_code))
    span.set_attribute("aws.request_id", metadata.get("RequestId", ""))
    span.set_attribute("aws.retries", int(metadata.get("RetryAttempts", 0)))
    if http_response.status_code >= 300:
        code = parsed.get("Error", {}).get("Code", "")
        span.set_attribute("aws.error_code", code)
        # A refused condition is an answer, not a fault: the caller decides what it means.
        span.set_status(
            Status(StatusCode.ERROR, code) if http_response.status_code >= 500 else Status(StatusCode.UNSET)
        )
    span.end()


def _fail_call(exception: BaseException, context: dict[str, Any], **_: Any) -> None:
    span = context.pop("appointments_span", None)
    if span is None:
        return
    span.record_exception(exception)
    span.set_status(Status(StatusCode.ERROR, type(exception).__name__))
    span.end()
