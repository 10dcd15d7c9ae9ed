"""One-time EventBridge Scheduler schedules made at run time (a webhook's retry), run on the stack's
clock: fired once the clock passes their `at()`, with their `Input`, then deleted (`ActionAfterCompletion`
`DELETE`); one deleted first never fires; one this emulation would run differently (retries on, another
time zone, no function of the stack) is counted refused and never invoked. And the emulator's
refusals of what AWS refuses when a schedule is created: an `at()` in the past, a malformed one, a
group that does not exist."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.scheduler.models import EventBridgeSchedulerBackend

from local.emulator import scheduler_refusals
from local.emulator.due_schedules import due
from local.lambda_runtime.function_runtime import Invocation
from local.scheduler.schedules import OneTimeSchedules
from tests.unit.test_lambda_runtime import spec

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
FUNCTION_ARN = "arn:aws:lambda:us-east-1:123456789012:function:appointments-test-fn"


@dataclass
class Client:
    """The Scheduler API as the emulation reads it (the schedules of each group), and the emulator's
    answer to which are due."""

    schedules: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    deleted: list[str] = field(default_factory=list)

    def due(self, groups: list[str], before: float) -> list[tuple[str, str]]:
        """What the emulator answers (local/emulator/due_schedules.py, tested below against moto)."""
        found = []
        for (group, name), described in self.schedules.items():
            at = scheduler_refusals.one_time_instant(described["ScheduleExpression"], "UTC")
            if group in groups and at is not None and at.timestamp() <= before:
                found.append((group, name))
        return found

    def get_schedule(self, GroupName: str, Name: str) -> dict[str, Any]:
        return self.schedules[(GroupName, Name)]

    def delete_schedule(self, GroupName: str, Name: str) -> None:
        del self.schedules[(GroupName, Name)]
        self.deleted.append(Name)


@dataclass
class Runtime:
    spec: Any
    events: list[Any] = field(default_factory=list)

    def invoke(self, event: Any, **_: Any) -> Invocation:
        self.events.append(event)
        return Invocation("r", payload={})


def one_time(at: datetime, **changes: Any) -> dict[str, Any]:
    target = {
        "Arn": FUNCTION_ARN,
        "RoleArn": "r",
        "Input": json.dumps({"n": 1}),
        "RetryPolicy": {"MaximumRetryAttempts": 0},
    }
    described = {
        "ScheduleExpression": f"at({at:%Y-%m-%dT%H:%M:%S})",
        "ScheduleExpressionTimezone": "UTC",
        "FlexibleTimeWindow": {"Mode": "OFF"},
        "State": "ENABLED",
        "ActionAfterCompletion": "DELETE",
        "Target": target,
    }
    target.update(changes.pop("target", {}))
    return described | changes


def emulation(client: Client, now: list[float]) -> tuple[OneTimeSchedules, Runtime]:
    runtime = Runtime(spec("Fn"))  # named appointments-test-fn
    schedules = OneTimeSchedules(
        client,
        client.due,
        ["g"],
        {"Fn": runtime},  # type: ignore[dict-item]
        {"appointments-test-fn": 60},
        lambda: now[0],
    )
    return schedules, runtime


def test_a_due_schedule_fires_once_with_its_input_and_is_deleted_and_one_not_due_waits() -> None:
    client = Client(
        {("g", "soon"): one_time(T0 + timedelta(seconds=5)), ("g", "later"): one_time(T0 + timedelta(hours=2))}
    )
    now = [T0.timestamp()]
    schedules, runtime = emulation(client, now)
    schedules.tick()
    assert runtime.events == [] and schedules.fired == 0
    now[0] += 65  # the clock moved past the first (AWS: within that minute)
    schedules.tick()
    schedules.tick()
    schedules._pool.shutdown(wait=True)
    assert runtime.events == [{"n": 1}] and client.deleted == ["soon"] and schedules.fired == 1
    assert list(client.schedules) == [("g", "later")]


def test_one_deleted_before_it_is_due_never_fires() -> None:
    client = Client({("g", "retry"): one_time(T0 + timedelta(minutes=5))})
    now = [T0.timestamp()]
    schedules, runtime = emulation(client, now)
    schedules.tick()
    del client.schedules[("g", "retry")]
    now[0] += 3600
    schedules.tick()
    schedules._pool.shutdown(wait=True)
    assert runtime.events == [] and schedules.fired == 0


@pytest.mark.parametrize(
    "changes",
    [
        {"target": {"RetryPolicy": {"MaximumRetryAttempts": 185}}},  # retries: Lambda's queue would differ
        {"ScheduleExpressionTimezone": "Europe/Lisbon"},
        {"FlexibleTimeWindow": {"Mode": "FLEXIBLE", "MaximumWindowInMinutes": 5}},
        {"target": {"Arn": "arn:aws:lambda:us-east-1:123456789012:function:someone-else"}},
    ],
)
def test_what_the_emulation_would_run_differently_is_refused_never_invoked(changes: dict[str, Any]) -> None:
    client = Client({("g", "odd"): one_time(T0, **changes)})
    schedules, runtime = emulation(client, [T0.timestamp() + 60])
    schedules.tick()
    schedules._pool.shutdown(wait=True)
    assert runtime.events == [] and schedules.refused == 1 and schedules.fired == 0


@pytest.fixture
def scheduler(monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setattr(EventBridgeSchedulerBackend, "create_schedule", scheduler_refusals.create_schedule)
    with mock_aws():
        client = boto3.client("scheduler", region_name="us-east-1")
        client.create_schedule_group(Name="g")
        yield client


def create(client: Any, expression: str, group: str = "g") -> Any:
    return client.create_schedule(
        Name="s",
        GroupName=group,
        ScheduleExpression=expression,
        FlexibleTimeWindow={"Mode": "OFF"},
        Target={"Arn": FUNCTION_ARN, "RoleArn": "arn:aws:iam::123456789012:role/r"},
    )


def test_the_emulator_refuses_an_at_in_the_past_a_malformed_one_and_an_unknown_group(scheduler: Any) -> None:
    past = datetime.now(UTC) - timedelta(minutes=1)
    for expression, code in [
        (f"at({past:%Y-%m-%dT%H:%M:%S})", "ValidationException"),
        ("at(2026-12-01 09:00:00)", "ValidationException"),
    ]:
        with pytest.raises(ClientError) as refused:
            create(scheduler, expression)
        assert refused.value.response["Error"]["Code"] == code, expression
    with pytest.raises(ClientError) as refused:
        create(scheduler, f"at({datetime.now(UTC) + timedelta(minutes=5):%Y-%m-%dT%H:%M:%S})", group="nobody")
    assert refused.value.response["Error"]["Code"] == "ResourceNotFoundException"
    future = datetime.now(UTC) + timedelta(minutes=5)
    assert create(scheduler, f"at({future:%Y-%m-%dT%H:%M:%S})")["ScheduleArn"].endswith("/g/s")


def test_the_emulator_answers_which_enabled_one_time_schedules_of_the_groups_are_due(scheduler: Any) -> None:
    soon, later = datetime.now(UTC) + timedelta(minutes=5), datetime.now(UTC) + timedelta(days=3)
    scheduler.create_schedule_group(Name="other")
    for name, expression, group, state in [
        ("soon", f"at({soon:%Y-%m-%dT%H:%M:%S})", "g", "ENABLED"),
        ("later", f"at({later:%Y-%m-%dT%H:%M:%S})", "g", "ENABLED"),
        ("off", f"at({soon:%Y-%m-%dT%H:%M:%S})", "g", "DISABLED"),
        ("elsewhere", f"at({soon:%Y-%m-%dT%H:%M:%S})", "other", "ENABLED"),
        ("every-hour", "rate(1 hour)", "g", "ENABLED"),
    ]:
        scheduler.create_schedule(
            Name=name,
            GroupName=group,
            ScheduleExpression=expression,
            State=state,
            FlexibleTimeWindow={"Mode": "OFF"},
            Target={"Arn": FUNCTION_ARN, "RoleArn": "arn:aws:iam::123456789012:role/r"},
        )
    at_soon = soon.replace(microsecond=0).timestamp()
    assert list(due(["g"], at_soon - 1)) == []
    assert list(due(["g"], at_soon)) == [("g", "soon")]
    assert sorted(due(["g", "other"], later.timestamp())) == [("g", "later"), ("g", "soon"), ("other", "elsewhere")]
    scheduler.delete_schedule(GroupName="g", Name="soon")
    assert list(due(["g"], later.timestamp())) == [("g", "later")]


def test_a_schedule_whose_read_failed_is_read_again_at_the_next_tick_and_fires() -> None:
    client = Client({("g", "retry"): one_time(T0 + timedelta(seconds=5))})
    schedules, runtime = emulation(client, [T0.timestamp() + 65])
    throttled = ClientError({"Error": {"Code": "ThrottlingException", "Message": "slow down"}}, "GetSchedule")
    read, failures = client.get_schedule, [throttled]

    def flaky(**asked: str) -> dict[str, Any]:
        if failures:
            raise failures.pop()
        return read(**asked)

    client.get_schedule = flaky  # type: ignore[method-assign,assignment]
    with pytest.raises(ClientError):
        schedules.tick()  # the emulation's loop logs it and ticks again
    schedules.tick()
    schedules._pool.shutdown(wait=True)
    assert runtime.events == [{"n": 1}] and schedules.fired == 1
