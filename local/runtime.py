"""A local Lambda service: each function runs in its own worker processes, as it does in Lambda.

A function is defined by its `AWS::Lambda::Function` resource in `cloudformation/`: handler, memory,
timeout, environment (resolved as CloudFormation would) and reserved concurrency. Invoking it
reuses an idle execution environment or starts a new one (a cold start, with its init duration),
up to the function's concurrency limit; an invocation beyond that is throttled, as Lambda throttles.
A request that outlives the function's timeout has its environment killed, as Lambda does. Every
invocation writes START, END and REPORT records into the function's log stream, in the function's
log format, beside whatever the handler prints.
"""

from __future__ import annotations

import json
import math
import os
import socket
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from local import processes
from local.cfn import Resolver, load_template, resources_of_type
from local.provision import ACCOUNT_ID, REGION, TEMPLATES, resolver_for

SERVICE_TEMPLATES = ("availability.yaml", "booking.yaml", "audit.yaml")
DEFAULT_CONCURRENCY = 10  # per function, when its template reserves none (a laptop, not an account)
INIT_TIMEOUT_SECONDS = 10.0  # Lambda's limit on the init phase of an on-demand environment


@dataclass(frozen=True)
class FunctionSpec:
    """What the local runtime needs from an `AWS::Lambda::Function` resource."""

    logical_id: str
    name: str
    handler: str
    runtime: str
    memory_mb: int
    timeout_seconds: int
    environment: dict[str, str]
    concurrency: int
    log_format: str = "Text"
    log_group: str = ""
    application_log_level: str | None = None

    @classmethod
    def from_resource(cls, logical_id: str, properties: dict[str, Any], default_concurrency: int) -> FunctionSpec:
        logging_config = properties.get("LoggingConfig", {})
        name = properties.get("FunctionName", logical_id)
        return cls(
            logical_id=logical_id,
            name=name,
            handler=properties["Handler"],
            runtime=properties.get("Runtime", "python3.13"),
            memory_mb=int(properties.get("MemorySize", 128)),
            timeout_seconds=int(properties.get("Timeout", 3)),
            environment={k: str(v) for k, v in properties.get("Environment", {}).get("Variables", {}).items()},
            concurrency=int(properties.get("ReservedConcurrentExecutions", default_concurrency)),
            log_format=logging_config.get("LogFormat", "Text"),
            log_group=logging_config.get("LogGroup", f"/aws/lambda/{name}"),
            application_log_level=logging_config.get("ApplicationLogLevel"),
        )


def load_functions(
    parameters: dict[str, str], default_concurrency: int = DEFAULT_CONCURRENCY, templates: Path = TEMPLATES
) -> dict[str, FunctionSpec]:
    """Every function of the services' stacks, keyed by logical id, with resolved properties."""
    functions: dict[str, FunctionSpec] = {}
    for template_name in SERVICE_TEMPLATES:
        template = load_template(templates / template_name)
        own_parameters = {k: v for k, v in parameters.items() if k in template.get("Parameters", {})}
        names = physical_names(template, resolver_for(template, own_parameters))
        resolver = resolver_for(
            template,
            own_parameters,
            resources=names,
            attributes={f"{logical_id}.Arn": local_arn(name) for logical_id, name in names.items()},
        )
        for logical_id, resource in resources_of_type(template, "AWS::Lambda::Function").items():
            properties = resolver.resolve(resource["Properties"])
            functions[logical_id] = FunctionSpec.from_resource(logical_id, properties, default_concurrency)
    return functions


_NAME_PROPERTY = {
    "AWS::Lambda::Function": "FunctionName",
    "AWS::Logs::LogGroup": "LogGroupName",
    "AWS::SQS::Queue": "QueueName",
    "AWS::IAM::Role": "RoleName",
    "AWS::DynamoDB::Table": "TableName",
    "AWS::SNS::Topic": "TopicName",
    "AWS::CloudWatch::Alarm": "AlarmName",
    "AWS::CloudWatch::CompositeAlarm": "AlarmName",
}


def physical_names(template: dict[str, Any], resolver: Resolver) -> dict[str, str]:
    """What `Ref` answers for each resource locally: its declared name, else a stack-scoped one."""
    names: dict[str, str] = {}
    for logical_id, resource in template["Resources"].items():
        properties = resource.get("Properties", {})
        declared = properties.get(_NAME_PROPERTY.get(resource["Type"], ""))
        names[logical_id] = str(resolver.resolve(declared)) if declared is not None else f"local-{logical_id}"
    return names


def local_arn(name: str) -> str:
    return f"arn:aws:local:{REGION}:{ACCOUNT_ID}:{name}"


class Throttled(Exception):
    """The function is at its concurrency limit (Lambda's TooManyRequestsException)."""


