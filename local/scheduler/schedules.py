"""The templates' `AWS::Scheduler::Schedule`s, run on the stack's clock (`local/clock.py`).

What EventBridge Scheduler does, as far as the stack's schedules use it:

- a `rate(N minutes|hours|days)` schedule (`minute` for 1, as AWS requires) fires every N units
  from when it is created (the stack's start here), with `FlexibleTimeWindow` `OFF`; `State:
  DISABLED` never fires;
- its Lambda target is invoked asynchronously with the schedule's `Input` as the event (`{}` without
  one). Here the schedule's own thread invokes it and waits, so one schedule never overlaps itself;
  a throttled or failed invocation is dropped (`RetryPolicy` `MaximumRetryAttempts: 0`, the only one
  the templates use; `tests/unit/test_scheduler.py` refuses others);
- time is the stack's clock: moving it past one or more fire times fires the schedule once (the
  missed fires coalesce; every schedule here does the same work each time, so once is the same).

Not emulated, and said so: `cron()` and `at()` expressions (refused when loaded, so a template that
adds one fails the local stack's start instead of never firing), and Lambda's own retries of a
failed asynchronous invocation (so a target function must turn them off with an
`AWS::Lambda::EventInvokeConfig`, or the stack refuses to start).
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from local.cloudformation.resolver import local_arn
from local.lambda_runtime.function_runtime import FunctionRuntime, Throttled
from local.lambda_runtime.functions import FunctionSpec, resolved_resources, unretried_async

_RATE = re.compile(r"^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$")
_UNIT_SECONDS = {"minute": 60, "hour": 3600, "day": 86_400}


class UnsupportedScheduleError(ValueError):
    """A schedule this emulation would run wrongly: refused at load, never silently skipped."""


@dataclass(frozen=True)
class ScheduleSpec:
    name: str
    period_seconds: int
    function: str  # the target function's logical id
    payload: Any
    enabled: bool = True

    @classmethod
    def from_resource(
        cls, logical_id: str, properties: dict[str, Any], functions: dict[str, FunctionSpec]
    ) -> ScheduleSpec:
        expression = str(properties["ScheduleExpression"])
        rate = _RATE.fullmatch(expression)
        if rate is None:
            raise UnsupportedScheduleError(f"{logical_id}: only rate() schedules are emulated, not {expression!r}")
        if properties.get("FlexibleTimeWindow", {}).get("Mode") != "OFF":
            raise UnsupportedScheduleError(f"{logical_id}: only FlexibleTimeWindow OFF is emulated")
        target = properties["Target"]
        policy = target.get("RetryPolicy", {})
        if policy.get("MaximumRetryAttempts", 185) != 0:  # 185: Scheduler's default
            raise UnsupportedScheduleError(f"{logical_id}: only MaximumRetryAttempts 0 is emulated")
        if not 60 <= int(policy.get("MaximumEventAgeInSeconds", 86_400)) <= 86_400:
            raise UnsupportedScheduleError(f"{logical_id}: MaximumEventAgeInSeconds is 60 to 86400 on AWS")
        if not target.get("RoleArn"):
            raise UnsupportedScheduleError(f"{logical_id}: a target needs the RoleArn Scheduler invokes it with")
        by_arn = {local_arn(spec.name): spec.logical_id for spec in functions.values()}
        function = by_arn.get(str(target["Arn"]))
        if function is None:
            raise UnsupportedScheduleError(f"{logical_id}: its target is no function of the stack")
        try:
            payload = json.loads(target["Input"]) if "Input" in target else {}
        except json.JSONDecodeError as error:
            raise UnsupportedScheduleError(f"{logical_id}: its Input is no JSON ({error})") from error
        count, unit = int(rate.group(1)), rate.group(2).removesuffix("s")
        if count < 1 or (count == 1) != (rate.group(2) == unit):
            # AWS's rule: "minute" for a value of 1, "minutes" for more (and never 0)
            raise UnsupportedScheduleError(f"{logical_id}: {expression!r} is no valid rate expression")
        return cls(
            name=str(properties.get("Name", logical_id)),
            period_seconds=count * _UNIT_SECONDS[unit],
            function=function,
            payload=payload,
            enabled=properties.get("State", "ENABLED") == "ENABLED",
        )


def load_schedules(parameters: dict[str, str], functions: dict[str, FunctionSpec]) -> list[ScheduleSpec]:
    """The templates' schedules. Each target function must not be retried by Lambda after a failed
    asynchronous invocation (an `AWS::Lambda::EventInvokeConfig` with `MaximumRetryAttempts: 0`), since
    the emulation drops a failure as the schedule's own policy says."""
    found = resolved_resources("AWS::Scheduler::Schedule", parameters)
    schedules = [
        ScheduleSpec.from_resource(logical_id, properties, functions) for logical_id, properties in found.items()
    ]
    unretried = unretried_async(parameters)
    for schedule in schedules:
        if functions[schedule.function].name not in unretried:
            raise UnsupportedScheduleError(
                f"{schedule.name}: Lambda would retry a failed invocation of {schedule.function} twice; "
                "give it an EventInvokeConfig with MaximumRetryAttempts 0, as emulated"
            )
    return schedules


class Scheduler:
    """Fires each enabled schedule on the stack's clock, from a thread of its own per schedule."""

    def __init__(
        self,
        schedules: list[ScheduleSpec],
        functions: dict[str, FunctionRuntime],
        now: Callable[[], float],
        tick_seconds: float = 0.2,
    ) -> None:
        self.schedules = [schedule for schedule in schedules if schedule.enabled]
        self.functions, self._now, self.tick_seconds = functions, now, tick_seconds
        self.fired: dict[str, int] = {schedule.name: 0 for schedule in self.schedules}
        self.failed: dict[str, int] = {schedule.name: 0 for schedule in self.schedules}
        self._stopping = threading.Event()
        self._threads = [
            threading.Thread(target=self._run, args=(schedule,), name=f"schedule-{schedule.name}", daemon=True)
            for schedule in self.schedules
        ]

    def start(self) -> Scheduler:
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        for thread in self._threads:
            thread.join(timeout=70)

    def _run(self, schedule: ScheduleSpec) -> None:
        next_fire = self._now() + schedule.period_seconds
        while not self._stopping.wait(self.tick_seconds):
            now = self._now()
            if now < next_fire:
                continue
            # Fire times missed by a move of the clock coalesce into this one.
            missed = int((now - next_fire) // schedule.period_seconds)
            next_fire += (missed + 1) * schedule.period_seconds
            self._fire(schedule)

    def _fire(self, schedule: ScheduleSpec) -> None:
        self.fired[schedule.name] += 1
        try:
            invocation = self.functions[schedule.function].invoke(schedule.payload)
        except Throttled:
            self.failed[schedule.name] += 1
            return
        if invocation.failed:
            self.failed[schedule.name] += 1
