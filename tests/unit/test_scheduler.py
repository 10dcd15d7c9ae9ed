"""The local EventBridge Scheduler: the templates' schedules, read as CloudFormation resolves them, fire
on the stack's clock (every period from the start, missed fires coalesced into one after the clock
jumps, a failed or throttled invocation dropped), and what the emulation would run wrongly is refused
when loaded instead of never firing."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from local.lambda_runtime.function_runtime import Invocation, Throttled
from local.lambda_runtime.functions import load_functions
from local.scheduler.schedules import Scheduler, ScheduleSpec, UnsupportedScheduleError, load_schedules
from tests.unit.test_lambda_runtime import spec

PARAMETERS = {
    "Stage": "test",
    "TableName": "appointments-test",
    "TableArn": "arn:aws:dynamodb:us-east-1:123456789012:table/appointments-test",
    "TableStreamArn": "arn:aws:dynamodb:us-east-1:123456789012:table/appointments-test/stream/x",
    "AuditTableName": "appointments-test-audit",
    "AuditTableArn": "arn:aws:dynamodb:us-east-1:123456789012:table/appointments-test-audit",
    "AuditBucketName": "audit-bucket",
    "AuditBucketArn": "arn:aws:s3:::audit-bucket",
    "BackupBucketName": "backup-bucket",
    "BackupBucketArn": "arn:aws:s3:::backup-bucket",
    "DependenciesLayerArn": "arn:aws:lambda:us-east-1:123456789012:layer:deps:1",
    "StaffIssuer": "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_staff",
}


TARGET = {
    "Arn": "arn:aws:local:us-east-1:123456789012:appointments-test-fn",
    "RoleArn": "r",
    "RetryPolicy": {"MaximumRetryAttempts": 0},
}


def test_a_schedule_whose_function_lambda_would_retry_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """EventBridge Scheduler invokes a Lambda target asynchronously, and Lambda retries a failed
    asynchronous invocation twice unless the function's EventInvokeConfig says otherwise: the
    emulation drops a failure, so it refuses a target Lambda would retry."""
    from local.lambda_runtime import functions as function_specs

    functions = load_functions(PARAMETERS)
    real = function_specs.resolved_resources
    monkeypatch.setattr(
        function_specs,
        "resolved_resources",
        lambda kind, *args: {} if kind == "AWS::Lambda::EventInvokeConfig" else real(kind, *args),
    )
    with pytest.raises(UnsupportedScheduleError, match="MaximumRetryAttempts 0"):
        load_schedules(PARAMETERS, functions)


def test_the_waitlist_sweep_and_the_backups_are_read_from_the_templates() -> None:
    functions = load_functions(PARAMETERS)
    sweep, backups = load_schedules(PARAMETERS, functions)
    assert sweep == ScheduleSpec("appointments-test-waitlist-sweep", 60, "WaitlistFunction", {"sweep": "waitlist"})
    assert backups == ScheduleSpec("appointments-test-backup", 3600, "BackupFunction", {"backup": "hourly"})


@pytest.mark.parametrize(
    ("change", "refused"),
    [
        ({"ScheduleExpression": "cron(0 * * * ? *)"}, "only rate"),
        ({"ScheduleExpression": "at(2026-12-01T10:00:00)"}, "only rate"),
        ({"ScheduleExpression": "rate(1 minutes)"}, "no valid rate"),  # AWS: "minute" for a value of 1
        ({"ScheduleExpression": "rate(5 minute)"}, "no valid rate"),
        ({"ScheduleExpression": "rate(0 minutes)"}, "no valid rate"),
        ({"FlexibleTimeWindow": {"Mode": "FLEXIBLE", "MaximumWindowInMinutes": 5}}, "FlexibleTimeWindow"),
        ({"Target": {"Arn": "arn:aws:local:us-east-1:123456789012:fn", "RoleArn": "r"}}, "MaximumRetryAttempts"),
        (
            {"Target": {"Arn": "arn:aws:local:x", "RoleArn": "r", "RetryPolicy": {"MaximumRetryAttempts": 0}}},
            "no function",
        ),
        ({"Target": {**TARGET, "RoleArn": ""}}, "RoleArn"),
        (
            {"Target": {**TARGET, "RetryPolicy": {"MaximumRetryAttempts": 0, "MaximumEventAgeInSeconds": 30}}},
            "60 to 86400",
        ),
        ({"Target": {**TARGET, "Input": "{not json"}}, "no JSON"),
    ],
)
def test_what_the_emulation_would_run_wrongly_is_refused(change: dict[str, Any], refused: str) -> None:
    functions = {"F": spec("m.h")}
    properties = {
        "ScheduleExpression": "rate(5 minutes)",
        "FlexibleTimeWindow": {"Mode": "OFF"},
        "Target": {
            "Arn": "arn:aws:local:us-east-1:123456789012:appointments-test-fn",
            "RoleArn": "r",
            "RetryPolicy": {"MaximumRetryAttempts": 0},
        },
        **change,
    }
    with pytest.raises(UnsupportedScheduleError, match=refused):
        ScheduleSpec.from_resource("S", properties, functions)


def test_rates_in_hours_and_days_and_a_disabled_schedule() -> None:
    functions = {"F": spec("m.h")}
    target = {
        "Arn": "arn:aws:local:us-east-1:123456789012:appointments-test-fn",
        "RoleArn": "r",
        "RetryPolicy": {"MaximumRetryAttempts": 0},
    }
    base = {"FlexibleTimeWindow": {"Mode": "OFF"}, "Target": target}
    assert (
        ScheduleSpec.from_resource("S", {**base, "ScheduleExpression": "rate(2 hours)"}, functions).period_seconds
        == 7200
    )
    daily = ScheduleSpec.from_resource(
        "S", {**base, "ScheduleExpression": "rate(1 day)", "State": "DISABLED"}, functions
    )
    assert (daily.period_seconds, daily.enabled, daily.payload) == (86_400, False, {})


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


class Recorder:
    """A function runtime that records its invocations; `outcome` says how each ends."""

    def __init__(self, outcome: str = "ok") -> None:
        self.events: list[Any] = []
        self.outcome = outcome
        self.invoked = threading.Event()

    def invoke(self, event: Any) -> Invocation:
        self.events.append(event)
        self.invoked.set()
        if self.outcome == "throttled":
            raise Throttled("F")
        return Invocation("r", error={"errorType": "Boom"} if self.outcome == "error" else None)


def wait_for(check: Any) -> None:
    deadline = time.monotonic() + 5
    while not check() and time.monotonic() < deadline:
        time.sleep(0.01)


def test_a_schedule_fires_every_period_of_the_stack_clock_and_a_jump_fires_it_once() -> None:
    clock, function = FakeClock(), Recorder()
    schedule = ScheduleSpec("sweep", 60, "F", {"sweep": "waitlist"})
    scheduler = Scheduler([schedule], {"F": function}, clock, tick_seconds=0.01).start()  # type: ignore[dict-item]
    try:
        clock.now += 59
        time.sleep(0.1)
        assert function.events == []  # not before its first period has passed
        clock.now += 1
        wait_for(lambda: len(function.events) == 1)
        assert function.events == [{"sweep": "waitlist"}]
        clock.now += 10 * 60 + 30  # ten periods at once: the missed fires coalesce into one
        wait_for(lambda: len(function.events) == 2)
        time.sleep(0.1)
        assert len(function.events) == 2
        clock.now += 30  # the next period ends where the schedule's own rhythm says, not 60 s after the jump
        wait_for(lambda: len(function.events) == 3)
        assert scheduler.fired == {"sweep": 3} and scheduler.failed == {"sweep": 0}
    finally:
        scheduler.stop()


@pytest.mark.parametrize("outcome", ["error", "throttled"])
def test_a_failed_or_throttled_invocation_is_dropped_and_counted(outcome: str) -> None:
    clock, function = FakeClock(), Recorder(outcome)
    scheduler = Scheduler([ScheduleSpec("sweep", 60, "F", {})], {"F": function}, clock, tick_seconds=0.01).start()  # type: ignore[dict-item]
    try:
        clock.now += 60
        wait_for(lambda: scheduler.failed["sweep"] == 1)
        time.sleep(0.1)
        assert (scheduler.fired, scheduler.failed, len(function.events)) == ({"sweep": 1}, {"sweep": 1}, 1)
    finally:
        scheduler.stop()


def test_a_disabled_schedule_never_fires() -> None:
    clock, function = FakeClock(), Recorder()
    scheduler = Scheduler([ScheduleSpec("off", 60, "F", {}, enabled=False)], {"F": function}, clock).start()  # type: ignore[dict-item]
    clock.now += 3600
    time.sleep(0.3)
    scheduler.stop()
    assert function.events == [] and scheduler.fired == {}
