"""Gateway responses exactly as `cloudformation/api/openapi.yaml` configures them, locally and on AWS.

API Gateway sends a gateway response with the configured status, the headers of `responseParameters`
(and `application/json` when none names a content type) and the template's body, nothing more. So
the document must name every header a client relies on, and the local gateway must add none.
"""

from __future__ import annotations

import ast
import json
from typing import Any

import pytest

from deploy.openapi import NOT_CUSTOMIZABLE
from local.apigateway import gateway
from local.apigateway.api import ApiDefinition
from local.apigateway.http_messages import HttpRequest
from local.cognito import user_pool
from local.lambda_runtime.function_runtime import Invocation, Throttled
from local.lambda_runtime.service import LambdaService

API = ApiDefinition.load()
CONFIGURED: dict[str, Any] = API.document["x-amazon-apigateway-gateway-responses"]


def raised_types() -> set[str]:
    """Every response type the local gateway can answer with (its `_gateway_response` calls)."""
    with open(gateway.__file__, encoding="utf-8") as source:
        tree = ast.parse(source.read())
    return {
        str(call.args[0].value)
        for call in ast.walk(tree)
        if isinstance(call, ast.Call)
        and isinstance(call.func, ast.Attribute)
        and call.func.attr == "_gateway_response"
        and isinstance(call.args[0], ast.Constant)
    }


def test_every_type_the_gateway_raises_is_configured_with_its_content_type() -> None:
    raised = raised_types()
    assert {"UNAUTHORIZED", "MISSING_AUTHENTICATION_TOKEN", "INTEGRATION_FAILURE", "DEFAULT_5XX"} <= raised
    assert raised - set(NOT_CUSTOMIZABLE) <= set(CONFIGURED), "a type without configuration answers a bare {message}"
    assert not set(NOT_CUSTOMIZABLE) & set(CONFIGURED), "API Gateway does not support customizing these"
    for response_type in [*CONFIGURED, "BAD_REQUEST_PARAMETERS", "DEFAULT_4XX", "DEFAULT_5XX"]:
        parameters = CONFIGURED[response_type]["responseParameters"]
        assert parameters["gatewayresponse.header.Content-Type"] == "'application/problem+json'", response_type


@pytest.mark.parametrize("response_type", sorted(CONFIGURED))
def test_each_gateway_response_is_rendered_exactly_as_configured(response_type: str) -> None:
    spec = CONFIGURED[response_type]
    rendered = API.gateway_response(response_type, 'Say "why"', "req-1", status=500 if "5XX" in response_type else 400)

    expected_headers = {
        name.removeprefix("gatewayresponse.header."): value.strip("'")
        for name, value in spec["responseParameters"].items()
    }
    assert rendered.headers == expected_headers
    if "statusCode" in spec:
        assert rendered.status == int(spec["statusCode"])
    expected = (
        spec["responseTemplates"]["application/json"]
        .replace("$context.error.messageString", json.dumps('Say "why"'))
        .replace("$context.requestId", "req-1")
        .replace("$context.error.responseType", response_type)
    )
    assert json.loads(rendered.body) == json.loads(expected)
    if "status" in json.loads(expected):
        assert json.loads(rendered.body)["status"] == rendered.status


@pytest.mark.parametrize(
    ("response_type", "status", "family"),
    [("QUOTA_EXCEEDED", 429, "DEFAULT_4XX"), ("API_CONFIGURATION_ERROR", 500, "DEFAULT_5XX")],
)
def test_a_type_without_its_own_configuration_takes_its_familys_response_and_status(
    response_type: str, status: int, family: str
) -> None:
    """API Gateway: a status code set on DEFAULT_4XX or DEFAULT_5XX applies to the family's other types."""
    rendered = API.gateway_response(response_type, "Limit Exceeded", "req-2", status=status)
    assert rendered.status == int(CONFIGURED[family]["statusCode"])
    body = json.loads(rendered.body)
    assert body["status"] == rendered.status and body["requestId"] == "req-2"
    assert rendered.headers == {"Content-Type": "application/problem+json"}


class _Function:
    def __init__(self, outcome: str) -> None:
        self.outcome = outcome
        self.calls = 0

    def invoke(self, event: dict[str, Any], *, request_id: str, trace_id: str) -> Invocation:
        self.calls += 1
        if self.outcome == "throttle":
            raise Throttled("fake")
        return Invocation(request_id, error={"errorType": "Boom", "errorMessage": "boom"})


@pytest.mark.parametrize(
    ("case", "status", "headers"),
    [
        ("no token", 401, {"Content-Type": "application/problem+json", "WWW-Authenticate": "Bearer"}),
        ("unknown route", 404, {"Content-Type": "application/problem+json"}),
        ("throttled function", 503, {"Content-Type": "application/problem+json", "Retry-After": "1"}),
        ("failed function", 502, {"Content-Type": "application/problem+json"}),
    ],
)
def test_the_gateway_sends_only_the_configured_headers(case: str, status: int, headers: dict[str, str]) -> None:
    function = _Function("throttle" if case == "throttled function" else "error")
    local = gateway.Gateway(API, LambdaService({"AvailabilityFunction": function}), user_pool.UserPools.generate())  # type: ignore[dict-item]
    target = {"no token": ("GET", "/me"), "unknown route": ("GET", "/nowhere")}.get(case, ("GET", "/health"))
    response = local.handle(HttpRequest(target[0], target[1], [], b""))
    assert response.status == status
    # API Gateway adds its request id, the trace header (tracing is on) and the length; the rest is the document's.
    platform = {"x-amzn-RequestId", "X-Amzn-Trace-Id", "Content-Length"}
    assert {k: v for k, v in response.headers.items() if k not in platform} == headers
