from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from local.apigateway.api import ApiDefinition
from local.apigateway.gateway import Gateway
from local.apigateway.http_messages import HttpRequest
from local.cloudwatch.logs import LogStreams
from local.cognito.user_pool import UserPools
from local.lambda_runtime.concurrency import AccountConcurrency, ConcurrencyError
from local.lambda_runtime.environment import lambda_base_environment
from local.lambda_runtime.function_runtime import FunctionRuntime, Invocation, Throttled
from local.lambda_runtime.functions import FunctionSpec, load_functions
from local.lambda_runtime.service import LambdaService
from local.lambda_runtime.zygote import Zygote
from tests.conftest import ROOT


def spec(handler: str, *, timeout: int = 3, reserved: int | None = None, log_format: str = "Text") -> FunctionSpec:
    return FunctionSpec(
        logical_id="TestFunction",
        name="appointments-test-fn",
        handler=handler,
        runtime="python3.13",
        memory_mb=256,
        timeout_seconds=timeout,
        environment={"TABLE_NAME": "appointments-test"},
        reserved_concurrency=reserved,
        log_format=log_format,
        log_group="/aws/lambda/appointments-test-fn",
    )


BASE = lambda_base_environment("http://127.0.0.1:4566", str(ROOT))


@pytest.fixture(scope="module")
def zygote() -> Iterator[Zygote]:
    started = Zygote(BASE, str(ROOT))
    yield started
    started.stop()


@pytest.fixture(params=["spawned", "forked"])
def make_runtime(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[object]:
    """Each runtime behaviour holds for workers spawned afresh and for workers the stack's zygote forks."""
    runtimes: list[FunctionRuntime] = []
    forks = request.getfixturevalue("zygote") if request.param == "forked" else None

    def make(function: FunctionSpec, **options: Any) -> FunctionRuntime:
        log = LogStreams(tmp_path / f"{function.name}.log")
        options.setdefault("zygote", forks)
        runtime = FunctionRuntime(function, BASE, log, **options)
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


def burst(runtime: FunctionRuntime, count: int, seconds: float) -> list[Invocation | Throttled]:
    """`count` invocations at once, each sleeping `seconds`; answers each outcome."""
    barrier = threading.Barrier(count)

    def one(_: int) -> Invocation | Throttled:
        barrier.wait()
        try:
            return runtime.invoke({"seconds": seconds})
        except Throttled as refused:
            return refused

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(one, range(count)))


RESERVED_TEMPLATE = """
Resources:
  ReservedFunction:
    Type: AWS::Lambda::Function
    Properties:
      FunctionName: appointments-test-reserved
      Handler: tests.fixtures.handlers.sleep
      Runtime: python3.13
      Timeout: 10
      ReservedConcurrentExecutions: 5
"""


def test_a_function_with_reserved_concurrency_is_throttled_past_it_as_on_aws(make_runtime, tmp_path: Path) -> None:
    # Given a template that reserves 5 concurrent executions for its function
    (tmp_path / "reserved.yaml").write_text(RESERVED_TEMPLATE)
    (reserved,) = load_functions({}, templates=tmp_path, service_templates=("reserved.yaml",)).values()
    assert reserved.reserved_concurrency == 5
    runtime = make_runtime(reserved, max_environments=8)  # enough workers: only the reservation limits
    # When 8 invocations arrive at once, each running for a second
    outcomes = burst(runtime, 8, 1.0)
    # Then 5 run and 3 are throttled, as Lambda throttles past a reservation
    assert sum(isinstance(o, Throttled) for o in outcomes) == 3
    assert sum(isinstance(o, Invocation) and not o.failed for o in outcomes) == 5
    assert runtime.throttles == 3 and runtime.queued == 0
    assert not runtime.invoke({"seconds": 0}).failed  # capacity is back once they finished


def test_past_the_local_environments_invocations_wait_instead_of_being_throttled(make_runtime) -> None:
    # Given a function without a reservation, on a machine that affords it two worker processes
    runtime = make_runtime(spec("tests.fixtures.handlers.sleep", timeout=10), max_environments=2)
    # When six invocations arrive at once
    outcomes = burst(runtime, 6, 0.5)
    # Then all six run, on two environments, four of them after waiting, and the log says so
    assert all(isinstance(o, Invocation) and not o.failed for o in outcomes)
    assert runtime.throttles == 0 and runtime.environments == 2 and runtime.queued == 4
    assert len({o.payload["pid"] for o in outcomes if isinstance(o, Invocation)}) == 2
    queued = [line for line in log_lines(runtime) if line.startswith("LOCAL RequestId: ")]
    assert len(queued) == 4
    assert all("Queued: " in line and "all 2 local environments were busy" in line for line in queued)


