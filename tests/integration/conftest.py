"""Emulated AWS for integration tests: the same emulator process `make run` uses, on a free port."""

from __future__ import annotations

import functools
import json
import os
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from deploy.templates import TEMPLATES, load_template, resources_of_type
from local.apigateway.api import ApiDefinition
from local.apigateway.authorizer import claims_for_event, verify
from local.apigateway.http_messages import HttpRequest
from local.apigateway.proxy_integration import build_event, proxy_response
from local.cloudformation.provision import DataStack, create_table, deploy_data_stack
from local.cloudformation.resolver import resolver_for
from local.cognito import user_pool
from local.emulator import refusals, transactions
from local.emulator.server import EmulatorProcess
from local.lambda_runtime.aws_calls import calling
from local.stack import LocalStack, StackConfig, aws_client

LAMBDA_TRACE = "1-5f84c7a1-0123456789abcdef01234567"  # the X-Ray trace an in-process invocation continues


# With APPOINTMENTS_STALE_READS_MS set, every eventually consistent read of these tests' emulators
# answers data that old (the emulator's staleReadsMs fault): what reads its own writes that way fails,
# as it would now and then on AWS. Issue 16 runs the services' tests this way once in make test.
STALE_READS_MS = int(os.environ.get("APPOINTMENTS_STALE_READS_MS") or 0)


def stale_reads(endpoint: str) -> None:
    """Turn this run's stale reads on in an emulator (its `/_faults`), when the run asks for them."""
    if STALE_READS_MS:
        plan = json.dumps({"staleReadsMs": STALE_READS_MS}).encode()
        request = urllib.request.Request(f"{endpoint}/_faults", method="PUT", data=plan)
        with urllib.request.urlopen(request, timeout=10) as answer:
            answer.read()


@pytest.fixture(scope="session")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatorProcess]:
    process = EmulatorProcess.start(log_path=tmp_path_factory.mktemp("emulator") / "emulator.log")
    stale_reads(process.endpoint)
    yield process
    process.stop()


@pytest.fixture(scope="session")
def dynamodb(emulator: EmulatorProcess) -> Any:
    return aws_client("dynamodb", emulator.endpoint)


@pytest.fixture(scope="session")
def s3(emulator: EmulatorProcess) -> Any:
    return aws_client("s3", emulator.endpoint)


@pytest.fixture(scope="session")
def data_stack(dynamodb: Any, s3: Any) -> DataStack:
    """The data stack, created from cloudformation/data.yaml, once per test session."""
    return deploy_data_stack(dynamodb, s3, stage="it")


@pytest.fixture
def moto_table(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Any, str]]:
    """In-process moto (with the transaction patch) and the data stack's table: a client and its name."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "x",
        "AWS_SECRET_ACCESS_KEY": "x",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled",  # see local-emulation.md, pitfall 3
    }.items():
        monkeypatch.setenv(name, value)
    transactions.install()
    refusals.install()
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        template = load_template(TEMPLATES / "data.yaml")
        tables = resources_of_type(template, "AWS::DynamoDB::Table")
        made = {
            logical_id: create_table(client, resolver_for(template, {"Stage": "inproc"}).resolve(table["Properties"]))
            for logical_id, table in tables.items()
        }  # the shared table and the audit table, for an audit handler run in-process
        yield client, made["Table"]["TableName"]


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    """The whole local stack, in-process, on a free port: gateway → function workers → emulator."""
    # Concurrency 50: the booking race tests send 50 requests at once, as 50 clients would.
    config = StackConfig(port=0, state_dir=tmp_path_factory.mktemp("stack"), echo=None, environments=50)
    running = LocalStack(config)
    running.start()
    assert running.emulator is not None
    stale_reads(running.emulator.endpoint)
    yield running
    running.stop()


def call(
    stack: LocalStack,
    method: str,
    path: str,
    *,
    token: str | None = None,
    body: Any = None,
    raw: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], Any]:
    """One HTTP request to the stack; answers status, headers and the JSON body (None when empty)."""
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    request = urllib.request.Request(f"{stack.url}{path}", method=method, data=data)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    for name, value in (headers or {}).items():
        request.add_header(name, value)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, dict(response.headers), json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), json.loads(error.read() or b"null")


@functools.cache
def api() -> ApiDefinition:
    """The API as the local gateway routes it (cloudformation/api/openapi.yaml), read once per test run."""
    return ApiDefinition.load()


def call_function(
    stack: LocalStack,
    method: str,
    path: str,
    *,
    token: str,
    body: Any = None,
    raw: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], Any]:
    """The same request straight to its function, as the gateway would pass it on were it not to check
    the request first: what the function itself answers (its own validation, behind the gateway's)."""
    assert stack.user_pools is not None and stack.lambdas is not None
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else b"")
    sent = [("Content-Type", "application/json"), *(headers or {}).items()]
    request = HttpRequest(method, path, sent, data)
    route, parameters = api().find(method, path.split("?")[0]) or pytest.fail(f"no route {path}")
    claims = claims_for_event(
        verify(stack.user_pools, f"Bearer {token}", now=stack.clock.now())
    )  # as the gateway judges it
    event = build_event(request, route, parameters, request_id="direct", stage="local", claims=claims, trace="")
    invocation = stack.lambdas.functions[route.function or ""].invoke(event)
    answer = proxy_response(invocation.payload)
    return answer.status, answer.headers, json.loads(answer.body or b"null")


