from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from local.cloudwatch.logs import LogStreams
from local.lambda_runtime.environment import lambda_base_environment
from local.lambda_runtime.function_runtime import FunctionRuntime, Throttled
from local.lambda_runtime.functions import FunctionSpec, load_functions
from tests.conftest import ROOT


def spec(handler: str, *, timeout: int = 3, concurrency: int = 2, log_format: str = "Text") -> FunctionSpec:
    return FunctionSpec(
        logical_id="TestFunction",
        name="appointments-test-fn",
        handler=handler,
        runtime="python3.13",
        memory_mb=256,
        timeout_seconds=timeout,
        environment={"TABLE_NAME": "appointments-test"},
        concurrency=concurrency,
        log_format=log_format,
        log_group="/aws/lambda/appointments-test-fn",
    )


@pytest.fixture
def make_runtime(tmp_path: Path) -> Iterator[object]:
    runtimes: list[FunctionRuntime] = []

    def make(function: FunctionSpec) -> FunctionRuntime:
        base = lambda_base_environment("http://127.0.0.1:4566", str(ROOT))
        runtime = FunctionRuntime(function, base, LogStreams(tmp_path / f"{function.name}.log"))
        runtimes.append(runtime)
        return runtime

    yield make
    for runtime in runtimes:
        runtime.shutdown()


def log_lines(runtime: FunctionRuntime) -> list[str]:
    time.sleep(0.2)  # the drain threads copy the worker's output asynchronously
    return runtime.logs.path.read_text().splitlines()


def test_invoke_runs_the_handler_with_lambda_context_and_environment(make_runtime) -> None:
    runtime = make_runtime(spec("tests.fixtures.handlers.echo"))
    invocation = runtime.invoke({"hello": "world"}, request_id="req-1", trace_id="Root=1-abc-def;Sampled=1")
    assert not invocation.failed
    result = invocation.payload
    assert result["event"] == {"hello": "world"}
    assert result["requestId"] == "req-1"
    assert result["functionName"] == "appointments-test-fn"
    assert result["memoryLimitInMb"] == "256"
    assert result["invokedFunctionArn"].endswith(":function:appointments-test-fn")
    assert 0 < result["remainingMs"] <= 3000
    assert result["traceId"] == "Root=1-abc-def;Sampled=1"
    environment = result["environment"]
    assert environment["AWS_ENDPOINT_URL"] == "http://127.0.0.1:4566"  # how the SDK reaches the emulator
    assert environment["TABLE_NAME"] == "appointments-test"  # the function's own variables
    assert environment["_HANDLER"] == "tests.fixtures.handlers.echo"
    assert environment["AWS_LAMBDA_LOG_STREAM_NAME"].split("/")[-1].startswith("[$LATEST]")
    assert result["leakedChannel"] is False
    assert result["pid"] != os.getpid()  # its own process


def test_first_invoke_is_a_cold_start_and_the_next_reuses_the_environment(make_runtime) -> None:
    runtime = make_runtime(spec("tests.fixtures.handlers.echo"))
    first = runtime.invoke({})
    second = runtime.invoke({})
    assert first.report is not None and second.report is not None
    assert first.report.init_duration_ms is not None and first.report.init_duration_ms > 0
    assert second.report.init_duration_ms is None
    assert first.payload["pid"] == second.payload["pid"]
    assert first.report.billed_duration_ms >= first.report.duration_ms
    assert first.report.max_memory_used_mb > 0
    lines = log_lines(runtime)
    assert f"START RequestId: {first.request_id} Version: $LATEST" in lines
    assert "echo handler called" in lines
    reports = [line for line in lines if line.startswith("REPORT")]
    assert len(reports) == 2
    assert "Init Duration:" in reports[0] and "Init Duration:" not in reports[1]
    assert "Max Memory Used:" in reports[0] and "Billed Duration:" in reports[0]


