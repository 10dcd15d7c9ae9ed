"""Faults on demand in the emulated AWS, so anyone can watch the right alarm fire and follow its runbook.

`FaultInjector` wraps the emulator's WSGI application (outside its one-request-at-a-time lock, so a
slow dependency does not slow the others). `PUT /_faults` with a `FaultPlan` as JSON sets the faults;
`GET /_faults` answers the plan and what was injected so far. The local stack reaches it through
`/_local/faults`, the command line through `python -m local faults`. It injects:

- `dynamodbThrottle`: the share of DynamoDB requests refused with
  `ProvisionedThroughputExceededException` (botocore retries them, as against the real table);
- `dynamodbError`: the share answered `InternalServerError` (HTTP 500);
- `dynamodbDelayMs`: a delay before every DynamoDB request (a slow dependency);
- `archiveError`: the share of S3 writes under `audit/` answered `503 SlowDown` (a failing archive);
- `staleReadsMs`: eventually consistent reads answer with data up to that old (`consistency.py`);
- `eventsPutFailure`: the share of EventBridge `PutEvents` entries failed with `InternalFailure`,
  the others accepted (`event_bus.py`): a partial failure.

Injected throttles and errors are counted per table and operation. The stack turns those counts into
AWS/DynamoDB `ReadThrottleEvents`, `WriteThrottleEvents` and `SystemErrors`, the metrics DynamoDB
itself publishes.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class FaultPlan(BaseModel):
    model_config = ConfigDict(extra="forbid")

    dynamodbThrottle: float = Field(0.0, ge=0, le=1)
    dynamodbError: float = Field(0.0, ge=0, le=1)
    dynamodbDelayMs: int = Field(0, ge=0, le=30_000)
    archiveError: float = Field(0.0, ge=0, le=1)
    staleReadsMs: int = Field(0, ge=0, le=30_000)
    eventsPutFailure: float = Field(0.0, ge=0, le=1)


class FaultInjector:
    def __init__(self, app: WSGIApp, seed: int | None = None) -> None:
        self._app = app
        self._random = random.Random(seed)
        self._lock = threading.Lock()
        self.plan = FaultPlan()
        self.plan_listeners: list[Callable[[FaultPlan], None]] = []  # e.g. the read consistency layer
        self.injected: Counter[str] = Counter()  # "<kind> <table> <operation>" → count

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == "/_faults":
            return self._control(environ, start_response)
        target = str(environ.get("HTTP_X_AMZ_TARGET", ""))
        if target.startswith("DynamoDB_20120810."):
            return self._dynamodb(environ, start_response, target.split(".", 1)[1])
        method, path = environ.get("REQUEST_METHOD"), str(environ.get("PATH_INFO", ""))
        if method == "PUT" and "/audit/" in path and self._roll(self.plan.archiveError):
            self._count("ArchiveError", path.split("/", 2)[1], "PutObject")
            body = b"<Error><Code>SlowDown</Code><Message>Injected fault</Message></Error>"
            return self._answer(start_response, "503 Slow Down", "application/xml", body)
        return self._app(environ, start_response)

    def _dynamodb(self, environ: dict[str, Any], start_response: Callable[..., Any], operation: str) -> Iterable[bytes]:
        plan = self.plan
        if plan.dynamodbDelayMs:
            time.sleep(plan.dynamodbDelayMs / 1000)
        if not (plan.dynamodbThrottle or plan.dynamodbError):
            return self._app(environ, start_response)
        # Read the body to name the table; hand it on unchanged.
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = Replay(body)
        table = _table_of(body)
        if self._roll(plan.dynamodbThrottle):
            self._count("Throttle", table, operation)
            return self._dynamodb_error(start_response, "400 Bad Request", "ProvisionedThroughputExceededException")
        if self._roll(plan.dynamodbError):
            self._count("SystemError", table, operation)
            return self._dynamodb_error(start_response, "500 Internal Server Error", "InternalServerError")
        return self._app(environ, start_response)

    def _dynamodb_error(self, start_response: Callable[..., Any], status: str, code: str) -> list[bytes]:
        problem = {"__type": f"com.amazonaws.dynamodb.v20120810#{code}", "message": "Injected fault"}
        return self._answer(start_response, status, "application/x-amz-json-1.0", json.dumps(problem).encode())

    def _control(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("REQUEST_METHOD") in {"PUT", "POST"}:
            length = int(environ.get("CONTENT_LENGTH") or 0)
            try:
                plan = FaultPlan.model_validate_json(environ["wsgi.input"].read(length) or b"{}")
            except ValueError as error:
                return self._answer(
                    start_response, "400 Bad Request", "application/json", json.dumps({"error": str(error)}).encode()
                )
            with self._lock:
                self.plan = plan
            for listener in self.plan_listeners:
                listener(plan)
        with self._lock:
            state = {"plan": self.plan.model_dump(), "injected": dict(self.injected)}
        return self._answer(start_response, "200 OK", "application/json", json.dumps(state).encode())

    def _roll(self, share: float) -> bool:
        with self._lock:
            return share > 0 and self._random.random() < share

    def _count(self, kind: str, table: str, operation: str) -> None:
        with self._lock:
            self.injected[f"{kind} {table} {operation}"] += 1

    @staticmethod
    def _answer(start_response: Callable[..., Any], status: str, content_type: str, body: bytes) -> list[bytes]:
        start_response(status, [("Content-Type", content_type), ("Content-Length", str(len(body)))])
        return [body]


class Replay:
    """A request body, readable again by the wrapped application."""

    def __init__(self, body: bytes) -> None:
        self._body, self._position = body, 0

    def read(self, size: int = -1) -> bytes:
        end = len(self._body) if size is None or size < 0 else self._position + size
        chunk = self._body[self._position : end]
        self._position += len(chunk)
        return chunk

    def readline(self, size: int = -1) -> bytes:
        return self.read(size)


def _table_of(body: bytes) -> str:
    try:
        request = json.loads(body or b"{}")
    except ValueError:
        return "-"
    return table_of(request)


def table_of(request: dict[str, Any]) -> str:
    """A DynamoDB request's table (the first one, for the multi-table operations)."""
    if "TableName" in request:
        return str(request["TableName"])
    for entry in request.get("TransactItems", []):
        for action in entry.values():
            return str(action.get("TableName", "-"))
    return next(iter(request.get("RequestItems", {})), "-")
