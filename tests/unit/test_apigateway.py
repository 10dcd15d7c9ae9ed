from __future__ import annotations

import base64
import json
from typing import Any

import pytest
import yaml

from deploy.checks import Packaged, operation_security
from deploy.openapi import load_document, shipped_document
from local.apigateway import authorizer
from local.apigateway.api import ApiDefinition
from local.apigateway.gateway import Gateway
from local.apigateway.http_messages import HttpRequest
from local.apigateway.proxy_integration import MalformedIntegrationResponse, build_event, proxy_response
from local.cognito import user_pool
from local.lambda_runtime.function_runtime import Invocation, Throttled
from local.lambda_runtime.service import LambdaService
from local.xray.trace_header import trace_header

API = ApiDefinition.load()
POOLS = user_pool.UserPools.generate()


class FakeFunction:
    """Stands in for a function runtime: records events, answers what the test says."""

    def __init__(self, answer: Any = None, error: dict[str, Any] | None = None, throttle: bool = False) -> None:
        self.events: list[dict[str, Any]] = []
        self.answer = answer if answer is not None else {"statusCode": 200, "headers": {}, "body": "{}"}
        self.error = error
        self.throttle = throttle

    def invoke(self, event: dict[str, Any], *, request_id: str, trace_id: str) -> Invocation:
        if self.throttle:
            raise Throttled("fake")
        self.events.append(event)
        return Invocation(request_id, payload=None if self.error else self.answer, error=self.error)


def gateway_with(function: FakeFunction, **kwargs: Any) -> Gateway:
    functions: Any = {"AvailabilityFunction": function}
    return Gateway(API, LambdaService(functions), POOLS, **kwargs)


def request(method: str, target: str, headers: list[tuple[str, str]] | None = None, body: bytes = b"") -> HttpRequest:
    return HttpRequest(method, target, headers or [], body)


def token_header(groups: list[str]) -> tuple[str, str]:
    return ("Authorization", f"Bearer {POOLS.mint('alice', groups)}")


def test_routes_come_from_the_openapi_document() -> None:
    found = API.find("GET", "/health")
    assert found is not None
    route, parameters = found
    assert (route.function, route.secured, parameters) == ("AvailabilityFunction", False, {})
    me = API.find("GET", "/me")
    assert me is not None and me[0].secured
    assert API.find("POST", "/health") is None
    assert API.find("GET", "/nowhere") is None


def test_build_event_is_a_rest_proxy_v1_event() -> None:
    # Given a request with repeated headers and query parameters
    route, _ = API.find("GET", "/me") or pytest.fail("no route")
    incoming = request(
        "GET",
        "/me?tag=a&tag=b&empty=",
        [("Accept", "application/json"), ("X-Multi", "1"), ("X-Multi", "2"), ("User-Agent", "pytest")],
    )
    # When the gateway builds the event
    event = build_event(
        incoming, route, {}, request_id="req-1", stage="local", claims={"sub": "alice"}, trace="Root=1-a-b"
    )
    # Then it has the shape and values API Gateway's REST proxy sends
    assert set(event) == {
        "resource", "path", "httpMethod", "headers", "multiValueHeaders", "queryStringParameters",
        "multiValueQueryStringParameters", "pathParameters", "stageVariables", "requestContext", "body",
        "isBase64Encoded",
    }  # fmt: skip
    assert (event["resource"], event["path"], event["httpMethod"]) == ("/me", "/me", "GET")
    assert event["headers"]["X-Multi"] == "2"
    assert event["multiValueHeaders"]["X-Multi"] == ["1", "2"]
    assert event["headers"]["X-Amzn-Trace-Id"] == "Root=1-a-b"
    assert event["queryStringParameters"] == {"tag": "b", "empty": ""}
    assert event["multiValueQueryStringParameters"] == {"tag": ["a", "b"], "empty": [""]}
    assert event["pathParameters"] is None and event["body"] is None and event["isBase64Encoded"] is False
    context = event["requestContext"]
    assert context["requestId"] == "req-1"
    assert context["stage"] == "local" and context["path"] == "/me"  # the path the client asked for
    assert context["resourcePath"] == "/me"
    assert context["identity"]["sourceIp"] == "127.0.0.1"
    assert context["authorizer"] == {"claims": {"sub": "alice"}}


def test_build_event_fills_path_parameters_and_base64_encodes_binary_bodies() -> None:
    api = ApiDefinition(
        {
            "paths": {
                "/providers/{providerId}/overrides/{date}": {
                    "put": {"x-amazon-apigateway-integration": {"uri": {"Fn::Sub": "x/${AvailabilityFunctionArn}/y"}}}
                }
            }
        }
    )
    found = api.find("PUT", "/providers/prv_1/overrides/2026-03-08")
    assert found is not None
    route, parameters = found
    assert parameters == {"providerId": "prv_1", "date": "2026-03-08"}
    binary = request("PUT", "/providers/prv_1/overrides/2026-03-08", [("Content-Type", "image/png")], b"\x89PNG")
    event = build_event(binary, route, parameters, request_id="r", stage="s", claims=None, trace="Root=1-a-b")
    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == b"\x89PNG"
    assert "authorizer" not in event["requestContext"]


