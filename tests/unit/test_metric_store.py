"""The local metric store: EMF documents and the emulated services' events become datapoints with
AWS's names and dimensions, and statistics per period come back as GetMetricData would give them."""

from __future__ import annotations

import json
import time

import pytest

from local.cloudwatch.metric_store import MetricId, MetricStore
from local.lambda_runtime.function_runtime import Invocation
from local.lambda_runtime.functions import FunctionSpec
from local.lambda_runtime.platform_records import Report

T0 = 1_800_000_000.0  # aligned to a minute


def emf(at: float, **values: object) -> str:
    metrics = [{"Name": name, "Unit": "Count"} for name in values]
    document = {
        "_aws": {
            "Timestamp": int(at * 1000),
            "CloudWatchMetrics": [
                {"Namespace": "Appointments", "Dimensions": [["service", "stage"]], "Metrics": metrics}
            ],
        },
        "service": "booking",
        "stage": "local",
        **values,
    }
    return json.dumps(document)


def test_emf_lines_become_datapoints_per_period_with_each_statistic() -> None:
    store = MetricStore("appointments-local", "local")
    store.add_log_line(emf(T0 + 1, BookingCreated=[1.0], SlotsReturned=[3.0, 5.0]))
    store.add_log_line(emf(T0 + 30, BookingCreated=[1.0]))
    store.add_log_line(emf(T0 + 130, BookingCreated=[1.0]))
    store.add_log_line('{"level": "INFO", "message": "not a metric"}')
    store.add_log_line('not json at all, but mentions "_aws"')
    created = MetricId.of("Appointments", "BookingCreated", {"service": "booking", "stage": "local"})
    # three one-minute periods: 2, nothing, 1
    assert store.datapoints(created, "Sum", 60, T0, T0 + 180) == [(T0, 2.0), (T0 + 60, None), (T0 + 120, 1.0)]
    returned = MetricId.of("Appointments", "SlotsReturned", {"service": "booking", "stage": "local"})
    assert store.datapoints(returned, "Average", 60, T0, T0 + 60) == [(T0, 4.0)]
    assert store.datapoints(returned, "SampleCount", 300, T0, T0 + 60) == [(T0 - T0 % 300, 2.0)]


def test_requests_and_invocations_become_api_gateway_and_lambda_metrics() -> None:
    store = MetricStore("appointments-local", "local")
    hour = time.time() // 3600 * 3600  # they are recorded now: read the current hour
    ok = {
        "status": 201,
        "responseLatency": 40.0,
        "integrationLatency": 35.0,
        "resourcePath": "/bookings",
        "httpMethod": "POST",
    }
    store.on_request(ok)
    store.on_request({**ok, "status": 409, "responseLatency": 20.0})
    store.on_request(
        {"status": 404, "responseLatency": 1.0, "integrationLatency": None, "resourcePath": "-", "httpMethod": "GET"}
    )
    api = {"ApiName": "appointments-local", "Stage": "local"}
    route = {**api, "Resource": "/bookings", "Method": "POST"}

    def one(name: str, stat: str, dimensions: dict[str, str]) -> float | None:
        ((_, value),) = store.datapoints(MetricId.of("AWS/ApiGateway", name, dimensions), stat, 3600, hour, hour + 3600)
        return value

    assert (one("Count", "Sum", api), one("4XXError", "Sum", api), one("5XXError", "Sum", api)) == (3.0, 2.0, 0.0)
    assert (one("Count", "Sum", route), one("4XXError", "Average", route)) == (2.0, 0.5)
    assert one("Latency", "Maximum", route) == 40.0 and one("IntegrationLatency", "SampleCount", api) == 2.0

    spec = FunctionSpec("BookingFunction", "appointments-local-booking", "h.h", "python3.13", 512, 10, {}, 10)
    store.on_invocation(spec, Invocation("r1", payload={}, report=Report("r1", 12.5, 13, 512, 80, 350.0)))
    store.on_invocation(spec, Invocation("r2", error={"errorType": "X"}, report=Report("r2", 5.0, 5, 512, 80, None)))
    function = {"FunctionName": "appointments-local-booking"}

    def lambda_metric(name: str, stat: str) -> float | None:
        return store.datapoints(MetricId.of("AWS/Lambda", name, function), stat, 3600, hour, hour + 3600)[0][1]

    invocations, errors = lambda_metric("Invocations", "Sum"), lambda_metric("Errors", "Sum")
    duration = lambda_metric("Duration", "p99")
    init = MetricId.of("LambdaInsights", "init_duration", {"function_name": "appointments-local-booking"})
    assert (invocations, errors, duration) == (2.0, 1.0, 12.5)
    assert store.datapoints(init, "SampleCount", 3600, hour, hour + 3600)[0][1] == 1.0
    too_many = MetricId.of("AWS/Lambda", "Duration", function)
    with pytest.raises(ValueError, match="at most"):
        store.datapoints(too_many, "Sum", 60, 0, hour)


def test_dynamodb_client_spans_and_runtime_events_become_their_aws_metrics() -> None:
    store = MetricStore("appointments-local", "local")
    hour = time.time() // 3600 * 3600

    def span(operation: str, status: int, code: str = "") -> dict[str, object]:
        attributes = {"aws.error_code": code} if code else {}
        return {
            "namespace": "aws",
            "name": "DynamoDB",
            "start_time": hour + 10.0,
            "end_time": hour + 10.025,
            "aws": {"operation": operation, "table_name": "appointments-local"},
            "http": {"response": {"status": status}},
            "metadata": {"otel": {"attributes": attributes}},
        }

    store.on_span(span("Query", 200))
    store.on_span(span("Query", 400, "ProvisionedThroughputExceededException"))
    store.on_span(span("TransactWriteItems", 400, "TransactionCanceledException"))
    store.on_span(span("PutItem", 500, "InternalServerError"))
    store.on_span({"namespace": "aws", "name": "S3", "aws": {"operation": "PutObject"}})  # not DynamoDB
    spec = FunctionSpec("BookingFunction", "appointments-local-booking", "h.h", "python3.13", 512, 10, {}, 10)
    store.on_start(spec, 3)
    store.on_start(spec, 0)  # throttled
    table = {"TableName": "appointments-local"}

    def one(namespace: str, name: str, dimensions: dict[str, str], stat: str) -> float | None:
        return store.datapoints(MetricId.of(namespace, name, dimensions), stat, 3600, hour, hour + 3600)[0][1]

    latency = one("AWS/DynamoDB", "SuccessfulRequestLatency", {**table, "Operation": "Query"}, "Average")
    assert latency == pytest.approx(25.0, abs=0.01)
    assert one("AWS/DynamoDB", "ReadThrottleEvents", table, "Sum") == 1.0
    assert one("AWS/DynamoDB", "WriteThrottleEvents", table, "Sum") is None
    assert one("AWS/DynamoDB", "ConditionalCheckFailedRequests", table, "Sum") == 1.0
    assert one("AWS/DynamoDB", "SystemErrors", table, "Sum") == 1.0
    function = {"FunctionName": "appointments-local-booking"}
    assert one("AWS/Lambda", "ConcurrentExecutions", function, "Maximum") == 3.0
    assert one("AWS/Lambda", "Throttles", function, "Sum") == 1.0
