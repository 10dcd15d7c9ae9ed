"""The local stack records what CloudWatch would: the functions' EMF metrics and the emulated
services' metrics, under AWS's names and dimensions, from real traffic through the gateway."""

from __future__ import annotations

from local.cloudwatch.metric_store import MetricId
from local.stack import LocalStack
from tests.integration.conftest import call, eventually, token
from tests.integration.test_booking_api import WEEKDAYS, book, future_day, make_provider, slots


def test_traffic_becomes_cloudwatch_metrics(stack: LocalStack) -> None:
    assert stack.metrics is not None
    metrics = stack.metrics
    weekly = {day: [{"start": "09:00", "end": "17:00"}] for day in WEEKDAYS}
    pid, (sid,) = make_provider(
        stack, "metered-owner", "Metered Clinic", weekly, [{"name": "V", "durationMinutes": 30}]
    )
    started = stack.clock.now()  # metrics are stamped on the stack's clock, which other tests may have moved
    who = token(stack, "metered-customer", ["customers"])
    assert book(stack, who, pid, sid, slots(stack, pid, sid, future_day(6))[0]["start"])[0] == 201
    assert call(stack, "GET", "/no/such/route", token=who)[0] == 404

    def total(namespace: str, name: str, dimensions: dict[str, str], stat: str = "Sum") -> float:
        values = metrics.datapoints(MetricId.of(namespace, name, dimensions), stat, 1, started, stack.clock.now() + 1)
        present = [value for _, value in values if value is not None]
        return sum(present) if stat in {"Sum", "SampleCount"} else max(present, default=0.0)

    api = {"ApiName": "appointments-local", "Stage": "local"}
    booking_route = {**api, "Resource": "/bookings", "Method": "POST"}
    assert (total("AWS/ApiGateway", "Count", booking_route), total("AWS/ApiGateway", "5XXError", booking_route)) == (
        1,
        0,
    )
    assert total("AWS/ApiGateway", "4XXError", api) >= 1  # the unknown route
    assert total("AWS/ApiGateway", "Latency", booking_route, "Maximum") > 0
    function = {"FunctionName": "appointments-local-booking"}
    assert total("AWS/Lambda", "Invocations", function) >= 1 and total("AWS/Lambda", "Errors", function) == 0
    # the booking function's EMF line, read from its log stream as CloudWatch Logs would
    created = {"service": "booking", "stage": "local"}
    assert eventually(lambda: total("Appointments", "BookingCreated", created) == 1, 10)
    assert total("Appointments", "SlotsReturned", {"service": "availability", "stage": "local"}, "Maximum") > 0
    # the table as the functions saw it, from their DynamoDB client spans; the Lambda gauges
    query = {"TableName": "appointments-local", "Operation": "Query"}
    assert eventually(lambda: total("AWS/DynamoDB", "SuccessfulRequestLatency", query, "Maximum") > 0, 10)
    assert total("AWS/Lambda", "ConcurrentExecutions", function, "Maximum") >= 1
    # the audit consumer's iterator age, once the stream has delivered the booking
    assert stack.event_source_mapping is not None and stack.event_source_mapping.wait_caught_up()
    audit = {"FunctionName": "appointments-local-audit"}
    assert total("AWS/Lambda", "IteratorAge", audit, "SampleCount") >= 1


def test_the_templates_alarms_are_evaluated_on_the_local_metrics(stack: LocalStack) -> None:
    assert stack.alarms is not None
    started = stack.clock.now()  # metrics are stamped on the stack's clock, which other tests may have moved
    states = stack.alarms.evaluate()  # what the background evaluation does every 10 s
    # 4 per function (availability, booking, publisher, waitlist, webhooks, audit), and the rest (backups' age too)
    assert len(states) == 48
    # the DLQ's depth is sampled before each evaluation, as CloudWatch samples SQS
    assert stack.metrics is not None
    depth = MetricId.of("AWS/SQS", "ApproximateNumberOfMessagesVisible", {"QueueName": "appointments-local-audit-dlq"})
    assert [v for _, v in stack.metrics.datapoints(depth, "SampleCount", 1, started, stack.clock.now() + 1) if v]
    assert states["appointments-local-table-throttles"] == "OK"  # no throttles: not breaching
    status, _, body = call(stack, "GET", "/_local/alarms")
    assert status == 200
    assert {alarm["name"]: alarm["state"] for alarm in body["alarms"]} == states
    assert (stack.logs_dir / "alarms.log").read_text().count('"NewStateValue"') >= 1
