"""Shared fixtures: API Gateway events from tests/events/, a Lambda context, and helpers."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

# Powertools' Logger and Metrics read these when the handler modules are imported, which in tests is at
# collection, before any fixture runs; Lambda sets them before the import too (the functions'
# CloudFormation resources).
os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "Appointments")
os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "tests")


@pytest.fixture(scope="session", autouse=True)
def aws_call_log(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Where every local stack's functions record their AWS calls during this run (local/lambda_runtime/aws_calls.py),
    for tests/policy/, which runs last. Set before any stack starts; workers inherit it."""
    given = os.environ.get("APPOINTMENTS_AWS_CALL_LOG")  # e.g. to run tests/policy/ on an earlier run's record
    path = Path(given) if given else tmp_path_factory.getbasetemp() / "aws-calls.jsonl"
    os.environ["APPOINTMENTS_AWS_CALL_LOG"] = str(path)
    yield path
    if given is None:
        os.environ.pop("APPOINTMENTS_AWS_CALL_LOG", None)


EVENTS = Path(__file__).parent / "events"
ROOT = Path(__file__).resolve().parent.parent


def load_event(name: str) -> dict[str, Any]:
    """A canonical event from tests/events/<name>.json."""
    event: dict[str, Any] = json.loads((EVENTS / f"{name}.json").read_text())
    return event


@dataclass
class FakeLambdaContext:
    function_name: str = "appointments-test-function"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:appointments-test-function"
    aws_request_id: str = "c6af9ac6-7b61-11e6-9a41-93e812345678"

    def get_remaining_time_in_millis(self) -> int:
        return 10_000


@pytest.fixture
def lambda_context() -> FakeLambdaContext:
    return FakeLambdaContext()


# The staff user pool's issuer the events of tests/events/ and the service environments agree on.
STAFF_ISSUER = "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_StAfFpOoL"


@pytest.fixture
def service_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The variables a service function's CloudFormation resource sets."""
    from services.common.settings import load_settings

    for name, value in {
        "STAGE": "test",
        "TABLE_NAME": "appointments-test",
        "POWERTOOLS_SERVICE_NAME": "availability",
        "POWERTOOLS_METRICS_NAMESPACE": "Appointments",
        "POWERTOOLS_LOG_LEVEL": "INFO",
        "STAFF_ISSUER": STAFF_ISSUER,
        "ALLOWED_ORIGINS": "",
    }.items():
        monkeypatch.setenv(name, value)
    load_settings.cache_clear()
    yield
    load_settings.cache_clear()
