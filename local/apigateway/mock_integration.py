"""API Gateway's mock integration, as the CORS preflight (`OPTIONS`) uses it: no function runs.

As API Gateway does it: the request template (Velocity) renders `{"statusCode": N}`; N picks the
integration response whose key (a regular expression) matches it, else `default`; that response's
`responseParameters` make the headers (a quoted static value, or `method.request.header.X`) and its
template the body. The templates run on airspeed, a Python Velocity engine; `$input.params()` and
`$context.requestId` are what the preflight's templates read, and all this emulates of them.

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


def render(template: str, request: HttpRequest, request_id: str, path: dict[str, str] | None = None) -> str:
    """A mapping template rendered for `request`."""
    context = {"input": _Input(request, path or {}, {}), "context": {"requestId": request_id}}
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
        value = _parameter(str(source), request)
        if value is not None:
            headers[name.removeprefix("method.response.header.")] = value
    template = spec.get("responseTemplates", {}).get("application/json")
    body = render(template, request, request_id, path).encode() if template else b""
    return HttpResponse(int(spec["statusCode"]), headers, body)


def _parameter(source: str, request: HttpRequest) -> str | None:
    if source.startswith("'") and source.endswith("'"):
        return source[1:-1]
    if source.startswith("method.request.header."):
        return request.header(source.removeprefix("method.request.header."))
    raise ValueError(f"mapping {source!r} is not emulated by the local gateway")