def test_json_log_format_writes_platform_records(make_runtime) -> None:
    runtime = make_runtime(spec("tests.fixtures.handlers.echo", log_format="JSON"))
    invocation = runtime.invoke({})
    records = [json.loads(line) for line in log_lines(runtime) if line.startswith("{")]
    report = next(r for r in records if r["type"] == "platform.report")
    assert report["record"]["requestId"] == invocation.request_id
    assert set(report["record"]["metrics"]) >= {"durationMs", "billedDurationMs", "memorySizeMB", "maxMemoryUsedMB"}


def test_timeout_kills_the_environment_and_reports_it(make_runtime) -> None:
    runtime = make_runtime(spec("tests.fixtures.handlers.sleep", timeout=1))
    started = time.monotonic()
    invocation = runtime.invoke({"seconds": 5})
    elapsed = time.monotonic() - started
    assert invocation.error is not None and invocation.error["errorType"] == "Sandbox.Timedout"
    assert elapsed < 4  # it did not wait for the handler
    assert invocation.report is not None and invocation.report.status == "timeout"
    assert runtime.environments == 0  # the timed-out environment is gone
    assert any("Task timed out after 1.00 seconds" in line for line in log_lines(runtime))
    # The next invoke gets a fresh environment (a cold start) and works.
    after = runtime.invoke({"seconds": 0})
    assert not after.failed and after.report is not None and after.report.init_duration_ms is not None


def test_invocations_over_the_concurrency_limit_are_throttled(make_runtime) -> None:
    runtime = make_runtime(spec("tests.fixtures.handlers.sleep", concurrency=1, timeout=5))
    runtime.warm()
    busy = threading.Thread(target=runtime.invoke, args=({"seconds": 1.5},))
    busy.start()
    time.sleep(0.3)
    with pytest.raises(Throttled):
        runtime.invoke({"seconds": 0})
    busy.join()
    assert runtime.throttles == 1
    assert not runtime.invoke({"seconds": 0}).failed  # capacity is back once the first finished


def test_handler_errors_come_back_as_lambda_errors(make_runtime) -> None:
    runtime = make_runtime(spec("tests.fixtures.handlers.fail"))
    invocation = runtime.invoke({})
    assert invocation.error is not None
    assert (invocation.error["errorType"], invocation.error["errorMessage"]) == (
        "ValueError",
        "the handler failed on purpose",
    )
    assert invocation.error["stackTrace"]
    assert runtime.environments == 1  # an error does not discard the environment
    assert any(line.startswith("[ERROR] ValueError") for line in log_lines(runtime))


def test_a_module_that_fails_to_import_is_an_init_error(make_runtime) -> None:
    runtime = make_runtime(spec("tests.fixtures.broken_handler.handler"))
    invocation = runtime.invoke({})
    assert invocation.error is not None and invocation.error["errorType"] == "Runtime.ImportModuleError"
    assert runtime.environments == 0
    with pytest.raises(RuntimeError, match="failed to initialize"):
        runtime.warm()


def test_functions_come_from_the_service_templates() -> None:
    parameters = {
        "Stage": "test",
        "TableName": "appointments-test",
        "TableArn": "arn:aws:dynamodb:us-east-1:123456789012:table/appointments-test",
        "TableStreamArn": "arn:aws:dynamodb:us-east-1:123456789012:table/appointments-test/stream/x",
        "AuditBucketName": "audit-bucket",
        "AuditBucketArn": "arn:aws:s3:::audit-bucket",
        "DependenciesLayerArn": "arn:aws:lambda:us-east-1:123456789012:layer:deps:1",
    }
    functions = load_functions(parameters)
    assert set(functions) == {"AvailabilityFunction", "BookingFunction", "AuditFunction"}
    availability = functions["AvailabilityFunction"]
    assert availability.name == "appointments-test-availability"
    assert availability.handler == "services.availability.handler.lambda_handler"
    assert availability.environment["TABLE_NAME"] == "appointments-test"
    assert availability.environment["POWERTOOLS_SERVICE_NAME"] == "availability"
    assert functions["AuditFunction"].environment["AUDIT_BUCKET_NAME"] == "audit-bucket"
    for function in functions.values():
        module = function.handler.rpartition(".")[0]
        assert (ROOT / (module.replace(".", "/") + ".py")).exists(), f"{function.handler} has no module"