def test_functions_without_a_reservation_share_the_accounts_unreserved_pool(make_runtime) -> None:
    account = AccountConcurrency(limit=3)
    first = make_runtime(spec("tests.fixtures.handlers.sleep", timeout=10), account=account, max_environments=5)
    other = FunctionSpec(**{**vars(spec("tests.fixtures.handlers.sleep", timeout=10)), "name": "appointments-other"})
    second = make_runtime(other, account=account, max_environments=5)
    busy = [threading.Thread(target=runtime.invoke, args=({"seconds": 1.0},)) for runtime in (first, first, second)]
    for thread in busy:
        thread.start()
    time.sleep(0.5)
    with pytest.raises(Throttled):
        second.invoke({"seconds": 0})
    for thread in busy:
        thread.join()
    assert (first.throttles, second.throttles) == (0, 1)
    assert not second.invoke({"seconds": 0}).failed


def test_the_account_keeps_reservations_apart_and_refuses_what_lambda_refuses() -> None:
    account = AccountConcurrency(limit=1000, reservations={"reserved": 2})
    assert (account.limit_of("reserved"), account.limit_of("other"), account.unreserved) == (2, 998, 998)
    assert account.acquire("reserved") and account.acquire("reserved") and not account.acquire("reserved")
    assert account.running("reserved") == 2
    account.release("reserved")
    assert account.acquire("reserved")
    assert AccountConcurrency(limit=1000, reservations={"off": 0}).acquire("off") is False  # 0 disables it
    with pytest.raises(ConcurrencyError, match="less than 100 unreserved"):
        AccountConcurrency(limit=1000, reservations={"greedy": 901})


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
        "AuditTableName": "appointments-test-audit",
        "AuditTableArn": "arn:aws:dynamodb:us-east-1:123456789012:table/appointments-test-audit",
        "AuditBucketName": "audit-bucket",
        "AuditBucketArn": "arn:aws:s3:::audit-bucket",
        "BackupBucketName": "backup-bucket",
        "BackupBucketArn": "arn:aws:s3:::backup-bucket",
        "DependenciesLayerArn": "arn:aws:lambda:us-east-1:123456789012:layer:deps:1",
        "StaffIssuer": "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_staff",
    }
    functions = load_functions(parameters)
    assert set(functions) == {
        "AvailabilityFunction",
        "BookingFunction",
        "WaitlistFunction",
        "PublisherFunction",
        "WebhookFunction",
        "NotificationFunction",
        "AuditFunction",
        "BackupFunction",
    }
    assert functions["WaitlistFunction"].handler == "services.booking.waitlist_handler.lambda_handler"
    assert functions["PublisherFunction"].handler == "services.booking.publisher_handler.lambda_handler"
    assert functions["WebhookFunction"].handler == "services.booking.webhook_handler.lambda_handler"
    assert functions["NotificationFunction"].handler == "services.booking.notification_handler.lambda_handler"
    assert functions["BackupFunction"].handler == "services.audit.backup_handler.lambda_handler"
    availability = functions["AvailabilityFunction"]
    assert availability.name == "appointments-test-availability"
    assert availability.handler == "services.availability.handler.lambda_handler"
    assert availability.environment["TABLE_NAME"] == "appointments-test"
    assert availability.environment["POWERTOOLS_SERVICE_NAME"] == "availability"
    assert functions["AuditFunction"].environment["AUDIT_BUCKET_NAME"] == "audit-bucket"
    for function in functions.values():
        # every function honours admins and ops only from the staff pool (decision 0018)
        assert function.environment["STAFF_ISSUER"] == parameters["StaffIssuer"]
        module = function.handler.rpartition(".")[0]
        assert (ROOT / (module.replace(".", "/") + ".py")).exists(), f"{function.handler} has no module"