@dataclass
class Report:
    """The figures Lambda's REPORT line carries."""

    request_id: str
    duration_ms: float
    billed_duration_ms: int
    memory_size_mb: int
    max_memory_used_mb: int
    init_duration_ms: float | None
    status: str = "success"


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


class LogStreams:
    """A function's log group: lines from every environment, in one file and a recent-lines buffer."""

    def __init__(self, path: Path, keep: int = 5000) -> None:
        self.path = path
        self.recent: deque[tuple[float, str, str]] = deque(maxlen=keep)
        self.listeners: list[Callable[[str], None]] = []  # e.g. the metric store, reading EMF lines
        self._lock = threading.Lock()
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file: IO[str] = open(path, "a", encoding="utf-8", buffering=1)  # noqa: SIM115

    def write(self, stream: str, line: str) -> None:
        with self._lock:
            self.recent.append((time.time(), stream, line))
            self._file.write(line + "\n")
        for listener in self.listeners:
            listener(line)

    def lines(self) -> list[tuple[float, str, str]]:
        """The recent lines as (time, log stream, text), oldest first."""
        with self._lock:
            return list(self.recent)

    def close(self) -> None:
        with self._lock:
            self._file.close()


def function_environment(
    spec: FunctionSpec, base_env: dict[str, str], log_stream: str, provisioned: bool = False
) -> dict[str, str]:
    """What Lambda puts in one function's environment: the base, the resource's variables, its own."""
    return {
        **base_env,
        **spec.environment,
        "AWS_LAMBDA_FUNCTION_NAME": spec.name,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory_mb),
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_LOG_GROUP_NAME": spec.log_group,
        "AWS_LAMBDA_LOG_STREAM_NAME": log_stream,
        "AWS_LAMBDA_INITIALIZATION_TYPE": "provisioned-concurrency" if provisioned else "on-demand",
        "AWS_EXECUTION_ENV": f"AWS_Lambda_{spec.runtime}",
        "AWS_LAMBDA_LOG_FORMAT": spec.log_format.upper() if spec.log_format == "JSON" else "TEXT",
        "_HANDLER": spec.handler,
        **({"AWS_LAMBDA_LOG_LEVEL": spec.application_log_level} if spec.application_log_level else {}),
    }


class Environment:
    """One execution environment: a worker process and its private channel."""

    def __init__(self, spec: FunctionSpec, base_env: dict[str, str], logs: LogStreams, provisioned: bool) -> None:
        self.id = uuid.uuid4().hex
        today = datetime.now(UTC).strftime("%Y/%m/%d")
        self.log_stream = f"{today}/[$LATEST]{self.id}"
        parent_end, child_end = socket.socketpair()
        env = {
            **function_environment(spec, base_env, self.log_stream, provisioned),
            "_LOCAL_RUNTIME_FD": str(child_end.fileno()),
        }
        self.started = time.perf_counter()
        self.process = processes.spawn(
            processes.python_module_command("local.worker"),
            env=env,
            cwd=env["LAMBDA_TASK_ROOT"],
            pass_fds=[child_end.fileno()],
        )
        child_end.close()
        self.channel = parent_end
        self.reader = parent_end.makefile("rb")
        self.init_duration_ms: float | None = None
        self._drains = [
            threading.Thread(target=self._drain, args=(pipe, logs), daemon=True)
            for pipe in (self.process.stdout, self.process.stderr)
        ]
        for drain in self._drains:
            drain.start()

    def _drain(self, pipe: IO[bytes] | None, logs: LogStreams) -> None:
        assert pipe is not None
        for raw in pipe:
            logs.write(self.log_stream, raw.decode("utf-8", "replace").rstrip("\n"))

    def receive(self, timeout: float) -> dict[str, Any] | None:
        """The next message from the worker, or None if it died or the time ran out."""
        self.channel.settimeout(max(timeout, 0.001))
        try:
            line = self.reader.readline()
        except (TimeoutError, OSError):
            return None
        if not line:
            return None
        message: dict[str, Any] = json.loads(line)
        return message

    def wait_ready(self) -> dict[str, Any] | None:
        message = self.receive(INIT_TIMEOUT_SECONDS)
        self.init_duration_ms = (time.perf_counter() - self.started) * 1000
        return message

    def kill(self) -> None:
        self.process.kill()
        self.process.wait()
        self.channel.close()
        for drain in self._drains:
            drain.join(timeout=1)

    def shutdown(self) -> None:
        self.channel.close()  # the worker's loop ends at EOF
        processes.stop(self.process, timeout=2)
        for drain in self._drains:
            drain.join(timeout=1)


ReportListener = Callable[[FunctionSpec, Invocation], None]


