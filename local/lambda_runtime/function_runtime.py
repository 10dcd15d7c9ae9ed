"""A function's runtime in the local Lambda service: its pool of execution environments.

Invoking a function first takes one concurrent execution from its reservation, or from the account's
unreserved pool (`concurrency.py`); past that the invocation is throttled, as Lambda throttles. It
then reuses an idle execution environment or starts a new one (a cold start, with its init
duration). Lambda would start as many environments as there are executions; this machine runs at
most `max_environments` worker processes per function, so beyond them an invocation waits for a free
one, and says so in the log stream, instead of being refused. A request that outlives the function's
timeout has its environment killed, as Lambda does. Every invocation writes START, END and REPORT
records into the function's log stream, in the function's log format (`platform_records.py`),
beside whatever the handler prints.
"""

from __future__ import annotations

import json
import math
import os
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from local.clock import StackClock
from local.cloudwatch.logs import LogStreams
from local.lambda_runtime.concurrency import AccountConcurrency
from local.lambda_runtime.environment import Environment
from local.lambda_runtime.functions import FunctionSpec
from local.lambda_runtime.platform_records import Report, queued_line, report_lines, start_lines, timeout_line
from local.lambda_runtime.zygote import Zygote
from local.xray.trace_header import new_trace_header

# Worker processes per function this machine affords; beyond them invocations wait. Two per core: the
# work is the emulator's, serialized, so more processes only move the waiting inside the functions'
# timeouts (make load USERS=200: 4 per function, no 5xx; 20, function timeouts and 503s).
MAX_ENVIRONMENTS = max(2, 2 * (os.cpu_count() or 1))


def sampled(trace_header: str) -> str:
    """A caller's trace header as the function gets it: with no sampling decision in it (EventBridge
    passes on the `Root` and `Parent` a change was published with), Lambda with active tracing makes
    one; the local stack keeps every trace, so it is sampled."""
    return trace_header if "Sampled=" in trace_header else f"{trace_header};Sampled=1"


class Throttled(Exception):
    """The function is at its concurrency limit (Lambda's TooManyRequestsException)."""


@dataclass
class Invocation:
    """The outcome of one invoke: the handler's JSON result, or the error Lambda would return."""

    request_id: str
    payload: Any = None
    error: dict[str, Any] | None = None
    report: Report | None = None

    @property
    def failed(self) -> bool:
        return self.error is not None


ReportListener = Callable[[FunctionSpec, Invocation], None]


