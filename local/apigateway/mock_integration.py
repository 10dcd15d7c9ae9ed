"""API Gateway's mock integration, as the CORS preflight (`OPTIONS`) uses it: no function runs.

As API Gateway does it: the request template (Velocity) renders `{"statusCode": N}`; N picks the
integration response whose key (a regular expression) matches it, else `default`; that response's
`responseParameters` make the headers and its template the body, where
`$context.responseOverride.header.X` sets a header too (how an answer echoes a request header). A
parameter's source must be one API Gateway accepts for a method response: a quoted static value, the
integration response, the context or a stage variable; this emulates static values and refuses the
rest, a method request header included ("Invalid mapping expression" on import). The templates run
on airspeed, a Python Velocity engine; `$input.params()`, `$context.requestId` and
`$context.responseOverride` are what the preflight's templates use, and all this emulates of them.

The one other mock, `GET /openapi.json`, is answered by the gateway itself (`gateway.py`).
"""

from __future__ import annotations

import json
import re
from typing import Any

import airspeed  # type: ignore[import-untyped]

from local.apigateway.http_messages import HttpRequest, HttpResponse


class _Input:
    """Velocity's `$input` in a mock's templates: the method request's parameters."""

    def __init__(self, request: HttpRequest, path: dict[str, str], query: dict[str, str]) -> None:
        self._params = {"header": dict(request.headers), "path": path, "querystring": query}

    def params(self, name: str | None = None) -> Any:
        if name is None:
            return self._params
        for place in ("path", "querystring", "header"):  # API Gateway's documented search order
            if name in self._params[place]:
                return self._params[place][name]
        return ""


def render(
    template: str,
    request: HttpRequest,
    request_id: str,
    path: dict[str, str] | None = None,
    overrides: dict[str, Any] | None = None,
) -> str:
    """A mapping template rendered for `request`; what it sets in `$context.responseOverride` lands in
    `overrides` (`header`: name → value)."""
    override = overrides if overrides is not None else {"header": {}}
    context = {
        "input": _Input(request, path or {}, {}),
        "context": {"requestId": request_id, "responseOverride": override},
    }
    return str(airspeed.Template(template).merge(context))


def mock_response(
    integration: dict[str, Any], request: HttpRequest, request_id: str, path: dict[str, str] | None = None
) -> HttpResponse:
    """The answer a mock integration gives `request`."""
    request_template = integration.get("requestTemplates", {}).get("application/json", '{"statusCode": 200}')
    selected = str(json.loads(render(request_template, request, request_id, path))["statusCode"])
    responses: dict[str, Any] = integration.get("responses", {})
    spec = next(
        (spec for pattern, spec in responses.items() if pattern != "default" and re.fullmatch(pattern, selected)),
        responses.get("default", {"statusCode": selected}),
    )
    headers = {"Content-Type": "application/json"}  # API Gateway's, unless a parameter sets another
    for name, source in spec.get("responseParameters", {}).items():
        headers[name.removeprefix("method.response.header.")] = _parameter(str(source))
    template = spec.get("responseTemplates", {}).get("application/json")
    overrides: dict[str, Any] = {"header": {}}
    rendered = render(template, request, request_id, path, overrides) if template else ""
    headers.update({name: str(value) for name, value in overrides["header"].items() if value})
    # A template that only sets things (the 204's) leaves its line breaks: no body, as a 204 has none.
    body = rendered.encode() if rendered.strip() else b""
    return HttpResponse(int(spec["statusCode"]), headers, body)


def _parameter(source: str) -> str:
    if source.startswith("'") and source.endswith("'"):
        return source[1:-1]
    raise ValueError(f"mapping {source!r} is not emulated by the local gateway")
