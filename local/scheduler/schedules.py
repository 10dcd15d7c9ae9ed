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

Not emulated, and said so: `cron()` and `at()` expressions in the templates (refused when loaded, so
a template that adds one fails the local stack's start instead of never firing), and Lambda's own
retries of a failed asynchronous invocation (so a target function must turn them off with an
`AWS::Lambda::EventInvokeConfig`, or the stack refuses to start).

One-time schedules that the functions create at run time (`OneTimeSchedules`: a webhook's retry, a
booking's reminder), in the templates' schedule groups, fire too (the emulator says which are due,
local/emulator/due_schedules.py; each is then read with `GetSchedule`): once the stack's clock
passes their `at()` (AWS: within that minute), their Lambda target invoked with their `Input`, then
deleted when their
`ActionAfterCompletion` is `DELETE`. The emulator refuses an `at()` in the past when one is created,
as AWS does (local/emulator/scheduler_refusals.py). One whose target this emulation would run
differently (not a function of the stack, retries on, a flexible window) is not fired but counted
as refused and logged, so a test sees it.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import urllib.request
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from botocore.exceptions import ClientError

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


log = logging.getLogger(__name__)
_AT = re.compile(r"^at\((\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})\)$")


def schedule_groups(parameters: dict[str, str]) -> list[str]:
    """The templates' `AWS::Scheduler::ScheduleGroup` names."""
    return [str(p["Name"]) for p in resolved_resources("AWS::Scheduler::ScheduleGroup", parameters).values()]


@dataclass(frozen=True)
class OneTime:
    group: str
    name: str
    fires_at: float  # seconds since the epoch, on the stack's clock
    function: str | None  # the target function's logical id; None: refused (see `refusal`)
    payload: Any
    delete_after: bool
    refusal: str | None = None


def emulator_due(endpoint: str) -> Callable[[list[str], float], list[tuple[str, str]]]:
    """The emulator's answer to which one-time schedules are due (local/emulator/due_schedules.py):
    one request, where listing every group's schedules page by page each second would be thousands."""

    def due(groups: list[str], before: float) -> list[tuple[str, str]]:
        query = urlencode([("before", repr(before)), *(("group", group) for group in groups)])
        with urllib.request.urlopen(f"{endpoint}/_schedules/due?{query}", timeout=10) as answer:
            return [(str(found["group"]), str(found["name"])) for found in json.load(answer)["due"]]

    return due


class OneTimeSchedules:
    """Fires the one-time schedules created at run time in the stack's schedule groups."""

    def __init__(
        self,
        client: Any,
        due: Callable[[list[str], float], Iterable[tuple[str, str]]],
        groups: list[str],
        functions: dict[str, FunctionRuntime],
        unretried: dict[str, int],
        now: Callable[[], float],
        tick_seconds: float = 1.0,
    ) -> None:
        self.client, self.due, self.groups, self.functions, self._now = client, due, groups, functions, now
        self.by_name = {runtime.spec.name: logical_id for logical_id, runtime in functions.items()}
        self.unretried, self.tick_seconds = unretried, tick_seconds
        self.fired = self.failed = self.refused = 0
        self._done: set[tuple[str, str]] = set()
        self._stopping = threading.Event()
        self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="one-time-schedule")
        self._thread = threading.Thread(target=self._run, name="one-time-schedules", daemon=True)

    def start(self) -> OneTimeSchedules:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(timeout=10)
        self._pool.shutdown(wait=True, cancel_futures=True)

    def _run(self) -> None:
        while not self._stopping.wait(self.tick_seconds):
            try:
                self.tick()
            except Exception:  # the emulator stopping first, say: the next tick tries again
                log.exception("one-time schedules not read")

    def tick(self) -> None:
        """Fire what is due now: each due schedule once, as `GetSchedule` describes it."""
        for group, name in self.due(self.groups, self._now()):
            key = (group, name)
            if key in self._done:
                continue  # fired already; kept (ActionAfterCompletion NONE) or not yet deleted
            try:
                found = self._read(group, name)
            except ClientError as error:
                if error.response.get("Error", {}).get("Code") != "ResourceNotFoundException":
                    raise  # read again at the next tick
                found = None  # deleted between the two reads: it never fires
            self._done.add(key)
            if found is not None:
                self._pool.submit(self._fire, found)

    def _read(self, group: str, name: str) -> OneTime | None:
        described = self.client.get_schedule(GroupName=group, Name=name)
        found = _AT.fullmatch(str(described.get("ScheduleExpression", "")))
        if found is None or described.get("State", "ENABLED") != "ENABLED":
            return None  # not a one-time schedule, or disabled: nothing of this emulation's to fire
        zone = described.get("ScheduleExpressionTimezone") or "UTC"
        fires_at = datetime.fromisoformat(found.group(1)).replace(tzinfo=UTC).timestamp()
        target = described["Target"]
        function = self.by_name.get(str(target.get("Arn", "")).rsplit(":", 1)[-1])
        refusal = None
        if zone != "UTC":
            refusal = f"time zone {zone}: only UTC is emulated"
        elif (described.get("FlexibleTimeWindow") or {}).get("Mode") != "OFF":
            refusal = "only FlexibleTimeWindow OFF is emulated"
        elif function is None:
            refusal = f"its target {target.get('Arn')} is no function of the stack"
        elif int((target.get("RetryPolicy") or {}).get("MaximumRetryAttempts", 185)) != 0:
            refusal = "only MaximumRetryAttempts 0 is emulated"
        elif self.functions[function].spec.name not in self.unretried:
            refusal = f"Lambda would retry {function} after a failure; give it MaximumRetryAttempts 0"
        try:
            payload = json.loads(target["Input"]) if "Input" in target else {}
        except json.JSONDecodeError:
            payload, refusal = None, "its Input is no JSON"
        delete_after = described.get("ActionAfterCompletion") == "DELETE"
        return OneTime(group, name, fires_at, function if refusal is None else None, payload, delete_after, refusal)

    def _fire(self, schedule: OneTime) -> None:
        if schedule.function is None:
            self.refused += 1
            log.error("one-time schedule %s/%s not fired: %s", schedule.group, schedule.name, schedule.refusal)
            return
        self.fired += 1
        try:
            invocation = self.functions[schedule.function].invoke(schedule.payload)
            if invocation.failed:
                self.failed += 1
        except Throttled:
            self.failed += 1
        finally:
            if schedule.delete_after:
                try:
                    self.client.delete_schedule(GroupName=schedule.group, Name=schedule.name)
                except Exception:
                    log.exception("one-time schedule %s/%s not deleted", schedule.group, schedule.name)