@dataclass
class FunctionRuntime:
    """Invokes one function: environment pool, concurrency, queueing, timeouts, platform log records."""

    spec: FunctionSpec
    base_env: dict[str, str]
    logs: LogStreams
    listeners: list[ReportListener] = field(default_factory=list)
    # (spec, executions running now including this one) at each start; (spec, 0) for a throttle
    start_listeners: list[Callable[[FunctionSpec, int], None]] = field(default_factory=list)
    account: AccountConcurrency | None = None  # shared by the stack's functions; else an account of its own
    max_environments: int = MAX_ENVIRONMENTS
    clock: StackClock | None = None  # the stack's; its offset is the workers' time
    zygote: Zygote | None = None  # forks the workers (zygote.py); without one, each is spawned

    def __post_init__(self) -> None:
        if self.account is None:
            reserved = self.spec.reserved_concurrency
            self.account = AccountConcurrency(reservations={} if reserved is None else {self.spec.name: reserved})
        self._idle: list[Environment] = []
        self._active = 0  # environments that exist or are being started
        self._lock = threading.Lock()
        self._environment_free = threading.Condition(self._lock)
        self.throttles = 0
        self.invocations = 0
        self.queued = 0  # invocations that waited for an environment
        self._closed = False

    @property
    def environments(self) -> int:
        return self._active

    @property
    def concurrency_limit(self) -> int:
        assert self.account is not None
        return self.account.limit_of(self.spec.name)

    def warm(self) -> float:
        """Start one environment ahead of traffic (like provisioned concurrency); return its init ms."""
        with self._lock:
            if self._active >= self.max_environments:
                raise RuntimeError(f"{self.spec.name} has all {self.max_environments} local environments already")
            self._active += 1
        environment, error = self._start(provisioned=True)
        if environment is None:
            raise RuntimeError(f"{self.spec.name} failed to initialize: {error}")
        self._release(environment)
        assert environment.init_duration_ms is not None
        return environment.init_duration_ms

    def provision(self, count: int, parallel: int = 2) -> None:
        """Start environments until `count` exist, as provisioned concurrency would before traffic.

        Many cold starts at once on a laptop's few cores can outlast Lambda's 10 s init limit; a load
        test warms up first, as one would before a launch.
        """
        missing = max(0, min(count, self.max_environments) - self.environments)
        with ThreadPoolExecutor(parallel) as pool:
            list(pool.map(lambda _: self.warm(), range(missing)))

    @property
    def _clock_offset(self) -> float:
        return self.clock.offset if self.clock is not None else 0.0

    def _now(self) -> float:
        """The stack's now: Lambda's own records carry the same time as the function's lines."""
        return time.time() + self._clock_offset

    def _start(self, provisioned: bool) -> tuple[Environment | None, dict[str, Any] | None]:
        try:
            environment = Environment(self.spec, self.base_env, self.logs, provisioned, self._clock_offset, self.zygote)
        except BaseException:  # could not even spawn it (e.g. out of file descriptors): free its slot
            self._discard()
            raise
        message = environment.wait_ready()
        if message is None or message["type"] != "ready":
            environment.kill()
            self._discard()
            error = message["payload"] if message else {"errorType": "Runtime.ExitError", "errorMessage": "init failed"}
            return None, error
        return environment, None

    def _release(self, environment: Environment) -> None:
        """An environment is idle again: the next waiting invocation takes it (unless shutting down)."""
        with self._environment_free:
            if not self._closed:
                self._idle.append(environment)
                self._environment_free.notify()
                return
            self._active -= 1
        environment.shutdown()

    def _discard(self) -> None:
        """An environment is gone (killed, or its init failed): a waiting invocation may start another."""
        with self._environment_free:
            self._active -= 1
            self._environment_free.notify()

    def _take_environment(self) -> tuple[Environment | None, float | None]:
        """An idle environment; else None with the right to start one; else wait for one to be free.

        Answers the milliseconds waited when the invocation was queued (None when it was not)."""
        with self._environment_free:
            waited_since: float | None = None
            while not self._idle and self._active >= self.max_environments:
                if self._closed:
                    raise RuntimeError(f"{self.spec.name} is shutting down")
                if waited_since is None:
                    waited_since = time.perf_counter()
                    self.queued += 1
                self._environment_free.wait()
            if self._closed:
                raise RuntimeError(f"{self.spec.name} is shutting down")
            waited = None if waited_since is None else (time.perf_counter() - waited_since) * 1000
            if self._idle:
                return self._idle.pop(), waited
            self._active += 1
            return None, waited

    def invoke(self, event: Any, *, request_id: str | None = None, trace_id: str | None = None) -> Invocation:
        """Run the handler on `event` synchronously (RequestResponse); raise `Throttled` past the
        function's concurrency (its reservation, else the account's unreserved pool)."""
        assert self.account is not None
        request_id = request_id or str(uuid.uuid4())
        if not self.account.acquire(self.spec.name):
            with self._lock:
                self.throttles += 1
            for listener in self.start_listeners:
                listener(self.spec, 0)
            raise Throttled(self.spec.name)
        try:
            with self._lock:
                self.invocations += 1
            for listener in self.start_listeners:
                listener(self.spec, self.account.running(self.spec.name))
            return self._run(event, request_id, trace_id)
        finally:
            self.account.release(self.spec.name)

    def _run(self, event: Any, request_id: str, trace_id: str | None) -> Invocation:
        environment, waited_ms = self._take_environment()
        init_duration: float | None = None
        if environment is None:
            environment, init_error = self._start(provisioned=False)
            if environment is None:
                return self._finish(Invocation(request_id, error=init_error), None, 0.0, 0, "error")
            init_duration = environment.init_duration_ms
        deadline = time.time() + self.spec.timeout_seconds
        started = time.perf_counter()
        try:
            if waited_ms is not None:
                queued = queued_line(self.spec.log_format, request_id, waited_ms, self.max_environments, self._now())
                self.logs.write(environment.log_stream, queued)
            self._write(environment.log_stream, start_lines(self.spec.log_format, request_id, self._now()))
            offset = self._clock_offset
            request = {
                "requestId": request_id,
                "event": event,
                "deadlineEpochMs": int((deadline + offset) * 1000),  # in the worker's time, which the clock moved
                "clockOffsetSeconds": offset,
                "traceId": sampled(trace_id) if trace_id else new_trace_header(),
            }
            try:
                environment.channel.sendall(json.dumps(request).encode() + b"\n")
                reply = environment.receive(deadline - time.time())
            except OSError:
                reply = None
        except BaseException:  # whatever went wrong, the environment is no longer trusted: free its slot
            environment.kill()
            self._discard()
            raise
        elapsed_ms = (time.perf_counter() - started) * 1000
        if reply is None:
            timed_out = time.time() >= deadline
            environment.kill()
            self._discard()
            if timed_out:
                message = f"Task timed out after {self.spec.timeout_seconds:.2f} seconds"
                self.logs.write(environment.log_stream, timeout_line(request_id, message, self._now()))
                error = {"errorType": "Sandbox.Timedout", "errorMessage": message}
                status = "timeout"
            else:
                error = {"errorType": "Runtime.ExitError", "errorMessage": "the runtime exited during the invoke"}
                status = "error"
            invocation = Invocation(request_id, error=error)
            return self._finish(invocation, environment, elapsed_ms, 0, status, init_duration)
        self._release(environment)
        if reply["type"] == "result":
            invocation = Invocation(request_id, payload=json.loads(reply["payload"]))
        else:
            invocation = Invocation(request_id, error=reply["payload"])
        status = "error" if invocation.failed else "success"
        return self._finish(
            invocation, environment, reply["durationMs"], reply["maxMemoryUsedMb"], status, init_duration
        )

    def _finish(
        self,
        invocation: Invocation,
        environment: Environment | None,
        duration_ms: float,
        max_memory_mb: int,
        status: str,
        init_duration: float | None = None,
    ) -> Invocation:
        invocation.report = Report(
            request_id=invocation.request_id,
            duration_ms=round(duration_ms, 2),
            billed_duration_ms=max(1, math.ceil(duration_ms)),
            memory_size_mb=self.spec.memory_mb,
            max_memory_used_mb=max_memory_mb,
            init_duration_ms=round(init_duration, 2) if init_duration is not None else None,
            status=status,
        )
        stream = environment.log_stream if environment else "init"
        self._write(stream, report_lines(self.spec.log_format, invocation.report, self._now()))
        for listener in self.listeners:
            listener(self.spec, invocation)
        return invocation

    def _write(self, stream: str, lines: list[str]) -> None:
        for line in lines:
            self.logs.write(stream, line)

    def shutdown(self) -> None:
        with self._environment_free:
            self._closed = True
            idle, self._idle = self._idle, []
            self._active -= len(idle)
            self._environment_free.notify_all()  # waiting invocations give up
        for environment in idle:
            environment.shutdown()
        self.logs.close()
