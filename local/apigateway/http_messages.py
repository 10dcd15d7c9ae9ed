"""HTTP requests and responses as the local gateway sees them, between the socket and the gateway."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class HttpRequest:
    method: str
    target: str  # path and query as sent
    headers: list[tuple[str, str]]
    body: bytes
    source_ip: str = "127.0.0.1"
    protocol: str = "HTTP/1.1"
    malformed: bool = False  # the body could not be read (bad Content-Length or chunk framing)
    wire_length: int | None = None  # bytes the client sent, when more than `body` keeps (oversize)

    def header(self, name: str) -> str | None:
        values = [value for key, value in self.headers if key.lower() == name.lower()]
        return values[-1] if values else None


@dataclass
class HttpResponse:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    # What the access log reports about the integration, when there was one.
    integration_latency_ms: float | None = None
    integration_status: int | None = None
    error_message: str | None = None
    sub: str | None = None


def json_response(status: int, body: Any, headers: dict[str, str] | None = None) -> HttpResponse:
    return HttpResponse(status, {"Content-Type": "application/json", **(headers or {})}, json.dumps(body).encode())


def problem_response(
    status: int, title: str, code: str, detail: str, errors: list[dict[str, str]] | None = None
) -> HttpResponse:
    """An RFC 9457 problem, as the functions answer them, for the local stack's own routes."""
    problem: dict[str, Any] = {"type": "about:blank", "title": title, "status": status, "code": code, "detail": detail}
    if errors is not None:
        problem["errors"] = errors
    return HttpResponse(status, {"Content-Type": "application/problem+json"}, json.dumps(problem).encode())


# A route the local stack serves itself, beside the deployed API (`Gateway.add_local_route`).
LocalRoute = Callable[[HttpRequest], HttpResponse]
