"""The templates' alarms, evaluated on local metrics: resolved as CloudFormation would resolve them,
M of N over full periods, metric math and composites, and each state change written as the SNS
message CloudWatch would publish."""

from __future__ import annotations

import json
from pathlib import Path

from local.cloudwatch.alarms import AlarmEvaluator, load_alarms
from local.cloudwatch.metric_store import MetricStore
from local.cognito.user_pool import auth_parameters

PARAMETERS = {
    "Stage": "local",
    "TableName": "appointments-local",
    "TableArn": "arn:aws:dynamodb:us-east-1:123456789012:table/appointments-local",
    "TableStreamArn": "arn:aws:dynamodb:us-east-1:123456789012:table/appointments-local/stream/x",
    "AuditTableName": "appointments-local-audit",
    "AuditTableArn": "arn:aws:dynamodb:us-east-1:123456789012:table/appointments-local-audit",
    "AuditBucketName": "appointments-audit-local",
    "AuditBucketArn": "arn:aws:s3:::appointments-audit-local",
    "BackupBucketName": "appointments-bak-local",
    "BackupBucketArn": "arn:aws:s3:::appointments-bak-local",
    "DependenciesLayerArn": "local",
    **auth_parameters(),
}
T0 = 1_800_000_000.0  # a whole hour
API = {"ApiName": "appointments-local", "Stage": "local"}


def evaluator(tmp_path: Path) -> tuple[AlarmEvaluator, MetricStore]:
    metrics = MetricStore("appointments-local", "local")
    return AlarmEvaluator(load_alarms(PARAMETERS), metrics, tmp_path / "alarms.log"), metrics


def requests(metrics: MetricStore, minute: int, count: int, server_errors: int) -> None:
    for n in range(count):
        at = T0 + minute * 60 + n * 0.01
        metrics.put("AWS/ApiGateway", "Count", API, 1, at)
        metrics.put("AWS/ApiGateway", "5XXError", API, 1 if n < server_errors else 0, at)


def test_every_alarm_of_the_stage_is_resolved(tmp_path: Path) -> None:
    alarms, _ = evaluator(tmp_path)
    names = set(alarms.alarms)
    # 30, then the publisher's dead letters and iterator age, and its function's four; the webhooks'
    # failure rate, and the dispatcher's four; Calendly's conflicts; WhatsApp's failures, and the
    # notifications function's four; the backups' age
    assert len(names) == 48 and "appointments-local-publisher-dead-letters" in names
    assert "appointments-local-webhook-failures" in names
    dead_letters = alarms.alarms["appointments-local-audit-dead-letters"].properties
    assert dead_letters["Dimensions"] == [{"Name": "QueueName", "Value": "appointments-local-audit-dlq"}]
    fast = alarms.alarms["appointments-local-slo-fast-burn"]
    assert fast.composite and fast.actions == ["arn:aws:sns:us-east-1:123456789012:appointments-local-alarms"]


def test_api_5xx_fires_after_three_breaching_minutes_and_recovers(tmp_path: Path) -> None:
    alarms, metrics = evaluator(tmp_path)
    requests(metrics, 0, 100, 5)
    requests(metrics, 1, 100, 5)
    # two full minutes at 5 %: 2 of the 3 datapoints, not yet
    assert alarms.evaluate(now=T0 + 120 + 1)["appointments-local-api-5xx"] == "OK"
    requests(metrics, 2, 100, 5)
    assert alarms.evaluate(now=T0 + 180 + 1)["appointments-local-api-5xx"] == "ALARM"
    for minute in (3, 4, 5):
        requests(metrics, minute, 100, 0)
    assert alarms.evaluate(now=T0 + 360 + 1)["appointments-local-api-5xx"] == "OK"
    published = [json.loads(line) for line in (tmp_path / "alarms.log").read_text().splitlines()]
    mine = [m for m in published if m["AlarmName"] == "appointments-local-api-5xx"]
    assert [(m["OldStateValue"], m["NewStateValue"]) for m in mine] == [
        ("INSUFFICIENT_DATA", "OK"),
        ("OK", "ALARM"),
        ("ALARM", "OK"),
    ]
    assert mine[1]["TopicArns"] == ["arn:aws:sns:us-east-1:123456789012:appointments-local-alarms"]
    assert "0.05" in mine[1]["NewStateReason"]


def test_the_fast_burn_composite_follows_its_two_windows(tmp_path: Path) -> None:
    alarms, metrics = evaluator(tmp_path)
    for minute in range(60):  # an hour at 2 % errors: burn rate 20 in both windows
        requests(metrics, minute, 100, 2)
    states = alarms.evaluate(now=T0 + 3600 + 1)
    assert states["appointments-local-slo-burn-1h"] == states["appointments-local-slo-burn-5m"] == "ALARM"
    assert states["appointments-local-slo-fast-burn"] == "ALARM"
    assert states["appointments-local-slo-slow-burn"] == "OK"  # 6 h window: no full period yet


def test_error_rate_math_needs_enough_invocations(tmp_path: Path) -> None:
    alarms, metrics = evaluator(tmp_path)
    function = {"FunctionName": "appointments-local-booking"}
    for minute in range(5):
        for n in range(5):  # 5 invocations a minute, all failing: below the 10-invocation floor
            at = T0 + minute * 60 + n
            metrics.put("AWS/Lambda", "Invocations", function, 1, at)
            metrics.put("AWS/Lambda", "Errors", function, 1, at)
    assert alarms.evaluate(now=T0 + 300 + 1)["appointments-local-booking-function-errors"] == "OK"
    # no data at all: notBreaching
    assert alarms.evaluate(now=T0 + 300 + 1)["appointments-local-table-throttles"] == "OK"


def test_webhook_failures_fire_when_every_attempt_fails_and_not_on_a_few(tmp_path: Path) -> None:
    """With every attempt failing there is no `WebhookDelivered` datapoint at all: the math FILLs it,
    or the rate would be missing and the alarm would stay OK through a total outage."""
    alarms, metrics = evaluator(tmp_path)
    webhooks = {"service": "webhooks", "stage": "local"}
    for period in range(5):  # five-minute periods: 30 failed attempts in each, none delivered
        metrics.put("Appointments", "WebhookAttemptFailed", webhooks, 30, T0 + period * 300 + 10)
    assert alarms.evaluate(now=T0 + 1500 + 1)["appointments-local-webhook-failures"] == "ALARM"

    (tmp_path / "healthy").mkdir()
    healthy, store = evaluator(tmp_path / "healthy")
    for period in range(5):  # 2 of 40 failing: a receiver's, not ours
        store.put("Appointments", "WebhookDelivered", webhooks, 38, T0 + period * 300 + 10)
        store.put("Appointments", "WebhookAttemptFailed", webhooks, 2, T0 + period * 300 + 10)
    assert healthy.evaluate(now=T0 + 1500 + 1)["appointments-local-webhook-failures"] == "OK"