@dataclass
class FunctionRuntime:
    """Invokes one function: environment pool, concurrency limit, timeouts, platform log records."""

    spec: FunctionSpec
    base_env: dict[str, str]
    logs: LogStreams
    listeners: list[ReportListener] = field(default_factory=list)
    # (spec, executions running now including this one) at each start; (spec, 0) for a throttle
    start_listeners: list[Callable[[FunctionSpec, int], None]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._idle: list[Environment] = []
        self._active = 0  # environments that exist or are being started
        self._lock = threading.Lock()
        self.throttles = 0
        self.invocations = 0

    @property
    def environments(self) -> int:
        return self._active

    def warm(self) -> float:
        """Start one environment ahead of traffic (like provisioned concurrency); return its init ms."""
        with self._lock:
            if self._active >= self.spec.concurrency:
                raise Throttled(self.spec.name)
            self._active += 1
        environment, error = self._start(provisioned=True)
        if environment is None:
            raise RuntimeError(f"{self.spec.name} failed to initialize: {error}")
        with self._lock:
            self._idle.append(environment)
        assert environment.init_duration_ms is not None
        return environment.init_duration_ms

    def provision(self, count: int, parallel: int = 2) -> None:
        """Start environments until `count` exist, as provisioned concurrency would before traffic.

        Many cold starts at once on a laptop's few cores can outlast Lambda's 10 s init limit; a load
        test warms up first, as one would before a launch.
        """
        missing = max(0, min(count, self.spec.concurrency) - self.environments)
        with ThreadPoolExecutor(parallel) as pool:
            list(pool.map(lambda _: self.warm(), range(missing)))

    def _start(self, provisioned: bool) -> tuple[Environment | None, dict[str, Any] | None]:
        environment = Environment(self.spec, self.base_env, self.logs, provisioned)
        message = environment.wait_ready()
        if message is None or message["type"] != "ready":
            environment.kill()
            with self._lock:
                self._active -= 1
            error = message["payload"] if message else {"errorType": "Runtime.ExitError", "errorMessage": "init failed"}
            return None, error
        return environment, None

    def invoke(self, event: Any, *, request_id: str | None = None, trace_id: str | None = None) -> Invocation:
        """Run the handler on `event` synchronously (RequestResponse); raise `Throttled` at the limit."""
        request_id = request_id or str(uuid.uuid4())
        with self._lock:
            environment = self._idle.pop() if self._idle else None
            if environment is None:
                if self._active >= self.spec.concurrency:
                    self.throttles += 1
                    for listener in self.start_listeners:
                        listener(self.spec, 0)
                    raise Throttled(self.spec.name)
                self._active += 1
            self.invocations += 1
            running = self._active - len(self._idle)
        for listener in self.start_listeners:
            listener(self.spec, running)
        init_duration: float | None = None
        if environment is None:
            environment, init_error = self._start(provisioned=False)
            if environment is None:
                return self._finish(Invocation(request_id, error=init_error), None, 0.0, 0, "error")
            init_duration = environment.init_duration_ms
        self._platform(environment, "start", request_id)
        deadline = time.time() + self.spec.timeout_seconds
        request = {
            "requestId": request_id,
            "event": event,
            "deadlineEpochMs": int(deadline * 1000),
            "traceId": trace_id or new_trace_header(),
        }
        started = time.perf_counter()
        try:
            environment.channel.sendall(json.dumps(request).encode() + b"\n")
            reply = environment.receive(deadline - time.time())
        except OSError:
            reply = None
        elapsed_ms = (time.perf_counter() - started) * 1000
        if reply is None:
            timed_out = time.time() >= deadline
            environment.kill()
            with self._lock:
                self._active -= 1
            if timed_out:
                message = f"Task timed out after {self.spec.timeout_seconds:.2f} seconds"
                self.logs.write(environment.log_stream, f"{_iso_now()} {request_id} {message}")
                error = {"errorType": "Sandbox.Timedout", "errorMessage": message}
                status = "timeout"
            else:
                error = {"errorType": "Runtime.ExitError", "errorMessage": "the runtime exited during the invoke"}
                status = "error"
            invocation = Invocation(request_id, error=error)
            return self._finish(invocation, environment, elapsed_ms, 0, status, init_duration)
        with self._lock:
            self._idle.append(environment)
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
        self._platform_report(stream, invocation.report)
        for listener in self.listeners:
            listener(self.spec, invocation)
        return invocation

    def _platform(self, environment: Environment, kind: str, request_id: str) -> None:
        if self.spec.log_format == "JSON":
            record: dict[str, Any] = {
                "time": _iso_now(),
                "type": f"platform.{kind}",
                "record": {"requestId": request_id},
            }
            if kind == "start":
                record["record"]["version"] = "$LATEST"
            self.logs.write(environment.log_stream, json.dumps(record))
        else:
            suffix = " Version: $LATEST" if kind == "start" else ""
            self.logs.write(environment.log_stream, f"{kind.upper()} RequestId: {request_id}{suffix}")

    def _platform_report(self, stream: str, report: Report) -> None:
        if self.spec.log_format == "JSON":
            metrics: dict[str, Any] = {
                "durationMs": report.duration_ms,
                "billedDurationMs": report.billed_duration_ms,
                "memorySizeMB": report.memory_size_mb,
                "maxMemoryUsedMB": report.max_memory_used_mb,
            }
            if report.init_duration_ms is not None:
                metrics["initDurationMs"] = report.init_duration_ms
            runtime_done = {"requestId": report.request_id, "status": report.status}
            self.logs.write(
                stream, json.dumps({"time": _iso_now(), "type": "platform.runtimeDone", "record": runtime_done})
            )
            record = {"requestId": report.request_id, "metrics": metrics, "status": report.status}
            self.logs.write(stream, json.dumps({"time": _iso_now(), "type": "platform.report", "record": record}))
            return
        self.logs.write(stream, f"END RequestId: {report.request_id}")
        line = (
            f"REPORT RequestId: {report.request_id}\tDuration: {report.duration_ms:.2f} ms\t"
            f"Billed Duration: {report.billed_duration_ms} ms\tMemory Size: {report.memory_size_mb} MB\t"
            f"Max Memory Used: {report.max_memory_used_mb} MB"
        )
        if report.init_duration_ms is not None:
            line += f"\tInit Duration: {report.init_duration_ms:.2f} ms"
        if report.status != "success":
            line += f"\tStatus: {report.status}"
        self.logs.write(stream, line)

    def shutdown(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for environment in idle:
            environment.shutdown()
        self.logs.close()


def _iso_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def new_trace_header() -> str:
    """An X-Ray trace header for a new, sampled trace (as API Gateway with tracing starts one)."""
    root = f"1-{int(time.time()):08x}-{uuid.uuid4().hex[:24]}"
    return f"Root={root};Parent={uuid.uuid4().hex[:16]};Sampled=1"


def lambda_base_environment(endpoint_url: str, task_root: str, xray_daemon: str = "127.0.0.1:2000") -> dict[str, str]:
    """The variables Lambda sets in every environment, plus the one local difference: the endpoint.

    botocore honours `AWS_ENDPOINT_URL`, so handler code reaches the emulator without knowing it.
    """
    return {
        "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
        "LANG": "en_US.UTF-8",
        "TZ": ":UTC",
        "LAMBDA_TASK_ROOT": task_root,
        "LAMBDA_RUNTIME_DIR": task_root,
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ACCESS_KEY_ID": "ASIALOCALSTACKFAKE",
        "AWS_SECRET_ACCESS_KEY": "local-secret-access-key",
        "AWS_SESSION_TOKEN": "local-session-token",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_XRAY_DAEMON_ADDRESS": xray_daemon,  # Lambda's default; the local stack's daemon is elsewhere
        "AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR",
        "AWS_ENDPOINT_URL": endpoint_url,
        "_LOCAL_ACCOUNT_ID": ACCOUNT_ID,
        # the least-privilege test's record of AWS calls (local/aws_calls.py); the worker removes it
        **({"_LOCAL_AWS_CALL_LOG": log} if (log := os.environ.get("APPOINTMENTS_AWS_CALL_LOG")) else {}),
    }


@dataclass
class LambdaService:
    """All of the stack's functions, by logical id."""

    functions: dict[str, FunctionRuntime]

    @classmethod
    def create(
        cls,
        specs: dict[str, FunctionSpec],
        endpoint_url: str,
        log_dir: Path,
        task_root: str | None = None,
        xray_daemon: str = "127.0.0.1:2000",
    ) -> LambdaService:
        base_env = lambda_base_environment(endpoint_url, task_root or processes.project_root(), xray_daemon)
        runtimes = {
            logical_id: FunctionRuntime(spec, base_env, LogStreams(log_dir / f"{spec.name}.log"))
            for logical_id, spec in specs.items()
        }
        return cls(runtimes)

    def warm_all(self) -> dict[str, float | Exception]:
        """Start one environment per function, in parallel; answer init ms (or the failure) per function."""
        results: dict[str, float | Exception] = {}

        def warm(logical_id: str, runtime: FunctionRuntime) -> None:
            try:
                results[logical_id] = runtime.warm()
            except Exception as error:  # reported in the banner, never hidden
                results[logical_id] = error

        threads = [threading.Thread(target=warm, args=item) for item in self.functions.items()]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return results

    def shutdown(self) -> None:
        for runtime in self.functions.values():
            runtime.shutdown()