def test_trace_header_continues_the_callers_trace() -> None:
    continued = trace_header("Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=0")
    assert continued.startswith("Root=1-5759e988-bd862e3fe1be46a994272793;Parent=")
    assert continued.endswith(";Sampled=0")
    assert "Parent=53995c3f42cd8ad8" not in continued
    assert trace_header(None).startswith("Root=1-")


def test_proxy_response_reads_the_integration_answer() -> None:
    response = proxy_response(
        {
            "statusCode": 201,
            "headers": {"Location": "/x"},
            "multiValueHeaders": {"Set-Cookie": ["a=1", "b=2"]},
            "body": base64.b64encode(b"raw").decode(),
            "isBase64Encoded": True,
        }
    )
    assert (response.status, response.body) == (201, b"raw")
    assert response.headers == {"Location": "/x", "Set-Cookie": "a=1, b=2"}


@pytest.mark.parametrize(
    "answer", [None, "text", {"body": "{}"}, {"statusCode": "200"}, {"statusCode": 200, "body": 5}]
)
def test_proxy_response_refuses_malformed_answers(answer: Any) -> None:
    with pytest.raises(MalformedIntegrationResponse):
        proxy_response(answer)


def test_handle_invokes_the_integrated_function_with_claims() -> None:
    function = FakeFunction({"statusCode": 200, "headers": {"Content-Type": "application/json"}, "body": '{"ok":1}'})
    response = gateway_with(function).handle(request("GET", "/me", [token_header(["customers"])]))
    assert (response.status, response.body) == (200, b'{"ok":1}')
    assert response.headers["x-amzn-RequestId"]
    assert response.headers["X-Amzn-Trace-Id"].startswith("Root=1-")
    claims = function.events[0]["requestContext"]["authorizer"]["claims"]
    assert (claims["sub"], claims["cognito:groups"]) == ("alice", "customers")


def test_handle_refuses_secured_routes_without_a_valid_token() -> None:
    function = FakeFunction()
    gateway = gateway_with(function)
    for headers in ([], [("Authorization", "Bearer junk")]):
        response = gateway.handle(request("GET", "/me", headers))
        assert response.status == 401
        assert response.headers["Content-Type"] == "application/problem+json"
        assert json.loads(response.body)["code"] == "UNAUTHORIZED"
    expired = POOLS.mint("alice", ["customers"], 60, now=0)
    response = gateway.handle(request("GET", "/me", [("Authorization", f"Bearer {expired}")]))
    assert json.loads(response.body)["detail"] == "The incoming token has expired"
    assert function.events == []  # no function ran


def test_handle_takes_id_tokens_and_refuses_access_tokens() -> None:
    # Given the same user's ID token and access token from our own user pool and client
    function = FakeFunction()
    gateway = gateway_with(function)
    access = POOLS.mint("alice", ["customers"], token_use="access")
    # When each calls a secured route that declares no OAuth scopes
    refused = gateway.handle(request("GET", "/me", [("Authorization", f"Bearer {access}")]))
    # Then the access token is a 401 that never reaches the function, and the ID token goes through
    assert (refused.status, json.loads(refused.body)["code"]) == (401, "UNAUTHORIZED")
    assert function.events == []
    assert gateway.handle(request("GET", "/me", [token_header(["customers"])])).status == 200
    assert function.events[0]["requestContext"]["authorizer"]["claims"]["token_use"] == "id"


def test_handle_lets_public_routes_through_without_a_token() -> None:
    function = FakeFunction()
    assert gateway_with(function).handle(request("GET", "/health")).status == 200
    assert "authorizer" not in function.events[0]["requestContext"]


def test_handle_answers_unknown_routes_with_a_404_problem() -> None:
    response = gateway_with(FakeFunction()).handle(request("DELETE", "/health"))
    body = json.loads(response.body)
    assert (response.status, body["code"], body["status"]) == (404, "NOT_FOUND", 404)


def test_handle_refuses_oversize_bodies_before_invoking() -> None:
    function = FakeFunction()
    gateway = gateway_with(function, max_body_bytes=10)
    response = gateway.handle(request("GET", "/health", [("Content-Length", "11")], b"x" * 11))
    assert response.status == 413
    dropped = HttpRequest("POST", "/health", [], b"", wire_length=11)  # read off the wire, not kept
    assert gateway.handle(dropped).status == 413
    # API Gateway's own answer: the 413 cannot be customized (important notes for REST APIs)
    assert (response.headers["Content-Type"], json.loads(response.body)) == (
        "application/json",
        {"message": "Request Too Long"},
    )
    assert function.events == []