def test_an_environment_that_fails_to_spawn_frees_its_slot(make_runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    from local.lambda_runtime import function_runtime

    runtime = make_runtime(spec("tests.fixtures.handlers.echo"), max_environments=1)
    real = function_runtime.Environment

    def exhausted(*args: Any, **kwargs: Any) -> Any:
        monkeypatch.setattr(function_runtime, "Environment", real)  # only the first spawn fails
        raise OSError(24, "Too many open files")

    monkeypatch.setattr(function_runtime, "Environment", exhausted)
    with pytest.raises(OSError):
        runtime.invoke({})
    assert runtime.environments == 0
    assert not runtime.invoke({}).failed  # the slot was freed: no hang, no leak


def test_invocations_waiting_when_the_function_shuts_down_give_up(make_runtime) -> None:
    runtime = make_runtime(spec("tests.fixtures.handlers.sleep", timeout=10), max_environments=1)
    outcomes: list[object] = []

    def call(seconds: float) -> None:
        try:
            outcomes.append(runtime.invoke({"seconds": seconds}))
        except RuntimeError as error:
            outcomes.append(error)

    busy = threading.Thread(target=call, args=(1.0,))
    busy.start()
    time.sleep(0.5)
    waiting = threading.Thread(target=call, args=(0,))
    waiting.start()
    time.sleep(0.3)
    runtime.shutdown()
    waiting.join(timeout=5)
    busy.join(timeout=5)
    assert not waiting.is_alive() and not busy.is_alive()
    assert any(isinstance(o, RuntimeError) and "shutting down" in str(o) for o in outcomes)
    assert runtime.environments == 0


def test_a_throttle_reaches_the_client_as_the_documents_503_with_retry_after(make_runtime) -> None:
    """Reserved concurrency 1, three clients at once, through the gateway: one answer, two throttles,
    each the INTEGRATION_FAILURE response the API document configures."""
    runtime = make_runtime(spec("tests.fixtures.handlers.slow_ok", timeout=10, reserved=1))
    runtime.warm()
    gateway = Gateway(ApiDefinition.load(), LambdaService({"AvailabilityFunction": runtime}), UserPools.generate())
    barrier = threading.Barrier(3)

    def health(_: int) -> Any:
        barrier.wait()
        return gateway.handle(HttpRequest("GET", "/health", [], b""))

    with ThreadPoolExecutor(3) as pool:
        answers = list(pool.map(health, range(3)))
    assert sorted(a.status for a in answers) == [200, 503, 503]
    for refused in (a for a in answers if a.status == 503):
        assert (refused.headers["Content-Type"], refused.headers["Retry-After"]) == ("application/problem+json", "1")
        assert json.loads(refused.body)["code"] == "SERVICE_UNAVAILABLE"
    assert runtime.throttles == 2


def test_forked_workers_share_neither_variables_nor_random_draws(zygote: Zygote, tmp_path: Path) -> None:
    """Each fork takes its own function's variables, and reseeds `random` (X-Ray trace ids, retry
    jitter): forks of one process would otherwise draw the same numbers."""
    echo = vars(spec("tests.fixtures.handlers.echo"))
    own = {"appointments-one": {"TABLE_NAME": "appointments-one"}, "appointments-two": {"_HANDLER_ONLY_TWO": "2"}}
    runtimes = [
        FunctionRuntime(
            FunctionSpec(**{**echo, "name": name, "environment": own[name]}),
            BASE,
            LogStreams(tmp_path / f"{name}.log"),
            zygote=zygote,
            max_environments=2,
        )
        for name in ("appointments-one", "appointments-two")
    ]
    try:
        answers = [runtime.invoke({}).payload for runtime in runtimes]
        answers += two_at_once(runtimes[0])
    finally:
        for runtime in runtimes:
            runtime.shutdown()
    assert [answer["environment"]["TABLE_NAME"] for answer in answers[:2]] == ["appointments-one", None]
    assert [answer["environment"]["AWS_LAMBDA_FUNCTION_NAME"] for answer in answers[:2]] == [
        "appointments-one",
        "appointments-two",
    ]
    pids = {answers[0]["pid"], answers[1]["pid"], zygote.process.pid, os.getpid()}
    assert len(pids) == 4
    draws = [answer["random"] for answer in answers]
    assert len(set(draws)) == len(draws), draws
    assert "echo handler called" in (tmp_path / "appointments-one.log").read_text()


def two_at_once(runtime: FunctionRuntime) -> list[dict[str, Any]]:
    """Two invocations at once, so that two environments answer; their payloads."""
    barrier = threading.Barrier(2)

    def one(_: int) -> dict[str, Any]:
        barrier.wait()
        payload: dict[str, Any] = runtime.invoke({"seconds": 0.3}).payload
        return payload

    with ThreadPoolExecutor(2) as pool:
        return list(pool.map(one, range(2)))


def test_a_stopped_zygote_and_its_workers_leave_no_process(tmp_path: Path) -> None:
    forks = Zygote(BASE, str(ROOT))
    runtime = FunctionRuntime(spec("tests.fixtures.handlers.echo"), BASE, LogStreams(tmp_path / "fn.log"), zygote=forks)
    worker = runtime.invoke({}).payload["pid"]
    runtime.shutdown()
    forks.stop()
    assert forks.process.poll() is not None
    with pytest.raises(ProcessLookupError):
        os.kill(worker, 0)


def test_powertools_reads_each_functions_own_variables_at_import(make_runtime) -> None:
    """A provisioned environment's first invocation is no cold start, an on-demand one's is; the SDK's
    user agent names the runtime (read once by Powertools at import, so again in each fork)."""
    provisioned = make_runtime(spec("tests.fixtures.handlers.powertools_state"))
    provisioned.warm()
    on_demand = make_runtime(FunctionSpec(**{**vars(spec("tests.fixtures.handlers.powertools_state")), "name": "x"}))
    assert provisioned.invoke({}).payload == {"coldStart": False, "executionEnv": "AWS_Lambda_python3.13"}
    assert on_demand.invoke({}).payload == {"coldStart": True, "executionEnv": "AWS_Lambda_python3.13"}


def test_environments_start_spawned_once_the_zygote_has_gone(tmp_path: Path) -> None:
    forks = Zygote(BASE, str(ROOT))
    runtime = FunctionRuntime(
        spec("tests.fixtures.handlers.echo"), BASE, LogStreams(tmp_path / "fn.log"), zygote=forks, max_environments=2
    )
    try:
        forked = runtime.invoke({}).payload
        forks.process.kill()
        forks.process.wait()
        answers = two_at_once(runtime)  # the idle environment, and a new one
    finally:
        runtime.shutdown()
        forks.stop()
    assert forked["parent"] == forks.process.pid
    new = [answer for answer in answers if answer["pid"] != forked["pid"]]
    assert len(new) == 1 and new[0]["parent"] == os.getpid()  # spawned by the runtime itself