def eventually(check: Any, seconds: float = 20.0) -> Any:
    """`check()` once it answers truthy, or its last answer after `seconds`: for what DynamoDB documents
    as eventually visible (an index, the stream's consumers), which a client, too, reads again."""
    deadline = time.monotonic() + seconds
    while True:
        result = check()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(0.2)


def token(stack: LocalStack, sub: str, groups: list[str], pool: str | None = None) -> str:
    """A token of the pool that holds `groups` (admins and ops: the staff pool), as `make token` mints;
    `pool="customers"` or `"staff"` names the pool instead, for a group of the same name made in the
    wrong one."""
    assert stack.user_pools is not None
    now = stack.clock.now()  # valid at the stack's time, however far its clock was moved (as `make token`)
    if pool is None:
        return stack.user_pools.mint(sub, groups, now=now)
    return user_pool.mint(getattr(stack.user_pools, pool), sub, groups, now=now)


@pytest.fixture
def inproc(moto_table: tuple[Any, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The service handlers in this process, against in-process moto, configured as their
    CloudFormation resources would be; yields the DynamoDB client."""
    from services.availability import handler as availability
    from services.booking import handler as booking
    from services.booking import waitlist_handler
    from services.common.aws import dynamodb_client
    from services.common.settings import load_settings

    for name, value in {
        "STAGE": "inproc",
        "TABLE_NAME": moto_table[1],
        "AUDIT_TABLE_NAME": f"{moto_table[1]}-audit",
        "POWERTOOLS_SERVICE_NAME": "inproc",
        "_X_AMZN_TRACE_ID": f"Root={LAMBDA_TRACE};Parent=0123456789abcdef;Sampled=1",  # what Lambda sets
        "POWERTOOLS_METRICS_NAMESPACE": "Appointments",
        "POWERTOOLS_LOG_LEVEL": "WARNING",
        "STAFF_ISSUER": user_pool.STAFF_POOL.issuer,
        "ALLOWED_ORIGINS": "",
    }.items():
        monkeypatch.setenv(name, value)
    cached = (
        load_settings,
        dynamodb_client,
        availability.availability,
        booking.store,
        booking.bookings,
        booking.external_calendar,
        booking.calendly,
        booking.contacts,
        booking.holds,
        booking.series,
        booking.waitlist,
        booking.eraser,
        waitlist_handler.store,
        waitlist_handler.waitlist,
        waitlist_handler.lapses,
    )
    for factory in cached:
        factory.cache_clear()
    yield moto_table[0]
    for factory in cached:
        factory.cache_clear()


def invoke_handler(
    module: Any,
    method: str,
    path: str,
    body: Any = None,
    sub: str = "owner",
    groups: str = "providers",
    headers: dict[str, str] | None = None,
) -> tuple[int, Any]:
    """A handler, in-process, with the event the local gateway would build for this request."""
    from tests.conftest import FakeLambdaContext

    route, parameters = api().find(method, path.split("?")[0]) or pytest.fail(f"no route {method} {path}")
    raw = json.dumps(body).encode() if body is not None else b""
    request = HttpRequest(method, path, [("Content-Type", "application/json"), *(headers or {}).items()], raw)
    staff = set(groups.split(",")) & set(user_pool.STAFF_POOL.groups)  # the pool `make token` would mint from
    issuer = (user_pool.STAFF_POOL if staff else user_pool.CUSTOMER_POOL).issuer
    claims = {"sub": sub, "cognito:groups": groups, "iss": issuer}
    event = build_event(request, route, parameters, request_id="r", stage="inproc", claims=claims, trace="Root=1-a-b")
    response = run_handler(module, event, FakeLambdaContext())
    return response["statusCode"], json.loads(response["body"] or "null")


def run_handler(module: Any, event: dict[str, Any], context: Any) -> Any:
    """A service's Lambda handler run in this process, its AWS calls recorded as its function's for
    tests/policy/ (as a worker's are): every in-process handler call goes through here."""
    # services.<service>.handler; the waitlist function, the publisher and the webhook dispatcher ship
    # the booking code with entry points of their own
    own = {
        "services.booking.waitlist_handler": "waitlist",
        "services.booking.publisher_handler": "publisher",
        "services.booking.webhook_handler": "webhooks",
        "services.booking.notification_handler": "notifications",
        "services.audit.backup_handler": "backup",  # the audit code's other entry point
    }
    service = own.get(module.__name__) or module.__name__.split(".")[1]
    stage = os.environ.get("STAGE", "inproc")
    with calling(f"appointments-{stage}-{service}", stage):
        return module.lambda_handler(event, context)