def test_handle_answers_a_malformed_body_with_400() -> None:
    function = FakeFunction()
    response = gateway_with(function).handle(HttpRequest("POST", "/health", [], b"", malformed=True))
    body = json.loads(response.body)
    assert (response.status, body["code"], body["errors"][0]["field"]) == (400, "VALIDATION_FAILED", "body")
    assert function.events == []


def test_handle_maps_function_failures_to_gateway_responses() -> None:
    failed = gateway_with(FakeFunction(error={"errorType": "ValueError", "errorMessage": "boom"}))
    response = failed.handle(request("GET", "/health"))
    assert (response.status, json.loads(response.body)["status"]) == (502, 502)
    malformed = gateway_with(FakeFunction({"not": "a proxy response"}))
    assert malformed.handle(request("GET", "/health")).status == 502
    throttled = gateway_with(FakeFunction(throttle=True)).handle(request("GET", "/health"))
    assert throttled.status == 503
    assert throttled.headers["Retry-After"] == "1"


def test_openapi_document_served_without_gateway_extensions() -> None:
    response = gateway_with(FakeFunction()).handle(request("GET", "/openapi.json"))
    assert response.status == 200
    assert "x-amazon-apigateway" not in response.body.decode()
    document = json.loads(response.body)
    assert "/health" in document["paths"] and "/me" in document["paths"]


def test_token_mint_validates_its_input() -> None:
    gateway = gateway_with(FakeFunction())
    good = gateway.handle(request("POST", "/_local/token", body=b'{"sub": "alice", "groups": ["ops"]}'))
    assert authorizer.verify(POOLS, json.loads(good.body)["token"])["cognito:groups"] == ["ops"]
    bad = gateway.handle(request("POST", "/_local/token", body=b'{"groups": "ops"}'))
    assert bad.status == 400 and json.loads(bad.body)["code"] == "VALIDATION_FAILED"


def test_token_mint_signs_staff_groups_with_the_staff_pool_and_refuses_a_mix() -> None:
    gateway = gateway_with(FakeFunction())

    def minted(groups: str) -> dict[str, Any]:
        answer = gateway.handle(request("POST", "/_local/token", body=f'{{"sub": "a", "groups": {groups}}}'.encode()))
        return dict(authorizer.verify(POOLS, json.loads(answer.body)["token"]))

    assert minted('["admins", "ops"]')["iss"] == user_pool.STAFF_POOL.issuer
    assert minted('["admins"]')["aud"] == user_pool.STAFF_POOL.client_id
    assert minted('["customers", "providers"]')["iss"] == user_pool.CUSTOMER_POOL.issuer
    assert minted("[]")["iss"] == user_pool.CUSTOMER_POOL.issuer
    # no Cognito user is in both pools, so no token holds groups of both
    mixed = gateway.handle(request("POST", "/_local/token", body=b'{"sub": "a", "groups": ["customers", "admins"]}'))
    problem = json.loads(mixed.body)
    assert (mixed.status, problem["code"], problem["errors"][0]["field"]) == (400, "VALIDATION_FAILED", "body.groups")
    assert "staff user pool" in problem["detail"]


def test_access_log_has_one_json_line_per_request(tmp_path: Any) -> None:
    lines: list[str] = []
    gateway = gateway_with(FakeFunction(), access_log=tmp_path / "access.log", echo=lines.append)
    gateway.handle(request("GET", "/health", [("User-Agent", "pytest")]))
    gateway.handle(request("GET", "/me"))
    gateway.close()
    records = [json.loads(line) for line in (tmp_path / "access.log").read_text().splitlines()]
    assert [r["status"] for r in records] == [200, 401]
    assert records[0]["resourcePath"] == "/health" and records[0]["userAgent"] == "pytest"
    assert records[0]["integrationStatus"] == 200 and records[0]["integrationLatency"] is not None
    assert len(lines) == 2


def test_an_operation_without_its_own_security_is_open_locally_as_on_aws_and_the_deploy_check_fails(
    tmp_path: Any,
) -> None:
    # Given the document with a root-level requirement and GET /me's own one removed
    document = load_document()
    document["security"] = [{"CognitoUserPool": []}]
    del document["paths"]["/me"]["get"]["security"]
    shipped = tmp_path / "openapi.yaml"
    shipped.write_text(yaml.safe_dump(document))
    api = ApiDefinition.load(shipped)
    function = FakeFunction({"statusCode": 200, "headers": {}, "body": "{}"})
    gateway = Gateway(api, LambdaService({"AvailabilityFunction": function}), POOLS)  # type: ignore[dict-item]
    # When it is called without a token, the local gateway lets it through: API Gateway ignores the
    # root-level requirement, so on AWS it has no authorizer either
    response = gateway.handle(request("GET", "/me"))
    assert response.status == 200 and len(function.events) == 1
    assert function.events[0]["requestContext"].get("authorizer") in (None, {})
    # and the deploy check refuses the document before it could be deployed
    packaged = Packaged({}, {}, shipped_document(shipped))
    assert operation_security(packaged) == [
        "root-level security is ignored by API Gateway",
        "GET /me: no security of its own",
    ]
